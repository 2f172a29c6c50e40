"""Bayesian strategies on MC samples: oracles, naive loops, skactiveml via BALD = mean KL."""

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from skactiveml.pool import average_kl_divergence

from labelwise_server.strategies import bayesian
from tests.strategies.support import DTYPES, TOLERANCE, random_committee, scores_of

LN2 = math.log(2)
# The committees of test_committee: TWO has a sure-and-disagreeing row, an unsure row whose
# argmax ties go to class 0, and a sure-and-agreeing row; THREE is [.5,.5], [.5,.5], [1, 0].
TWO = np.array(
    [
        [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]],
        [[0.0, 1.0], [0.5, 0.5], [0.0, 1.0]],
    ]
)
THREE = np.array([[[0.5, 0.5]], [[0.5, 0.5]], [[1.0, 0.0]]])
# Three samples, two rows, three classes: votes [0, 0, 2] and [0, 1, 2].
VOTES = np.array(
    [
        [[0.6, 0.3, 0.1], [0.5, 0.3, 0.2]],
        [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]],
        [[0.1, 0.2, 0.7], [0.2, 0.3, 0.5]],
    ]
)

ORACLES: list[tuple[str, dict[str, Any], npt.NDArray[Any], list[float]]] = [
    # H(p̄) − mean H(P_k): row 0 ln 2 − 0, row 1 ln 2 − ln 2, row 2 0.
    ("bald", {}, TWO, [LN2, 0.0, 0.0]),
    # H([2/3, 1/3]) − (2/3) ln 2 = ln 3 − (4/3) ln 2 = ln(27/16) / 3.
    ("bald", {}, THREE, [math.log(27 / 16) / 3]),
    ("variation_ratio", {}, TWO, [0.5, 0.0, 0.0]),
    ("variation_ratio", {}, VOTES, [1 - 2 / 3, 1 - 1 / 3]),
    # Population std over samples of each class, averaged over classes.
    ("mean_std", {}, TWO, [0.5, 0.0, 0.0]),
    ("mean_std", {}, THREE, [math.sqrt(2) / 6]),
]


@pytest.mark.parametrize(
    ("name", "params", "committee", "expected"),
    ORACLES,
    ids=[f"{o[0]}-m{o[2].shape[0]}-n{o[2].shape[1]}" for o in ORACLES],
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
    committee = random_committee(np.random.default_rng(4), 6, 40, 3)
    for name, function in [
        ("bald", bayesian.bald_scores),
        ("variation_ratio", bayesian.variation_ratio_scores),
        ("mean_std", bayesian.mean_std_scores),
    ]:
        np.testing.assert_allclose(function(committee), scores_of(name, committee=committee))


def _entropy(row: list[float]) -> float:
    return -sum(v * math.log(v) for v in row if v > 0)


def naive_bald(committee: npt.NDArray[Any]) -> list[float]:
    m, n, c = committee.shape
    out = []
    for i in range(n):
        mean = [sum(float(committee[k, i, j]) for k in range(m)) / m for j in range(c)]
        member = sum(_entropy([float(v) for v in committee[k, i]]) for k in range(m)) / m
        out.append(_entropy(mean) - member)
    return out


def naive_variation_ratio(committee: npt.NDArray[Any]) -> list[float]:
    m, n, c = committee.shape
    out = []
    for i in range(n):
        votes = [0] * c
        for k in range(m):
            row = [float(v) for v in committee[k, i]]
            votes[row.index(max(row))] += 1
        out.append(1.0 - max(votes) / m)
    return out


def naive_mean_std(committee: npt.NDArray[Any]) -> list[float]:
    m, n, c = committee.shape
    out = []
    for i in range(n):
        total = 0.0
        for j in range(c):
            values = [float(committee[k, i, j]) for k in range(m)]
            mean = sum(values) / m
            total += math.sqrt(sum((v - mean) ** 2 for v in values) / m)
        out.append(total / c)
    return out


NAIVE = {"bald": naive_bald, "variation_ratio": naive_variation_ratio, "mean_std": naive_mean_std}


@pytest.mark.parametrize("name", sorted(NAIVE))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_loop(name: str, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, c = int(rng.integers(2, 10)), int(rng.integers(2, 8))
    committee = random_committee(rng, m, 60, c, dtype, alpha=0.7)
    got = scores_of(name, committee=committee)
    np.testing.assert_allclose(got, NAIVE[name](committee), **TOLERANCE[np.dtype(dtype)])


# baal (the peer with BALD) pulls in PyTorch, which CI keeps out; BALD's identity with the mean
# KL divergence to the consensus lets skactiveml's average_kl_divergence stand in for it.
PEERS = {"bald": [("skactiveml", lambda committee: average_kl_divergence(committee.copy()))]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bald_matches_skactiveml_average_kl(dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    committee = random_committee(rng, int(rng.integers(2, 10)), 200, 5, dtype, alpha=0.7)
    ours = scores_of("bald", committee=committee)
    [(_, reference)] = PEERS["bald"]
    np.testing.assert_allclose(
        ours, reference(committee.astype(np.float64)), **TOLERANCE[np.dtype(dtype)]
    )


def test_bald_is_zero_when_samples_agree_and_at_most_log_c() -> None:
    rng = np.random.default_rng(5)
    row = random_committee(rng, 1, 30, 4)
    agreeing = np.repeat(row, 5, axis=0)
    np.testing.assert_allclose(scores_of("bald", committee=agreeing), 0.0, atol=1e-12)
    spread = random_committee(rng, 8, 100, 4, alpha=0.2)
    scores = scores_of("bald", committee=spread)
    assert (scores >= -1e-12).all() and (scores <= math.log(4) + 1e-12).all()
