"""The shared candidate pre-filter of the batch strategies."""

import numpy as np
import pytest

from labelwise_server.strategies import STRATEGIES, Pool, prefilter
from labelwise_server.strategies._types import Task
from tests.strategies.batch_support import BATCH_NAMES, batch_pool, run_one

FILTERED = [name for name in BATCH_NAMES if "prefilter" in STRATEGIES[name].params]


def test_every_generic_batch_strategy_offers_the_prefilter() -> None:
    # cluster_margin filters by margin itself (its k_m); the others take the shared one.
    assert set(FILTERED) >= {"core_set", "typiclust", "badge", "ranked_batch"}
    for name in FILTERED:
        assert STRATEGIES[name].narrow is prefilter.narrow


def test_uncertainty_keeps_the_smallest_margins_lower_index_first_on_ties() -> None:
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5], [0.7, 0.3], [0.55, 0.45]])
    kept = prefilter.least_sure(p, np.array([0, 1, 2, 4, 5]), 3)  # 3 is excluded
    assert kept.tolist() == [0, 2, 5]
    assert prefilter.least_sure(p, np.arange(6), 10).tolist() == list(range(6))


def test_random_is_a_seeded_uniform_subset_of_the_candidates() -> None:
    candidates = np.arange(0, 1000, 3)
    first = prefilter.uniform_sample(candidates, 50, 7)
    assert first.tolist() == sorted(set(first.tolist()))
    assert set(first.tolist()) <= set(candidates.tolist()) and len(first) == 50
    np.testing.assert_array_equal(first, prefilter.uniform_sample(candidates, 50, 7))
    assert first.tolist() != prefilter.uniform_sample(candidates, 50, 8).tolist()
    # Uniform: every candidate is about equally likely over seeds.
    hits = np.zeros(1000)
    for seed in range(300):
        hits[prefilter.uniform_sample(candidates, 50, seed)] += 1
    rate = hits[candidates] / 300
    assert abs(rate.mean() - 50 / len(candidates)) < 1e-12
    assert rate.std() < 0.05


@pytest.mark.parametrize("name", FILTERED)
@pytest.mark.parametrize("method", ["uncertainty", "random"])
def test_the_batch_step_sees_only_the_filtered_candidates(name: str, method: str) -> None:
    pool = batch_pool(np.random.default_rng(1), n=300, labeled=2)
    exclude = np.arange(0, 300, 10)
    params = {"prefilter": method, "prefilter_size": 40}
    result = run_one(name, pool, 8, params, seed=5, exclude=exclude)  # type: ignore[arg-type]
    assert result.candidates_considered == 40
    keep = np.setdiff1d(np.arange(300), exclude)
    if method == "uncertainty":
        assert pool.probabilities is not None
        kept = prefilter.least_sure(pool.probabilities, keep, 40)
    else:
        kept = prefilter.uniform_sample(keep, 40, 5)
    assert set(result.indices.tolist()) <= set(kept.tolist())
    # The same as the strategy run on those candidates alone.
    alone = run_one(name, pool, 8, seed=5, exclude=np.setdiff1d(np.arange(300), kept))
    np.testing.assert_array_equal(result.indices, alone.indices)
    np.testing.assert_array_equal(result.scores, alone.scores)


def test_the_filter_keeps_at_least_k_and_none_means_every_candidate() -> None:
    pool = batch_pool(np.random.default_rng(2), n=50)
    small = run_one("core_set", pool, 12, {"prefilter": "random", "prefilter_size": 3})
    assert small.candidates_considered == 12 and len(small.indices) == 12
    whole = run_one("core_set", pool, 12, exclude=np.array([1, 2]))
    assert whole.candidates_considered == 48


def test_uncertainty_filter_needs_probabilities() -> None:
    params = {"prefilter": "uncertainty", "prefilter_size": 5}
    assert STRATEGIES["core_set"].inputs({"metric": "euclidean", **params}) >= {
        prefilter.Input.PROBABILITIES
    }
    assert prefilter.Input.PROBABILITIES not in STRATEGIES["core_set"].inputs(
        {"metric": "euclidean", "prefilter": "none", "prefilter_size": 5}
    )
    pool = Pool(n=10, embeddings=np.eye(10))
    assert run_one("core_set", pool, 3).candidates_considered == 10


def test_the_default_size_grows_with_k() -> None:
    # 0 keeps max(DEFAULT_SIZE, SIZE_PER_K · k); any other size is at least k.
    assert prefilter.size_for(0, 10) == prefilter.DEFAULT_SIZE
    big = prefilter.DEFAULT_SIZE  # past DEFAULT_SIZE / SIZE_PER_K the k term wins
    assert prefilter.size_for(0, big) == prefilter.SIZE_PER_K * big
    assert prefilter.size_for(7, 12) == 12
    assert prefilter.size_for(30, 12) == 30
    pool = Pool(n=50_000, embeddings=np.zeros((50_000, 2), np.float32))
    task_k = 3_000  # the default keeps 4 · 3,000 = 12,000 of the 50,000
    kept = prefilter.narrow(
        pool,
        Task(task_k, np.arange(50_000, dtype=np.int64), seed=1),
        {"prefilter": "random", "prefilter_size": 0},
    )
    assert kept.shape[0] == prefilter.SIZE_PER_K * task_k
