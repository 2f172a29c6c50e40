"""ProbCover: cold-start selection by covering the embedding space with δ-balls.

Yehuda, Dekel, Hacohen & Weinshall (2022), "Active Learning Through a Covering Lens". For
the first rounds, before a model is worth asking: on the graph whose vertices are the pool
and the labeled items and whose edges join points at most δ apart, repeatedly pick the
candidate whose ball covers the most points no labeled item, excluded item (out for
labeling) or earlier pick covers; score = that count at pick time. Ties go to the lower
pool index (scikit-activeml's ProbCover draws among them at random).

δ: the request's `delta`, or (delta = 0) the paper's purity rule: k-means into `clusters`
clusters (the expected number of classes); a point's ball is pure while it holds no point
of another cluster, so it is pure for every δ below m_i, the distance from point i to the
nearest point of another cluster. δ is the largest m_i at which at least `alpha` of the
balls are still pure.
"""

import math

import numpy as np
import numpy.typing as npt

from labelwise_server.errors import InvalidArgument
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
from labelwise_server.strategies.distances import row_blocks, squared_distances, squared_norms
from labelwise_server.strategies.greedy import Budget

# The graph is held as neighbour lists; beyond this many edges (about 160 MB) the request is
# refused: a smaller delta, or fewer items, keeps it in bounds.
MAX_EDGES = 20_000_000
# Pool plus labeled items at most this many: the graph and the purity rule are O(N²) work.
MAX_POINTS = 50_000


def _points(embeddings: RealArray, labeled: RealArray | None) -> npt.NDArray[np.float64]:
    points = (
        embeddings
        if labeled is None or labeled.shape[0] == 0
        else np.concatenate([embeddings, labeled.astype(embeddings.dtype)])
    )
    return np.asarray(points, dtype=np.float64)


def _check_size(points: int) -> None:
    if points > MAX_POINTS:
        raise InvalidArgument(
            "embeddings.shape",
            f"must hold at most {MAX_POINTS} pool and labeled items together for probcover "
            f"(its graph is quadratic in them); got {points}",
        )


def neighbour_lists(
    points: npt.NDArray[np.float64], delta: float, stop: StopCheck = never_stop
) -> tuple[IntArray, IntArray]:
    """The δ-ball graph as CSR (indptr [N + 1], indices): j is a neighbour of i when
    ‖x_i − x_j‖ <= δ (i itself included)."""
    n = points.shape[0]
    norms = squared_norms(points)
    limit = delta * delta
    rows: list[IntArray] = []
    counts = np.zeros(n, dtype=np.int64)
    edges = 0
    for start, end in row_blocks(n, n):
        stop()
        near = squared_distances(points[start:end], norms[start:end], points, norms) <= limit
        near[np.arange(end - start), np.arange(start, end)] = True  # rounding aside
        counts[start:end] = near.sum(axis=1)
        edges += int(counts[start:end].sum())
        if edges > MAX_EDGES:
            raise InvalidArgument(
                "embeddings",
                f"give probcover a δ-ball graph of at most {MAX_EDGES} edges; delta = "
                f"{delta:.6g} joins more: lower delta or send fewer items",
            )
        rows.append(np.nonzero(near)[1].astype(np.int64))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.concatenate(rows) if rows else np.empty(0, np.int64)


def purity_delta(
    points: npt.NDArray[np.float64], clusters: IntArray, alpha: float, stop: StopCheck = never_stop
) -> float:
    """The largest δ among the m_i (distance from point i to the nearest point of another
    cluster) whose balls are pure for at least alpha of the points: purity(δ) = mean(m > δ),
    so δ = the ⌈alpha·N⌉-th largest m_i, nudged just below it. 0 when every point is alone."""
    n = points.shape[0]
    norms = squared_norms(points)
    nearest_other = np.full(n, np.inf)
    for start, end in row_blocks(n, n):
        stop()
        d2 = squared_distances(points[start:end], norms[start:end], points, norms)
        d2[clusters[start:end, None] == clusters[None, :]] = np.inf
        nearest_other[start:end] = d2.min(axis=1)
    m = np.sqrt(np.sort(nearest_other))
    needed_pure = math.ceil(alpha * n)
    if needed_pure == 0 or not np.isfinite(m[n - needed_pure]):
        return float(m[np.isfinite(m)].max()) if np.isfinite(m).any() else 0.0
    # mean(m > δ) >= alpha holds for δ < m[n - needed_pure].
    return float(np.nextafter(m[n - needed_pure], 0.0))


def probcover_select(
    embeddings: RealArray,
    labeled: RealArray | None,
    candidates: IntArray,
    k: int,
    delta: float,
    costs: FloatArray | None = None,
    budget: float | None = None,
    stop: StopCheck = never_stop,
) -> tuple[IntArray, FloatArray]:
    """k picks (pool indices, in pick order) and the points each newly covered; pool items
    that are not candidates, and labeled items, cover from the start."""
    n = embeddings.shape[0]
    points = _points(embeddings, labeled)
    _check_size(points.shape[0])
    indptr, indices = neighbour_lists(points, delta, stop)
    total = points.shape[0]
    is_candidate = np.zeros(total, dtype=bool)
    is_candidate[candidates] = True
    covered = np.zeros(total, dtype=bool)
    for u in np.flatnonzero(~is_candidate).tolist():
        covered[indices[indptr[u] : indptr[u + 1]]] = True
    # degree[i]: the uncovered points in i's ball.
    uncovered = (~covered[indices]).astype(np.int64)
    degree = np.add.reduceat(uncovered, indptr[:-1]) if indices.shape[0] else np.zeros(total)
    degree = degree.astype(np.float64)
    alive = is_candidate[:n].copy()
    spend = Budget(costs, budget)
    picks: list[int] = []
    scores: list[float] = []
    for _ in range(k):
        stop()
        spend.narrow(alive)
        if not alive.any():
            break
        i = int(np.argmax(np.where(alive, degree[:n], -1.0)))
        picks.append(i)
        scores.append(float(degree[i]))
        alive[i] = False
        spend.take(i)
        ball = indices[indptr[i] : indptr[i + 1]]
        newly = ball[~covered[ball]]
        covered[newly] = True
        if newly.shape[0]:
            lost = np.concatenate([indices[indptr[u] : indptr[u + 1]] for u in newly.tolist()])
            degree -= np.bincount(lost, minlength=total)
    return np.asarray(picks, dtype=np.int64), np.asarray(scores, dtype=np.float64)


def estimate_delta(
    embeddings: RealArray,
    labeled: RealArray | None,
    clusters: int,
    alpha: float,
    seed: int,
    stop: StopCheck = never_stop,
) -> float:
    """δ by the purity rule on k-means clusters of the pool and labeled items."""
    from labelwise_server.strategies.diversity import kmeans_labels

    points = _points(embeddings, labeled)
    _check_size(points.shape[0])
    labels = kmeans_labels(points.astype(np.float32), min(clusters, points.shape[0]), seed)
    return purity_delta(points, labels, alpha, stop)


def probcover_adapter(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray]:
    embeddings = needed(pool.embeddings, "embeddings")
    delta = float(params["delta"])
    if delta == 0.0:
        delta = estimate_delta(
            embeddings,
            pool.labeled_embeddings,
            int(params["clusters"]),
            float(params["alpha"]),
            task.seed,
            task.stop,
        )
    return probcover_select(
        embeddings,
        pool.labeled_embeddings,
        task.candidates,
        task.k,
        delta,
        costs=pool.costs,
        budget=task.budget,
        stop=task.stop,
    )
