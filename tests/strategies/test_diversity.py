"""core_set and typiclust against scikit-activeml (k_greedy_center, TypiClust) and naive loops."""

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skactiveml.pool import TypiClust, k_greedy_center

from labelwise_server.strategies import Pool
from labelwise_server.strategies.diversity import k_center_greedy, typicality, typiclust_select
from tests.strategies.batch_support import run_one


def naive_k_center(
    x: npt.NDArray[np.float64], labeled: npt.NDArray[np.float64], first: int | None, k: int
) -> list[int]:
    """Textbook k-center greedy: recompute every distance to every centre at each pick."""
    centres = list(labeled)
    picks: list[int] = []
    if first is not None:
        picks.append(first)
        centres.append(x[first])
    while len(picks) < k:
        best, best_distance = -1, -1.0
        for i in range(x.shape[0]):
            if i in picks:
                continue
            distance = min(float(np.sqrt(((x[i] - c) ** 2).sum())) for c in centres)
            if distance > best_distance:
                best, best_distance = i, distance
        picks.append(best)
        centres.append(x[best])
    return picks


def covering_radius(x: npt.NDArray[np.float64], centres: npt.NDArray[np.float64]) -> float:
    d = np.sqrt(((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1))
    return float(d.min(axis=1).max())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_same_picks_as_scikit_activeml_k_greedy_center(seed: int, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 8)).astype(dtype)
    labeled = rng.normal(size=(10, 8)).astype(dtype)
    ours, scores = k_center_greedy(x, labeled, np.arange(200), 25, seed)
    both = np.concatenate([labeled, x]).astype(np.float64)
    y = np.concatenate([np.zeros(10), np.full(200, np.nan)])
    theirs, utilities = k_greedy_center(both, y, batch_size=25, random_state=seed)
    np.testing.assert_array_equal(ours, theirs - 10)
    picked_utilities = utilities[np.arange(25), theirs]
    np.testing.assert_allclose(scores, picked_utilities, rtol=1e-4, atol=1e-3)


def test_cosine_is_euclidean_on_unit_rows() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 6)) * rng.uniform(0.1, 10, size=(100, 1))
    labeled = rng.normal(size=(4, 6))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    unit_labeled = labeled / np.linalg.norm(labeled, axis=1, keepdims=True)
    cos_picks, cos_scores = k_center_greedy(x, labeled, np.arange(100), 10, 0, metric="cosine")
    picks, scores = k_center_greedy(unit, unit_labeled, np.arange(100), 10, 0)
    np.testing.assert_array_equal(cos_picks, picks)
    np.testing.assert_allclose(cos_scores, scores**2 / 2, rtol=1e-5)
    # The score is 1 − cosine similarity to the nearest centre at pick time.
    nearest = (unit[cos_picks[0]] @ unit_labeled.T).max()
    assert cos_scores[0] == pytest.approx(1 - nearest, rel=1e-5)


# Small integer coordinates: every squared distance is exact in float32 and float64,
# so ties are real ties and both sides break them towards the lower index.
_points = arrays(np.float64, st.tuples(st.integers(2, 25), st.integers(1, 4)),
                 elements=st.integers(-8, 8).map(float))  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_points, st.integers(0, 3), st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_covering_radius_equals_the_naive_k_center(
    points: npt.NDArray[np.float64], labeled_count: int, k: int, seed: int
) -> None:
    labeled, x = points[:labeled_count], points[labeled_count:]
    if x.shape[0] == 0:
        return
    k = min(k, x.shape[0])
    ours, scores = k_center_greedy(x, labeled, np.arange(x.shape[0]), k, seed)
    first = int(ours[0]) if labeled_count == 0 else None
    naive = naive_k_center(x, labeled, first, k)
    np.testing.assert_array_equal(ours, naive)
    centres = np.concatenate([labeled, x[ours]])
    expected = covering_radius(x, centres)
    before_last = covering_radius(x, np.concatenate([labeled, x[ours[:-1]]])) if k > 1 else None
    assert covering_radius(x, centres) == pytest.approx(expected)
    if before_last is not None:  # the last pick's score is the radius it closed
        assert scores[-1] == pytest.approx(before_last, abs=1e-5)


def test_no_labeled_set_starts_with_a_seeded_draw() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    firsts = {int(k_center_greedy(x, None, np.arange(50), 3, seed)[0][0]) for seed in range(20)}
    assert len(firsts) > 5  # a draw, not a fixed point
    empty = np.empty((0, 3))
    np.testing.assert_array_equal(
        k_center_greedy(x, empty, np.arange(50), 5, 7)[0],
        k_center_greedy(x, None, np.arange(50), 5, 7)[0],
    )


def test_served_core_set_picks_among_candidates_only() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    pool = Pool(n=30, embeddings=x, labeled_embeddings=x[:2] + 0.01)
    exclude = np.arange(0, 30, 2)
    result = run_one("core_set", pool, 10, exclude=exclude)
    keep = np.arange(1, 30, 2)
    direct, _ = k_center_greedy(x, x[:2] + 0.01, keep, 10, 0)
    np.testing.assert_array_equal(result.indices, direct)
    assert np.all(result.indices % 2 == 1)
    assert np.all(np.diff(result.scores) <= 1e-6)  # distances shrink as centres are added


# ---- TypiClust --------------------------------------------------------------------------------


def naive_typicality(x: npt.NDArray[np.float64], neighbours: int) -> npt.NDArray[np.float64]:
    """1 / (mean distance to the K nearest others + 1e-7), by a loop over every pair."""
    out = np.empty(len(x))
    for i in range(len(x)):
        others = sorted(float(np.linalg.norm(x[i] - x[j])) for j in range(len(x)) if j != i)
        kk = min(neighbours, len(others))
        out[i] = 1.0 if kk == 0 else 1.0 / (sum(others[:kk]) / kk + 1e-7)
    return out


@pytest.mark.parametrize("neighbours", [1, 5, 20, 200])
def test_typicality_equals_the_naive_loop(neighbours: int) -> None:
    x = np.random.default_rng(neighbours).normal(size=(60, 4)).astype(np.float32)
    members = np.arange(0, 60, 2)
    np.testing.assert_allclose(
        typicality(x, members, neighbours),
        naive_typicality(x[members].astype(np.float64), neighbours),
        rtol=1e-6,
    )
    assert typicality(x, np.array([3]), neighbours).tolist() == [1.0]


def _blobs(seed: int, sizes: list[int], d: int = 3) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), d)) * 40
    return np.concatenate(
        [centre + rng.normal(size=(size, d)) for centre, size in zip(centres, sizes, strict=True)]
    ).astype(np.float32)


@pytest.mark.parametrize("seed", range(3))
def test_same_picks_as_scikit_activeml_typiclust(seed: int) -> None:
    # Well-separated blobs of distinct sizes: both k-means runs find them, and no two
    # clusters tie in size (scikit-activeml breaks such ties at random).
    sizes = [30, 26, 23, 21, 18, 16, 14, 12]
    everything = _blobs(seed, sizes)
    labeled_rows = [0, 30]  # one labeled item in each of the two largest blobs
    pool_rows = np.setdiff1d(np.arange(len(everything)), labeled_rows)
    k = 6  # l + k = 8 clusters: the blobs
    ours, scores = typiclust_select(
        everything[pool_rows], everything[labeled_rows], np.arange(len(pool_rows)), k, seed
    )
    y = np.full(len(everything), np.nan)
    y[labeled_rows] = 0
    ordered = np.concatenate([everything[labeled_rows], everything[pool_rows]])
    y_ordered = np.concatenate([y[labeled_rows], y[pool_rows]])
    theirs = TypiClust(random_state=seed, k=20).query(ordered, y_ordered, batch_size=k)
    np.testing.assert_array_equal(ours, np.asarray(theirs) - len(labeled_rows))
    # Largest uncovered blob first: blobs 2..7 in order of size.
    blob_of = np.searchsorted(np.cumsum(sizes), pool_rows[ours], side="right")
    assert blob_of.tolist() == [2, 3, 4, 5, 6, 7]
    assert np.all(scores > 0)


def test_typiclust_past_max_clusters_takes_the_least_covered_clusters_first() -> None:
    sizes = [12, 10, 8]
    x = _blobs(5, sizes)
    picks, _ = typiclust_select(x, None, np.arange(len(x)), 7, 0, max_clusters=3)
    blob_of = np.searchsorted(np.cumsum(sizes), picks, side="right")
    assert blob_of.tolist() == [0, 1, 2, 0, 1, 2, 0]
    # Within a blob, picks go by typicality, best first.
    members = np.flatnonzero(np.searchsorted(np.cumsum(sizes), np.arange(len(x)), "right") == 0)
    typical = naive_typicality(x[members].astype(np.float64), 20)
    expected = members[np.lexsort((members, -typical))][:3]
    np.testing.assert_array_equal(picks[blob_of == 0], expected)


def test_typiclust_samples_large_clusters_for_typicality(monkeypatch: pytest.MonkeyPatch) -> None:
    from labelwise_server.strategies import diversity

    monkeypatch.setattr(diversity, "TYPICALITY_SAMPLE", 25)
    x = _blobs(1, [200, 50])
    picks, scores = typiclust_select(x, None, np.arange(250), 2, 3)
    assert np.searchsorted([200, 250], picks, side="right").tolist() == [0, 1]
    again, again_scores = typiclust_select(x, None, np.arange(250), 2, 3)
    np.testing.assert_array_equal(picks, again)
    np.testing.assert_array_equal(scores, again_scores)
    assert np.all(scores > 0)
