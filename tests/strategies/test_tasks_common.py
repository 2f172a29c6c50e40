"""The registry-wide invariants of test_common, for the multi-label, regression and structured
score strategies, and a check that every one of them (batch ones too) has its tests.
"""

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwise_server.strategies import STRATEGIES, Input
from tests.strategies import test_multilabel, test_regression, test_structured
from tests.strategies.task_support import TASK_NAMES, TASK_SCORE_NAMES, run_task

# Pool fields by input kind, and the axis of each that runs over the pool.
POOL_AXIS = {"multilabel": 0, "multilabel_committee": 1, "regression_samples": 1,
             "structured": 0, "structured_committee": 1, "structured_mask": 0}  # fmt: skip


def _variants(name: str) -> list[dict[str, Any]]:
    variants: list[dict[str, Any]] = [{}]
    for param_name, param in STRATEGIES[name].params.items():
        variants += [{param_name: choice} for choice in param.choices if choice != param.default]
    return variants


CASES = [(name, params) for name in TASK_SCORE_NAMES for params in _variants(name)]
IDS = [name + "".join(f"-{v}" for v in params.values()) for name, params in CASES]


def inputs(name: str, rng: np.random.Generator, n: int, dtype: Any = np.float64) -> dict[str, Any]:
    """Random inputs for whatever the strategy needs; continuous, so no ties."""
    needs = STRATEGIES[name].needs
    fields: dict[str, Any] = {}
    if Input.MULTILABEL_PROBABILITIES in needs:
        fields["multilabel"] = rng.uniform(size=(n, 4)).astype(dtype)
    if Input.LABELED_LABEL_CARDINALITY in needs:
        fields["labeled_label_cardinality"] = 1.7
    if Input.MULTILABEL_COMMITTEE in needs:
        fields["multilabel_committee"] = rng.uniform(size=(3, n, 4)).astype(dtype)
    if Input.REGRESSION_SPREAD in needs:
        fields["regression_samples"] = rng.normal(size=(4, n))
    if Input.STRUCTURED_PROBABILITIES in needs:
        raw = rng.dirichlet(np.ones(3), size=(n, 2, 5))
        fields["structured"] = np.moveaxis(raw, -1, 1).astype(dtype)
    if Input.STRUCTURED_COMMITTEE in needs:
        raw = rng.dirichlet(np.ones(3), size=(3, n, 2, 5))
        fields["structured_committee"] = np.moveaxis(raw, -1, 2).astype(dtype)
    if Input.STRUCTURED_PROBABILITIES in needs or Input.STRUCTURED_COMMITTEE in needs:
        mask = rng.uniform(size=(n, 2, 5)) < 0.7
        mask[:, 0, 0] = True
        fields["structured_mask"] = mask
    return fields


def _full_scores(name: str, params: dict[str, Any], fields: dict[str, Any]) -> np.ndarray:
    result = run_task(name, params, **fields)
    out = np.full(result.indices.shape[0], np.nan)
    out[result.indices] = result.scores
    return out


def test_every_task_strategy_has_an_oracle_or_hand_case_and_a_reference() -> None:
    oracles = {case[0] for module in (test_multilabel, test_regression) for case in module.ORACLES}
    naive = set(test_multilabel.NAIVE) | set(test_regression.NAIVE) | set(test_structured.NAIVE)
    hand_cases = {"gsx", "gsy", "igs"}  # test_regression's hand-computed greedy walks
    for name in TASK_NAMES:
        assert name in naive, f"{name} has no naive reference"
        if STRATEGIES[name].task != "structured":  # structured: hand cases via reduce_elements
            assert name in oracles | hand_cases, f"{name} has no oracle"


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scores_are_finite_float64_one_per_item(
    name: str, params: dict[str, Any], dtype: Any
) -> None:
    result = run_task(name, params, **inputs(name, np.random.default_rng(0), 60, dtype))
    assert result.indices.dtype == np.int64 and result.scores.dtype == np.float64
    assert sorted(result.indices.tolist()) == list(range(60))
    assert np.isfinite(result.scores).all()
    assert not (np.signbit(result.scores) & (result.scores == 0)).any()


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_scores_follow_a_permutation_of_the_pool(name: str, params: dict[str, Any]) -> None:
    fields = inputs(name, np.random.default_rng(1), 50)
    order = np.random.default_rng(2).permutation(50)
    permuted = {key: np.take(value, order, axis=POOL_AXIS[key]) if key in POOL_AXIS else value
                for key, value in fields.items()}  # fmt: skip
    np.testing.assert_allclose(
        _full_scores(name, params, permuted),
        _full_scores(name, params, fields)[order],
        rtol=1e-12,
        atol=1e-15,
    )


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
@pytest.mark.parametrize("k", [1, 9])
def test_k_exclude_and_ties_by_the_lower_index(name: str, params: dict[str, Any], k: int) -> None:
    fields = inputs(name, np.random.default_rng(3), 40)
    exclude = np.array([0, 3, 17], dtype=np.int64)
    result = run_task(name, params, k=k, exclude=exclude, **fields)
    full = _full_scores(name, params, fields)
    assert result.indices.shape == (k,) and not set(result.indices.tolist()) & {0, 3, 17}
    np.testing.assert_array_equal(result.scores, full[result.indices])
    left = np.setdiff1d(np.arange(40), np.concatenate([result.indices, exclude]))
    assert (full[left] <= result.scores[-1]).all()
    # Every item a copy of item 5: all tie, so the lowest candidates come first.
    tiled = {key: np.repeat(np.take(value, [5], axis=POOL_AXIS[key]), 12, axis=POOL_AXIS[key])
             if key in POOL_AXIS else value for key, value in fields.items()}  # fmt: skip
    tied = run_task(name, params, k=4, exclude=np.array([1]), **tiled)
    assert tied.indices.tolist() == [0, 2, 3, 4]


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_same_request_gives_identical_bytes(name: str, params: dict[str, Any]) -> None:
    fields = inputs(name, np.random.default_rng(4), 80, np.float32)
    first = run_task(name, params, k=10, **fields)
    again = run_task(name, params, k=10, **{k: np.copy(v) for k, v in fields.items()})
    assert first.indices.tobytes() == again.indices.tobytes()
    assert first.scores.tobytes() == again.scores.tobytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(st.sampled_from([0.0, 1.0, 0.5, 1e-12, 1 - 1e-12, 0.3]), min_size=24,
                    max_size=24),
    mask_bits=st.lists(st.booleans(), min_size=12, max_size=12),
)  # fmt: skip
def test_edge_values_stay_finite_and_non_negative_where_they_must(
    values: list[float], mask_bits: list[bool]
) -> None:
    """Exact zeros and ones, sure labels and one-hot elements: finite scores, no −0."""
    multilabel = np.array(values).reshape(2, 3, 4)  # committee [2, 3, 4]; member 0 as P
    two_class = np.stack([multilabel[0], 1 - multilabel[0]], axis=1)  # [3, 2, 4]
    committee = np.stack([multilabel, 1 - multilabel], axis=2)  # [2, 3, 2, 4]
    mask = np.array(mask_bits).reshape(3, 4)
    mask[:, 0] = True
    fields = {"multilabel": multilabel[0], "multilabel_committee": multilabel,
              "labeled_label_cardinality": 1.0, "regression_samples": multilabel[:, :, 0],
              "structured": two_class, "structured_committee": committee,
              "structured_mask": mask}  # fmt: skip
    for name, params in CASES:
        scores = _full_scores(name, params, fields)
        assert np.isfinite(scores).all(), name
        assert not (np.signbit(scores) & (scores == 0)).any(), name
        if name not in ("structured_margin",):  # margin scores are <= 0 by definition
            assert (scores >= -1e-12).all(), (name, scores)
