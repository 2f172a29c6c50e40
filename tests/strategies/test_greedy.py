"""The budgeted greedy walk (strategies/greedy.py) against naive loops on random costs, budgets."""

import math

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise_server.strategies.greedy import Budget

FloatArray = npt.NDArray[np.float64]

# Costs from a few values (many ties and exact fits) or anything in (0, 3].
_cost = st.one_of(
    st.sampled_from([0.1, 0.2, 0.25, 0.3, 0.5, 1.0, 1.7]),
    st.floats(1e-3, 3.0, allow_nan=False, allow_infinity=False),
)
_costs = st.lists(_cost, min_size=0, max_size=40)
_budget = st.one_of(st.none(), st.floats(0.0, 12.0, allow_nan=False, allow_infinity=False))
_scores = st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5]), min_size=40, max_size=40)


def naive_walk(
    order: list[int], costs: list[float] | None, budget: float | None, k: int
) -> list[int]:
    """Best first, keep each item whose cost is at most what is left, until k are kept."""
    left = math.inf if budget is None else budget
    kept: list[int] = []
    for item in order:
        if len(kept) == k:
            break
        cost = 0.0 if costs is None else costs[item]
        if cost <= left:
            kept.append(item)
            left -= cost
    return kept


def naive_greedy(
    scores: list[float], costs: list[float] | None, budget: float | None, k: int
) -> list[int]:
    """Each pick: the best item not yet taken among those whose cost is at most what is left."""
    left = math.inf if budget is None else budget
    taken: list[int] = []
    while len(taken) < k:
        fitting = [
            i for i in range(len(scores)) if i not in taken and (costs is None or costs[i] <= left)
        ]
        if not fitting:
            break
        best = max(fitting, key=lambda i: (scores[i], -i))  # ties to the lower index
        taken.append(best)
        left -= 0.0 if costs is None else costs[best]
    return taken


def dropping_greedy(scores: list[float], spend: Budget, k: int) -> list[int]:
    """k-center's and the regression strategies' loop: argmax; on a miss drop all over budget."""
    values = np.asarray(scores, dtype=np.float64)
    taken: list[int] = []
    while len(taken) < k and values.size:
        best = int(np.argmax(values))
        if values[best] < 0:
            break
        if not spend.fits(best):
            spend.drop(values, -1.0)
            continue
        taken.append(best)
        spend.take(best)
        values[best] = -1.0
    return taken


def narrowing_greedy(scores: list[float], spend: Budget, k: int) -> list[int]:
    """BatchBALD's and ranked-batch's loop: an alive mask narrowed before every pick."""
    values = np.asarray(scores, dtype=np.float64)
    alive = np.ones(values.shape[0], dtype=bool)
    taken: list[int] = []
    while len(taken) < k:
        spend.narrow(alive)
        if not alive.any():
            break
        best = int(np.argmax(np.where(alive, values, -np.inf)))
        taken.append(best)
        spend.take(best)
        alive[best] = False
    return taken


@settings(max_examples=300, deadline=None)
@given(_costs, _budget, st.integers(1, 45), st.randoms(use_true_random=False), st.booleans())
def test_walk_equals_a_naive_walk(
    costs: list[float], budget: float | None, k: int, random: object, with_costs: bool
) -> None:
    order = list(range(len(costs)))
    random.shuffle(order)  # type: ignore[attr-defined]
    cost_array = np.asarray(costs, dtype=np.float64) if with_costs else None
    got = Budget(cost_array, budget).walk(np.asarray(order, dtype=np.int64), k)
    assert got.tolist() == naive_walk(order, costs if with_costs else None, budget, k)
    assert got.dtype == np.int64


@settings(max_examples=300, deadline=None)
@given(_costs, _budget, st.integers(1, 45), _scores, st.booleans())
def test_greedy_loops_equal_the_naive_greedy(
    costs: list[float], budget: float | None, k: int, all_scores: list[float], with_costs: bool
) -> None:
    scores = all_scores[: len(costs)]
    cost_array = np.asarray(costs, dtype=np.float64) if with_costs else None
    expected = naive_greedy(scores, costs if with_costs else None, budget, k)
    assert dropping_greedy(scores, Budget(cost_array, budget), k) == expected
    assert narrowing_greedy(scores, Budget(cost_array, budget), k) == expected
    if with_costs and budget is not None:
        assert math.fsum(costs[i] for i in expected) <= budget + 1e-9


@settings(max_examples=200, deadline=None)
@given(_costs, _budget, st.randoms(use_true_random=False))
def test_first_fitting_is_the_first_item_of_the_order_that_fits(
    costs: list[float], budget: float | None, random: object
) -> None:
    order = list(range(len(costs)))
    random.shuffle(order)  # type: ignore[attr-defined]
    spend = Budget(np.asarray(costs, dtype=np.float64), budget)
    expected = next((i for i in order if spend.fits(i)), None)
    assert spend.first_fitting(np.asarray(order, dtype=np.int64)) == expected
    assert spend.left == (math.inf if budget is None else budget)  # nothing was taken


def test_without_costs_everything_fits_and_nothing_is_spent() -> None:
    spend = Budget(None, 0.5)
    values = np.array([1.0, 2.0])
    alive = np.ones(2, dtype=bool)
    spend.take(0)
    spend.drop(values, -1.0)
    spend.narrow(alive)
    assert spend.fits(1) and spend.left == 0.5
    assert values.tolist() == [1.0, 2.0] and alive.all()
    assert Budget(None, 0.0).walk(np.array([3, 1, 2]), 2).tolist() == [3, 1]
    assert Budget(None, None).first_fitting(np.empty(0, dtype=np.int64)) is None


def test_the_budget_only_shrinks_so_a_dropped_item_stays_dropped() -> None:
    spend = Budget(np.array([1.0, 0.5, 0.6]), 1.2)
    assert [spend.fits(i) for i in range(3)] == [True, True, True]
    spend.take(1)  # 0.7 left
    values = np.array([3.0, -1.0, 2.0])
    spend.drop(values, -1.0)
    assert values.tolist() == [-1.0, -1.0, 2.0]  # 1.0 no longer fits; a gone item stays gone
    spend.take(2)
    assert not any(spend.fits(i) for i in range(3))
    assert spend.left == (1.2 - 0.5) - 0.6  # in pick order, in float64
