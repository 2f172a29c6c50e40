"""Nearest neighbours and k-means for pools too large for the exact batch methods (FAISS).

Two uses, both opt-in or past a size where the exact method cannot run:
- the SEALS candidate pre-filter (Coleman et al. 2022): the pool items nearest the labeled
  set, by an exact scan (FAISS's blocked BLAS search) below EXACT_ROWS candidates or while
  the labeled set is at most sqrt(r) items, by an inverted-file index past that;
- cluster_margin past CLUSTER_MARGIN_MAX_ITEMS margin-filtered items: k-means clusters
  (FAISS) instead of average linkage (Citovsky et al. 2021 cluster once, offline, at scale).
Every call is seeded and single-threaded here (the work process's thread budget is set by
the server), so the same request gives the same result. Douze et al. (2024), the FAISS
library.
"""

import math
from typing import Any

import numpy as np

from labelwise_server.strategies._types import IntArray, RealArray
from labelwise_server.strategies.diversity import as_float32

# Below this many candidates the neighbours are exact (a scan: r · l · d per query).
EXACT_ROWS = 1 << 17
# Candidates per block of the exact scan (at d = 64, 64 MiB of float32 rows).
SCAN_ROWS = 1 << 18
# Inverted lists probed per query, and training rows per list, of the approximate index.
_NPROBE = 16
_TRAIN_PER_LIST = 40
_KMEANS_ITERATIONS = 20
# k-means keeps the best of 3 seeded starts while rows × clusters is at most this, one above.
_KMEANS_RESTART_WORK = 1 << 26


def _faiss() -> Any:
    import faiss

    faiss.omp_set_num_threads(1)  # same bytes whatever the machine: no thread-order effects
    return faiss


def nearest_to_labeled(
    embeddings: RealArray,
    candidates: IntArray,
    labeled: RealArray,
    size: int,
    seed: int,
) -> IntArray:
    """About size candidates nearest the labeled set (ascending pool indices): the union of
    each labeled item's ⌈size / l⌉ nearest candidates (euclidean), then the ones nearest any
    labeled item first if the union has more than size. SEALS (Coleman et al. 2022)."""
    faiss = _faiss()
    r = candidates.shape[0]
    if size >= r:
        return candidates
    queries = np.ascontiguousarray(as_float32(labeled))
    per_item = max(1, min(r, math.ceil(size / max(queries.shape[0], 1))))
    lists = max(1, int(math.sqrt(r)))
    if r <= EXACT_ROWS or queries.shape[0] <= lists:
        # A stateless call builds its index each time: an inverted file costs about
        # r · lists distances to fill, an exact scan l · r, so the scan wins for l <= lists.
        positions, nearest = _scan(faiss, embeddings, candidates, queries, per_item)
    else:
        x = np.ascontiguousarray(as_float32(embeddings[candidates]))
        d = x.shape[1]
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, lists)
        rng = np.random.default_rng(seed)
        train = np.sort(rng.choice(r, size=min(r, lists * _TRAIN_PER_LIST), replace=False))
        index.cp.seed = seed & 0x7FFFFFFF
        index.train(x[train])
        index.nprobe = min(_NPROBE, lists)
        index.add(x)
        del x
        distances, found = index.search(queries, per_item)  # [l, per_item], -1 where short
        valid = found >= 0
        positions, nearest = found[valid], distances[valid]
    order = np.lexsort((positions, nearest))  # nearest first, then lower position
    positions = positions[order]
    _, first = np.unique(positions, return_index=True)
    kept = positions[np.sort(first)][:size]  # each position once, nearest first
    chosen: IntArray = np.sort(candidates[kept]).astype(np.int64)
    return chosen


def _scan(
    faiss: Any, embeddings: RealArray, candidates: IntArray, queries: Any, per_item: int
) -> tuple[IntArray, Any]:
    """Each query's per_item nearest candidates by an exact scan (faiss.knn, FAISS's blocked
    BLAS search, on SCAN_ROWS candidates at a time, with no index and so no copy of the
    pool: a block of float32 embeddings is a view of them). Positions into candidates and
    their squared distances, flattened; per query the nearest per_item of all blocks, ties
    to the lower position."""
    r = candidates.shape[0]
    every = r == embeddings.shape[0]  # candidates are ascending and distinct: every row
    best_d = np.empty((queries.shape[0], 0), dtype=np.float32)
    best_i = np.empty((queries.shape[0], 0), dtype=np.int64)
    for start in range(0, r, SCAN_ROWS):
        end = min(r, start + SCAN_ROWS)
        rows = embeddings[start:end] if every else embeddings[candidates[start:end]]
        block = np.ascontiguousarray(as_float32(rows))
        distances, found = faiss.knn(queries, block, min(per_item, end - start))
        best_d = np.concatenate([best_d, distances], axis=1)
        best_i = np.concatenate([best_i, found.astype(np.int64) + start], axis=1)
        order = np.lexsort((best_i, best_d), axis=1)[:, :per_item]
        best_d = np.take_along_axis(best_d, order, axis=1)
        best_i = np.take_along_axis(best_i, order, axis=1)
    return best_i.ravel(), best_d.ravel()


def kmeans_labels(x: RealArray, clusters: int, seed: int) -> IntArray:
    """k-means cluster labels [n] of the rows of x (FAISS: Lloyd from seeded random
    centroids, 20 iterations, the best of 3 starts while n · clusters <= 2^26, euclidean);
    clusters is cut to n."""
    faiss = _faiss()
    rows = np.ascontiguousarray(as_float32(x))
    n, d = rows.shape
    clusters = max(1, min(clusters, n))
    if clusters == 1:
        return np.zeros(n, dtype=np.int64)
    model = faiss.Kmeans(
        d, clusters, niter=_KMEANS_ITERATIONS, seed=seed & 0x7FFFFFFF, verbose=False,
        nredo=3 if n * clusters <= _KMEANS_RESTART_WORK else 1,
        max_points_per_centroid=256, min_points_per_centroid=1,
    )  # fmt: skip
    model.train(rows)
    _, labels = model.index.search(rows, 1)
    out: IntArray = np.asarray(labels[:, 0], dtype=np.int64)
    return out
