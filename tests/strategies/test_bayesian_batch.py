"""batch_bald and power_bald: brute-force joint entropies, scikit-activeml, Plackett–Luce."""

import itertools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare
from skactiveml.pool import batch_bald

from labelwise_server.strategies import POWER_BASES, POWER_OFFSETS, STRATEGIES, bayesian
from labelwise_server.strategies.bayesian import batch_bald_select, power_sample
from tests.strategies.batch_support import batch_pool, run_one
from tests.strategies.support import random_committee, scores_of
from tests.strategies.test_common import _bounds

Array = npt.NDArray[np.float64]


def entropy(p: Array) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def joint_mutual_information(committee: Array, batch: list[int]) -> float:
    """I(y_B; w) = H(y_B) − Σ_i (1/m) Σ_k H(P_ki), H(y_B) by enumerating every configuration."""
    m = committee.shape[0]
    joint = np.ones((m, 1))  # p(configuration | w_k), one column per configuration
    for i in batch:
        joint = (joint[:, :, None] * committee[:, i, None, :]).reshape(m, -1)
    joint_entropy = entropy(joint.mean(axis=0))
    conditional = sum(np.mean([entropy(committee[k, i]) for k in range(m)]) for i in batch)
    return joint_entropy - conditional


def joint_mutual_information_loop(committee: Array, batch: list[int]) -> float:
    """The same, one configuration at a time, as the definition reads."""
    m, _, c = committee.shape
    joint = 0.0
    for labels in itertools.product(range(c), repeat=len(batch)):
        q = np.mean(
            [
                math.prod(committee[k, i, y] for i, y in zip(batch, labels, strict=True))
                for k in range(m)
            ]
        )
        joint -= q * math.log(q) if q > 0 else 0.0
    conditional = sum(np.mean([entropy(committee[k, i]) for k in range(m)]) for i in batch)
    return joint - conditional


def test_the_two_brute_force_joint_entropies_agree() -> None:
    committee = random_committee(np.random.default_rng(0), m=3, n=5, c=3, alpha=0.5)
    for batch in ([0], [1, 3], [4, 0, 2], [0, 1, 2, 3]):
        assert joint_mutual_information(committee, batch) == pytest.approx(
            joint_mutual_information_loop(committee, batch), abs=1e-12
        )


def naive_batch_bald(committee: Array, k: int) -> tuple[list[int], list[float]]:
    """The textbook greedy loop: the candidate whose addition has the largest joint MI."""
    batch: list[int] = []
    gains: list[float] = []
    before = 0.0
    for _ in range(k):
        best, best_value = -1, -np.inf
        for i in range(committee.shape[1]):
            if i in batch:
                continue
            value = joint_mutual_information(committee, [*batch, i])
            if value > best_value + 1e-12:
                best, best_value = i, value
        batch.append(best)
        gains.append(best_value - before)
        before = best_value
    return batch, gains


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_picks_and_gains_equal_brute_force_enumeration(seed: int, dtype: Any) -> None:
    committee = random_committee(np.random.default_rng(seed), m=4, n=9, c=3, alpha=0.7)
    expected, expected_gains = naive_batch_bald(committee, 4)
    picks, gains = batch_bald_select(committee.astype(dtype), np.arange(9), 4, seed)
    assert picks.tolist() == expected
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gains, expected_gains, atol=tolerance)
    # The gains add up to the batch's joint mutual information.
    assert gains.sum() == pytest.approx(joint_mutual_information(committee, expected), abs=1e-5)


@pytest.mark.parametrize("seed", range(2))
def test_pruning_never_changes_the_batch(seed: int) -> None:
    committee = random_committee(np.random.default_rng(seed), m=10, n=300, c=4, alpha=0.5)
    committee = committee.astype(np.float32)
    for max_exact in (2_000, 50):  # exact throughout (300+ rows: grouped bounds); sampled
        pruned = batch_bald_select(committee, np.arange(300), 7, seed, max_exact=max_exact)
        full = batch_bald_select(
            committee, np.arange(300), 7, seed, max_exact=max_exact, prune=False
        )
        np.testing.assert_array_equal(pruned[0], full[0])
        np.testing.assert_allclose(pruned[1], full[1], rtol=1e-6, atol=1e-6)


def _skactiveml(committee: Array, k: int, samples: int, seed: int) -> tuple[list[int], Array]:
    utilities = batch_bald(committee.copy(), k, n_MC_samples=samples, random_state=seed)
    picks = np.nanargmax(utilities, axis=1)
    return picks.tolist(), np.diff(utilities[np.arange(k), picks], prepend=0.0)


@pytest.mark.parametrize("seed", range(5))
def test_same_picks_and_gains_as_scikit_activeml_where_exact(seed: int) -> None:
    # Dirichlet(2) rows: no probabilities near the 1e-7 scikit-activeml clips to.
    committee = random_committee(np.random.default_rng(seed), m=10, n=80, c=3, alpha=2.0)
    theirs, their_gains = _skactiveml(committee, 6, 10_000, seed)  # 3^5 <= 10,000: exact
    ours, gains = batch_bald_select(committee, np.arange(80), 6, seed)
    assert ours.tolist() == theirs
    np.testing.assert_allclose(gains, their_gains, atol=1e-6)


def test_sampled_batches_are_as_good_as_scikit_activeml_sampled_ones() -> None:
    # 4^k configurations pass 64 from the fourth pick on, so both sample (64 draws, m = 8).
    ours_mi, theirs_mi, overlap = [], [], []
    for seed in range(8):
        committee = random_committee(np.random.default_rng(100 + seed), m=8, n=30, c=4)
        theirs, _ = _skactiveml(committee, 6, 64, seed)
        ours, _ = batch_bald_select(committee, np.arange(30), 6, seed, num_samples=64, max_exact=64)
        ours_mi.append(joint_mutual_information(committee, ours.tolist()))
        theirs_mi.append(joint_mutual_information(committee, theirs))
        overlap.append(len(set(ours.tolist()) & set(theirs)) / 6)
    # The exact-greedy part is shared; the sampled picks agree mostly, and the batches'
    # true joint MI (enumerated) is the same on average to within Monte Carlo noise.
    assert np.mean(overlap) >= 0.75
    assert abs(np.mean(ours_mi) - np.mean(theirs_mi)) <= 0.02 * np.mean(theirs_mi)


def test_sampled_gains_estimate_the_exact_ones() -> None:
    committee = random_committee(np.random.default_rng(7), m=6, n=12, c=3, alpha=0.5)
    exact, exact_gains = batch_bald_select(committee, np.arange(12), 5, 0)
    estimates = [
        batch_bald_select(committee, np.arange(12), 5, seed, num_samples=6_000, max_exact=1)
        for seed in range(4)
    ]
    for picks, gains in estimates:
        assert picks.tolist() == exact.tolist()
        np.testing.assert_allclose(gains, exact_gains, atol=0.01)
    mean_gains = np.mean([gains for _, gains in estimates], axis=0)
    np.testing.assert_allclose(mean_gains, exact_gains, atol=0.005)


def test_the_same_seed_gives_the_same_sampled_batch_and_another_seed_may_not() -> None:
    committee = random_committee(np.random.default_rng(3), m=5, n=200, c=6).astype(np.float32)
    runs = [
        batch_bald_select(committee, np.arange(200), 10, seed, num_samples=50, max_exact=6)
        for seed in (1, 1, 2)
    ]
    assert runs[0][0].tobytes() == runs[1][0].tobytes()
    assert runs[0][1].tobytes() == runs[1][1].tobytes()
    assert runs[0][1].tobytes() != runs[2][1].tobytes()


def test_batch_bald_first_pick_is_the_bald_maximum_and_a_copy_adds_nothing() -> None:
    committee = random_committee(np.random.default_rng(4), m=8, n=20, c=3, alpha=0.3)
    bald = scores_of("bald", committee=committee)
    first = int(np.argmax(bald))
    with_copy = np.concatenate([committee, committee[:, first : first + 1]], axis=1)  # item 20
    picks, gains = batch_bald_select(with_copy, np.arange(21), 6, 0)
    assert picks[0] == first and gains[0] == pytest.approx(bald[first], abs=1e-12)
    assert 20 not in picks.tolist()  # its gain is 0 once the original is in
    assert (np.diff(gains) <= 1e-12).all()  # submodular: exact gains never grow


def test_batch_bald_budget_skips_what_no_longer_fits() -> None:
    committee = random_committee(np.random.default_rng(5), m=6, n=10, c=3, alpha=0.4)
    costs = np.full(10, 1.0)
    ranking, _ = batch_bald_select(committee, np.arange(10), 10, 0)
    costs[ranking[1]] = 5.0  # the second pick is too dear for a budget of 3
    picks, _ = batch_bald_select(committee, np.arange(10), 10, 0, costs=costs, budget=3.0)
    assert picks[0] == ranking[0] and ranking[1] not in picks.tolist()
    assert len(picks) == 3


def _plackett_luce(weights: Array, order: tuple[int, ...]) -> float:
    left, probability = weights.sum(), 1.0
    for i in order:
        probability *= weights[i] / left
        left -= weights[i]
    return probability


def test_power_draws_follow_the_plackett_luce_probabilities() -> None:
    scores = np.array([0.05, 0.3, 0.15, 0.5])
    beta = 1.5
    weights = scores**beta
    orders = list(itertools.permutations(range(4), 2))
    counts = dict.fromkeys(orders, 0)
    draws = 6_000
    for seed in range(draws):
        picked = power_sample(scores, np.arange(4), 2, seed, beta=beta)
        counts[(int(picked[0]), int(picked[1]))] += 1
    expected = [draws * _plackett_luce(weights, order) for order in orders]
    observed = [counts[order] for order in orders]
    assert sum(expected) == pytest.approx(draws)
    assert chisquare(observed, expected).pvalue > 1e-3


def test_power_with_large_beta_is_the_top_k_and_zero_beta_is_uniform() -> None:
    scores = np.random.default_rng(6).uniform(0.01, 1.0, size=50)
    top = np.argsort(-scores)[:8]
    for seed in range(20):
        picked = power_sample(scores, np.arange(50), 8, seed, beta=1e6)
        np.testing.assert_array_equal(picked, top)
    firsts = np.bincount(
        [power_sample(scores, np.arange(50), 1, seed, beta=0.0)[0] for seed in range(5_000)],
        minlength=50,
    )
    assert chisquare(firsts).pvalue > 1e-3


def test_power_zero_and_negative_scores_come_last_but_can_be_drawn() -> None:
    scores = np.array([0.0, -1e-17, 0.4, 0.6, 0.0])  # BALD rounding can give −1e-17
    for seed in range(50):
        picked = power_sample(scores, np.arange(5), 5, seed)
        assert set(picked[:2].tolist()) == {2, 3}
        assert sorted(picked.tolist()) == [0, 1, 2, 3, 4]
    uniform = [power_sample(np.zeros(3), np.arange(3), 1, seed)[0] for seed in range(3_000)]
    assert chisquare(np.bincount(uniform, minlength=3)).pvalue > 1e-3


def test_power_noise_belongs_to_pool_items_so_exclusions_do_not_reshuffle() -> None:
    scores = np.random.default_rng(8).uniform(0.1, 1.0, size=30)
    everything = power_sample(scores, np.arange(30), 30, 3)
    candidates = np.setdiff1d(np.arange(30), everything[:5])
    rest = power_sample(scores, candidates, 25, 3)
    np.testing.assert_array_equal(rest, everything[5:])


def test_power_bases_are_the_row_wise_strategies_and_shift_to_non_negative() -> None:
    row_wise = {name for name, strategy in STRATEGIES.items() if strategy.block_score}
    assert set(POWER_BASES) == row_wise
    for base in POWER_BASES:
        low, _ = _bounds(base, {}, 3, 3)
        assert low + POWER_OFFSETS.get(base, 0.0) >= 0.0, base


@pytest.mark.parametrize("base", ["bald", "margin", "entropy", "mean_std"])
def test_power_bald_with_large_beta_takes_the_base_top_k_with_base_scores(base: str) -> None:
    pool = batch_pool(np.random.default_rng(9), n=60, c=4, m=5, dtype=np.float64)
    exclude = np.array([1, 2, 3], dtype=np.int64)
    result = run_one("power_bald", pool, 7, {"base": base, "beta": 1e5}, exclude=exclude)
    inputs: dict[str, Any] = {"committee": pool.committee}
    if STRATEGIES[base].needs == STRATEGIES["entropy"].needs:
        inputs = {"probabilities": pool.probabilities}
    scores = scores_of(base, **inputs)
    scores[exclude] = -np.inf
    np.testing.assert_array_equal(result.indices, np.argsort(-scores, kind="stable")[:7])
    np.testing.assert_array_equal(result.scores, scores[result.indices])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 25),
    k=st.integers(1, 25),
    budget=st.one_of(st.none(), st.floats(0.0, 15.0)),
    num_samples=st.integers(1, 40),
    max_exact=st.integers(1, 30),
    data=st.data(),
)
def test_batch_bald_batches_are_distinct_candidates_within_budget(
    seed: int,
    n: int,
    k: int,
    budget: float | None,
    num_samples: int,
    max_exact: int,
    data: st.DataObject,
) -> None:
    rng = np.random.default_rng(seed)
    committee = random_committee(rng, m=int(rng.integers(2, 5)), n=n, c=int(rng.integers(2, 5)))
    committee[:, rng.random(n) < 0.2] = committee[:, :1]  # duplicated items and exact ties
    costs = rng.uniform(0.5, 3.0, size=n)
    exclude = data.draw(st.sets(st.integers(0, n - 1), max_size=n - 1))
    candidates = np.setdiff1d(np.arange(n), sorted(exclude)).astype(np.int64)
    k = min(k, candidates.size)
    picks, gains = batch_bald_select(
        committee, candidates, k, seed, num_samples=num_samples, max_exact=max_exact,
        costs=None if budget is None else costs, budget=budget,
    )  # fmt: skip
    chosen = picks.tolist()
    assert len(chosen) == len(set(chosen)) <= k
    assert not set(chosen) & exclude
    assert np.isfinite(gains).all() and gains.shape == picks.shape
    if budget is None:
        assert len(chosen) == k
    else:
        assert costs[picks].sum() <= budget + 1e-9
        left = np.setdiff1d(candidates, picks)
        if len(chosen) < k and left.size:
            assert costs[left].min() > budget - costs[picks].sum()


def test_joint_labels_stay_within_the_posterior_memory_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bayesian, "_MAX_POSTERIOR_FLOATS", 64)  # 16 configurations for m = 4
    committee = random_committee(np.random.default_rng(12), m=4, n=30, c=3)
    joint = bayesian._JointLabels(committee, 0, num_samples=1_000, max_exact=1_000)
    for item in range(6):
        joint.add(item)
        assert joint.posterior.shape[0] <= 16
        assert joint.weights.sum() == pytest.approx(1.0)
    assert not joint.exact  # 3^3 > 16: sampling, with 16 draws
    picks, gains = batch_bald_select(committee, np.arange(30), 8, 0, num_samples=1_000)
    assert len(set(picks.tolist())) == 8 and np.isfinite(gains).all()


@pytest.mark.filterwarnings("error")  # no log(0) or 0/0 on the way
def test_batch_bald_on_one_hot_and_zero_heavy_committees_stays_finite() -> None:
    rng = np.random.default_rng(13)
    for trial in range(15):
        m, n, c = int(rng.integers(2, 6)), int(rng.integers(1, 15)), int(rng.integers(2, 5))
        raw = rng.choice([0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 1e-12, 0.3, 7.0, 1e6], size=(m, n, c))
        raw[..., 0] += raw.sum(axis=-1) == 0
        committee = raw / raw.sum(axis=-1, keepdims=True)
        for dtype in (np.float32, np.float64):
            for num_samples, max_exact in ((10_000, 10_000), (5, 3), (1, 1)):
                k = int(rng.integers(1, n + 1))
                picks, gains = batch_bald_select(
                    committee.astype(dtype), np.arange(n), k, trial,
                    num_samples=num_samples, max_exact=max_exact,
                )  # fmt: skip
                assert len(set(picks.tolist())) == k
                assert np.isfinite(gains).all()


def test_more_samples_than_the_cap_allows_draws_each_from_a_uniform_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bayesian, "_MAX_POSTERIOR_FLOATS", 32)  # 4 draws, m = 8
    committee = random_committee(np.random.default_rng(14), m=8, n=10, c=3)
    joint = bayesian._JointLabels(committee, 0, num_samples=100, max_exact=100)
    for item in range(3):
        joint.add(item)
        assert joint.posterior.shape[0] <= 4
    picks, gains = batch_bald_select(committee, np.arange(10), 5, 1)
    assert len(set(picks.tolist())) == 5 and np.isfinite(gains).all()
