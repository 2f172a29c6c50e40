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
from labelwise_server.strategies.distances import (
    min_squared_distances,
    row_blocks,
    squared_distances,
    squared_distances_to,
    squared_norms,
)
from labelwise_server.strategies.greedy import Budget

_GONE = -1.0  # the min-distance of an item that may no longer be picked


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


def _greedy(
    min_distance: FloatArray,
    distances_to: Callable[[int], FloatArray],
    k: int,
    spend: Budget,
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
    picks: list[int] = []
    scores: list[float] = []
    first: int | None = None
    if first_order is not None:
        first = spend.first_fitting(first_order)
        if first is None:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        picks.append(first)
        scores.append(0.0)
        spend.take(first)
        np.minimum(min_distance, distances_to(first), out=min_distance)
        min_distance[first] = _GONE
    while len(picks) < k:
        stop()
        best = int(np.argmax(min_distance)) if min_distance.size else -1
        if best < 0 or min_distance[best] < 0:
            break  # every candidate is picked or over budget
        if not spend.fits(best):
            spend.drop(min_distance, _GONE)
            continue
        picks.append(best)
        scores.append(float(min_distance[best]))
        spend.take(best)
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
    norms = squared_norms(x)
    first_order: IntArray | None = None
    if labeled is not None and labeled.shape[0] > 0:
        centres = np.asarray(labeled, dtype=np.float64)
        # min_m sqrt(d²) = sqrt(min_m d²): the root is monotone and correctly rounded.
        min_distance = np.sqrt(min_squared_distances(x, norms, centres))
    else:
        min_distance = np.full(x.shape[0], np.inf)
        centroid = x.mean(axis=0)
        first_order = np.argsort(((x - centroid) ** 2).sum(axis=1), kind="stable")
    picks, scores = _greedy(
        min_distance,
        lambda j: np.sqrt(squared_distances_to(x, norms, j)),
        k,
        Budget(None if costs is None else costs[candidates], budget),
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
    spend = Budget(None if costs is None else costs[candidates], budget)
    picks, scores = _greedy(min_distance, lambda j: np.abs(f - f[j]), k, spend, stop=stop)
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
    norms = squared_norms(x)
    centres = np.asarray(labeled, dtype=np.float64)
    centre_norms = squared_norms(centres)
    targets = np.asarray(labeled_targets, dtype=np.float64)
    min_distance = np.empty(x.shape[0], dtype=np.float64)
    for start, end in row_blocks(x.shape[0], centres.shape[0]):
        dx = np.sqrt(squared_distances(x[start:end], norms[start:end], centres, centre_norms))
        dx *= np.abs(f[start:end, None] - targets[None, :])  # [b, l]
        min_distance[start:end] = dx.min(axis=1)
    picks, scores = _greedy(
        min_distance,
        lambda j: np.sqrt(squared_distances_to(x, norms, j)) * np.abs(f - f[j]),
        k,
        Budget(None if costs is None else costs[candidates], budget),
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
