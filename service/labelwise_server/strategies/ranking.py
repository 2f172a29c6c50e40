"""Turning scores into a ranking: the only place ties are broken.

Order is score descending, then pool index ascending, so the same scores
always give the same ranking.
"""

import numpy as np

from labelwise_server.strategies._types import FloatArray, IntArray


def top_k(
    scores: FloatArray, k: int, indices: IntArray | None = None
) -> tuple[IntArray, FloatArray]:
    """The k best of scores [n] as (indices, scores), best first.

    indices [n], ascending, gives each score's pool index (default: its
    position). Uses a partition, then sorts only the k chosen.
    """
    n = scores.shape[0]
    positions = np.arange(n, dtype=np.int64) if indices is None else indices
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]  # the k-th largest value
        above = np.flatnonzero(scores > kth)
        # Of the items tied at the k-th value, the lower indices make the cut.
        tied = np.flatnonzero(scores == kth)[: k - above.shape[0]]
        chosen = np.concatenate([above, tied])
    else:
        chosen = np.arange(n)
    return rank(positions[chosen], scores[chosen])


def rank(indices: IntArray, scores: FloatArray) -> tuple[IntArray, FloatArray]:
    """Sort (indices, scores) pairs by score descending, then index ascending."""
    order = np.lexsort((indices, -scores))
    return indices[order].astype(np.int64, copy=False), scores[order].astype(np.float64, copy=False)


def merge_top_k(
    best: tuple[IntArray, FloatArray], block: tuple[IntArray, FloatArray], k: int
) -> tuple[IntArray, FloatArray]:
    """The k best of two rankings over disjoint pool indices, as top_k of their union would give."""
    indices = np.concatenate([best[0], block[0]])
    scores = np.concatenate([best[1], block[1]])
    ranked_indices, ranked_scores = rank(indices, scores)
    return ranked_indices[:k], ranked_scores[:k]


def within_budget(
    ranked: IntArray, costs: FloatArray, budget: float, k: int
) -> tuple[IntArray, float]:
    """Walk a ranking best first, keeping each item that still fits the budget, up to k items.

    Returns the positions kept (into ranked) and their total cost. An item
    that does not fit is skipped and the walk goes on, so a cheaper item
    further down can still be taken.
    """
    kept: list[int] = []
    spent = 0.0
    item_costs = costs[ranked]
    for position, cost in enumerate(item_costs.tolist()):
        if spent + cost <= budget:
            kept.append(position)
            spent += cost
            if len(kept) == k:
                break
    return np.asarray(kept, dtype=np.int64), spent
