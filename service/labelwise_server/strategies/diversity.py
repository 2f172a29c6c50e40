"""Diversity strategies on embeddings X [n, d] (and labeled embeddings L [l, d]).

Every batch function returns (indices in pick order, score at pick time),
picks only among the candidates, and stops early when nothing that is left
fits the budget. The work is in float32 whatever the embeddings came as.
"""

import numpy as np
import numpy.typing as npt

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
    min_squared_distances_scaled,
    pairwise_squared_distances,
    squared_distances_to,
    squared_norms,
    unit_rows,
)
from labelwise_server.strategies.greedy import Budget

Float32Array = npt.NDArray[np.float32]

# The min-distance of an item that may no longer be picked (picked, or over budget).
_GONE = np.float32(-1.0)


def as_float32(array: RealArray) -> Float32Array:
    """The array in float32, C-ordered (no copy when it already is)."""
    return np.ascontiguousarray(array, dtype=np.float32)


def candidate_rows(array: RealArray, candidates: IntArray) -> Float32Array:
    """The candidates' rows in float32: no copy when they are every row, already float32."""
    if candidates.shape[0] == array.shape[0]:  # candidates are ascending and distinct
        return as_float32(array)
    return as_float32(array[candidates])


def k_center_greedy(
    embeddings: RealArray,
    labeled: RealArray | None,
    candidates: IntArray,
    k: int,
    seed: int,
    *,
    metric: str = "euclidean",
    stop: StopCheck = never_stop,
    costs: FloatArray | None = None,
    budget: float | None = None,
) -> tuple[IntArray, FloatArray]:
    """Core-set by k-center greedy (Sener & Savarese 2018).

    Repeats: pick argmax_i min_{c ∈ C} dist(x_i, c) among the candidates, C =
    labeled ∪ picked so far; the score is that distance at pick time
    (euclidean, or cosine distance 1 − cos). Ties go to the lower pool index.
    With no labeled items (L absent or l = 0) the first pick is a uniform draw
    among the candidates by the seed, scored with the distance the next pick
    will have (the covering radius it leaves). The min-distance vector is
    kept exact only where the argmax needs it (LazyCover): the same picks as
    one [n, d]·[d] pass per pick, at a fraction of the work. A pick whose cost
    no longer fits the budget is skipped and the walk goes on.
    """
    if candidates.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    x = candidate_rows(embeddings, candidates)
    if metric == "cosine":
        x = unit_rows(x)
    centres = np.empty((0, x.shape[1]), dtype=np.float32)
    if labeled is not None and labeled.shape[0] > 0:
        centres = as_float32(labeled)
        if metric == "cosine":
            centres = unit_rows(centres)
    x_norms = squared_norms(x)
    min_d2 = min_squared_distances(x, x_norms, centres)
    spend = Budget(None if costs is None else costs[candidates], budget)

    picks: list[int] = []
    scores: list[float] = []
    first_unscored = False
    if centres.shape[0] == 0 and x.shape[0] > 0:
        # The first draw that fits the budget.
        first = spend.first_fitting(np.random.default_rng(seed).permutation(x.shape[0]))
        if first is None:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        min_d2 = squared_distances_to(x, x_norms, first)
        picks.append(first)
        scores.append(0.0)
        first_unscored = True
        spend.take(first)
        min_d2[first] = _GONE

    cover = LazyCover(x, x_norms, min_d2, picks, centres)
    while len(picks) < k:
        stop()
        best = cover.argmax()
        if min_d2[best] < 0:
            break  # every candidate is picked or over budget
        if not spend.fits(best):
            spend.drop(min_d2, _GONE)
            cover.refresh_bounds()
            continue
        picks.append(best)
        scores.append(float(np.sqrt(np.float64(min_d2[best]))))
        spend.take(best)
        cover.remove(best)  # and it is a centre from now on: picks is the cover's list

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


# Rows per block of the lazy cover: a block's rows (256 KiB at d = 128) stay in cache while
# its pending centres are applied.
_LAZY_BLOCK_ROWS = 512
# Rows whose float32 min distance is within this (relative to the squared norms involved)
# of the best are compared again in float64.
_TIE_TOLERANCE = 2e-6
# Pending centres applied per matrix product, so a block's [rows, centres] stays small.
_LAZY_CENTRES = 1024


class LazyCover:
    """min_c ‖x_i − c‖² over a growing list of centres, brought up to date only where needed.

    Rows are split into blocks; each block keeps an upper bound of its rows'
    min distance (distances only shrink as centres are added) and how many
    centres it has seen. argmax() brings up to date only the block with the
    largest bound, until that block is already current: then no other row
    can beat its best (a lower block never ties it, a higher one loses the
    tie), so the answer is the exact argmax, ties to the lower index, as a
    full pass per centre would give. Pending centres are applied as one
    [rows, d]·[d, p] product (compute-bound) rather than p passes over all n
    rows (memory-bound); blocks far from the frontier are rarely touched.
    Rows with min_d2 < 0 are gone and stay gone.
    """

    def __init__(
        self,
        x: Float32Array,
        x_norms: Float32Array,
        min_d2: Float32Array,
        centres: list[int],
        labeled: Float32Array,
    ) -> None:
        self.x, self.x_norms, self.min_d2, self.centres = x, x_norms, min_d2, centres
        self.labeled = labeled  # [l, d]: centres from the start, baked into min_d2
        self.largest_norm = float(x_norms.max()) if x_norms.size else 0.0
        n = x.shape[0]
        self.starts = np.arange(0, max(n, 1), _LAZY_BLOCK_ROWS)
        self.applied = np.full(self.starts.shape[0], len(centres), dtype=np.int64)
        self.bounds = np.full(self.starts.shape[0], -np.inf, dtype=np.float32)
        self.refresh_bounds()
        self.scaled = np.empty((64, x.shape[1]), dtype=np.float32)  # −2·c per centre
        self.centre_norms = np.empty(64, dtype=np.float32)
        # Every centre in float64 (labeled first), for the near-tie check.
        self.exact = np.empty((labeled.shape[0] + 64, x.shape[1]), dtype=np.float64)
        self.exact[: labeled.shape[0]] = labeled
        self.filled = 0

    def refresh_bounds(self) -> None:
        """Recompute every block's bound (after rows were marked gone from outside)."""
        if self.x.shape[0]:
            self.bounds = np.maximum.reduceat(self.min_d2, self.starts)

    def argmax(self) -> int:
        """The row of the largest min distance (the lowest such row).

        float32 distances can misorder two rows whose distances are within
        rounding of each other; rows that close to the best are compared
        again in float64 against every centre, so the pick is the one exact
        arithmetic gives (as a float64 reference picks).
        """
        if self.x.shape[0] == 0:
            return 0
        while True:
            block = int(np.argmax(self.bounds))
            if self.applied[block] == len(self.centres):
                break
            self._update(block)
        start = int(self.starts[block])
        best = start + int(np.argmax(self.min_d2[start : start + _LAZY_BLOCK_ROWS]))
        value = float(self.min_d2[best])
        if value < 0:
            return best
        floor = value - _TIE_TOLERANCE * (value + 2.0 * self.largest_norm)
        # Every block that may hold a row that close is brought up to date (none exceeds value).
        while True:
            stale = np.flatnonzero((self.bounds >= floor) & (self.applied < len(self.centres)))
            if stale.size == 0:
                break
            for other in stale.tolist():
                self._update(other)
        near: list[int] = []
        for other in np.flatnonzero(self.bounds >= floor).tolist():
            first = other * _LAZY_BLOCK_ROWS
            rows = self.min_d2[first : first + _LAZY_BLOCK_ROWS]
            near += (first + np.flatnonzero(rows >= floor)).tolist()
        if len(near) == 1:
            return best
        self._fill()
        centres = self.exact[: self.labeled.shape[0] + len(self.centres)]
        points = self.x[near].astype(np.float64)  # [r, d]
        exact = [float(((centres - point) ** 2).sum(axis=1).min()) for point in points]
        return near[int(np.argmax(exact))]  # near is ascending: ties to the lower row

    def remove(self, row: int) -> None:
        """Mark a row gone (its block is current: it was just the argmax)."""
        self.min_d2[row] = _GONE
        block = row // _LAZY_BLOCK_ROWS
        start = block * _LAZY_BLOCK_ROWS
        self.bounds[block] = self.min_d2[start : start + _LAZY_BLOCK_ROWS].max()

    def _update(self, block: int) -> None:
        self._fill()
        start = int(self.starts[block])
        stop = start + _LAZY_BLOCK_ROWS
        rows = self.x[start:stop]
        current = self.min_d2[start:stop]
        for first in range(int(self.applied[block]), len(self.centres), _LAZY_CENTRES):
            last = min(first + _LAZY_CENTRES, len(self.centres))
            nearest = min_squared_distances_scaled(
                rows,
                self.x_norms[start:stop],
                self.scaled[first:last],
                self.centre_norms[first:last],
            )
            np.minimum(current, nearest, out=current)  # gone rows (< 0) stay gone
        self.applied[block] = len(self.centres)
        self.bounds[block] = current.max()

    def _fill(self) -> None:
        """−2·c, ‖c‖² and c in float64 of every centre added since the last fill."""
        count = len(self.centres)
        if count > self.scaled.shape[0]:
            grown = max(count, 2 * self.scaled.shape[0])
            self.scaled = np.resize(self.scaled, (grown, self.x.shape[1]))
            self.centre_norms = np.resize(self.centre_norms, grown)
            self.exact = np.resize(self.exact, (self.labeled.shape[0] + grown, self.x.shape[1]))
        if self.filled < count:
            new = self.centres[self.filled : count]
            self.scaled[self.filled : count] = self.x[new] * np.float32(-2.0)
            self.centre_norms[self.filled : count] = self.x_norms[new]
            offset = self.labeled.shape[0]
            self.exact[offset + self.filled : offset + count] = self.x[new]
            self.filled = count


# k-means runs as full Lloyd (sklearn KMeans) while rows × clusters stays below this;
# above, MiniBatchKMeans (batches of _MINIBATCH rows), so the clustering stays O(n · clusters).
_FULL_KMEANS_WORK = 1 << 22
_MINIBATCH = 4096
# Pools up to this many bytes of float32 are clustered in float64 (a copy twice the size).
_FLOAT64_KMEANS_BYTES = 1 << 26
# Typicality looks at most this many members of a cluster (a seeded sample of larger
# clusters), so each cluster costs O(sample² · d) whatever its size.
TYPICALITY_SAMPLE = 1000
_TYPICALITY_EPS = 1e-7


def kmeans_labels(x: Float32Array, clusters: int, seed: int) -> IntArray:
    """k-means cluster labels [n] of the rows of x, seeded (KMeans, or MiniBatchKMeans if large)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    state = (seed ^ (seed >> 32)) & 0xFFFFFFFF
    if x.nbytes <= _FLOAT64_KMEANS_BYTES:
        # scikit-learn's k-means++ seeding widens float32 to float64 chunk by chunk at every
        # candidate centre, which is several times slower than one float64 copy up front.
        x = x.astype(np.float64)
    if x.shape[0] * clusters <= _FULL_KMEANS_WORK:
        model = KMeans(n_clusters=clusters, random_state=state, n_init="auto")
    else:
        model = MiniBatchKMeans(
            n_clusters=clusters, random_state=state, n_init="auto", batch_size=_MINIBATCH
        )
    labels: IntArray = model.fit_predict(x).astype(np.int64)
    return labels


def typicality(x: Float32Array, members: IntArray, neighbours: int) -> FloatArray:
    """1 / (mean distance to the K nearest other members + 1e-7) of each member [r].

    members index rows of x [n, d]; K = min(neighbours, r − 1); a lone member has
    typicality 1. Distances in float64. Hacohen et al. (2022).
    """
    r = members.shape[0]
    if r == 1:
        return np.ones(1)
    d2 = pairwise_squared_distances(x[members].astype(np.float64))  # [r, r]
    np.fill_diagonal(d2, np.inf)  # not its own neighbour
    kk = min(neighbours, r - 1)
    nearest = np.partition(d2, kk - 1, axis=1)[:, :kk]
    mean: FloatArray = np.sqrt(nearest).mean(axis=1)
    return 1.0 / (mean + _TYPICALITY_EPS)


def typiclust_select(
    embeddings: RealArray,
    labeled: RealArray | None,
    candidates: IntArray,
    k: int,
    seed: int,
    *,
    neighbours: int = 20,
    max_clusters: int = 500,
    costs: FloatArray | None = None,
    budget: float | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """TypiClust (Hacohen et al. 2022): the most typical item of the largest uncovered clusters.

    The candidates' embeddings and the labeled ones, L first, are clustered by
    k-means (seeded) into min(l + k, max_clusters, l + r) clusters. Each pick
    takes the cluster with the fewest labeled-or-picked items, then the most
    items (then the lower cluster label), and from it the candidate of highest
    typicality = 1 / mean euclidean distance to its K = `neighbours` nearest
    other members of the cluster (a seeded sample of TYPICALITY_SAMPLE members
    in larger clusters). With l + k clusters every pick comes from a cluster
    no labeled item covers, as in the paper; past max_clusters clusters give
    several picks each. Score = the typicality at pick time. A candidate over
    the remaining budget is skipped; a cluster with nothing left is dropped.
    """
    x = candidate_rows(embeddings, candidates)
    r = x.shape[0]
    labeled_x = np.empty((0, x.shape[1]), np.float32)
    if labeled is not None and labeled.shape[0] > 0:
        labeled_x = as_float32(labeled)
    count = labeled_x.shape[0]
    clusters = max(1, min(count + k, max_clusters, count + r))
    everything = np.concatenate([labeled_x, x]) if count else x
    labels = kmeans_labels(everything, clusters, seed)  # one scikit-learn call: not stoppable
    stop()
    covered = np.bincount(labels[:count], minlength=clusters)
    pool_labels = labels[count:]
    sizes = np.bincount(pool_labels, minlength=clusters)
    order = np.argsort(pool_labels, kind="stable")  # positions grouped by cluster
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rng = np.random.default_rng(seed)
    spend = Budget(None if costs is None else costs[candidates], budget)
    # Per cluster, lazily: its candidate positions and their typicality, best first.
    ranked: dict[int, tuple[list[int], list[float]]] = {}
    open_clusters = sizes > 0
    picks: list[int] = []
    scores: list[float] = []
    while len(picks) < k and open_clusters.any():
        stop()
        keys = np.lexsort((np.arange(clusters), -sizes, covered))
        cluster = int(next(c for c in keys.tolist() if open_clusters[c]))
        if cluster not in ranked:
            members = order[starts[cluster] : starts[cluster + 1]]
            if members.shape[0] > TYPICALITY_SAMPLE:
                members = np.sort(rng.choice(members, TYPICALITY_SAMPLE, replace=False))
            typical = typicality(x, members, neighbours)
            best_first = np.lexsort((members, -typical))
            ranked[cluster] = (members[best_first].tolist(), typical[best_first].tolist())
        positions, values = ranked[cluster]
        while positions:  # what no longer fits is dropped from the cluster for good
            position, value = positions.pop(0), values.pop(0)
            if spend.fits(position):
                picks.append(position)
                scores.append(value)
                spend.take(position)
                covered[cluster] += 1
                break
        if not positions:
            open_clusters[cluster] = False
    return candidates[np.asarray(picks, dtype=np.int64)], np.asarray(scores, dtype=np.float64)


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def core_set_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    return k_center_greedy(
        needed(pool.embeddings, "embeddings"),
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        task.seed,
        metric=str(params["metric"]),
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )


def typiclust_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    return typiclust_select(
        needed(pool.embeddings, "embeddings"),
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        task.seed,
        neighbours=int(params["neighbours"]),
        max_clusters=int(params["max_clusters"]),
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )
