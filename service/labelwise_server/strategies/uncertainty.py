"""Uncertainty sampling on one model's class probabilities.

Every function takes probabilities [n, c] (rows sum to 1, c >= 2, float32 or
float64, never mutated) and returns float64 scores [n] where higher means
"label this first". Lewis & Gale (1994); Settles (2009) survey.
"""

import numpy as np

from labelwise_server.strategies._types import FloatArray, RealArray


def top_two(probabilities: RealArray) -> RealArray:
    """The two largest probabilities of each row: [n, 2], second largest first."""
    return np.partition(probabilities, -2, axis=1)[:, -2:]


def entropy_scores(probabilities: RealArray) -> FloatArray:
    """Shannon entropy −Σ_j p_ij log p_ij (natural log, 0·log 0 = 0). Shannon (1948)."""
    ones = np.ones(probabilities.shape[-1], dtype=probabilities.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.log(probabilities)
        np.multiply(plogp, probabilities, out=plogp)
    sums = plogp @ ones  # a matmul is the fastest row sum for small c
    zero_rows = np.isnan(sums)  # a row with some p = 0 gave 0·(−inf) = NaN
    if zero_rows.any():
        rows = probabilities[zero_rows]
        fixed = np.zeros(rows.shape, dtype=rows.dtype)
        np.log(rows, out=fixed, where=rows > 0)
        sums[zero_rows] = (fixed * rows) @ ones
    return np.subtract(0.0, sums, dtype=np.float64)  # not negative(): 0 - 0 is +0, not -0


def least_confidence_from_top2(top2: RealArray) -> FloatArray:
    """1 − p(1) from the rows' two largest probabilities [n, 2]."""
    return np.subtract(1.0, top2[:, 1], dtype=np.float64)


def margin_from_top2(top2: RealArray) -> FloatArray:
    """p(2) − p(1) = −(p(1) − p(2)) from the rows' two largest probabilities [n, 2]."""
    return np.subtract(top2[:, 0], top2[:, 1], dtype=np.float64)


def ratio_from_top2(top2: RealArray) -> FloatArray:
    """p(2) / p(1) from the rows' two largest probabilities [n, 2]; p(1) >= 1/c > 0."""
    return np.divide(top2[:, 0], top2[:, 1], dtype=np.float64)


def least_confidence_scores(probabilities: RealArray) -> FloatArray:
    """Least confidence 1 − max_j p_ij. Lewis & Gale (1994)."""
    return least_confidence_from_top2(top_two(probabilities))


def margin_scores(probabilities: RealArray) -> FloatArray:
    """Negative top-2 gap −(p(1) − p(2)); the closest call ranks first. Scheffer et al. (2001)."""
    return margin_from_top2(top_two(probabilities))


def ratio_scores(probabilities: RealArray) -> FloatArray:
    """Ratio of the two largest probabilities p(2) / p(1), in (0, 1]. Settles (2009)."""
    return ratio_from_top2(top_two(probabilities))
