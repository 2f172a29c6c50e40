"""The connector's pure parts: the pool from task data, its bounds, the scores and names it
writes, its options, and its CLI's parsing. No Label Studio needed."""

from typing import Any

import numpy as np
import pytest

from labelwise_labelstudio.cli import _param, build_parser
from labelwise_labelstudio.sync import (
    SyncError,
    SyncOptions,
    build_pool,
    model_version,
    scores,
)


def task(task_id: int, labeled: bool = False, **data: Any) -> dict[str, Any]:
    return {"id": task_id, "is_labeled": labeled, "data": {"text": "t", **data}}


def options(**kwargs: Any) -> SyncOptions:
    return SyncOptions(project=1, strategy="entropy", **kwargs)


def test_the_pool_is_the_unlabeled_tasks_with_every_field_row_aligned() -> None:
    tasks = [
        task(3, p=[0.1, 0.9], e=[1, 2]),
        task(4, labeled=True, p=[0.5, 0.5], e=[3, 4]),
        task(5, e=[5, 6]),  # no probabilities: not ranked
        task(9, p=[0.3, 0.7], e=[7, 8]),
        task(10, labeled=True, p=[0.5, 0.5]),  # labeled without an embedding
    ]
    pool = build_pool(tasks, options(probabilities_field="p", embeddings_field="e"))
    assert pool.task_ids == [3, 9]
    assert pool.missing == [5]
    assert pool.labeled == 2
    np.testing.assert_array_equal(pool.arrays["probabilities"], [[0.1, 0.9], [0.3, 0.7]])
    np.testing.assert_array_equal(pool.arrays["embeddings"], [[1, 2], [7, 8]])
    assert pool.labeled_embeddings is not None
    np.testing.assert_array_equal(pool.labeled_embeddings, [[3, 4]])
    assert pool.arrays["probabilities"].dtype == np.float64


def test_model_mode_reads_the_features_field_as_model_inputs() -> None:
    pool = build_pool(
        [task(1, x=[1, 2, 3]), task(2, x=[4, 5, 6])],
        options(model="m.onnx", features_field="x"),
    )
    assert list(pool.arrays) == ["model_inputs"]
    assert pool.arrays["model_inputs"].shape == (2, 3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.3", "must be a non-empty list of numbers"),
        ([], "must be a non-empty list of numbers"),
        ([0.5, "x"], "non-finite or non-number"),
        ([0.5, True], "non-finite or non-number"),
        ([0.5, float("nan")], "non-finite or non-number"),
        ([0.5, float("inf")], "non-finite or non-number"),
        ([0.2, 0.3, 0.5], "has 3 values, the first unlabeled task's has 2"),
    ],
)
def test_bad_task_data_is_refused_naming_the_task_and_field(value: object, message: str) -> None:
    tasks = [task(1, p=[0.4, 0.6]), task(7, p=value)]
    with pytest.raises(SyncError, match=message) as err:
        build_pool(tasks, options(probabilities_field="p"))
    assert str(err.value).startswith("task 7: data field 'p'")


def test_labeled_embeddings_must_match_the_pool_width() -> None:
    tasks = [task(1, e=[1.0, 2.0]), task(2, labeled=True, e=[1.0, 2.0, 3.0])]
    with pytest.raises(SyncError, match="differ in length"):
        build_pool(tasks, options(embeddings_field="e"))


def test_the_pool_is_bounded_before_it_is_built() -> None:
    def endless() -> Any:
        n = 0
        while True:
            n += 1
            yield task(n, p=[0.5, 0.5])

    with pytest.raises(SyncError, match="more than 50 tasks"):
        build_pool(endless(), options(probabilities_field="p", max_tasks=50))
    with pytest.raises(SyncError, match="more than 10 numbers"):
        build_pool(endless(), options(probabilities_field="p", max_values=10))


def test_listing_without_id_or_data_is_refused() -> None:
    with pytest.raises(SyncError, match="without an id or data"):
        build_pool([{"id": "1", "data": {}}], options(probabilities_field="p"))


def test_scores_rise_with_rank_from_zero_below_one() -> None:
    assert scores([]) == []
    assert scores([42]) == [0.0]
    assert scores([5, 3, 8, 1]) == [0.0, 0.25, 0.5, 0.75]


def test_the_model_version_names_the_ranking() -> None:
    name = model_version("labelwise", "entropy", [3, 1, 2])
    assert name.startswith("labelwise@entropy.") and len(name.split(".")[-1]) == 12
    assert model_version("labelwise", "entropy", [3, 1, 2]) == name
    assert model_version("labelwise", "entropy", [1, 3, 2]) != name
    assert model_version("team", "entropy", [3, 1, 2]).startswith("team@")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to rank by"),
        ({"probabilities_field": "p", "batch_size": 0}, "batch size"),
        ({"features_field": "x", "probabilities_field": "p"}, "only in model mode"),
        ({"model": "m.onnx"}, "model mode needs a features field"),
        ({"model": "m.onnx", "features_field": "x", "model_output": "x"}, "model output"),
        ({"probabilities_field": "p", "model_version_prefix": "a@b"}, "without '@'"),
        ({"probabilities_field": "p", "model_version_prefix": ""}, "1-64 characters"),
        ({"probabilities_field": "p", "deadline": 0}, "must be positive"),
    ],
)
def test_options_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SyncError, match=message):
        options(**kwargs).check()
    with pytest.raises(SyncError, match="project id"):
        SyncOptions(project=0, strategy="entropy", probabilities_field="p").check()


def test_strategy_parameters_parse_as_json_scalars_else_strings() -> None:
    assert _param("beta=1") == ("beta", 1)
    assert _param("beta=0.5") == ("beta", 0.5)
    assert _param("normalize=true") == ("normalize", True)
    assert _param("metric=cosine") == ("metric", "cosine")
    assert _param("metric=[1]") == ("metric", "[1]")
    with pytest.raises(Exception, match="NAME=VALUE"):
        _param("beta")


def test_the_cli_requires_a_project_and_a_positive_batch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "sync",
            "--url",
            "http://x",
            "--project",
            "3",
            "--address",
            "a:1",
            "--strategy",
            "s",
            "--param",
            "k=2",
            "--param",
            "m=x",
        ]
    )
    assert args.project == 3 and dict(args.param) == {"k": 2, "m": "x"}
    for bad in (["--project", "0"], ["--project", "1", "--batch-size", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["sync", "--address", "a:1", "--strategy", "s", *bad])
    assert "must be at least 1" in capsys.readouterr().err
