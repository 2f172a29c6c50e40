"""Diversity strategies on embeddings X [n, d] (and labeled embeddings L [l, d]).

Every batch function returns (indices in pick order, score at pick time),
picks only among the candidates, and stops early when nothing that is left
fits the budget. The work is in float32 whatever the embeddings came as.
"""

import numpy as np
import numpy.typing as npt

from labelwise_server.strategies._types import FloatArray, IntArray, RealArray

Float32Array = npt.NDArray[np.float32]

# Rows of X per block when distances to many centres are computed at once, so a
# block's [rows, centres] distance matrix stays a few MiB.
_DISTANCE_BLOCK_FLOATS = 1 << 21
# The min-distance of an item that may no longer be picked (picked, or over budget).
_GONE = np.float32(-1.0)


def as_float32(array: RealArray) -> Float32Array:
    """The array in float32, C-ordered (no copy when it already is)."""
    return np.ascontiguousarray(array, dtype=np.float32)


def unit_rows(x: Float32Array) -> Float32Array:
    """Rows scaled to unit euclidean norm; all-zero rows stay zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0] = 1.0
    scaled: Float32Array = x / norms[:, None]
    return scaled


def squared_norms(x: Float32Array) -> Float32Array:
    """‖x_i‖² of each row [n], in float32."""
    norms: Float32Array = np.einsum("ij,ij->i", x, x)
    return norms


def min_squared_distances(
    x: Float32Array, x_norms: Float32Array, centres: Float32Array
) -> Float32Array:
    """min_c ‖x_i − c‖² over the rows c of centres [l, d], for each row of x [n, d].

    Blocked over rows, so memory stays O(block · l); +inf when l = 0.
    """
    n, count = x.shape[0], centres.shape[0]
    out = np.full(n, np.inf, dtype=np.float32)
    if count == 0:
        return out
    centre_norms = squared_norms(centres)
    step = max(1, _DISTANCE_BLOCK_FLOATS // count)
    for start in range(0, n, step):
        block = x[start : start + step]
        d2 = block @ centres.T  # [b, l]
        d2 *= -2.0
        d2 += centre_norms
        d2 += x_norms[start : start + step, None]
        out[start : start + step] = d2.min(axis=1)
    np.maximum(out, 0.0, out=out)
    return out


def k_center_greedy(
    embeddings: RealArray,
    labeled: RealArray | None,
    candidates: IntArray,
    k: int,
    seed: int,
    *,
    metric: str = "euclidean",
    costs: FloatArray | None = None,
    budget: float | None = None,
) -> tuple[IntArray, FloatArray]:
    """Core-set by k-center greedy (Sener & Savarese 2018).

    Repeats: pick argmax_i min_{c ∈ C} dist(x_i, c) among the candidates, C =
    labeled ∪ picked so far; the score is that distance at pick time
    (euclidean, or cosine distance 1 − cos). Ties go to the lower pool index.
    With no labeled items (L absent or l = 0) the first pick is a uniform draw
    among the candidates by the seed, scored with the distance the next pick
    will have (the covering radius it leaves). One [n, d]·[d] pass per pick.
    A pick whose cost no longer fits the budget is skipped and the walk goes on.
    """
    x = as_float32(embeddings[candidates])
    if metric == "cosine":
        x = unit_rows(x)
    centres = np.empty((0, x.shape[1]), dtype=np.float32)
    if labeled is not None and labeled.shape[0] > 0:
        centres = as_float32(labeled)
        if metric == "cosine":
            centres = unit_rows(centres)
    x_norms = squared_norms(x)
    min_d2 = min_squared_distances(x, x_norms, centres)
    item_costs = None if costs is None else costs[candidates]
    remaining = np.inf if budget is None else float(budget)

    picks: list[int] = []
    scores: list[float] = []
    first_unscored = False
    if centres.shape[0] == 0 and x.shape[0] > 0:
        order = np.random.default_rng(seed).permutation(x.shape[0])
        first = -1
        for position in order.tolist():  # the first draw that fits the budget
            if item_costs is None or item_costs[position] <= remaining:
                first = int(position)
                break
        if first < 0:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        min_d2 = _update_min_d2(x, x_norms, first, None)
        picks.append(first)
        scores.append(0.0)
        first_unscored = True
        if item_costs is not None:
            remaining -= float(item_costs[first])
        min_d2[first] = _GONE

    while len(picks) < k:
        best = int(np.argmax(min_d2))
        if min_d2[best] < 0:
            break  # every candidate is picked or over budget
        if item_costs is not None and item_costs[best] > remaining:
            min_d2[item_costs > remaining] = _GONE  # the budget only shrinks
            continue
        picks.append(best)
        scores.append(float(np.sqrt(np.float64(min_d2[best]))))
        if item_costs is not None:
            remaining -= float(item_costs[best])
        _update_min_d2(x, x_norms, best, min_d2)
        min_d2[best] = _GONE

    picked = np.asarray(picks, dtype=np.int64)
    score_array = np.asarray(scores, dtype=np.float64)
    if first_unscored:
        after = min_d2[min_d2 >= 0]
        score_array[0] = (
            score_array[1] if len(picks) > 1 else float(np.sqrt(after.max())) if after.size else 0.0
        )
    if metric == "cosine":  # ‖u − v‖² = 2 − 2 cos for unit rows
        score_array = score_array**2 / 2.0
    return candidates[picked], score_array


def _update_min_d2(
    x: Float32Array, x_norms: Float32Array, centre: int, min_d2: Float32Array | None
) -> Float32Array:
    """min(min_d2, ‖x_i − x_centre‖²) in place (or fresh when min_d2 is None); skips gone rows."""
    d2: Float32Array = x @ x[centre]
    d2 *= -2.0
    d2 += x_norms
    d2 += x_norms[centre]
    np.maximum(d2, 0.0, out=d2)
    if min_d2 is None:
        return d2
    np.minimum(min_d2, d2, out=min_d2)  # gone rows (< 0) stay gone
    return min_d2
