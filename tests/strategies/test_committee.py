"""Query-by-committee strategies: oracles, naive loops, scikit-activeml and modAL."""

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from modAL import disagreement as modal_disagreement
from skactiveml.pool import average_kl_divergence, vote_entropy

from labelwise_server.strategies import committee as qbc
from tests.strategies.support import DTYPES, TOLERANCE, random_committee, scores_of

LN2 = math.log(2)
# Two members, three rows, two classes.
#   row 0: the members are sure and disagree;  row 1: both are unsure (argmax ties go to
#   class 0, so both vote 0);  row 2: both are sure and agree.
TWO = np.array(
    [
        [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]],
        [[0.0, 1.0], [0.5, 0.5], [0.0, 1.0]],
    ]
)
# Three members, one row: two unsure members and one sure one. p̄ = [2/3, 1/3].
#   KL([.5, .5] ‖ p̄) = ½ ln(9/8), KL([1, 0] ‖ p̄) = ln(3/2).
THREE = np.array([[[0.5, 0.5]], [[0.5, 0.5]], [[1.0, 0.0]]])

# (strategy, params, committee, expected scores), worked out by hand.
ORACLES: list[tuple[str, dict[str, Any], npt.NDArray[Any], list[float]]] = [
    ("vote_entropy", {}, TWO, [LN2, 0.0, 0.0]),
    ("vote_entropy", {}, THREE, [0.0]),
    ("consensus_entropy", {}, TWO, [LN2, LN2, 0.0]),
    ("consensus_entropy", {}, THREE, [math.log(3) - 2 / 3 * LN2]),
    ("kl_to_consensus", {}, TWO, [LN2, 0.0, 0.0]),
    ("kl_to_consensus", {"aggregate": "mean"}, THREE, [math.log(27 / 16) / 3]),
    ("kl_to_consensus", {"aggregate": "max"}, TWO, [LN2, 0.0, 0.0]),
    ("kl_to_consensus", {"aggregate": "max"}, THREE, [math.log(3 / 2)]),
]


@pytest.mark.parametrize(
    ("name", "params", "committee", "expected"),
    ORACLES,
    ids=[f"{o[0]}-{o[1].get('aggregate', '')}-m{o[2].shape[0]}" for o in ORACLES],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_oracle_rows(
    name: str,
    params: dict[str, Any],
    committee: npt.NDArray[Any],
    expected: list[float],
    dtype: Any,
) -> None:
    got = scores_of(name, params, committee=committee.astype(dtype))
    np.testing.assert_allclose(got, expected, **TOLERANCE[np.dtype(dtype)])


def test_public_functions_agree_with_the_registry() -> None:
    committee = random_committee(np.random.default_rng(3), 4, 30, 5)
    for name, function in [
        ("vote_entropy", qbc.vote_entropy_scores),
        ("consensus_entropy", qbc.consensus_entropy_scores),
        ("kl_to_consensus", qbc.kl_to_consensus_scores),
    ]:
        np.testing.assert_allclose(function(committee), scores_of(name, committee=committee))
    np.testing.assert_allclose(
        qbc.kl_to_consensus_scores(committee, "max"),
        scores_of("kl_to_consensus", {"aggregate": "max"}, committee=committee),
    )


# Naive loops over members, rows and classes: the definitions in the strategies' docstrings.
def _argmax(row: npt.NDArray[Any]) -> int:
    best = 0
    for j in range(1, len(row)):
        if row[j] > row[best]:
            best = j
    return best


def _entropy(row: list[float]) -> float:
    return -sum(v * math.log(v) for v in row if v > 0)


def _consensus(committee: npt.NDArray[Any], i: int) -> list[float]:
    m, _, c = committee.shape
    return [sum(float(committee[k, i, j]) for k in range(m)) / m for j in range(c)]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


def naive_vote_entropy(committee: npt.NDArray[Any]) -> list[float]:
    m, n, c = committee.shape
    out = []
    for i in range(n):
        votes = [0] * c
        for k in range(m):
            votes[_argmax(committee[k, i])] += 1
        out.append(_entropy([v / m for v in votes]))
    return out


def naive_consensus_entropy(committee: npt.NDArray[Any]) -> list[float]:
    return [_entropy(_consensus(committee, i)) for i in range(committee.shape[1])]


def naive_kl_mean(committee: npt.NDArray[Any]) -> list[float]:
    m, n, _ = committee.shape
    out = []
    for i in range(n):
        mean = _consensus(committee, i)
        out.append(sum(_kl([float(v) for v in committee[k, i]], mean) for k in range(m)) / m)
    return out


def naive_kl_max(committee: npt.NDArray[Any]) -> list[float]:
    m, n, _ = committee.shape
    out = []
    for i in range(n):
        mean = _consensus(committee, i)
        out.append(max(_kl([float(v) for v in committee[k, i]], mean) for k in range(m)))
    return out


# (strategy, params) -> naive implementation
NAIVE: dict[tuple[str, str], Any] = {
    ("vote_entropy", ""): naive_vote_entropy,
    ("consensus_entropy", ""): naive_consensus_entropy,
    ("kl_to_consensus", "mean"): naive_kl_mean,
    ("kl_to_consensus", "max"): naive_kl_max,
}


def _params(aggregate: str) -> dict[str, Any]:
    return {"aggregate": aggregate} if aggregate else {}


@pytest.mark.parametrize(("name", "aggregate"), sorted(NAIVE))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_loop(name: str, aggregate: str, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, c = int(rng.integers(2, 8)), int(rng.integers(2, 8))
    committee = random_committee(rng, m, 60, c, dtype, alpha=0.7)
    got = scores_of(name, _params(aggregate), committee=committee)
    expected = NAIVE[(name, aggregate)](committee)
    np.testing.assert_allclose(got, expected, **TOLERANCE[np.dtype(dtype)])


class _Committee:
    """The parts of a modAL committee its disagreement measures use.

    committee [m, n, c]; vote() gives [n, m] class labels, vote_proba() [n, m, c],
    predict_proba() the consensus [n, c].
    """

    def __init__(self, committee: npt.NDArray[Any]) -> None:
        self._committee = committee
        self.classes_ = np.arange(committee.shape[2])

    def __len__(self) -> int:
        return int(self._committee.shape[0])

    def __iter__(self) -> Any:
        return iter(range(len(self)))

    def vote(self, x: Any) -> npt.NDArray[Any]:
        return self._committee.argmax(axis=2).T

    def vote_proba(self, x: Any) -> npt.NDArray[Any]:
        return np.transpose(self._committee, (1, 0, 2))

    def predict_proba(self, x: Any) -> npt.NDArray[Any]:
        return self._committee.mean(axis=0)


def _modal(function: Any) -> Any:
    return lambda committee: function(_Committee(committee), committee[0])


# (strategy, aggregate) -> [(library, reference(committee float64))]; all "equal".
PEERS: dict[tuple[str, str], list[tuple[str, Any]]] = {
    ("vote_entropy", ""): [
        (
            "skactiveml",
            lambda committee: vote_entropy(
                committee.argmax(axis=2).T, np.arange(committee.shape[2])
            ),
        ),
        ("modAL", _modal(modal_disagreement.vote_entropy)),
    ],
    ("consensus_entropy", ""): [("modAL", _modal(modal_disagreement.consensus_entropy))],
    ("kl_to_consensus", "mean"): [
        # average_kl_divergence clips at 1e-7 and renormalises in place: give it a copy.
        ("skactiveml", lambda committee: average_kl_divergence(committee.copy())),
    ],
    ("kl_to_consensus", "max"): [("modAL", _modal(modal_disagreement.KL_max_disagreement))],
}
PEER_CASES = [(*key, *peer) for key, peers in PEERS.items() for peer in peers]


@pytest.mark.parametrize(
    ("name", "aggregate", "library", "reference"),
    PEER_CASES,
    ids=[f"{c[0]}-{c[1] or 'default'}-{c[2]}" for c in PEER_CASES],
)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_peer_library(
    name: str, aggregate: str, library: str, reference: Any, dtype: Any, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    m, c = int(rng.integers(2, 8)), int(rng.integers(2, 8))
    committee = random_committee(rng, m, 200, c, dtype, alpha=0.7)
    ours = scores_of(name, _params(aggregate), committee=committee)
    theirs = reference(committee.astype(np.float64))
    # skactiveml clips at 1e-7 before its KL; these Dirichlet(0.7) draws never get that low,
    # so the clipping changes nothing and the tolerance is the plain float one.
    np.testing.assert_allclose(ours, theirs, **TOLERANCE[np.dtype(dtype)])
