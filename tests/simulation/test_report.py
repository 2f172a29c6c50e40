"""The report's arithmetic: first reach, AULC, bootstrap savings, bounds, paired differences."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from labelwise_simulate.defaults import Protocol
from labelwise_simulate.loop import Curve, StrategyPlan
from labelwise_simulate.report import (
    AT_LEAST,
    AT_MOST,
    BETTER,
    MEASURED,
    UNKNOWN,
    WORSE,
    Difference,
    aulc,
    bootstrap_saving,
    bound_kind,
    dataset_table,
    first_reach,
    from_json,
    paired_difference,
    saving_text,
    summarize,
    to_json,
)
from labelwise_simulate.runner import DatasetResult, Results, Settings


def test_first_reach_and_aulc() -> None:
    labels, accuracy = [4, 14, 24], [0.5, 0.8, 0.9]
    assert first_reach(labels, accuracy, 0.8) == 14
    assert first_reach(labels, accuracy, 0.95) is None
    # Trapezoids: (0.65 * 10 + 0.85 * 10) / 20.
    assert aulc(np.array(labels, float), np.array(accuracy)) == pytest.approx(0.75)


def test_bootstrap_saving_is_zero_for_equal_runs_and_brackets_its_estimate() -> None:
    rng = np.random.default_rng(0)
    same = bootstrap_saving(np.array([50.0, 60, 70]), np.array([50.0, 60, 70]), rng)
    assert same.percent == pytest.approx(0) and same.low <= 0 <= same.high
    assert not same.censored
    half = bootstrap_saving(np.array([40.0, 50, 60]), np.array([100.0, 90, 110]), rng)
    assert half.percent == pytest.approx(50)
    assert half.low <= half.percent <= half.high and half.low > 0


def test_a_bound_says_which_side_fell_short() -> None:
    assert bound_kind(strategy_complete=True, random_complete=True) == MEASURED
    # Random fell short: its true need is larger than counted, so the saving is at least this.
    assert bound_kind(strategy_complete=True, random_complete=False) == AT_LEAST
    assert bound_kind(strategy_complete=False, random_complete=True) == AT_MOST
    assert bound_kind(strategy_complete=False, random_complete=False) == UNKNOWN
    rng = np.random.default_rng(0)
    loss = bootstrap_saving(np.array([300.0, 300]), np.array([100.0, 120]), rng, AT_MOST)
    assert saving_text(loss) == "≤-173%"  # a loss of at least 173%, never "+0%*"
    gain = bootstrap_saving(np.array([50.0, 60]), np.array([300.0, 300]), rng, AT_LEAST)
    assert saving_text(gain) == "≥+82%"
    assert saving_text(bootstrap_saving(np.ones(2), np.ones(2), rng, UNKNOWN)).startswith("?")
    measured = bootstrap_saving(np.array([40.0, 60]), np.array([100.0, 100]), rng)
    assert saving_text(measured).startswith("+50% [")


@pytest.mark.parametrize("seed", range(6))
def test_the_paired_interval_is_the_paired_t_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    random = rng.uniform(0.7, 0.9, size=10)
    strategy = random + rng.normal(0.01 * (seed - 3), 0.01, size=10)
    diff = paired_difference(strategy, random)
    test = stats.ttest_rel(strategy, random)
    # A second computation: the interval excludes 0 exactly when the t-test rejects at 5%.
    assert (diff.low > 0 or diff.high < 0) == (test.pvalue < 0.05)
    d = strategy - random
    half = stats.t.ppf(0.975, 9) * np.std(d, ddof=1) / math.sqrt(10)
    assert diff.mean == pytest.approx(d.mean())
    assert (diff.low, diff.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert diff.mark == (WORSE if diff.high < 0 else BETTER if diff.low > 0 else "")


def test_marks_and_degenerate_intervals() -> None:
    assert Difference(-0.1, -0.2, -0.01).mark == WORSE
    assert Difference(0.1, 0.01, 0.2).mark == BETTER
    assert Difference(0.0, -0.1, 0.1).mark == ""
    one = paired_difference(np.array([0.5]), np.array([0.9]))
    assert one.mark == "" and math.isinf(one.low)  # one seed proves nothing
    same = paired_difference(np.array([0.8, 0.9]), np.array([0.8, 0.9]))
    assert (same.mean, same.low, same.high, same.mark) == (0.0, 0.0, 0.0, "")


def _curve(labels: list[int], accuracy: list[float]) -> Curve:
    return Curve(labels, [float(n) for n in labels], accuracy, 0.01)


def _result() -> DatasetResult:
    """Budget 30, cap 60, full accuracy 1.0 (targets 0.90 ... 0.99), three seeds.

    random reaches 0.99 past the budget on every seed; `good` before the budget; `bad`
    never, not even at the cap.
    """
    grid = [10, 20, 30, 40, 50, 60]
    random = [_curve(grid[:5], [0.5, 0.7, 0.8, 0.9, 0.99]) for _ in range(3)]
    random[2] = _curve(grid, [0.5, 0.7, 0.8, 0.85, 0.9, 0.99])
    good = [_curve(grid[:3], [0.6, 0.95, 0.99 + 0.001 * s]) for s in range(3)]
    bad = [_curve(grid, [0.4, 0.5, 0.6 - 0.01 * s, 0.7, 0.8, 0.85]) for s in range(3)]
    return DatasetResult(
        name="toy", budget=30, pool_size=100, test_size=50, n_classes=2, has_costs=False,
        full_accuracy=[1.0] * 3, cost_aware=False, x_budget=[30.0] * 3,
        curves={"random": random, "good": good, "bad": bad}, cap=60,
    )  # fmt: skip


def test_summaries_use_the_budget_for_aulc_and_the_whole_run_for_savings() -> None:
    result = _result()
    summaries = {s.name: s for s in summarize(result, seed=0)}
    random, good, bad = summaries["random"], summaries["good"], summaries["bad"]
    # AULC and final accuracy stop at the budget (30 labels), whatever came after.
    assert random.aulc_mean == pytest.approx((0.6 + 0.75) / 2)
    assert random.final_mean == pytest.approx(0.8)
    # Random reached 99% past the budget: 50, 50, 60 labels, a measurement, not a bound.
    assert random.reach[0.99].per_seed == [50, 50, 60]
    assert good.saving[0.99] is not None and good.saving[0.99].bound == MEASURED
    assert good.saving[0.99].percent == pytest.approx(100 * (1 - 30 / (160 / 3)))
    # `bad` fell short of 90% even at the cap: a bound, a saving of at most -12.5%.
    assert bad.reach[0.90].per_seed == [None, None, None]
    assert bad.reach[0.90].ends == [60, 60, 60]
    saving = bad.saving[0.99]
    assert saving is not None and saving.bound == AT_MOST
    assert saving_text(saving) == f"≤{round(100 * (1 - 60 / (160 / 3))):+d}%"
    # It is also significantly worse in AULC, and reported as such.
    assert bad.delta_aulc is not None and bad.delta_aulc.mark == WORSE
    assert good.delta_aulc is not None and good.delta_aulc.mark == BETTER
    table = dataset_table(result, list(summaries.values()))
    assert "(runs short of 99% go on to 60)" in table
    assert "| `bad` |" in table and WORSE in table.split("| `bad` |")[1].split("\n")[0]


def test_results_survive_a_round_trip_through_json() -> None:
    results = Results(
        Settings(sources=(), seeds=3, protocol=Protocol(model="random_forest")),
        [StrategyPlan("random", frozenset({"any"}), "baseline"),
         StrategyPlan("entropy", frozenset({"probabilities"}), "uncertainty",
                      (("class_balance", True),))],
        {},
        [_result()],
    )  # fmt: skip
    again = from_json(json.loads(json.dumps(to_json(results))))
    assert again.strategies == results.strategies
    assert again.strategies[1].label == "entropy:class_balance=true"
    assert again.settings.protocol == results.settings.protocol
    assert again.datasets == results.datasets
