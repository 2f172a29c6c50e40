"""Uncertainty strategies: hand-computed oracles, naive loops, scikit-activeml and modAL."""

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from modAL import uncertainty as modal_uncertainty
from skactiveml.pool import uncertainty_scores

from labelwise_server.strategies import uncertainty
from tests.strategies.support import DTYPES, TOLERANCE, random_probabilities, scores_of

LN2 = math.log(2)
P = np.array(
    [
        [0.2, 0.5, 0.3],
        [0.1, 0.7, 0.2],
        [0.5, 0.5, 0.0],
        [1.0, 0.0, 0.0],
    ]
)
# (strategy, params, expected scores of P's rows), worked out by hand.
ORACLES: list[tuple[str, dict[str, Any], list[float]]] = [
    ("least_confidence", {}, [0.5, 0.3, 0.5, 0.0]),
    ("margin", {}, [0.3 - 0.5, 0.2 - 0.7, 0.0, -1.0]),
    ("ratio", {}, [0.3 / 0.5, 0.2 / 0.7, 1.0, 0.0]),
    (
        "entropy",
        {},
        [
            -(0.2 * math.log(0.2) + 0.5 * math.log(0.5) + 0.3 * math.log(0.3)),
            -(0.1 * math.log(0.1) + 0.7 * math.log(0.7) + 0.2 * math.log(0.2)),
            LN2,  # 0·log 0 = 0
            0.0,
        ],
    ),
]


@pytest.mark.parametrize(("name", "params", "expected"), ORACLES, ids=[o[0] for o in ORACLES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_oracle_rows(name: str, params: dict[str, Any], expected: list[float], dtype: Any) -> None:
    got = scores_of(name, params, probabilities=P.astype(dtype))
    np.testing.assert_allclose(got, expected, **TOLERANCE[np.dtype(dtype)])


def test_entropy_of_uniform_and_two_level_rows() -> None:
    rows = np.array([[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.5, 0.0]])
    np.testing.assert_allclose(uncertainty.entropy_scores(rows), [2 * LN2, 1.5 * LN2], rtol=1e-14)


def test_margin_ranks_the_closest_call_first() -> None:
    assert uncertainty.margin_scores(P).argmax() == 2


def test_functions_never_mutate_their_input() -> None:
    before = P.copy()
    for function in (
        uncertainty.entropy_scores,
        uncertainty.margin_scores,
        uncertainty.ratio_scores,
        uncertainty.least_confidence_scores,
    ):
        function(P)
    np.testing.assert_array_equal(P, before)


# Naive loops, one row and one class at a time: the definitions in the strategies' docstrings.
def naive_least_confidence(p: npt.NDArray[Any]) -> list[float]:
    return [1.0 - max(float(v) for v in row) for row in p]


def _top2(row: npt.NDArray[Any]) -> tuple[float, float]:
    ordered = sorted((float(v) for v in row), reverse=True)
    return ordered[0], ordered[1]


def naive_margin(p: npt.NDArray[Any]) -> list[float]:
    return [second - first for first, second in map(_top2, p)]


def naive_ratio(p: npt.NDArray[Any]) -> list[float]:
    return [second / first for first, second in map(_top2, p)]


def naive_entropy(p: npt.NDArray[Any]) -> list[float]:
    return [-sum(float(v) * math.log(float(v)) for v in row if v > 0) for row in p]


NAIVE = {
    "least_confidence": naive_least_confidence,
    "margin": naive_margin,
    "ratio": naive_ratio,
    "entropy": naive_entropy,
}


@pytest.mark.parametrize("name", sorted(NAIVE))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_loop(name: str, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = random_probabilities(rng, 200, int(rng.integers(2, 12)), dtype, alpha=0.5)
    got = scores_of(name, probabilities=p)
    np.testing.assert_allclose(got, NAIVE[name](p), **TOLERANCE[np.dtype(dtype)])


class _Classifier:
    """The one method modAL's classifier_* functions call."""

    def __init__(self, probabilities: npt.NDArray[Any]) -> None:
        self._probabilities = probabilities

    def predict_proba(self, x: Any) -> npt.NDArray[Any]:
        return self._probabilities


# (ours, reference(p) -> their scores, their scores as a function of ours)
PEERS: dict[str, list[tuple[str, Any, Any]]] = {
    "least_confidence": [
        ("skactiveml", lambda p: uncertainty_scores(p, method="least_confident"), lambda s: s),
        (
            "modAL",
            lambda p: modal_uncertainty.classifier_uncertainty(_Classifier(p), p),
            lambda s: s,
        ),
    ],
    "margin": [
        # skactiveml: 1 − (p1 − p2); modAL: p1 − p2.
        ("skactiveml", lambda p: uncertainty_scores(p, method="margin_sampling"), lambda s: s + 1),
        ("modAL", lambda p: modal_uncertainty.classifier_margin(_Classifier(p), p), lambda s: -s),
    ],
    "entropy": [
        ("skactiveml", lambda p: uncertainty_scores(p, method="entropy"), lambda s: s),
        ("modAL", lambda p: modal_uncertainty.classifier_entropy(_Classifier(p), p), lambda s: s),
    ],
}
PEER_CASES = [(name, *peer) for name, peers in PEERS.items() for peer in peers]


@pytest.mark.parametrize(
    ("name", "library", "reference", "relation"),
    PEER_CASES,
    ids=[f"{case[0]}-{case[1]}" for case in PEER_CASES],
)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_peer_library(
    name: str, library: str, reference: Any, relation: Any, dtype: Any, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    p = random_probabilities(rng, 300, int(rng.integers(2, 12)), dtype, alpha=0.5)
    ours = scores_of(name, probabilities=p)
    theirs = reference(p.astype(np.float64))  # the peers compute in float64
    np.testing.assert_allclose(relation(ours), theirs, **TOLERANCE[np.dtype(dtype)])


def test_entropy_with_zero_probabilities_matches_peers() -> None:
    rng = np.random.default_rng(7)
    p = random_probabilities(rng, 100, 6)
    p[rng.random(p.shape) < 0.3] = 0.0
    p[:, 0] += 1.0 - p.sum(axis=1)  # back to row-stochastic, keeping the zeros elsewhere
    p = np.abs(p)
    p /= p.sum(axis=1, keepdims=True)
    ours = scores_of("entropy", probabilities=p)
    np.testing.assert_allclose(ours, uncertainty_scores(p, method="entropy"), rtol=1e-12)
    np.testing.assert_allclose(ours, naive_entropy(p), rtol=1e-12, atol=1e-15)


def test_sure_rows_score_plus_zero_not_minus_zero() -> None:
    # −0.0 ranks like 0.0 but shows as "-0" in JSON and grpcurl.
    sure = np.array([[1.0, 0.0], [0.0, 1.0]])
    for name in ("entropy", "least_confidence"):
        assert not np.signbit(scores_of(name, probabilities=sure)).any(), name
