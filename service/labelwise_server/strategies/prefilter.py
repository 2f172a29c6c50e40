"""The opt-in candidate pre-filter of the batch strategies, shared by all of them.

Exact batch strategies (k-center, k-means++ seeding, clustering) cost at least
O(n · k · d), and clustering more; on pools too large for that, a request can
narrow the candidates first: to the `prefilter_size` least sure items
(smallest top-2 margin), to a seeded uniform subsample, or to the items nearest the
labeled set (SEALS, Coleman et al. 2022: a FAISS index, strategies/index.py). The diversity step
then sees only those, and the response reports how many it chose among
(StrategyResult.candidates_considered).
"""

import numpy as np

from labelwise_server.strategies import index, uncertainty
from labelwise_server.strategies._types import (
    FloatArray,
    Input,
    IntArray,
    Params,
    Pool,
    RealArray,
    Task,
    needed,
)
from labelwise_server.strategies.params import Interval, Options, Param
from labelwise_server.strategies.ranking import top_k

# Rows of probabilities per block when margins are computed for the filter.
_BLOCK_ROWS = 1 << 16
# prefilter_size 0 keeps max(DEFAULT_SIZE, SIZE_PER_K · k) candidates.
DEFAULT_SIZE = 10_000
SIZE_PER_K = 4
# Spawn key that keeps the filter's random stream apart from the strategy's own.
_STREAM = 0x5052

PARAMS: dict[str, Param] = {
    "prefilter": Param(
        Options(str, ("none", "uncertainty", "random", "neighbours")),
        default="none",
        description="Narrow the candidates before the diversity step, for pools too large "
        "for the exact method: 'none'; 'uncertainty', the prefilter_size items with the "
        "smallest top-2 margin (needs probabilities or logits); 'random', a uniform sample "
        "of prefilter_size items by the request's seed; 'neighbours', the prefilter_size items "
        "nearest the labeled set (each labeled item's nearest, an approximate FAISS index "
        "past 131,072 candidates; needs labeled_embeddings). SEALS, Coleman et al. (2022).",
    ),
    "prefilter_size": Param(
        Interval(int, 0, None),
        default=0,
        description="How many candidates the pre-filter keeps: 0 (the default) keeps "
        f"max({DEFAULT_SIZE:,}, {SIZE_PER_K}·k), so the diversity step always has several "
        "candidates per pick; any other value is raised to at least k. Ignored when "
        "prefilter is 'none'.",
    ),
}


def needs(params: Params) -> frozenset[Input]:
    """The uncertainty filter reads the model's probabilities; the neighbours filter the
    embeddings of both sets."""
    if params["prefilter"] == "uncertainty":
        return frozenset({Input.PROBABILITIES})
    if params["prefilter"] == "neighbours":
        return frozenset({Input.EMBEDDINGS, Input.LABELED_EMBEDDINGS})
    return frozenset()


def margin_scores_of(probabilities: RealArray, rows: IntArray) -> FloatArray:
    """p(2) − p(1) of the given rows [r], computed in blocks so memory stays O(block · c)."""
    out = np.empty(rows.shape[0], dtype=np.float64)
    for start in range(0, rows.shape[0], _BLOCK_ROWS):
        block = probabilities[rows[start : start + _BLOCK_ROWS]]
        out[start : start + _BLOCK_ROWS] = uncertainty.margin_from_top2(uncertainty.top_two(block))
    return out


def least_sure(probabilities: RealArray, candidates: IntArray, size: int) -> IntArray:
    """The size candidates with the smallest top-2 margin (ties: lower index), ascending."""
    if size >= candidates.shape[0]:
        return candidates
    chosen, _ = top_k(margin_scores_of(probabilities, candidates), size, candidates)
    return np.sort(chosen)


def uniform_sample(candidates: IntArray, size: int, seed: int) -> IntArray:
    """A uniform sample of size candidates without replacement, by the seed, ascending."""
    if size >= candidates.shape[0]:
        return candidates
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM,)))
    return np.sort(rng.choice(candidates, size=size, replace=False)).astype(np.int64)


def size_for(prefilter_size: int, k: int) -> int:
    """How many candidates a pre-filter keeps for this prefilter_size (0: the default) and k."""
    if prefilter_size == 0:
        return max(DEFAULT_SIZE, SIZE_PER_K * k)
    return max(prefilter_size, k)


def narrow(pool: Pool, task: Task, params: Params) -> IntArray:
    """The candidates a batch strategy chooses among, after the requested pre-filter."""
    method = params["prefilter"]
    size = size_for(int(params["prefilter_size"]), task.k)
    if method == "uncertainty":
        probabilities = needed(pool.probabilities, "probabilities")  # needs() asks for it
        return least_sure(probabilities, task.candidates, size)
    if method == "random":
        return uniform_sample(task.candidates, size, task.seed)
    if method == "neighbours":
        labeled = needed(pool.labeled_embeddings, "labeled_embeddings")
        embeddings = needed(pool.embeddings, "embeddings")
        return index.nearest_to_labeled(embeddings, task.candidates, labeled, size, task.seed)
    return task.candidates
