"""tests/vectors replayed through the Python client against a real server: every vector the
Go, TypeScript and Java clients replay (and the model-mode and CheckStopping ones), read the
way they read them, must give the same rankings, scores and verdicts."""

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from labelwise import Client, Round

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SELECT = sorted(
    [*VECTORS.glob("*.json"), *VECTORS.glob("model/*.json"), *VECTORS.glob("history/*.json")]
)
STOPPING = sorted(VECTORS.glob("stopping/*.json"))
LABELS = sorted(VECTORS.glob("labels/*.json"))


def _tensor(spec: dict[str, Any]) -> npt.NDArray[Any]:
    return np.asarray(spec["data"], dtype=spec["dtype"]).reshape(spec["shape"])


def _param(value: dict[str, Any]) -> Any:
    (kind, v), = value.items()  # fmt: skip
    return float(v) if kind == "double" else v


def _close(ours: Any, theirs: Any) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_the_vectors_are_there() -> None:
    assert len(SELECT) >= 12 and any("model" in p.parent.name for p in SELECT)
    assert any(p.parent.name == "history" for p in SELECT)
    assert len(STOPPING) >= 2
    assert {p.stem.split("_")[0] for p in LABELS} == {"assess", "plan"}


@pytest.mark.parametrize("path", SELECT, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_select_vector(client: Client, path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    request, expected = vector["request"], vector["response"]
    arguments: dict[str, Any] = {name: _tensor(t) for name, t in request["tensors"].items()}
    if request.get("models"):
        arguments |= {
            "model": [base64.b64decode(blob) for blob in request["models"]],
            "model_output": request["model_output"],
            "embeddings_output": request["embeddings_output"],
            "mc_dropout_samples": request["mc_dropout_samples"],
        }
    if "history" in request:
        arguments["history"] = [
            Round(r["strategies"], r["labels"], r["probabilities"] or None)
            for r in request["history"]
        ]
    strategies = [
        (s["name"], {p: _param(v) for p, v in s["params"].items()}) for s in request["strategies"]
    ]
    names = [name for name, _ in strategies]
    # The client keys results by name: a strategy named twice takes one call per spec.
    calls = [[spec] for spec in strategies] if len(set(names)) < len(names) else [strategies]
    got = []
    for specs in calls:
        answer = client.select(
            strategies=specs,
            k=request["k"],
            seed=request["seed"],
            exclude=request["exclude"] or None,
            clamp_k=request["clamp_k"],
            budget=request["budget"],
            temperature=request["temperature"],
            **arguments,
        )
        got += [answer[name] for name, _ in specs]
    assert [s.name for s in got] == [r["name"] for r in expected["results"]]
    for selection, result in zip(got, expected["results"], strict=True):
        assert selection.indices.tolist() == result["indices"], result["name"]
        _close(selection.scores, result["scores"])
        _close(selection.total_cost, result["total_cost"])
        assert selection.params == {p: _param(v) for p, v in result["params"].items()}
        if "adversarial_points" in result:
            points = result["adversarial_points"]
            if points is None:
                assert selection.adversarial_points is None
            else:
                assert selection.adversarial_points is not None
                _close(selection.adversarial_points, _tensor(points))
            assert selection.candidates_considered == result["candidates_considered"]
            assert selection.adversarial_method == result["adversarial_method"]
        if "auto_selection" in result:
            report = result["auto_selection"]
            if report is None:
                assert selection.auto is None
                continue
            assert selection.auto is not None
            assert selection.auto.strategies == report["strategies"]
            assert (selection.auto.reward, selection.auto.history_rounds,
                    selection.auto.history_items) == (report["reward"], report["history_rounds"],
                                                      report["history_items"])  # fmt: skip
            for arm, expected_arm in zip(selection.auto.arms, report["arms"], strict=True):
                assert (arm.name, arm.picks) == (expected_arm["name"], expected_arm["picks"])
                fields = ("weight", "expected_reward", "evidence")
                _close([getattr(arm, f) for f in fields], [expected_arm[f] for f in fields])


@pytest.mark.parametrize("path", STOPPING, ids=lambda p: p.stem)
def test_stopping_vector(client: Client, path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    request, expected = vector["request"], vector["response"]
    verdict = client.check_stopping(
        **{
            name: _tensor(value) if isinstance(value, dict) else value
            for name, value in request.items()
            if value is not None
        }
    )
    assert verdict.stop == expected["stop"]
    assert list(verdict.criteria) == [c["name"] for c in expected["criteria"]]
    for criterion in expected["criteria"]:
        ours = verdict.criteria[criterion["name"]]
        assert (ours.stop, ours.evaluated, ours.detail) == (
            criterion["stop"],
            criterion["evaluated"],
            criterion["detail"],
        )
        _close([ours.value, ours.threshold], [criterion["value"], criterion["threshold"]])
    _close(verdict.kappas, expected["kappas"])


STREAM = sorted(VECTORS.glob("stream/*.json"))


def test_the_stream_vectors_are_there() -> None:
    assert len(STREAM) >= 5


@pytest.mark.parametrize("path", STREAM, ids=lambda p: p.stem)
def test_stream_vector(client: Client, path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    cap = vector["window_cap"] or {}
    selector = client.stream_selector(
        vector["strategy"]["name"],
        {name: _param(v) for name, v in vector["strategy"]["params"].items()},
        budget=vector["budget"],
        window_items=cap.get("window_items"),
        max_labels=cap.get("max_labels"),
        seed=vector["seed"],
    )
    for step in vector["steps"]:
        items: dict[str, Any] = {name: _tensor(t) for name, t in step["tensors"].items()}
        if step["temperature"] is not None:
            items["temperature"] = step["temperature"]
        decisions = selector.decide(**items)
        expected = step["response"]
        assert decisions.label.tolist() == expected["label"]
        _close(decisions.utilities, expected["utilities"])
        _close(decisions.label_probabilities, expected["label_probabilities"])
        assert (decisions.items_seen, decisions.items_labeled) == (
            expected["items_seen"],
            expected["items_labeled"],
        )
        assert decisions.token == base64.b64decode(expected["token"])


@pytest.mark.parametrize("path", LABELS, ids=lambda p: p.stem)
def test_label_quality_vector(client: Client, path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    request, expected = vector["request"], vector["response"]
    tensors = {k: _tensor(v) for k, v in request.items() if isinstance(v, dict)}
    if path.stem.startswith("assess"):
        got = client.assess_labels(
            tensors["annotations"],
            labeled_probabilities=tensors.get("labeled_probabilities"),
            method=request["method"],
            num_classes=request["num_classes"],
            accuracy_prior_strength=request["accuracy_prior_strength"],
        )
        assert got.method == expected["method"]
        assert got.consensus_labels.tolist() == expected["consensus_labels"]
        assert got.majority_vote_labels.tolist() == expected["majority_vote_labels"]
        _close(got.consensus_quality, expected["consensus_quality"])
        _close(got.annotator_quality, expected["annotator_quality"])
        _close([got.model_temperature], [expected["model_temperature"]])
        return
    got_plan = client.plan_labeling(
        tensors["annotations"],
        tensors["labeled_probabilities"],
        k=request["k"],
        pool_probabilities=tensors.get("pool_probabilities"),
        annotator_costs=tensors.get("annotator_costs"),
        budget=request["budget"],
        clamp_k=request["clamp_k"],
        pool_strategy=request["pool_strategy"],
        exclude_labeled=request["exclude_labeled"],
        exclude_pool=request["exclude_pool"],
    )
    tasks = expected["tasks"]
    assert [(t.kind, t.index, t.annotator) for t in got_plan.tasks] == [
        (t["kind"], t["index"], t["annotator"]) for t in tasks
    ]
    _close([t.score for t in got_plan.tasks], [t["score"] for t in tasks])
    _close([t.expected_accuracy for t in got_plan.tasks], [t["expected_accuracy"] for t in tasks])
    _close([t.cost for t in got_plan.tasks], [t["cost"] for t in tasks])
    _close(
        [got_plan.total_cost, got_plan.temperature],
        [expected["total_cost"], expected["temperature"]],
    )
    assert got_plan.candidates_considered == expected["candidates_considered"]
