"""class_balance: the starving case it prevents, the power draw within each class, and the
fast path against naive loops."""

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from labelwise_server.strategies import STRATEGIES, Pool, balance
from tests.strategies.batch_support import batch_pool, run_one


def _starving_pool(rng: np.random.Generator, n: int = 300) -> Pool:
    """Classes 0 and 1 confused with each other (high entropy); class 2, a quarter of the
    pool, predicted confidently: entropy's top items never include it."""
    confused = rng.uniform(0.35, 0.5, size=n)
    p = np.stack([confused, 0.98 - confused, np.full(n, 0.02)], axis=1)
    sure = rng.permutation(n)[: n // 4]
    p[sure] = rng.dirichlet([1, 1, 30], size=sure.shape[0])
    return Pool(n=n, probabilities=p)


def test_entropy_starves_the_confident_class_and_class_balance_does_not() -> None:
    pool = _starving_pool(np.random.default_rng(0))
    assert pool.probabilities is not None
    predicted = pool.probabilities.argmax(axis=1)
    plain = run_one("entropy", pool, 30)
    balanced = run_one("entropy", pool, 30, {"class_balance": True})
    assert np.sum(predicted[plain.indices] == 2) == 0  # the failure, without the parameter
    counts = np.bincount(predicted[balanced.indices], minlength=3)
    assert counts.tolist() == [10, 10, 10]


def _naive_quotas(available: list[int], k: int) -> list[int]:
    """One pick at a time to the class with the fewest so far that has candidates left;
    ties to the class with more candidates left, then the lower class."""
    share = [0] * len(available)
    for _ in range(min(k, sum(available))):
        open_ = [c for c in range(len(available)) if share[c] < available[c]]
        c = min(open_, key=lambda c: (share[c], -(available[c] - share[c]), c))
        share[c] += 1
    return share


@pytest.mark.parametrize("seed", range(20))
def test_quotas_equal_one_pick_at_a_time(seed: int) -> None:
    rng = np.random.default_rng(seed)
    available = rng.integers(0, 12, size=int(rng.integers(1, 7)))
    k = int(rng.integers(1, 50))
    assert balance.quotas(available, k).tolist() == _naive_quotas(available.tolist(), k)


def _naive_keys(scores: npt.NDArray[Any], name: str, n: int, seed: int) -> dict[int, float]:
    """The draw key of every candidate (scores: NaN for non-candidates), item by item: log of
    the score (margin + 1), raised to 1e-12 × the largest, plus the pool item's Gumbel noise
    (PCG64 from [seed, 0xBA1A], one value per pool item)."""
    noise = np.random.default_rng([seed, 0xBA1A]).gumbel(size=n)
    offset = 1.0 if name == "margin" else 0.0
    candidates = [i for i in range(n) if not np.isnan(scores[i])]
    top = max(scores[i] + offset for i in candidates)
    return {i: float(np.log(max(scores[i] + offset, top * 1e-12)) + noise[i]) for i in candidates}


def _naive_drawn(keys: dict[int, float], classes: npt.NDArray[Any], k: int) -> list[int]:
    """One pick at a time: the class with the fewest picks (among those with items left)
    gives its item of largest key; ties to the class whose next item has the larger key,
    then the lower index."""
    left = {c: sorted((i for i in keys if classes[i] == c), key=lambda i: (-keys[i], i))
            for c in sorted({int(classes[i]) for i in keys})}  # fmt: skip
    picked = dict.fromkeys(left, 0)
    chosen: list[int] = []
    for _ in range(min(k, len(keys))):
        open_ = [c for c in left if left[c]]
        c = min(open_, key=lambda c: (picked[c], -keys[left[c][0]], left[c][0]))
        chosen.append(left[c].pop(0))
        picked[c] += 1
    return chosen


def _all_scores(name: str, pool: Pool, seed: int) -> npt.NDArray[Any]:
    full = run_one(name, pool, pool.n, seed=seed)
    scores = np.full(pool.n, np.nan)
    scores[full.indices] = full.scores
    return scores


@pytest.mark.parametrize("name", ["entropy", "margin", "least_confidence", "random", "bald"])
@pytest.mark.parametrize("seed", range(4))
def test_a_balanced_score_strategy_equals_one_pick_at_a_time(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = batch_pool(rng, n=80, c=4)
    k = int(rng.integers(1, 60))
    scores = _all_scores(name, pool, seed)
    assert pool.probabilities is not None and pool.committee is not None
    source = pool.committee.mean(axis=0) if name == "bald" else pool.probabilities
    if name == "bald":
        pool = Pool(n=pool.n, committee=pool.committee)  # no probabilities: the committee's
    classes = source.argmax(axis=1)
    balanced = run_one(name, pool, k, {"class_balance": True}, seed=seed)
    chosen = _naive_drawn(_naive_keys(scores, name, pool.n, seed), classes, k)
    expected = sorted(chosen, key=lambda i: (-scores[i], i))
    assert balanced.indices.tolist() == expected
    np.testing.assert_array_equal(balanced.scores, scores[balanced.indices])


def test_a_balanced_score_strategy_skips_excluded_items_with_the_same_keys() -> None:
    """An item's draw key is its own (noise per pool item): excluding others does not
    change which of the remaining items a class draws first."""
    rng = np.random.default_rng(8)
    pool = batch_pool(rng, n=90, c=3)
    scores = _all_scores("entropy", pool, 4)
    exclude = np.arange(0, 90, 7, dtype=np.int64)
    result = run_one("entropy", pool, 9, {"class_balance": True}, seed=4, exclude=exclude)
    assert pool.probabilities is not None
    scores[exclude] = np.nan
    keys = _naive_keys(scores, "entropy", pool.n, 4)
    chosen = _naive_drawn(keys, pool.probabilities.argmax(axis=1), 9)
    assert sorted(result.indices.tolist()) == sorted(chosen)
    assert not set(result.indices.tolist()) & set(exclude.tolist())


def test_the_draw_within_a_class_is_proportional_to_the_score() -> None:
    """One predicted class, k = 1: over many seeds item i comes first with probability
    s_i / Σ s (power sampling, β = 1); margin enters as 1 + margin. A chi-square test at
    a level that a correct draw fails once in 10^6 runs."""
    from scipy import stats

    n, seeds = 6, 3000
    p = np.zeros((n, 3))
    p[:, 0] = np.linspace(0.4, 0.95, n)  # every item predicted class 0
    p[:, 1] = (1 - p[:, 0]) * 0.7
    p[:, 2] = 1 - p[:, 0] - p[:, 1]
    pool = Pool(n=n, probabilities=p)
    for name in ("entropy", "margin"):
        scores = _all_scores(name, pool, 0) + (1.0 if name == "margin" else 0.0)
        counts = np.zeros(n)
        for seed in range(seeds):
            first = run_one(name, pool, 1, {"class_balance": True}, seed=seed).indices[0]
            counts[first] += 1
        expected = seeds * scores / scores.sum()
        assert stats.chisquare(counts, expected).pvalue > 1e-6, (name, counts, expected)
        # and it is a draw, not the top: the lowest-scored item is drawn too
        assert counts[np.argmin(scores)] > 0


def test_a_balanced_score_strategy_walks_the_budget_in_draw_order() -> None:
    rng = np.random.default_rng(5)
    pool = batch_pool(rng, n=60, c=3, costs=True)
    assert pool.probabilities is not None and pool.costs is not None
    scores = _all_scores("margin", pool, 0)
    keys = _naive_keys(scores, "margin", pool.n, 0)
    order = _naive_drawn(keys, pool.probabilities.argmax(axis=1), pool.n)
    kept, spent = [], 0.0
    for i in order:
        if spent + pool.costs[i] <= 12.0 and len(kept) < 10:
            kept.append(i)
            spent += pool.costs[i]
    result = run_one("margin", pool, 10, {"class_balance": True}, budget=12.0)
    assert result.indices.tolist() == sorted(kept, key=lambda i: (-scores[i], i))
    assert result.total_cost == pytest.approx(spent)


@pytest.mark.parametrize("name", ["core_set", "badge", "typiclust", "cluster_margin", "batch_bald"])
def test_a_balanced_batch_strategy_is_its_runs_on_each_predicted_class(name: str) -> None:
    rng = np.random.default_rng(7)
    pool = batch_pool(rng, n=60, c=3)
    assert pool.probabilities is not None and pool.committee is not None
    source = pool.committee.mean(axis=0) if name == "batch_bald" else pool.probabilities
    if name == "batch_bald":
        pool = Pool(n=pool.n, committee=pool.committee, embeddings=pool.embeddings,
                    labeled_embeddings=pool.labeled_embeddings)  # fmt: skip
    classes = source.argmax(axis=1)
    k = 11
    available = [int(np.sum(classes == c)) for c in range(3)]
    share = _naive_quotas(available, k)
    runs = []
    for c in range(3):
        if share[c]:
            others = np.flatnonzero(classes != c).astype(np.int64)
            runs.append(run_one(name, pool, share[c], seed=3, exclude=others).indices.tolist())
    expected = [run[j] for j in range(max(map(len, runs))) for run in runs if j < len(run)]
    result = run_one(name, pool, k, {"class_balance": True}, seed=3)
    assert result.indices.tolist() == expected
    assert np.bincount(classes[result.indices], minlength=3).tolist() == share


def test_every_classification_strategy_on_model_outputs_takes_class_balance() -> None:
    for name, strategy in STRATEGIES.items():
        on_outputs = strategy.task == "classification" and name not in ("deepfool", "auto")
        assert ("class_balance" in strategy.params) == on_outputs, name


BALANCED = [name for name, s in STRATEGIES.items() if "class_balance" in s.params]


@pytest.mark.parametrize("name", BALANCED)
def test_every_balanced_strategy_keeps_the_quotas(name: str) -> None:
    """k distinct candidates, and per predicted class exactly the one-at-a-time quota."""
    rng = np.random.default_rng(11)
    pool = batch_pool(rng, n=50, c=3)
    assert pool.probabilities is not None and pool.committee is not None
    exclude = np.array([1, 4, 9, 16, 25], dtype=np.int64)
    params: dict[str, Any] = {"class_balance": True}
    if name == "probcover":
        params["delta"] = 1.0
    result = run_one(name, pool, 12, params, seed=2, exclude=exclude)
    picks = result.indices.tolist()
    assert len(picks) == len(set(picks)) == 12 and not set(picks) & set(exclude.tolist())
    classes = pool.probabilities.argmax(axis=1)  # present, so every strategy reads it
    keep = np.setdiff1d(np.arange(50), exclude)
    assert min(np.bincount(classes[keep], minlength=3)) >= 4  # every class can fill its quota
    assert np.bincount(classes[result.indices], minlength=3).tolist() == [4, 4, 4]
