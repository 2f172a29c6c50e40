"""ProbCover against scikit-activeml's ProbCover and a naive dense-matrix loop."""

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import skactiveml.pool._prob_cover as skactiveml_prob_cover
from skactiveml.pool import ProbCover
from sklearn.metrics import pairwise_distances

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies import coverage
from tests.strategies.batch_support import batch_pool, run_one

# scikit-activeml warns that a single given delta was not checked for purity (by design here).
pytestmark = pytest.mark.filterwarnings("ignore:The maximum purity:UserWarning")


def _lowest_argmax(x: npt.NDArray[Any], random_state: Any = None, **_: Any) -> npt.NDArray[Any]:
    """skactiveml's rand_argmax with ties to the lower index (ours) instead of at random."""
    return np.array([int(np.nanargmax(x))])


def _blobs(seed: int, n: int, labeled: int, d: int = 2) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(4, d))
    x = centres[rng.integers(0, 4, size=n + labeled)] + rng.normal(size=(n + labeled, d))
    return x[:n], x[n:]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("labeled", [0, 5])
def test_probcover_picks_equal_scikit_activemls(
    seed: int, labeled: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, known = _blobs(seed, 120, labeled)
    delta = [0.6, 0.9, 1.3][seed % 3]
    k = 15
    monkeypatch.setattr(skactiveml_prob_cover, "rand_argmax", _lowest_argmax)
    x = np.concatenate([pool, known])
    y = np.full(x.shape[0], np.nan)
    y[pool.shape[0] :] = 0
    theirs, utilities = ProbCover(deltas=[delta], random_state=seed).query(
        x, y, batch_size=k, return_utilities=True
    )
    ours, scores = coverage.probcover_select(
        pool, known if labeled else None, np.arange(120, dtype=np.int64), k, delta
    )
    assert ours.tolist() == theirs.tolist()
    np.testing.assert_array_equal(scores, utilities[np.arange(k), theirs])


def test_probcover_without_ties_equals_unpatched_scikit_activeml() -> None:
    """A pool where every pick has a unique best count: scikit-activeml's own tie draw never
    matters, so no patch is needed."""
    rng = np.random.default_rng(0)
    # Clusters of distinct sizes far apart: each pick covers one cluster, largest first.
    sizes = [40, 30, 20, 12, 7, 3]
    pool = np.concatenate(
        [rng.normal(scale=0.05, size=(s, 2)) + 10.0 * i for i, s in enumerate(sizes)]
    )
    theirs = ProbCover(deltas=[1.0], random_state=1).query(pool, np.full(len(pool), np.nan),
                                                            batch_size=6)  # fmt: skip
    ours, scores = coverage.probcover_select(pool, None, np.arange(len(pool)), 6, 1.0)
    assert scores.tolist() == sizes
    assert [int(np.searchsorted(np.cumsum(sizes), i, side="right")) for i in ours] == list(range(6))
    assert [int(np.searchsorted(np.cumsum(sizes), i, side="right")) for i in theirs] == list(
        range(6)
    )


def _naive_probcover(
    pool: npt.NDArray[Any], candidates: list[int], k: int, delta: float
) -> list[int]:
    """Dense adjacency, recount everything every pick."""
    edges = pairwise_distances(pool) <= delta
    covered = edges[[i for i in range(len(pool)) if i not in candidates]].any(axis=0)
    picks: list[int] = []
    for _ in range(k):
        best, best_count = -1, -1
        for i in candidates:
            if i in picks:
                continue
            count = int(np.sum(edges[i] & ~covered))
            if count > best_count:
                best, best_count = i, count
        picks.append(best)
        covered |= edges[best]
    return picks


@pytest.mark.parametrize("seed", range(4))
def test_probcover_with_excluded_items_equals_a_dense_loop(seed: int) -> None:
    pool, _ = _blobs(seed, 80, 0, d=3)
    rng = np.random.default_rng(seed)
    candidates = sorted(rng.choice(80, size=60, replace=False).tolist())
    ours, _ = coverage.probcover_select(pool, None, np.array(candidates), 12, 1.1)
    assert ours.tolist() == _naive_probcover(pool, candidates, 12, 1.1)


def test_the_purity_rule_takes_the_largest_delta_that_keeps_alpha() -> None:
    pool, _ = _blobs(3, 150, 0)
    clusters = np.random.default_rng(3).integers(0, 3, size=150)
    clusters = np.argmin(((pool[:, None, :] - pool[clusters[:3]][None]) ** 2).sum(-1), axis=1)
    delta = coverage.purity_delta(pool, clusters, 0.9)
    distances = pairwise_distances(pool)

    def purity(d: float) -> float:
        impure = (distances <= d) & (clusters[:, None] != clusters[None, :])
        return float(1 - impure.any(axis=1).mean())

    assert purity(delta) >= 0.9
    assert purity(float(np.nextafter(delta, np.inf)) * (1 + 1e-9)) < 0.9


def test_probcover_through_the_registry_estimates_delta_and_is_seeded() -> None:
    pool = batch_pool(np.random.default_rng(4), n=60, d=3)
    first = run_one("probcover", pool, 8, seed=2)
    again = run_one("probcover", pool, 8, seed=2)
    assert first.indices.tolist() == again.indices.tolist()
    assert len(set(first.indices.tolist())) == 8
    fixed = run_one("probcover", pool, 8, {"delta": 1.0})
    assert pool.embeddings is not None
    ours, _ = coverage.probcover_select(pool.embeddings, pool.labeled_embeddings,
                                        np.arange(60), 8, 1.0)  # fmt: skip
    assert fixed.indices.tolist() == ours.tolist()


def test_a_graph_past_the_edge_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coverage, "MAX_EDGES", 100)
    pool, _ = _blobs(0, 50, 0)
    with pytest.raises(InvalidArgument) as info:
        coverage.probcover_select(pool, None, np.arange(50), 3, 100.0)
    assert info.value.field == "embeddings"
