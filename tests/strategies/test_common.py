"""Invariants every STRATEGIES entry must keep, and a check that every entry is tested.

In the style of scikit-learn's test_common: parametrised over the registry, so a
new strategy is held to the same rules the moment it is listed.
"""

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwise_server import selection
from labelwise_server.strategies import STRATEGIES, Input
from labelwise_server.strategies.intermediates import Intermediates
from tests.strategies import (
    test_bayesian,
    test_committee,
    test_hybrid,
    test_random,
    test_uncertainty,
)
from tests.strategies.support import (
    DTYPES,
    POOL_AXIS,
    SYMMETRIC,
    TOLERANCE,
    inputs_for,
    make_pool,
    run,
    scores_of,
)

# Classification strategies; multi-label, regression and structured ones keep the same
# invariants in tests/strategies/test_tasks_common.py.
NAMES = [name for name, strategy in STRATEGIES.items() if strategy.task == "classification"]
# Score strategies on model outputs. Batch strategies: test_batch_common.py; strategies that
# work through the model itself (deepfool): test_adversarial.py, on NumPy models.
SCORE_NAMES = [
    name
    for name in NAMES
    if not STRATEGIES[name].batch and Input.MODEL not in STRATEGIES[name].needs
]


def _params_variants(name: str) -> list[dict[str, Any]]:
    """The defaults, plus one variant per allowed value of each choice parameter."""
    variants: list[dict[str, Any]] = [{}]
    for param_name, param in STRATEGIES[name].params.items():
        variants += [{param_name: choice} for choice in param.choices if choice != param.default]
    return variants


CASES = [(name, params) for name in SCORE_NAMES for params in _params_variants(name)]
CASE_IDS = [name + "".join(f"-{v}" for v in params.values()) for name, params in CASES]


def _pool(name: str, seed: int, dtype: Any = np.float64, **sizes: int) -> dict[str, Any]:
    return inputs_for(name, np.random.default_rng(seed), dtype=dtype, **sizes)


# Bounds each score must stay within, for c classes and m members (float rounding aside).
def _bounds(name: str, params: dict[str, Any], c: int, m: int) -> tuple[float, float]:
    bounds = {
        "random": (0.0, 1.0),
        "least_confidence": (0.0, 1.0 - 1.0 / c),
        "margin": (-1.0, 0.0),
        "ratio": (0.0, 1.0),
        "entropy": (0.0, math.log(c)),
        "vote_entropy": (0.0, math.log(min(m, c))),
        "consensus_entropy": (0.0, math.log(c)),
        "kl_to_consensus": (0.0, math.log(m)),  # KL(P_k ‖ p̄) <= log(1/(1/m))
        "bald": (0.0, math.log(c)),
        "variation_ratio": (0.0, 1.0 - 1.0 / m),
        "mean_std": (0.0, 0.5),
    }
    if name == "information_density":  # base (margin as 1 + margin) × density in [0, 1]
        base = str(params.get("base", STRATEGIES[name].params["base"].default))
        return (0.0, 1.0 if base == "margin" else bounds[base][1])
    return bounds[name]


def test_every_strategy_has_bounds_an_oracle_and_a_reference() -> None:
    oracle_cases = {
        (name, tuple(sorted(params.items())))
        for module in (test_uncertainty, test_committee, test_bayesian, test_random, test_hybrid)
        for name, params, *_ in module.ORACLES
    }
    naive = (
        set(test_uncertainty.NAIVE)
        | {name for name, _ in test_committee.NAIVE}
        | set(test_bayesian.NAIVE)
        | set(test_random.NAIVE)
        | {name for name, _ in test_hybrid.NAIVE}
    )
    references = set(test_committee.NAIVE) | set(test_hybrid.NAIVE)
    for name in SCORE_NAMES:  # batch strategies: tests/strategies/test_batch_common.py
        _bounds(name, {}, 2, 2)
        assert any(case[0] == name for case in oracle_cases), f"{name} has no oracle rows"
        assert name in naive, f"{name} has no naive reference"
        for param_name, param in STRATEGIES[name].params.items():
            for choice in param.choices:
                if choice == param.default:
                    continue
                assert any(
                    case[0] == name and (param_name, choice) in case[1] for case in oracle_cases
                ), f"{name} {param_name}={choice} has no oracle rows"
                assert (name, choice) in references, f"{name} {choice}: no reference"


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scores_are_finite_float64_and_within_bounds(
    name: str, params: dict[str, Any], dtype: Any
) -> None:
    inputs = _pool(name, 0, dtype, n=80, c=5, m=4)
    [(indices, scores)] = run([(name, params)], make_pool(**inputs))
    assert indices.dtype == np.int64 and scores.dtype == np.float64
    assert indices.shape == scores.shape == (80,)
    assert np.isfinite(scores).all()
    low, high = _bounds(name, params, 5, 4)
    assert scores.min() >= low - 1e-6 and scores.max() <= high + 1e-6


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_block_scores_return_one_float64_per_row(name: str, params: dict[str, Any]) -> None:
    strategy = STRATEGIES[name]
    if strategy.block_score is None:
        pytest.skip("not a row-wise strategy")
    inputs = _pool(name, 1, np.float32, n=17, c=3, m=3)
    block = Intermediates(inputs.get("probabilities"), inputs.get("committee"))
    filled = {p: spec.default for p, spec in strategy.params.items()} | params
    scores = strategy.block_score(block, filled)
    assert scores.dtype == np.float64 and scores.shape == (17,)


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_scores_follow_a_permutation_of_the_pool(name: str, params: dict[str, Any]) -> None:
    inputs = _pool(name, 2, n=64, c=4, m=5)
    order = np.random.default_rng(3).permutation(64)
    permuted = {key: np.take(value, order, axis=POOL_AXIS[key]) for key, value in inputs.items()}
    before = scores_of(name, params, **inputs)
    after = scores_of(name, params, **permuted)
    if name == "random":  # scores belong to positions, not to items
        np.testing.assert_array_equal(after, before)
    else:
        np.testing.assert_allclose(after, before[order], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "params"), [c for c in CASES if c[0] in SYMMETRIC])
@pytest.mark.parametrize("dtype", DTYPES)
def test_scores_do_not_depend_on_the_order_of_classes(
    name: str, params: dict[str, Any], dtype: Any
) -> None:
    inputs = _pool(name, 4, dtype, n=64, c=6, m=5)  # continuous: no argmax ties
    classes = np.random.default_rng(5).permutation(6)
    relabelled = {
        key: value if key == "embeddings" else value[..., classes] for key, value in inputs.items()
    }
    np.testing.assert_allclose(
        scores_of(name, params, **relabelled),
        scores_of(name, params, **inputs),
        **TOLERANCE[np.dtype(dtype)],
    )


@pytest.mark.parametrize(
    ("name", "params"), [c for c in CASES if Input.COMMITTEE in STRATEGIES[c[0]].needs]
)
def test_committee_scores_do_not_depend_on_the_order_of_members(
    name: str, params: dict[str, Any]
) -> None:
    inputs = _pool(name, 6, n=40, c=4, m=6)
    members = np.random.default_rng(7).permutation(6)
    reordered = {"committee": inputs["committee"][members]}
    np.testing.assert_allclose(
        scores_of(name, params, **reordered),
        scores_of(name, params, **inputs),
        rtol=1e-12,
        atol=1e-15,
    )


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_same_request_gives_identical_bytes(name: str, params: dict[str, Any]) -> None:
    inputs = _pool(name, 8, np.float32, n=500, c=7, m=4)
    first = run([(name, params)], make_pool(**inputs), k=50, seed=11)
    again = run(
        [(name, params)], make_pool(**{k: v.copy() for k, v in inputs.items()}), k=50, seed=11
    )
    assert first[0][0].tobytes() == again[0][0].tobytes()
    assert first[0][1].tobytes() == again[0][1].tobytes()


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("k", [1, 7, 93])
def test_k_is_respected_and_excluded_items_never_appear(
    name: str, params: dict[str, Any], k: int
) -> None:
    inputs = _pool(name, 9, n=100, c=3, m=3)
    exclude = np.random.default_rng(k).choice(100, size=7, replace=False).astype(np.int64)
    [(indices, scores)] = run([(name, params)], make_pool(**inputs), k=k, exclude=exclude)
    assert indices.shape == scores.shape == (k,)
    assert not set(indices.tolist()) & set(exclude.tolist())
    assert len(set(indices.tolist())) == k
    # Best first, and nothing left out scores higher than the last item taken.
    full = scores_of(name, params, **inputs)
    np.testing.assert_array_equal(scores, full[indices])
    assert (np.diff(scores) <= 0).all()
    left_out = np.setdiff1d(np.arange(100), np.concatenate([indices, exclude]))
    assert (full[left_out] <= scores[-1]).all()


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("k", [5, 2500])
def test_blocks_give_the_same_answer_as_the_whole_pool(
    name: str, params: dict[str, Any], k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = _pool(name, 10, np.float32, n=3000, c=4, m=3)
    exclude = np.arange(0, 3000, 37, dtype=np.int64)
    whole = run([(name, params)], make_pool(**inputs), k=k, seed=3, exclude=exclude)
    monkeypatch.setattr(selection, "BLOCK_BYTES", 1)  # the 1024-row minimum: three blocks
    blocks = run([(name, params)], make_pool(**inputs), k=k, seed=3, exclude=exclude)
    assert whole[0][0].tobytes() == blocks[0][0].tobytes()
    assert whole[0][1].tobytes() == blocks[0][1].tobytes()


def test_several_strategies_in_one_request_equal_each_alone() -> None:
    inputs = _pool("bald", 12, np.float32, n=2000, c=5, m=4)
    inputs["probabilities"] = inputs["committee"].mean(axis=0)
    inputs["probabilities"] /= inputs["probabilities"].sum(axis=1, keepdims=True)
    inputs["embeddings"] = np.random.default_rng(13).normal(size=(2000, 4)).astype(np.float32)
    together = run(CASES, make_pool(**inputs), k=40, seed=2)
    for case, (indices, scores) in zip(CASES, together, strict=True):
        [(alone_indices, alone_scores)] = run([case], make_pool(**inputs), k=40, seed=2)
        np.testing.assert_array_equal(indices, alone_indices)
        np.testing.assert_array_equal(scores, alone_scores)


@pytest.mark.parametrize(("name", "params"), CASES, ids=CASE_IDS)
def test_ties_are_broken_by_the_lower_index(name: str, params: dict[str, Any]) -> None:
    inputs = _pool(name, 13, n=1, c=3, m=3)
    # 30 copies of one row: every item scores the same.
    tiled = {key: np.repeat(value, 30, axis=POOL_AXIS[key]) for key, value in inputs.items()}
    if name == "random":
        pytest.skip("random scores are distinct draws")
    [(indices, _)] = run([(name, params)], make_pool(**tiled), k=10, exclude=np.array([0, 4]))
    assert indices.tolist() == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]


@st.composite
def _pools(draw: st.DrawFn) -> tuple[npt.NDArray[np.float64], int]:
    """Committees with exact zeros, exact ties and near-one-hot rows; c, m, n small."""
    m = draw(st.integers(2, 5))
    n = draw(st.integers(1, 12))
    c = draw(st.integers(2, 6))
    values = draw(
        st.lists(
            st.sampled_from([0.0, 0.0, 1.0, 1.0, 2.0, 1e-12, 0.3, 7.0, 1e6]),
            min_size=m * n * c,
            max_size=m * n * c,
        )
    )
    raw = np.asarray(values).reshape(m, n, c)
    raw[..., 0] += raw.sum(axis=-1) == 0  # no all-zero rows
    return raw / raw.sum(axis=-1, keepdims=True), draw(st.integers(0, 2**32))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pools())
def test_scores_stay_finite_and_bounded_on_edge_case_pools(pool: tuple[Any, int]) -> None:
    committee, seed = pool
    m, _, c = committee.shape
    probabilities = committee[0]
    for name, params in CASES:
        needs = STRATEGIES[name].needs
        inputs = {"committee": committee} if Input.COMMITTEE in needs else {}
        if not inputs:
            inputs = {"probabilities": probabilities}
        if Input.EMBEDDINGS in needs:  # a base strategy on probabilities or the committee
            embeddings = np.concatenate([committee[0], -committee[-1]], axis=1)
            inputs = {"probabilities": probabilities, "committee": committee}
            inputs["embeddings"] = embeddings
        scores = scores_of(name, params, seed=seed, **inputs)
        low, high = _bounds(name, params, c, m)
        assert np.isfinite(scores).all(), name
        # −0.0 ranks as 0.0 but reads as "-0" in JSON and grpcurl.
        assert not (np.signbit(scores) & (scores == 0)).any(), name
        assert scores.min() >= low - 1e-9 and scores.max() <= high + 1e-9, (name, scores)
