"""Regression strategies: a predictive spread, and greedy sampling on inputs and outputs.

Score functions take the pool's predictive standard deviation [n] (given, or
over m committee / MC-dropout samples) and return float64 scores [n], higher
meaning "label this first". The greedy ones (GSx, GSy, iGS; Wu, Lin & Huang
2019) return (indices in pick order, the distance each had when picked), pick
only among the candidates and skip what no longer fits the budget, as
core_set does. Distances are euclidean on embeddings (inputs) and absolute
differences on outputs, in float64.
"""

from collections.abc import Callable

import numpy as np

from labelwise_server.strategies._types import (
    FloatArray,
    IntArray,
    Params,
    Pool,
    RealArray,
    StopCheck,
    Task,
    needed,
    never_stop,
)

_GONE = -1.0  # the min-distance of an item that may no longer be picked
# Rows per block when distances to many labeled items are computed at once.
_BLOCK_FLOATS = 1 << 21


def variance_scores(std: FloatArray, measure: str = "variance") -> FloatArray:
    """σ_i² ("variance") or σ_i ("std") of the prediction: query-by-committee for regression.

    std [n] >= 0, the members' (population) standard deviation or the model's
    predictive one. RayChaudhuri & Hamey (1995); Burbidge, Rowland & King (2007).
    """
    spread = np.asarray(std, dtype=np.float64)
    scores: FloatArray = spread * spread if measure == "variance" else spread.copy()
    return scores + 0.0


def gaussian_bald_scores(std: FloatArray, noise_std: float = 1.0) -> FloatArray:
    """½ log(1 + σ_i² / σ_noise²): the mutual information between y_i and the model.

    For a Gaussian predictive f_i ~ N(μ_i, σ_i²) with Gaussian observation noise
    y_i = f_i + ε, ε ~ N(0, σ_noise²): I(y_i; f_i) = H[y_i] − H[y_i | f_i]. std [n]
    is σ_i (epistemic: a GP's posterior std of f, or the spread of committee /
    MC-dropout means). Houlsby et al. (2011), Gaussian-process regression.
    """
    # ½ log(1 + exp(2 (log σ − log σ_noise))): finite for any σ >= 0 and σ_noise > 0, however
    # far apart (σ / σ_noise itself can overflow); σ = 0 gives log 0 = −inf and a score of 0.
    with np.errstate(divide="ignore"):
        log_ratio = np.log(np.asarray(std, dtype=np.float64)) - np.log(float(noise_std))
    scores: FloatArray = 0.5 * np.logaddexp(0.0, 2.0 * log_ratio)
    return scores + 0.0


def _squared_norms(x: FloatArray) -> FloatArray:
    norms: FloatArray = np.einsum("ij,ij->i", x, x)
    return norms


def _distances_to_row(x: FloatArray, norms: FloatArray, j: int) -> FloatArray:
    """‖x_i − x_j‖ for every row i of x [n, d]."""
    d2 = x @ x[j]
    d2 *= -2.0
    d2 += norms
    d2 += norms[j]
    np.maximum(d2, 0.0, out=d2)
    d2[j] = 0.0  # exact, whatever the rounding
    distances: FloatArray = np.sqrt(d2)
    return distances


def _pairwise_distances(x: FloatArray, norms: FloatArray, centres: FloatArray) -> FloatArray:
    """‖x_i − c_m‖ [b, l] for a block x [b, d] and centres [l, d]."""
    d2 = x @ centres.T
    d2 *= -2.0
    d2 += _squared_norms(centres)
    d2 += norms[:, None]
    np.maximum(d2, 0.0, out=d2)
    distances: FloatArray = np.sqrt(d2)
    return distances


def _min_over_labeled(
    n: int, count: int, block_min: Callable[[int, int], FloatArray]
) -> FloatArray:
    """min over the l labeled items of a [b, l] distance block, blocked over the n rows."""
    out = np.empty(n, dtype=np.float64)
    step = max(1, _BLOCK_FLOATS // max(count, 1))
    for start in range(0, n, step):
        end = min(start + step, n)
        out[start:end] = block_min(start, end)
    return out


def _greedy(
    min_distance: FloatArray,
    distances_to: Callable[[int], FloatArray],
    k: int,
    costs: FloatArray | None,
    budget: float | None,
    first_order: IntArray | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """Farthest-first: pick argmax min_distance, score it, fold in its distances, repeat.

    min_distance [N] over the candidates (changed in place); distances_to(j) [N]
    is every candidate's distance to candidate j as a new centre. first_order, when
    given, ranks the candidates for a first pick made before the walk: the first
    that fits the budget (scored with the covering radius it leaves).
    Ties go to the lower position. An item that no longer fits the budget is
    dropped, with every item costing more than what is left.
    """
    remaining = np.inf if budget is None else float(budget)
    picks: list[int] = []
    scores: list[float] = []
    first: int | None = None
    if first_order is not None:
        fits = first_order if costs is None else first_order[costs[first_order] <= remaining]
        if fits.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        first = int(fits[0])
        picks.append(first)
        scores.append(0.0)
        if costs is not None:
            remaining -= float(costs[first])
        np.minimum(min_distance, distances_to(first), out=min_distance)
        min_distance[first] = _GONE
    while len(picks) < k:
        stop()
        best = int(np.argmax(min_distance)) if min_distance.size else -1
        if best < 0 or min_distance[best] < 0:
            break  # every candidate is picked or over budget
        if costs is not None and costs[best] > remaining:
            min_distance[costs > remaining] = _GONE  # the budget only shrinks
            continue
        picks.append(best)
        scores.append(float(min_distance[best]))
        if costs is not None:
            remaining -= float(costs[best])
        np.minimum(min_distance, distances_to(best), out=min_distance)
        min_distance[best] = _GONE
    score_array = np.asarray(scores, dtype=np.float64)
    if first is not None:
        left = min_distance[min_distance >= 0]
        score_array[0] = (
            score_array[1] if len(picks) > 1 else float(left.max()) if left.size else 0.0
        )
    return np.asarray(picks, dtype=np.int64), score_array


def gsx_select(
    embeddings: RealArray,
    labeled: RealArray | None,
    candidates: IntArray,
    k: int,
    *,
    costs: FloatArray | None = None,
    budget: float | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """GSx: greedy sampling on the inputs (Wu, Lin & Huang 2019).

    Repeats: pick argmax_n min_m ‖x_n − x_m‖ over the labeled items and the picks
    so far; the score is that distance. With no labeled items (absent or l = 0)
    the first pick is the candidate closest to the candidates' centroid, as in
    the paper, scored with the covering radius it leaves. X [n, d], L [l, d].
    """
    x = np.asarray(embeddings[candidates], dtype=np.float64)
    norms = _squared_norms(x)
    first_order: IntArray | None = None
    if labeled is not None and labeled.shape[0] > 0:
        centres = np.asarray(labeled, dtype=np.float64)
        min_distance = _min_over_labeled(
            x.shape[0],
            centres.shape[0],
            lambda s, e: _pairwise_distances(x[s:e], norms[s:e], centres).min(axis=1),
        )
    else:
        min_distance = np.full(x.shape[0], np.inf)
        centroid = x.mean(axis=0)
        first_order = np.argsort(((x - centroid) ** 2).sum(axis=1), kind="stable")
    item_costs = None if costs is None else costs[candidates]
    picks, scores = _greedy(
        min_distance,
        lambda j: _distances_to_row(x, norms, j),
        k,
        item_costs,
        budget,
        first_order,
        stop,
    )
    return candidates[picks], scores


def gsy_select(
    predictions: FloatArray,
    labeled_targets: FloatArray,
    candidates: IntArray,
    k: int,
    *,
    costs: FloatArray | None = None,
    budget: float | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """GSy: greedy sampling on the outputs (Wu, Lin & Huang 2019).

    Repeats: pick argmax_n min_m |f(x_n) − y_m| over the labeled targets y [l] and
    the picks so far, a pick standing in with its prediction f(x_n) (its label is
    not known yet); the score is that distance. predictions [n].
    """
    f = np.asarray(predictions[candidates], dtype=np.float64)
    targets = np.sort(np.asarray(labeled_targets, dtype=np.float64))
    # The nearest labeled target of each prediction: one of its two neighbours in sorted order.
    right = np.searchsorted(targets, f).clip(0, targets.shape[0] - 1)
    left = (right - 1).clip(0, targets.shape[0] - 1)
    min_distance = np.minimum(np.abs(f - targets[left]), np.abs(f - targets[right]))
    item_costs = None if costs is None else costs[candidates]
    picks, scores = _greedy(
        min_distance, lambda j: np.abs(f - f[j]), k, item_costs, budget, stop=stop
    )
    return candidates[picks], scores


def igs_select(
    embeddings: RealArray,
    predictions: FloatArray,
    labeled: RealArray,
    labeled_targets: FloatArray,
    candidates: IntArray,
    k: int,
    *,
    costs: FloatArray | None = None,
    budget: float | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """iGS: improved greedy sampling on inputs and outputs (Wu, Lin & Huang 2019).

    Repeats: pick argmax_n min_m ‖x_n − x_m‖ · |f(x_n) − y_m| over the labeled items
    (x_m, y_m) and the picks so far (x_j, f(x_j)); the score is that product.
    X [n, d], predictions [n], L [l, d], y [l].
    """
    x = np.asarray(embeddings[candidates], dtype=np.float64)
    f = np.asarray(predictions[candidates], dtype=np.float64)
    norms = _squared_norms(x)
    centres = np.asarray(labeled, dtype=np.float64)
    targets = np.asarray(labeled_targets, dtype=np.float64)

    def block_min(start: int, end: int) -> FloatArray:
        dx = _pairwise_distances(x[start:end], norms[start:end], centres)  # [b, l]
        dx *= np.abs(f[start:end, None] - targets[None, :])
        result: FloatArray = dx.min(axis=1)
        return result

    min_distance = _min_over_labeled(x.shape[0], centres.shape[0], block_min)
    item_costs = None if costs is None else costs[candidates]
    picks, scores = _greedy(
        min_distance,
        lambda j: _distances_to_row(x, norms, j) * np.abs(f - f[j]),
        k,
        item_costs,
        budget,
        stop=stop,
    )
    return candidates[picks], scores


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def regression_variance_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    return variance_scores(needed(pool.regression_std, "regression_std"), str(params["measure"]))


def gaussian_bald_adapter(pool: Pool, task: Task, params: Params) -> FloatArray:
    std = needed(pool.regression_std, "regression_std")
    return gaussian_bald_scores(std, float(params["noise_std"]))


def gsx_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    return gsx_select(
        needed(pool.embeddings, "embeddings"),
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def gsy_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    return gsy_select(
        needed(pool.regression_mean, "regression_mean"),
        needed(pool.labeled_targets, "labeled_targets"),
        task.candidates,
        task.k,
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def igs_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    return igs_select(
        needed(pool.embeddings, "embeddings"),
        needed(pool.regression_mean, "regression_mean"),
        needed(pool.labeled_embeddings, "labeled_embeddings"),
        needed(pool.labeled_targets, "labeled_targets"),
        task.candidates,
        task.k,
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )
