"""strategies/index.py: the SEALS neighbours pre-filter and k-means past average linkage.

Checked against a brute-force NumPy neighbour search (exact below EXACT_ROWS, recall above)
and scikit-learn's KMeans (the k-means objective), and cluster_margin's k-means path
against a naive round-robin over the same labels.
"""

import numpy as np
import pytest
from sklearn.cluster import KMeans

from labelwise_server.strategies import Pool, hybrid, index, prefilter
from labelwise_server.strategies._types import Task
from tests.strategies.support import random_probabilities


def brute_nearest(x: np.ndarray, labeled: np.ndarray, per_item: int) -> set[int]:
    xs, ls = x.astype(np.float64), labeled.astype(np.float64)
    d2 = (ls**2).sum(1)[:, None] + (xs**2).sum(1)[None, :] - 2 * ls @ xs.T  # [l, n]
    if per_item < d2.shape[1]:
        return set(np.argpartition(d2, per_item - 1, axis=1)[:, :per_item].ravel().tolist())
    return set(range(d2.shape[1]))


def test_nearest_to_labeled_is_each_labeled_items_nearest_below_the_exact_limit() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 8)).astype(np.float32)
    labeled = rng.normal(size=(10, 8)).astype(np.float32)
    candidates = np.arange(5000, dtype=np.int64)
    got = index.nearest_to_labeled(x, candidates, labeled, 200, seed=1)
    assert set(got.tolist()) <= brute_nearest(x, labeled, 20)
    # Every labeled item's single nearest candidate is in.
    assert brute_nearest(x, labeled, 1) <= set(got.tolist())
    assert np.all(np.diff(got) > 0)


def test_nearest_to_labeled_keeps_to_the_candidates_and_the_size() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 4)).astype(np.float32)
    labeled = x[:5] + 0.01
    candidates = np.arange(5, 3000, 2, dtype=np.int64)
    got = index.nearest_to_labeled(x, candidates, labeled, 50, seed=1)
    assert set(got.tolist()) <= set(candidates.tolist())
    assert 1 <= got.shape[0] <= 50
    assert index.nearest_to_labeled(x, candidates, labeled, 10_000, seed=1) is candidates


def test_the_approximate_index_finds_most_true_neighbours() -> None:
    rng = np.random.default_rng(2)
    n = index.EXACT_ROWS + 20_000
    centres = rng.normal(scale=5, size=(50, 16))
    x = (centres[rng.integers(0, 50, n)] + rng.normal(size=(n, 16))).astype(np.float32)
    # More labeled items than sqrt(n) inverted lists: the approximate index is used.
    labeled = x[rng.choice(n, 400, replace=False)] + 0.1
    got = index.nearest_to_labeled(x, np.arange(n, dtype=np.int64), labeled, 800, seed=3)
    truth = brute_nearest(x, labeled, 2)
    assert len(set(got.tolist()) & truth) / len(truth) >= 0.9
    again = index.nearest_to_labeled(x, np.arange(n, dtype=np.int64), labeled, 800, seed=3)
    assert np.array_equal(got, again)  # seeded: the same request, the same candidates


def test_kmeans_does_as_well_as_scikit_learns_lloyd_from_random_starts() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=6, size=(20, 8))
    x = (centres[rng.integers(0, 20, 6000)] + rng.normal(size=(6000, 8))).astype(np.float32)
    labels = index.kmeans_labels(x, 20, seed=5)

    def inertia(lab: np.ndarray) -> float:
        return sum(
            float(((x[lab == c] - x[lab == c].mean(axis=0)) ** 2).sum()) for c in np.unique(lab)
        )

    # The same algorithm in scikit-learn (Lloyd, best of 3 random starts), over seeds; and
    # within 1.5x of k-means++ seeding (a different start, better on separated clusters).
    lloyd = [KMeans(20, n_init=3, init="random", random_state=s).fit(x).inertia_ for s in range(3)]
    assert inertia(labels) <= float(np.median(lloyd))
    assert inertia(labels) <= 1.5 * float(KMeans(20, n_init=3, random_state=0).fit(x).inertia_)
    assert np.array_equal(labels, index.kmeans_labels(x, 20, seed=5))


def test_cluster_margin_past_average_linkage_round_robins_kmeans_clusters() -> None:
    rng = np.random.default_rng(6)
    n, k = 6000, 50
    x = rng.normal(size=(n, 6)).astype(np.float32)
    p = random_probabilities(rng, n, 3)
    margins = prefilter.margin_scores_of(p, np.arange(n, dtype=np.int64))
    candidates = np.arange(n, dtype=np.int64)
    picks, scores = hybrid.cluster_margin_select(margins, x, candidates, k, k, seed=7)
    # The naive second run: the same k-means labels, round-robin from the smallest cluster.
    labels = index.kmeans_labels(x, k, seed=7)
    groups = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        groups.append(sorted(members.tolist(), key=lambda i: (-margins[i], i)))
    groups.sort(key=lambda g: (len(g), min(g)))
    expected: list[int] = []
    depth = 0
    while len(expected) < k:
        for group in groups:
            if depth < len(group) and len(expected) < k:
                expected.append(group[depth])
        depth += 1
    assert picks.tolist() == expected
    assert scores.tolist() == margins[expected].tolist()


@pytest.mark.parametrize("name", ["core_set", "typiclust", "badge"])
def test_the_neighbours_prefilter_narrows_the_batch_strategies(name: str) -> None:
    from labelwise_server.strategies import STRATEGIES

    rng = np.random.default_rng(8)
    n = 4000
    x = rng.normal(size=(n, 5)).astype(np.float32)
    labeled = rng.normal(size=(8, 5)).astype(np.float32)
    pool = Pool(n=n, embeddings=x, labeled_embeddings=labeled,
                probabilities=random_probabilities(rng, n, 3))  # fmt: skip
    strategy = STRATEGIES[name]
    params = {p: v.default for p, v in strategy.params.items()}
    params.update(prefilter="neighbours", prefilter_size=300)
    task = Task(k=10, candidates=np.arange(n, dtype=np.int64), seed=1)
    assert strategy.narrow is not None
    narrowed = strategy.narrow(pool, task, params)
    assert narrowed.shape[0] <= 300
    assert set(narrowed.tolist()) <= brute_nearest(x, labeled, 300)


@pytest.mark.parametrize("every", [True, False])
def test_the_exact_scan_in_blocks_equals_brute_force(
    every: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of 7 candidates (fewer than the 12 each labeled item keeps), over every row or
    # a subset: the union of each labeled item's 12 nearest by NumPy in float64.
    monkeypatch.setattr(index, "SCAN_ROWS", 7)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    labeled = rng.normal(size=(5, 6)).astype(np.float32)
    candidates = np.arange(400, dtype=np.int64) if every else np.arange(3, 400, 3)
    got = index.nearest_to_labeled(x, candidates, labeled, 60, seed=0)
    truth = {int(candidates[i]) for i in brute_nearest(x[candidates], labeled, 12)}
    assert set(got.tolist()) == truth
    blocked = index.nearest_to_labeled(x, candidates, labeled, 60, seed=0)
    monkeypatch.setattr(index, "SCAN_ROWS", 1 << 18)
    assert np.array_equal(blocked, index.nearest_to_labeled(x, candidates, labeled, 60, seed=0))
