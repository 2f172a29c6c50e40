"""Hybrid strategies: model outputs (probabilities p [n, c], or a base score [n]) with embeddings.

Batch functions return (indices in pick order, score at pick time), pick only
among the candidates (ascending pool indices), and skip a pick whose cost no
longer fits the budget, going on among what is left. Embedding work is in
float32 whatever the embeddings came as; ties go to the lower pool index.
"""

import math
from typing import Protocol

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies import index, prefilter
from labelwise_server.strategies._types import (
    BatchSelect,
    FloatArray,
    IntArray,
    Params,
    Pool,
    PoolScore,
    RealArray,
    StopCheck,
    Task,
    needed,
    never_stop,
)
from labelwise_server.strategies.bases import BaseScores, shifted
from labelwise_server.strategies.distances import (
    min_squared_distances,
    squared_distances_from_dots,
    squared_distances_to,
    squared_norms,
    unit_rows,
)
from labelwise_server.strategies.diversity import Float32Array, as_float32, candidate_rows
from labelwise_server.strategies.greedy import Budget

# Rows per block for the O(n · d) passes over the pool.
_BLOCK_ROWS = 1 << 15
# Distances per block when badge_represented assigns candidates to their nearest pick.
REPRESENTED_BLOCK = 1 << 22
# The most items cluster_margin clusters by average linkage, which keeps an m(m − 1)/2
# distance matrix (4096 items: 8.4 M float64, 67 MB); past it, k-means (strategies/index.py).
CLUSTER_MARGIN_MAX_ITEMS = 4096
# The most margin-filtered items cluster_margin clusters at all (k-means: O(items · clusters)).
CLUSTER_MARGIN_MAX_KMEANS_ITEMS = 1 << 20


class Uniform(Protocol):
    """A source of uniform draws in [0, 1): np.random.Generator, or RandomState."""

    def random(self) -> float: ...


def badge_select(
    probabilities: RealArray,
    embeddings: RealArray,
    candidates: IntArray,
    k: int,
    rng: Uniform,
    *,
    costs: FloatArray | None = None,
    budget: float | None = None,
    origin_centre: bool = False,
    weights: FloatArray | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """BADGE: k-means++ seeding on gradient embeddings (Ash et al. 2020).

    g_i = (p_i − e_ŷi) ⊗ x_i ∈ R^{c·d}, ŷ_i = argmax p_i (the last layer's loss
    gradient under the predicted label). The first pick is the largest ‖g_i‖
    (as the paper's code and scikit-activeml's Badge do); each next pick is
    drawn with probability ∝ D²(g_i), the squared distance to the nearest pick
    (one uniform draw per pick, inverted through the cumulative D²). The
    [n, c·d] matrix is never built: with a = p − e_ŷ,
    ‖g_i − g_j‖² = ‖a_i‖²‖x_i‖² + ‖a_j‖²‖x_j‖² − 2 (a_i·a_j)(x_i·x_j), one
    [n, c]·[c] and one [n, d]·[d] pass per pick. Score = ‖g_i − nearest pick‖
    at pick time (‖g_i‖ for the first). When every item left has D² = 0 the
    draw is uniform among them. probabilities [n, c], embeddings [n, d].
    origin_centre=True also counts g = 0 as a centre from the start (D² starts
    at ‖g_i‖²), as scikit-activeml 1.0's Badge does; the paper's code and the
    service do not.

    weights [n] (>= 0, the request's item_weights) make it weighted k-means++
    seeding: each next pick is drawn with probability ∝ w_i · D²(g_i), as if
    item i stood for w_i items (the coreset composition of k-means||, Bahmani et
    al. 2012: each candidate weighted by the items it represents). The first
    pick is still the largest gradient norm; all-ones weights give the
    unweighted answer bit for bit. When every item left has w_i · D² = 0 the
    draw is uniform among those with w_i > 0 (among all left if none has).
    """
    x = candidate_rows(embeddings, candidates)  # [r, d]
    w = None if weights is None else weights[candidates].astype(np.float64)  # [r]
    a = as_float32(probabilities[candidates])  # [r, c], a copy: changed below
    rows = np.arange(a.shape[0])
    a[rows, np.argmax(a, axis=1)] -= 1.0  # p − e_ŷ
    g_norms = squared_norms(a) * squared_norms(x)  # ‖g_i‖²
    d2 = g_norms.astype(np.float64)  # before the first pick: ‖g_i‖², to rank it
    # D² to the nearest pick, −1 once gone (set after the first pick).
    first_d2 = d2.copy() if origin_centre else np.full_like(d2, np.inf)
    spend = Budget(None if costs is None else costs[candidates], budget)
    picks: list[int] = []
    scores: list[float] = []
    while len(picks) < k:
        stop()
        spend.drop(d2, -1.0)
        alive = d2 >= 0
        if not alive.any():
            break
        if not picks:
            best = int(np.argmax(d2))  # the largest gradient norm
        else:
            mass = np.where(alive, d2, 0.0)
            if w is not None:
                mass *= w
            if mass.sum() <= 0:  # every item left sits on a pick: uniform among them
                mass = alive.astype(np.float64)
                if w is not None and (mass * w).sum() > 0:
                    mass = np.where(w > 0, mass, 0.0)
            cumulative = np.cumsum(mass)
            draw = rng.random() * cumulative[-1]
            best = int(np.searchsorted(cumulative, draw, side="right"))
            best = min(best, a.shape[0] - 1)
            while not alive[best]:  # a zero-weight bin is never landed on but by rounding
                best -= 1
        picks.append(best)
        scores.append(float(np.sqrt(max(d2[best], 0.0))))
        spend.take(best)
        if len(picks) == 1:
            first_d2[d2 < 0] = -1.0  # over budget already
            d2 = first_d2
        _update_gradient_d2(a, x, g_norms, best, d2)
        d2[best] = -1.0
    return candidates[np.asarray(picks, dtype=np.int64)], np.asarray(scores, dtype=np.float64)


def _update_gradient_d2(
    a: Float32Array, x: Float32Array, g_norms: Float32Array, centre: int, d2: FloatArray
) -> None:
    """d2 = min(d2, ‖g_i − g_centre‖²) in place; rows already gone (d2 = −1) stay gone."""
    for start in range(0, a.shape[0], _BLOCK_ROWS):
        stop = start + _BLOCK_ROWS
        dots = (a[start:stop] @ a[centre]) * (x[start:stop] @ x[centre])  # [b]: g_i·g_centre
        dist = squared_distances_from_dots(dots, g_norms[start:stop], g_norms[centre])
        np.minimum(d2[start:stop], dist, out=d2[start:stop])  # gone rows (−1) stay gone


def badge_represented(
    probabilities: RealArray,
    embeddings: RealArray,
    candidates: IntArray,
    picks: IntArray,
    weights: FloatArray | None = None,
    stop: StopCheck = never_stop,
) -> FloatArray:
    """How much of the candidates each pick stands for: [len(picks)], the total weight
    (weights[i], or 1 each) of the candidates whose nearest pick in BADGE's gradient space
    is that pick (ties to the earlier pick). They sum to the
    candidates' total weight. A shard's BADGE picks with these weights are a weighted
    summary of the shard for a weighted k-means++ over the union of shards (Bahmani et al.
    2012). O(r · len(picks) · (c + d)), in blocks of REPRESENTED_BLOCK distances."""
    out = np.zeros(picks.shape[0], dtype=np.float64)
    if picks.shape[0] == 0 or candidates.shape[0] == 0:
        return out
    pa = as_float32(probabilities[picks])  # [k, c], a copy: changed below
    pa[np.arange(pa.shape[0]), np.argmax(pa, axis=1)] -= 1.0
    px = as_float32(embeddings[picks])  # [k, d]
    p_norms = squared_norms(pa) * squared_norms(px)  # [k]
    rows = max(1, REPRESENTED_BLOCK // picks.shape[0])
    for start in range(0, candidates.shape[0], rows):
        stop()
        block = candidates[start : start + rows]
        a = as_float32(probabilities[block])
        a[np.arange(a.shape[0]), np.argmax(a, axis=1)] -= 1.0
        x = as_float32(embeddings[block])
        g_norms = squared_norms(a) * squared_norms(x)  # [b]
        dots = (a @ pa.T) * (x @ px.T)  # [b, k]: g_i · g_pick
        d2 = g_norms[:, None].astype(np.float64) + p_norms[None, :] - 2.0 * dots
        nearest = np.argmin(d2, axis=1)  # the first of equal distances: the earlier pick
        mass = None if weights is None else weights[block].astype(np.float64)
        out += np.bincount(nearest, weights=mass, minlength=picks.shape[0])
    return out


def cluster_margin_select(
    margins: FloatArray,
    embeddings: RealArray,
    candidates: IntArray,
    k: int,
    clusters: int,
    *,
    costs: FloatArray | None = None,
    budget: float | None = None,
    seed: int = 0,
) -> tuple[IntArray, FloatArray]:
    """Cluster-margin (Citovsky et al. 2021) on the lowest-margin candidates.

    candidates are the k_m least sure items (the caller's margin filter);
    margins [n] are p(2) − p(1) (higher = less sure). The candidates'
    embeddings are clustered by average-linkage agglomerative clustering
    (euclidean) into at most `clusters` clusters; then clusters are visited
    round-robin from the smallest up (ties: lowest member index), each giving
    its least sure item not yet taken (an item over the remaining budget is
    dropped). Score = the item's margin score. Quadratic in the candidates;
    past CLUSTER_MARGIN_MAX_ITEMS of them, seeded k-means (FAISS) into at most
    max(1, r // 32) clusters replaces average linkage.
    """
    r = candidates.shape[0]
    if r == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    x = as_float32(embeddings[candidates])
    if r <= CLUSTER_MARGIN_MAX_ITEMS:
        x = x.astype(np.float64)
    if r == 1 or clusters <= 1:
        labels = np.zeros(r, dtype=np.int64)
    elif r > CLUSTER_MARGIN_MAX_ITEMS:
        # Past what average linkage can hold (quadratic): k-means clusters (FAISS), at
        # most r / 32 of them so each centroid is fitted on enough items.
        labels = index.kmeans_labels(x, min(clusters, max(1, r // 32)), seed)
    else:
        tree = linkage(x, method="average", metric="euclidean")
        labels = fcluster(tree, t=min(clusters, r), criterion="maxclust").astype(np.int64)
    scores = margins[candidates]
    groups: list[list[int]] = []  # per cluster: positions, least sure first
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order = np.lexsort((members, -scores[members]))
        groups.append(members[order].tolist())
    groups.sort(key=lambda g: (len(g), min(g)))
    spend = Budget(None if costs is None else costs[candidates], budget)
    picks: list[int] = []
    cursors = [0] * len(groups)
    while len(picks) < k:
        took = False
        for c, group in enumerate(groups):
            if len(picks) == k:
                break
            while cursors[c] < len(group):  # what no longer fits is passed for good
                position = group[cursors[c]]
                cursors[c] += 1
                if spend.fits(position):
                    picks.append(position)
                    spend.take(position)
                    took = True
                    break
        if not took:
            break
    chosen = np.asarray(picks, dtype=np.int64)
    return candidates[chosen], scores[chosen].astype(np.float64)


def mean_cosine_similarity(embeddings: RealArray) -> FloatArray:
    """(1/n) Σ_u cos(x_i, x_u) for each row [n], in O(n · d): x̂_i · mean_u x̂_u.

    Zero rows have similarity 0 to everything (and count in the mean as 0).
    """
    n, d = embeddings.shape
    total = np.zeros(d, dtype=np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        total += unit_rows(as_float32(embeddings[start : start + _BLOCK_ROWS])).sum(
            axis=0, dtype=np.float64
        )
    centre = (total / n).astype(np.float32)
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        out[start : start + _BLOCK_ROWS] = (
            unit_rows(as_float32(embeddings[start : start + _BLOCK_ROWS])) @ centre
        )
    return out


def information_density_scores(base: FloatArray, embeddings: RealArray, beta: float) -> FloatArray:
    """base_i × max(0, mean cosine similarity of x_i to the pool)^β (Settles & Craven 2008).

    base [n] must be >= 0 (an uncertainty); embeddings [n, d]. The mean runs
    over the whole pool, the item itself included, as in the paper; a negative
    mean similarity (an item pointing away from the pool) counts as 0.
    """
    density = np.clip(mean_cosine_similarity(embeddings), 0.0, 1.0)  # float32 can pass 1
    with np.errstate(divide="ignore"):
        weight = density**beta if beta != 0 else np.ones_like(density)
    scores: FloatArray = np.maximum(base, 0.0) * weight
    scores[scores == 0] = 0.0  # no −0
    return scores


def ranked_batch_select(
    uncertainty: FloatArray,
    embeddings: RealArray,
    labeled: RealArray | None,
    candidates: IntArray,
    k: int,
    *,
    metric: str = "euclidean",
    costs: FloatArray | None = None,
    budget: float | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """Ranked batch-mode sampling (Cardoso et al. 2017), as modAL's ranked_batch.

    At each pick: score_i = α (1 − s_i) + (1 − α) u_i, s_i = 1 / (1 + min
    distance from x_i to labeled ∪ picked), α = |unlabeled left| / (|unlabeled
    left| + |labeled ∪ picked|); take the argmax (ties: lower index). u [n] is
    the base uncertainty. Without labeled items the first pick is the item
    nearest the candidates' mean (the minimiser of the mean squared distance;
    modAL takes the minimiser of the mean distance, an O(n²) pass), scored 1
    (α = 1, nothing to be similar to). Distances are euclidean, or cosine
    (1 − cos); one [n, d]·[d] pass per pick.
    """
    x = candidate_rows(embeddings, candidates)
    centres = np.empty((0, x.shape[1]), dtype=np.float32)
    if labeled is not None and labeled.shape[0] > 0:
        centres = as_float32(labeled)
    if metric == "cosine":
        x, centres = unit_rows(x), unit_rows(centres)
    x_norms = squared_norms(x)
    min_d2 = min_squared_distances(x, x_norms, centres).astype(np.float64)
    u = uncertainty[candidates].astype(np.float64)
    alive = np.ones(x.shape[0], dtype=bool)
    spend = Budget(None if costs is None else costs[candidates], budget)
    labeled_count = centres.shape[0]
    picks: list[int] = []
    scores: list[float] = []
    while len(picks) < k:
        stop()
        spend.narrow(alive)
        left = int(alive.sum())
        if left == 0:
            break
        if labeled_count + len(picks) == 0:
            mean = x[alive].mean(axis=0, dtype=np.float64).astype(np.float32)
            d2 = x_norms - 2.0 * (x @ mean)  # + ‖mean‖², the same for all
            best = int(np.argmin(np.where(alive, d2, np.inf)))
            score = 1.0
        else:
            alpha = left / (left + labeled_count + len(picks))
            distance = np.sqrt(min_d2) if metric == "euclidean" else min_d2 / 2.0
            similarity = 1.0 / (1.0 + distance)
            ranked = alpha * (1.0 - similarity) + (1.0 - alpha) * u
            ranked[~alive] = -np.inf
            best = int(np.argmax(ranked))
            score = float(ranked[best])
        picks.append(best)
        scores.append(score)
        alive[best] = False
        spend.take(best)
        np.minimum(min_d2, squared_distances_to(x, x_norms, best), out=min_d2)
    return candidates[np.asarray(picks, dtype=np.int64)], np.asarray(scores, dtype=np.float64)


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def badge_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    return badge_select(
        needed(pool.probabilities, "probabilities"),
        needed(pool.embeddings, "embeddings"),
        task.candidates,
        task.k,
        np.random.default_rng(task.seed),
        costs=pool.costs,
        budget=task.budget,
        weights=pool.item_weights,
        stop=task.stop,
    )


def badge_represented_adapter(
    pool: Pool, task: Task, indices: IntArray, params: Params
) -> FloatArray | None:
    """With report_weights: what each pick stands for among the request's candidates (all
    of them, whatever a pre-filter narrowed the picks to), by pool.item_weights."""
    if not params["report_weights"]:
        return None
    return badge_represented(
        needed(pool.probabilities, "probabilities"),
        needed(pool.embeddings, "embeddings"),
        task.candidates,
        indices,
        pool.item_weights,
        task.stop,
    )


def cluster_margin_candidates(pool: Pool, task: Task, params: Params) -> IntArray:
    """The k_m = max(k, ⌈margin_multiple · k⌉) lowest-margin candidates, capped."""
    probabilities = needed(pool.probabilities, "probabilities")
    cap = CLUSTER_MARGIN_MAX_KMEANS_ITEMS
    if task.k > cap:
        raise InvalidArgument(
            "k",
            f"must be at most {cap} for cluster_margin, which clusters at most {cap} "
            f"items; got {task.k}",
        )
    size = min(max(task.k, math.ceil(float(params["margin_multiple"]) * task.k)), cap)
    return prefilter.least_sure(probabilities, task.candidates, size)


def cluster_margin_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    margins = np.zeros(pool.n)
    probabilities = needed(pool.probabilities, "probabilities")
    margins[task.candidates] = prefilter.margin_scores_of(probabilities, task.candidates)
    clusters = int(params["clusters"]) or task.k
    return cluster_margin_select(
        margins,
        needed(pool.embeddings, "embeddings"),
        task.candidates,
        task.k,
        clusters,
        costs=pool.costs,
        budget=task.budget,
        seed=task.seed,
    )


def information_density_adapter(base_scores: BaseScores) -> PoolScore:
    """information_density over the row-wise base the registry's base_scores computes."""

    def score(pool: Pool, task: Task, params: Params) -> FloatArray:
        base = shifted(base_scores, pool, str(params["base"]), never_stop)
        embeddings = needed(pool.embeddings, "embeddings")
        return information_density_scores(base, embeddings, float(params["beta"]))

    return score


def ranked_batch_adapter(base_scores: BaseScores) -> BatchSelect:
    """ranked_batch over the row-wise base the registry's base_scores computes."""

    def select(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
        return ranked_batch_select(
            shifted(base_scores, pool, str(params["base"]), never_stop),
            needed(pool.embeddings, "embeddings"),
            pool.labeled_embeddings,
            task.candidates,
            task.k,
            metric=str(params["metric"]),
            costs=pool.costs,
            budget=task.budget,
            stop=task.stop,
        )

    return select
