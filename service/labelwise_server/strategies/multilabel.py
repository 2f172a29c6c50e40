"""Multi-label strategies on independent per-label probabilities.

Every function takes per-label probabilities P [n, L] (sigmoid outputs, each in
[0, 1]; L >= 1) or a committee of them [m, n, L], never mutates them, and
returns float64 scores [n] where higher means "label this first". Each label
is a binary problem (positive with probability p, negative with 1 − p), so the
binary versions of the classification measures apply label by label and are
then combined over labels by a mean, max or sum. Natural logarithms
throughout. Brinker (2006); Li & Guo (2013); Houlsby et al. (2011).
"""

from collections.abc import Callable

import numpy as np
from scipy.special import xlogy

from labelwise_server.strategies._types import (
    FloatArray,
    Params,
    Pool,
    RealArray,
    Task,
    needed,
)

AGGREGATES = ("mean", "max")
# Elements of P per block of rows.
_BLOCK_ELEMENTS = 1 << 16


def binary_entropy(probabilities: RealArray) -> FloatArray:
    """H_b(p) = −p log p − (1 − p) log(1 − p) elementwise (0 log 0 = 0), in float64."""
    p = np.asarray(probabilities, dtype=np.float64)
    out: FloatArray = -xlogy(p, p)
    q = 1.0 - p
    out -= xlogy(q, q)
    return out + 0.0  # +0.0 turns any −0 into +0


def _combine(per_label: FloatArray, aggregate: str) -> FloatArray:
    """Mean, max or sum over the label axis (the last)."""
    if aggregate == "max":
        combined: FloatArray = per_label.max(axis=-1)
    elif aggregate == "sum":
        combined = per_label.sum(axis=-1)
    else:
        combined = per_label.mean(axis=-1)
    return combined + 0.0


def _by_blocks(
    probabilities: RealArray, per_label: Callable[[RealArray], FloatArray], aggregate: str
) -> FloatArray:
    """_combine(per_label(P)) over blocks of rows of P [n, L], so temporaries stay in cache."""
    n, labels = probabilities.shape
    out = np.empty(n, dtype=np.float64)
    step = max(1, _BLOCK_ELEMENTS // max(labels, 1))
    for start in range(0, n, step):
        block = probabilities[start : start + step]
        out[start : start + step] = _combine(per_label(block), aggregate)
    return out


def multilabel_entropy_scores(probabilities: RealArray, aggregate: str = "mean") -> FloatArray:
    """(1/L) Σ_l H_b(p_il) (aggregate="mean") or max_l H_b(p_il) ("max"), in nats.

    P [n, L]. Mean binary entropy over labels: Brinker (2006), Yang et al. (2009);
    max: the most uncertain label.
    """
    return _by_blocks(probabilities, binary_entropy, aggregate)


def multilabel_least_confidence_scores(
    probabilities: RealArray, aggregate: str = "mean"
) -> FloatArray:
    """(1/L) Σ_l (1 − max(p_il, 1 − p_il)) ("mean") or max_l of the same ("max").

    P [n, L]. Per label the least confidence of the binary prediction,
    1 − max(p, 1 − p) = min(p, 1 − p), in [0, 0.5]. Lewis & Gale (1994) per label.
    """

    def least_confidence(block: RealArray) -> FloatArray:
        p = np.asarray(block, dtype=np.float64)
        return np.minimum(p, 1.0 - p)

    return _by_blocks(probabilities, least_confidence, aggregate)


def label_cardinality_inconsistency_scores(
    probabilities: RealArray, labeled_cardinality: float, threshold: float = 0.5
) -> FloatArray:
    """|Σ_l 1[p_il > threshold] − c̄|: the predicted label count's distance to the labeled mean.

    P [n, L]; c̄ = the mean number of positive labels per labeled item. Li & Guo
    (2013); small-text's label_cardinality_inconsistency with threshold 0.5.
    """
    predicted = (np.asarray(probabilities) > threshold).sum(axis=-1, dtype=np.float64)
    scores: FloatArray = np.abs(predicted - float(labeled_cardinality))
    return scores + 0.0


def multilabel_bald_scores(committee: RealArray, aggregate: str = "sum") -> FloatArray:
    """Σ_l (or mean_l) of the binary mutual information H_b(p̄_il) − (1/m) Σ_k H_b(P_kil).

    Committee [m, n, L]; p̄ = the members' mean. BALD label by label, treating the
    labels as independent given the model. Houlsby et al. (2011); Gal et al. (2017).
    """
    members = np.asarray(committee, dtype=np.float64)
    mean = members.mean(axis=0)  # [n, L]
    expected = np.zeros(mean.shape, dtype=np.float64)
    for member in members:
        expected += binary_entropy(member)
    expected /= members.shape[0]
    # Mutual information is >= 0; rounding can leave −1e-17 for sure labels.
    information = np.maximum(binary_entropy(mean) - expected, 0.0)
    return _combine(information, aggregate)


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def multilabel_entropy_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    probabilities = needed(pool.multilabel, "multilabel_probabilities")
    return multilabel_entropy_scores(probabilities, str(params["aggregate"]))


def multilabel_least_confidence_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    probabilities = needed(pool.multilabel, "multilabel_probabilities")
    return multilabel_least_confidence_scores(probabilities, str(params["aggregate"]))


def label_cardinality_inconsistency_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    return label_cardinality_inconsistency_scores(
        needed(pool.multilabel, "multilabel_probabilities"),
        float(pool.labeled_label_cardinality or 0.0),
        float(params["threshold"]),
    )


def multilabel_bald_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    committee = needed(pool.multilabel_committee, "multilabel_committee")
    return multilabel_bald_scores(committee, str(params["aggregate"]))
