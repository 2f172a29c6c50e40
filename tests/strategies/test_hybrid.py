"""Hybrid strategies: BADGE, cluster-margin, information density and ranked batch.

Against naive second implementations (the [n, c·d] gradient matrix built
explicitly, a loop over clusters, loops over the pool), scikit-activeml's
Badge (the same picks from the same uniform draws), scikit-learn's
agglomerative clustering and modAL's ranked_batch.
"""

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from modAL.batch import ranked_batch as modal_ranked_batch
from skactiveml.base import SkactivemlClassifier
from skactiveml.pool import Badge
from sklearn.cluster import AgglomerativeClustering

from labelwise_server.strategies import BASES, STRATEGIES, Pool, hybrid
from tests.strategies import test_bayesian, test_committee, test_uncertainty
from tests.strategies.batch_support import run_one
from tests.strategies.support import DTYPES, TOLERANCE, random_probabilities, scores_of

LN2 = math.log(2)

# ---- information density -------------------------------------------------------------------

# Three items: probabilities, the two-member committee of test_committee, and embeddings whose
# unit rows are e1, e2, e1: the pool's mean unit vector is (2/3, 1/3), so the mean cosine
# similarities are 2/3, 1/3, 2/3 (norms do not matter).
P3 = np.array([[0.5, 0.5], [0.8, 0.2], [0.6, 0.4]])
TWO = test_committee.TWO
E3 = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 0.0]])
DENSITY = np.array([2 / 3, 1 / 3, 2 / 3])


def _h(*p: float) -> float:
    return -sum(v * math.log(v) for v in p if v > 0)


# Each base's scores of the three rows, by hand (margin as 1 + margin).
BASE_ORACLE = {
    "least_confidence": [0.5, 0.2, 0.4],
    "margin": [1.0, 0.4, 0.8],
    "ratio": [1.0, 0.25, 2 / 3],
    "entropy": [LN2, _h(0.8, 0.2), _h(0.6, 0.4)],
    "vote_entropy": [LN2, 0.0, 0.0],
    "consensus_entropy": [LN2, LN2, 0.0],
    "kl_to_consensus": [LN2, 0.0, 0.0],
    "bald": [LN2, 0.0, 0.0],
    "variation_ratio": [0.5, 0.0, 0.0],
    "mean_std": [0.5, 0.0, 0.0],
}
INPUTS3 = {"probabilities": P3, "committee": TWO, "embeddings": E3}
# (strategy, params, inputs, expected scores), worked out by hand.
ORACLES: list[tuple[str, dict[str, Any], dict[str, npt.NDArray[Any]], list[float]]] = [
    ("information_density", {"base": base}, INPUTS3, list(np.array(values) * DENSITY))
    for base, values in BASE_ORACLE.items()
] + [
    (
        "information_density",
        {"beta": 2.0},
        INPUTS3,
        list(np.array(BASE_ORACLE["entropy"]) * DENSITY**2),
    ),
    ("information_density", {"beta": 0.0}, INPUTS3, BASE_ORACLE["entropy"]),
]


@pytest.mark.parametrize(
    ("name", "params", "inputs", "expected"),
    ORACLES,
    ids=[f"{o[1].get('base', 'entropy')}-beta{o[1].get('beta', 1)}" for o in ORACLES],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_oracle_rows(
    name: str,
    params: dict[str, Any],
    inputs: dict[str, npt.NDArray[Any]],
    expected: list[float],
    dtype: Any,
) -> None:
    got = scores_of(name, params, **{key: value.astype(dtype) for key, value in inputs.items()})
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_the_bases_are_every_row_wise_score_strategy() -> None:
    row_wise = [name for name, s in STRATEGIES.items() if s.block_score is not None]
    assert list(BASES) == row_wise
    assert set(BASE_ORACLE) == set(BASES)


def naive_mean_cosine(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(1/n) Σ_u cos(x_i, x_u) by a loop over every pair (zero rows: similarity 0)."""
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        for u in range(n):
            ni, nu = np.linalg.norm(x[i]), np.linalg.norm(x[u])
            out[i] += 0.0 if ni == 0 or nu == 0 else float(x[i] @ x[u]) / (ni * nu)
    return out / n


def _naive_base(base: str, inputs: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
    if base in test_uncertainty.NAIVE:
        values = np.asarray(test_uncertainty.NAIVE[base](inputs["probabilities"]), dtype=float)
        return values + 1.0 if base == "margin" else values
    if base in test_bayesian.NAIVE:
        return np.asarray(test_bayesian.NAIVE[base](inputs["committee"]), dtype=float)
    key = (base, "mean" if base == "kl_to_consensus" else "")
    return np.asarray(test_committee.NAIVE[key](inputs["committee"]), dtype=float)


def naive_information_density(
    base: str, beta: float = 1.0
) -> Any:  # a function of the inputs, for the NAIVE table
    def scores(inputs: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        density = np.maximum(naive_mean_cosine(inputs["embeddings"].astype(float)), 0.0)
        return _naive_base(base, inputs) * density**beta

    return scores


# (strategy, base) -> naive implementation
NAIVE: dict[tuple[str, str], Any] = {
    ("information_density", base): naive_information_density(base) for base in BASES
}


@pytest.mark.parametrize(("name", "base"), sorted(NAIVE))
@pytest.mark.parametrize("dtype", DTYPES)
def test_information_density_equals_naive_loops(name: str, base: str, dtype: Any) -> None:
    rng = np.random.default_rng(len(base))
    inputs = {
        "probabilities": random_probabilities(rng, 40, 4, dtype),
        "committee": rng.dirichlet(np.ones(4), size=(3, 40)).astype(dtype),
        "embeddings": (rng.normal(size=(40, 5)) + 0.5).astype(dtype),
    }
    inputs["embeddings"][3] = 0.0  # a zero row: similarity 0
    got = scores_of(name, {"base": base}, **inputs)
    expected = NAIVE[(name, base)](inputs)
    np.testing.assert_allclose(got, expected, **TOLERANCE[np.dtype(np.float32)])


def test_mean_cosine_similarity_needs_no_pairwise_matrix() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 7))
    np.testing.assert_allclose(
        hybrid.mean_cosine_similarity(x), naive_mean_cosine(x), rtol=1e-5, atol=1e-6
    )
    big = np.ones((200_000, 2), dtype=np.float32)  # an [n, n] matrix would be 160 GB
    np.testing.assert_allclose(hybrid.mean_cosine_similarity(big), 1.0, rtol=1e-5)


# ---- BADGE ------------------------------------------------------------------------------------


class FixedProbabilities(SkactivemlClassifier):  # type: ignore[misc]
    """A classifier that answers the given probabilities for the pool it is asked about."""

    def __init__(self, probabilities: Any = None, classes: Any = None) -> None:
        super().__init__(classes=classes)
        self.probabilities = probabilities

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "FixedProbabilities":  # noqa: N803
        return self

    def predict_proba(self, X: Any) -> Any:  # noqa: N803
        assert X.shape[0] == self.probabilities.shape[0]
        return self.probabilities


def gradients(p: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """BADGE's [n, c·d] gradient embeddings, built: (p − e_ŷ) ⊗ x."""
    n, c = p.shape
    a = p - np.eye(c)[p.argmax(axis=1)]
    return (a[:, :, None] * x[:, None, :]).reshape(n, -1)


def naive_badge(
    p: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    k: int,
    uniforms: Any,
    weights: npt.NDArray[np.float64] | None = None,
) -> list[int]:
    """BADGE with the [n, c·d] gradient matrix built, then k-means++ seeding (each D² times
    the item's weight when weights are given)."""
    n = p.shape[0]
    g = gradients(p, x)
    picks = [int(np.argmax((g**2).sum(axis=1)))]
    while len(picks) < k:
        d2 = np.array([min(((g[i] - g[j]) ** 2).sum() for j in picks) for i in range(n)])
        if weights is not None:
            d2 = d2 * weights
        d2[picks] = 0.0
        if d2.sum() == 0:
            d2 = np.ones(n)
            d2[picks] = 0.0
        cdf = np.cumsum(d2)
        picks.append(int(np.searchsorted(cdf, uniforms.random() * cdf[-1], side="right")))
    return picks


@pytest.mark.parametrize("seed", range(4))
def test_badge_picks_what_scikit_activeml_badge_picks_from_the_same_draws(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c, d, k = 120, 4, 6, 15
    x = rng.normal(size=(n, d))
    p = random_probabilities(rng, n, c, alpha=0.5)
    theirs = Badge(random_state=seed).query(
        x, np.full(n, np.nan), FixedProbabilities(p, classes=np.arange(c)), fit_clf=False,
        batch_size=k,
    )  # fmt: skip
    # Badge draws one uniform per pick after the first from the RandomState that
    # scikit-activeml derives from the seed and the unlabeled count (check_random_state).
    derived = (np.random.RandomState(seed).randint(1, 2**31) * (n + 1)) % 2**31
    # It also keeps the origin as a centre (its D² starts at ‖g‖²): origin_centre=True.
    uniforms = np.random.RandomState(derived)
    ours, scores = hybrid.badge_select(p, x, np.arange(n), k, uniforms, origin_centre=True)
    np.testing.assert_array_equal(ours, theirs)
    a = p - np.eye(c)[p.argmax(axis=1)]
    norms = np.sqrt((a**2).sum(axis=1) * (x**2).sum(axis=1))
    assert scores[0] == pytest.approx(norms.max(), rel=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_badge_equals_a_naive_badge_on_the_materialised_gradients(seed: int) -> None:
    rng = np.random.default_rng(seed + 10)
    n, c, d, k = 60, 3, 4, 12
    x = rng.normal(size=(n, d)).astype(np.float32)
    p = random_probabilities(rng, n, c, np.float32)
    ours, _ = hybrid.badge_select(p, x, np.arange(n), k, np.random.default_rng(seed))
    expected = naive_badge(p.astype(float), x.astype(float), k, np.random.default_rng(seed))
    np.testing.assert_array_equal(ours, expected)


def test_badge_draws_the_second_pick_with_probability_proportional_to_d2() -> None:
    # Equal rows of p: g_i − g_j = a ⊗ (x_i − x_j). From the first pick (x = 10, the largest
    # norm) the others are 10, 9 and 8 away: D² 100, 81, 64.
    _assert_second_picks_drawn(np.array([0, 100, 81, 64]) / 245)


def _assert_second_picks_drawn(
    expected: np.ndarray, weights: np.ndarray | None = None, draws: int = 2000
) -> None:
    """BADGE on four rows with equal p and x = 10, 0, 1, 2 (the first pick is row 0, the
    largest norm), once per seed: each row's share of second picks within 4 σ of expected."""
    x = np.array([[10.0], [0.0], [1.0], [2.0]])
    p = np.tile([0.6, 0.4], (4, 1))
    counts = np.zeros(4)
    for seed in range(draws):
        picks, _ = hybrid.badge_select(
            p, x, np.arange(4), 2, np.random.default_rng(seed), weights=weights
        )
        assert picks[0] == 0
        counts[picks[1]] += 1
    sigma = np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(counts / draws - expected) <= 4 * sigma + 1e-12)


def test_badge_on_duplicates_falls_back_to_uniform_draws() -> None:
    x = np.ones((10, 3))
    p = np.tile([0.7, 0.3], (10, 1))
    picks, scores = hybrid.badge_select(p, x, np.arange(10), 10, np.random.default_rng(0))
    assert sorted(picks.tolist()) == list(range(10))
    assert scores[0] > 0 and np.all(scores[1:] == 0)


@pytest.mark.parametrize("seed", range(4))
def test_weighted_badge_equals_a_naive_weighted_badge(seed: int) -> None:
    # Weights 0 to 5, some zero (never drawn after the first pick), over a subset of rows.
    rng = np.random.default_rng(seed + 20)
    n, c, d, k = 70, 3, 4, 10
    x = rng.normal(size=(n, d))
    p = random_probabilities(rng, n, c)
    weights = rng.integers(0, 6, n).astype(np.float64)
    candidates = np.arange(0, n, 2)
    ours, _ = hybrid.badge_select(p, x, candidates, k, np.random.default_rng(seed), weights=weights)
    sub = naive_badge(
        p[candidates], x[candidates], k, np.random.default_rng(seed), weights[candidates]
    )
    np.testing.assert_array_equal(ours, candidates[sub])
    assert np.all(weights[ours[1:]] > 0)


def test_badge_with_weights_of_one_is_badge() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    p = random_probabilities(rng, 300, 4, np.float32)
    plain = hybrid.badge_select(p, x, np.arange(300), 40, np.random.default_rng(1))
    ones = hybrid.badge_select(
        p, x, np.arange(300), 40, np.random.default_rng(1), weights=np.ones(300)
    )
    for left, right in zip(plain, ones, strict=True):
        assert left.tobytes() == right.tobytes()


def test_weighted_badge_draws_the_second_pick_proportional_to_weight_times_d2() -> None:
    # The rows of the D² test above, weighted 1, 3, 0, 2: mass 0, 300, 0, 128.
    _assert_second_picks_drawn(np.array([0, 300, 0, 128]) / 428, np.array([1.0, 3.0, 0.0, 2.0]))


def test_weighted_badge_on_duplicates_draws_uniformly_among_weighted_items() -> None:
    x = np.ones((6, 2))
    p = np.tile([0.7, 0.3], (6, 1))
    weights = np.array([1.0, 0.0, 2.0, 0.0, 1.0, 0.0])
    picks, _ = hybrid.badge_select(p, x, np.arange(6), 3, np.random.default_rng(0), weights=weights)
    assert sorted(picks[1:].tolist()) == sorted(set(picks[1:].tolist()) & {0, 2, 4})
    every, _ = hybrid.badge_select(p, x, np.arange(6), 6, np.random.default_rng(0), weights=weights)
    assert sorted(every.tolist()) == list(range(6))  # then among the zero weights


def naive_represented(
    g: npt.NDArray[np.float64], picks: list[int], weights: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Each row's weight to its nearest pick (the earlier pick on a tie), by a loop."""
    out = np.zeros(len(picks))
    for i in range(g.shape[0]):
        distances = [((g[i] - g[j]) ** 2).sum() for j in picks]
        out[int(np.argmin(distances))] += weights[i]
    return out


@pytest.mark.parametrize("weighted", [False, True])
def test_represented_weights_equal_a_naive_nearest_pick_count(
    weighted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hybrid, "REPRESENTED_BLOCK", 50)  # blocks of 50 // 8 = 6 rows
    rng = np.random.default_rng(7)
    n, c, d = 90, 3, 4
    x = rng.normal(size=(n, d))
    p = random_probabilities(rng, n, c)
    weights = rng.random(n) * 3 if weighted else None
    candidates = np.flatnonzero(rng.random(n) < 0.8)
    picks, _ = hybrid.badge_select(p, x, candidates, 8, np.random.default_rng(0), weights=weights)
    got = hybrid.badge_represented(p, x, candidates, picks, weights)
    w = np.ones(n) if weights is None else weights
    g = gradients(p, x)
    expected = naive_represented(
        g[candidates], [int(np.searchsorted(candidates, j)) for j in picks], w[candidates]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.sum() == pytest.approx(w[candidates].sum())
    assert np.all(got >= (1.0 if weights is None else 0.0))  # unweighted: each counts itself


def test_report_weights_through_the_registry() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(50, 3))
    p = random_probabilities(rng, 50, 3)
    pool = Pool(n=50, probabilities=p, embeddings=x, item_weights=np.full(50, 2.0))
    shown = run_one("badge", pool, 5, {"report_weights": True})
    assert shown.represented is not None
    assert shown.represented.sum() == pytest.approx(100.0)
    assert run_one("badge", pool, 5).represented is None


# ---- cluster-margin ---------------------------------------------------------------------------


def naive_cluster_margin(
    p: npt.NDArray[np.float64], x: npt.NDArray[np.float64], k: int, k_m: int, clusters: int
) -> list[int]:
    """Lowest margins, scikit-learn's average-linkage clusters, round-robin by a plain loop."""
    margin = np.array([sorted(row)[-2] - sorted(row)[-1] for row in p])
    chosen = sorted(sorted(range(len(p)), key=lambda i: (-margin[i], i))[:k_m])
    labels = AgglomerativeClustering(n_clusters=clusters, linkage="average").fit_predict(x[chosen])
    groups = []
    for label in set(labels.tolist()):
        members = [chosen[j] for j in range(len(chosen)) if labels[j] == label]
        groups.append(sorted(members, key=lambda i: (-margin[i], i)))
    groups.sort(key=lambda g: (len(g), min(chosen.index(i) for i in g)))
    picks: list[int] = []
    while len(picks) < k:
        for group in groups:
            if group and len(picks) < k:
                picks.append(group.pop(0))
    return picks


@pytest.mark.parametrize("seed", range(4))
def test_cluster_margin_equals_a_naive_round_robin_over_sklearn_clusters(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 200, 8
    p = random_probabilities(rng, n, 3)
    x = np.concatenate([rng.normal(size=(n // 2, 4)), rng.normal(size=(n // 2, 4)) + 4])
    pool = Pool(n=n, probabilities=p, embeddings=x)
    result = run_one("cluster_margin", pool, k, {"margin_multiple": 5.0, "clusters": 5})
    np.testing.assert_array_equal(result.indices, naive_cluster_margin(p, x, k, 5 * k, 5))
    assert result.candidates_considered == 5 * k
    margins = np.sort(p, axis=1)[:, -2] - np.sort(p, axis=1)[:, -1]
    np.testing.assert_allclose(result.scores, margins[result.indices])


def test_cluster_margin_takes_one_per_cluster_before_a_second() -> None:
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [50, 0], [0, 50], [50, 50]], dtype=float)
    x = np.repeat(centres, [20, 10, 5, 5], axis=0) + rng.normal(size=(40, 2)) * 0.1
    p = np.tile([0.5, 0.5], (40, 1))  # all equally unsure: the filter keeps the lowest indices
    pool = Pool(n=40, probabilities=p, embeddings=x)
    result = run_one("cluster_margin", pool, 6, {"margin_multiple": 10.0, "clusters": 4})
    groups = [int(i) // 1 for i in result.indices]
    which = np.searchsorted([20, 30, 35, 40], groups, side="right")
    # Smallest clusters first (the two of 5, then 10, then 20), then round two.
    assert which[:4].tolist() == [2, 3, 1, 0]
    assert sorted(which[4:].tolist()) == [2, 3]


def test_cluster_margin_rejects_a_k_it_cannot_cluster() -> None:
    from labelwise_server.errors import InvalidArgument

    n = hybrid.CLUSTER_MARGIN_MAX_KMEANS_ITEMS + 1
    rng = np.random.default_rng(0)
    pool = Pool(n=n, probabilities=random_probabilities(rng, n, 2), embeddings=np.ones((n, 1)))
    with pytest.raises(InvalidArgument, match=f"at most {n - 1}"):
        run_one("cluster_margin", pool, n)


# ---- ranked batch -----------------------------------------------------------------------------


def naive_ranked_batch(
    u: npt.NDArray[np.float64], x: npt.NDArray[np.float64], labeled: npt.NDArray[np.float64], k: int
) -> list[int]:
    """Cardoso et al.'s loop, every distance recomputed at every pick; cold start at the mean."""
    picks: list[int] = []
    if labeled.shape[0] == 0:
        picks.append(int(np.argmin(((x - x.mean(axis=0)) ** 2).sum(axis=1))))
    while len(picks) < k:
        centres = np.concatenate([labeled, x[picks]])
        left = [i for i in range(len(x)) if i not in picks]
        alpha = len(left) / (len(left) + len(centres))
        best, best_score = -1, -np.inf
        for i in left:
            distance = min(float(np.linalg.norm(x[i] - c)) for c in centres)
            score = alpha * (1 - 1 / (1 + distance)) + (1 - alpha) * u[i]
            if score > best_score:
                best, best_score = i, score
        picks.append(best)
    return picks


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ranked_batch_picks_what_modal_ranked_batch_picks(seed: int, metric: str) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, 6))
    labeled = rng.normal(size=(7, 6))
    p = random_probabilities(rng, 150, 4)
    u = 1 - p.max(axis=1)  # modAL's classifier_uncertainty
    learner = SimpleNamespace(on_transformed=False, X_training=labeled)
    theirs, _ = modal_ranked_batch(learner, x, u, 20, metric, None)
    ours, scores = hybrid.ranked_batch_select(u, x, labeled, np.arange(150), 20, metric=metric)
    np.testing.assert_array_equal(ours, theirs)
    assert np.all(scores <= 1.0) and np.all(scores >= 0.0)
    pool = Pool(n=150, probabilities=p, embeddings=x, labeled_embeddings=labeled)
    served = run_one("ranked_batch", pool, 20, {"metric": metric})
    np.testing.assert_array_equal(served.indices, theirs)


@pytest.mark.parametrize("labeled_count", [0, 3])
def test_ranked_batch_equals_the_naive_loop(labeled_count: int) -> None:
    rng = np.random.default_rng(labeled_count)
    x = rng.normal(size=(60, 3))
    labeled = rng.normal(size=(labeled_count, 3))
    u = rng.uniform(size=60)
    ours, _ = hybrid.ranked_batch_select(u, x, labeled, np.arange(60), 10)
    np.testing.assert_array_equal(ours, naive_ranked_batch(u, x, labeled, 10))
