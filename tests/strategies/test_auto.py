"""auto: the bandit's parts against naive loops, and its picks against its arms' own."""

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from labelwise_server.selection import Result, select
from labelwise_server.strategies import STRATEGIES, Pool, Task, auto
from labelwise_server.strategies._types import History, HistoryRound
from labelwise_server.strategies.registry import run_arm
from labelwise_server.validation import Selection, StrategyCall

ARMS = ("margin", "entropy", "random")
# The tests without predictions in their history score arms by TAILOR's reward alone.
CLASS_DIVERSITY = {"arms": ",".join(ARMS), "reward": "class_diversity"}


def _history(rounds: list[tuple[list[str] | str, list[int]]]) -> History:
    return History(
        tuple(
            HistoryRound((names,) if isinstance(names, str) else tuple(names), np.array(labels))
            for names, labels in rounds
        )
    )


def _run(
    pool: Pool,
    k: int,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    budget: float | None = None,
) -> Result:
    strategy = STRATEGIES["auto"]
    filled = {name: p.default for name, p in strategy.params.items()} | (params or {})
    task = Task(k=k, candidates=np.arange(pool.n, dtype=np.int64), seed=seed, budget=budget)
    [result] = select(Selection(pool, (StrategyCall(strategy, filled, "strategies[0]"),), task))
    return result


def _naive_posterior(
    history: History, arms: tuple[str, ...], c: int, discount: float, prior_items: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(Dirichlet parameters [A, c], class weights [c]) item by item, with plain loops."""
    counts = [0.0] * c
    evidence = [[0.0] * c for _ in arms]
    rounds = history.rounds
    for r, round_ in enumerate(rounds):
        age = len(rounds) - 1 - r
        for j, label in enumerate(round_.labels.tolist()):
            counts[label] += 1
            name = round_.strategies[0] if len(round_.strategies) == 1 else round_.strategies[j]
            if name in arms:
                evidence[arms.index(name)][label] += discount**age
    total = sum(counts)
    alpha = [
        [evidence[a][y] + prior_items * (counts[y] + 1) / (total + c) for y in range(c)]
        for a in range(len(arms))
    ]
    weights = [1.0 / max(1.0, n) for n in counts]
    return np.array(alpha), np.array(weights)


def test_posterior_equals_an_item_by_item_count() -> None:
    rng = np.random.default_rng(0)
    c = 4
    rounds: list[tuple[list[str] | str, list[int]]] = [("", rng.integers(0, c, 8).tolist())]
    for _ in range(6):
        b = int(rng.integers(1, 9))
        names = rng.choice(["margin", "entropy", "random", "bald", ""], size=b).tolist()
        rounds.append((names, rng.integers(0, c, b).tolist()))
    rounds.append(("entropy", [3, 3]))
    history = _history(rounds)
    counts = auto.class_counts(history, c)
    evidence = auto.arm_evidence(history, ARMS, c, 0.7)
    alpha = auto.posterior(evidence, counts, 5.0)
    naive_alpha, naive_weights = _naive_posterior(history, ARMS, c, 0.7, 5.0)
    np.testing.assert_allclose(alpha, naive_alpha, rtol=1e-12)
    np.testing.assert_allclose(auto.class_weights(counts), naive_weights, rtol=1e-12)


def test_rare_surprise_evidence_splits_each_item_by_what_the_model_knew() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    history = History(
        (
            HistoryRound(("",), np.array([0, 1])),
            HistoryRound(("margin", "random", "margin"), np.array([0, 2, 1]), p),
        )
    )
    evidence = auto.arm_evidence(history, ("margin", "random"), 3, 0.5, "rare_surprise")
    # margin: item 0 (label 0, p̂ 0.7) and item 2 (label 1, p̂ 0.3); random: label 2, p̂ 0.8.
    np.testing.assert_allclose(evidence[0], [0.3, 0.7, 0.0, 1.0])
    np.testing.assert_allclose(evidence[1], [0.0, 0.0, 0.2, 0.8])
    alpha = auto.posterior(evidence, auto.class_counts(history, 3), 4.0)
    prior = 4.0 * (np.array([2.0, 2.0, 1.0]) + 1) / (5 + 3) / 2  # counts 2, 2, 1 of 5
    np.testing.assert_allclose(alpha[1], np.append(prior + np.array([0.0, 0.0, 0.2]), 2.8))


def _naive_surprise_rewards(
    history: History, arms: tuple[str, ...], discount: float, prior_items: float
) -> list[float]:
    """Each arm's posterior mean reward under `surprise`, item by item: a Beta over "the model
    was wrong" with prior prior_items / 2 on each side, an item adding 1 − p̂_y to the one
    and p̂_y to the other, weighted discount^age."""
    wrong = [prior_items / 2] * len(arms)
    knew = [prior_items / 2] * len(arms)
    rounds = history.rounds
    for r, round_ in enumerate(rounds):
        for j, label in enumerate(round_.labels.tolist()):
            name = round_.strategies[0] if len(round_.strategies) == 1 else round_.strategies[j]
            if name in arms:
                assert round_.probabilities is not None
                p = float(round_.probabilities[j, label])
                a = arms.index(name)
                wrong[a] += discount ** (len(rounds) - 1 - r) * (1 - p)
                knew[a] += discount ** (len(rounds) - 1 - r) * p
    return [w / (w + k) for w, k in zip(wrong, knew, strict=True)]


def test_surprise_is_a_beta_on_how_often_the_model_was_wrong() -> None:
    """The surprise reward weighs every class the same: an arm's expected reward is its
    discounted rate of surprise (Σ 1 − p̂_y over its items), whatever the classes."""
    rng = np.random.default_rng(12)
    c = 4
    rounds = [HistoryRound(("",), rng.integers(0, c, 8))]
    for _ in range(5):
        b = int(rng.integers(2, 9))
        names = tuple(rng.choice(["margin", "random", "entropy", ""], size=b).tolist())
        rounds.append(HistoryRound(names, rng.integers(0, c, b), rng.dirichlet(np.ones(c), b)))
    history = History(tuple(rounds))
    pool = Pool(n=50, probabilities=rng.dirichlet(np.ones(c), size=50), history=history)
    params = {"arms": "margin,random", "reward": "surprise", "discount": 0.8, "prior_items": 6.0}
    result = _run(pool, 5, params=params)
    assert result.auto is not None and result.auto.reward == "surprise"
    naive = _naive_surprise_rewards(history, ("margin", "random"), 0.8, 6.0)
    got = [arm.expected_reward for arm in result.auto.arms]
    np.testing.assert_allclose(got, naive, rtol=1e-12)
    # the class weights play no part: relabelling every class keeps the rewards
    evidence = auto.arm_evidence(history, ("margin", "random"), c, 0.8, "surprise")
    np.testing.assert_allclose(
        evidence, auto.arm_evidence(history, ("margin", "random"), c, 0.8, "rare_surprise")
    )


def test_surprise_prefers_the_arm_the_model_got_wrong() -> None:
    rng = np.random.default_rng(10)
    rounds = [HistoryRound(("",), np.array([0, 1, 2] * 4))]
    for _ in range(6):
        labels = np.array([0, 1, 2] * 3)
        for name, known in (("margin", 0.3), ("random", 0.8)):
            p = np.full((9, 3), (1 - known) / 2)
            p[np.arange(9), labels] = known
            rounds.append(HistoryRound((name,), labels, p))
    pool = Pool(
        n=200, probabilities=rng.dirichlet(np.ones(3), size=200), history=History(tuple(rounds))
    )
    result = _run(pool, 40, params={"arms": "margin,random", "reward": "surprise"})
    assert result.auto is not None
    assert {arm.name: arm.weight for arm in result.auto.arms}["margin"] > 0.9


def test_rare_surprise_needs_the_rounds_probabilities() -> None:
    from labelwise_server.errors import InvalidArgument

    rng = np.random.default_rng(9)
    pool = Pool(n=30, probabilities=rng.dirichlet(np.ones(3), size=30),
                history=_history([("", [0, 1]), ("margin", [2])]))  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        _run(pool, 3, params={"reward": "rare_surprise"})
    assert info.value.field == "history[1].probabilities"


def test_thompson_draws_match_one_draw_at_a_time() -> None:
    """The chunked draws equal draw-by-draw sampling in the same stream order."""
    alpha = np.array([[3.0, 1.0, 0.5], [1.0, 2.0, 2.0]])
    weights = np.array([0.2, 0.5, 1.0])
    winners, rewards = auto.thompson_draws(alpha, weights, 40, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    samples = np.stack([rng.dirichlet(alpha[a], size=40) @ weights for a in range(2)])
    naive = [int(np.argmax(samples[:, j])) for j in range(40)]  # no ties in continuous draws
    assert winners.tolist() == naive
    np.testing.assert_allclose(rewards, samples.max(axis=0))


def test_ties_are_drawn_uniformly() -> None:
    """With every class weighing the same, every arm's reward is Σ μ̃ = 1: all tie."""
    alpha = np.ones((4, 3))
    winners, _ = auto.thompson_draws(alpha, np.ones(3), 4000, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(winners, minlength=4) / 4000, 0.25, atol=0.03)


def test_an_arm_that_starves_a_class_loses_to_one_that_finds_it() -> None:
    """The issue's failure: entropy keeps picking classes 0 and 1 while class 2 (a quarter
    of the data) stays unlabeled; random finds class 2 at its share. Class 2's weight grows
    and the posterior moves the batch to random."""
    rng = np.random.default_rng(1)
    rounds: list[tuple[list[str] | str, list[int]]] = [("", [0, 0, 1, 1, 2, 2])]
    for _ in range(8):
        rounds.append(("entropy", rng.choice([0, 1], size=10).tolist()))
        rounds.append(("random", rng.choice([0, 1, 2], p=[0.375, 0.375, 0.25], size=10).tolist()))
    pool = Pool(n=300, probabilities=rng.dirichlet(np.ones(3), size=300), history=_history(rounds))
    result = _run(pool, k=20, params={"arms": "entropy,random", "reward": "class_diversity"})
    assert result.auto is not None
    weights = {arm.name: arm.weight for arm in result.auto.arms}
    assert weights["random"] > 0.9
    expected = {arm.name: arm.expected_reward for arm in result.auto.arms}
    assert expected["random"] > expected["entropy"]


def test_with_balanced_classes_rare_surprise_prefers_the_arm_the_model_got_wrong() -> None:
    """Balanced labels make class diversity flat; the model's surprise still separates an arm
    that finds its mistakes (p̂ of the label 0.2) from one that picks what it knows (0.9)."""
    rng = np.random.default_rng(10)
    rounds = [HistoryRound(("",), np.array([0, 1, 2] * 4))]
    for _ in range(6):
        labels = np.array([0, 1, 2] * 3)
        for name, known in (("margin", 0.2), ("random", 0.9)):
            p = np.full((9, 3), (1 - known) / 2)
            p[np.arange(9), labels] = known
            rounds.append(HistoryRound((name,), labels, p))
    pool = Pool(
        n=200, probabilities=rng.dirichlet(np.ones(3), size=200), history=History(tuple(rounds))
    )
    surprise = _run(pool, 40, params={"arms": "margin,random"})
    flat = _run(pool, 40, params={"arms": "margin,random", "reward": "class_diversity"})
    assert surprise.auto is not None and flat.auto is not None
    weights = {arm.name: arm.weight for arm in surprise.auto.arms}
    assert weights["margin"] > 0.9
    assert {arm.name: arm.picks for arm in flat.auto.arms}["margin"] < 30


def test_without_history_every_arm_has_the_same_posterior() -> None:
    rng = np.random.default_rng(2)
    pool = Pool(n=2000, probabilities=rng.dirichlet(np.ones(4), size=2000))
    result = _run(pool, k=900, params=CLASS_DIVERSITY)
    assert result.auto is not None
    shares = [arm.weight for arm in result.auto.arms]
    assert sum(arm.picks for arm in result.auto.arms) == 900
    np.testing.assert_allclose(shares, 1 / 3, atol=0.06)
    assert result.auto.history_rounds == 0 and result.auto.history_items == 0


def test_each_pick_is_the_next_unpicked_item_of_its_arm() -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), size=120)
    history = _history([("", [0, 1, 2]), (["margin", "entropy", "random"], [0, 2, 1])])
    pool = Pool(n=120, probabilities=p, history=history)
    result = _run(pool, k=30, seed=5, params=CLASS_DIVERSITY)
    assert result.auto is not None
    assert len(set(result.indices.tolist())) == 30
    assert list(result.auto.strategies) and len(result.auto.strategies) == 30
    candidates = np.arange(120, dtype=np.int64)
    for a, name in enumerate(ARMS):
        task = Task(k=30, candidates=candidates, seed=auto.arm_seed(5, a))
        own = run_arm(pool, task, name)[0].tolist()
        taken: set[int] = set()
        for item, arm in zip(result.indices.tolist(), result.auto.strategies, strict=True):
            if arm == name:
                assert item == next(i for i in own if i not in taken)
            taken.add(item)


def test_the_same_request_gives_the_same_answer_and_the_seed_matters() -> None:
    rng = np.random.default_rng(4)
    history = _history([("", [0, 1, 2, 3]), ("margin", [1, 1, 2])])
    pool = Pool(n=200, probabilities=rng.dirichlet(np.ones(4), size=200), history=history)
    first, again, other = (_run(pool, 25, seed=s, params=CLASS_DIVERSITY) for s in (9, 9, 10))
    assert first.indices.tolist() == again.indices.tolist()
    assert first.scores.tobytes() == again.scores.tobytes() and first.auto == again.auto
    assert first.indices.tolist() != other.indices.tolist()


def test_pick_order_shares_a_large_k_by_the_wins() -> None:
    winners = np.array([0] * 600 + [1] * 300 + [2] * 124)
    order = auto.pick_order(winners, 3, 5000)
    counts = np.bincount(order, minlength=3)
    assert counts.sum() == 5000
    np.testing.assert_allclose(counts / 5000, np.bincount(winners) / winners.shape[0], atol=1e-3)
    # Spread evenly: every prefix holds each arm near its share.
    prefix = np.bincount(order[:1000], minlength=3) / 1000
    np.testing.assert_allclose(prefix, counts / 5000, atol=0.01)


def test_assemble_passes_an_exhausted_arms_pick_on() -> None:
    rankings = [np.array([5, 6]), np.array([5, 7, 8]), None]
    indices, arms = auto.assemble(np.array([0, 1, 0, 0, 1]), rankings)
    assert indices.tolist() == [5, 7, 6, 8]
    assert arms.tolist() == [0, 1, 0, 1]


def test_a_budget_keeps_the_picks_that_fit_in_pick_order_and_walks_on() -> None:
    """Each pick slot's arm takes its best item that still fits, so the picks both runs share
    keep their order, and the walk goes past the unbudgeted k picks until nothing fits (it
    used to stop at them: k = 1 with a first pick over budget chose nothing)."""
    rng = np.random.default_rng(6)
    costs = rng.uniform(0.5, 3.0, size=100)
    pool = Pool(n=100, probabilities=rng.dirichlet(np.ones(3), size=100), costs=costs)
    free = _run(pool, 10, seed=1, params=CLASS_DIVERSITY)
    spent = _run(pool, 10, seed=1, params=CLASS_DIVERSITY, budget=8.0)
    total = costs[spent.indices].sum()
    assert total <= 8.0
    both = set(spent.indices.tolist()) & set(free.indices.tolist())
    assert [i for i in spent.indices.tolist() if i in both] == [
        i for i in free.indices.tolist() if i in both
    ]
    left = np.setdiff1d(np.arange(100), spent.indices)
    assert spent.indices.shape[0] == 10 or costs[left].min() > 8.0 - total
    assert spent.indices.shape[0] > len(both)  # it went past the unbudgeted picks
    assert spent.auto is not None and len(spent.auto.strategies) == spent.indices.shape[0]
    # One pick, the arms' first choices over budget: a cheaper item is still taken.
    one = _run(pool, 1, seed=1, params=CLASS_DIVERSITY, budget=float(costs.min()))
    assert one.indices.tolist() == [int(np.argmin(costs))]


def test_history_labels_outside_the_classes_are_refused() -> None:
    from labelwise_server.errors import InvalidArgument

    rng = np.random.default_rng(8)
    pool = Pool(n=50, probabilities=rng.dirichlet(np.ones(3), size=50),
                history=_history([("", [0, 1]), ("margin", [2, 3])]))  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        _run(pool, 5)
    assert info.value.field == "history[1].labels[1]"
