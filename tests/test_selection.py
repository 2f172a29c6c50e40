"""The transport-free core: budgets and costs, stop checks, timing, several strategies at once."""

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise_server import selection
from labelwise_server.errors import DeadlineExceeded
from labelwise_server.request import Selection, StrategyCall
from labelwise_server.selection import select
from labelwise_server.strategies import STRATEGIES, Pool, Task
from tests.strategies.support import scores_of, with_defaults


def make_selection(
    names: list[str],
    probabilities: Any,
    k: int,
    costs: Any = None,
    budget: float | None = None,
    exclude: tuple[int, ...] = (),
    seed: int = 0,
) -> Selection:
    n = probabilities.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[list(exclude)] = False
    pool = Pool(n=n, probabilities=probabilities, costs=costs)
    task = Task(k=k, candidates=np.flatnonzero(keep).astype(np.int64), seed=seed, budget=budget)
    calls = tuple(
        StrategyCall(STRATEGIES[name], with_defaults(name), f"strategies[{i}]")
        for i, name in enumerate(names)
    )
    return Selection(pool, calls, task)


def naive_budget_walk(
    scores: Any, costs: Any, candidates: list[int], budget: float, k: int
) -> tuple[list[int], float]:
    ranked = sorted(candidates, key=lambda i: (-scores[i], i))
    kept: list[int] = []
    spent = 0.0
    for i in ranked:
        if len(kept) == k:
            break
        if spent + costs[i] <= budget:
            kept.append(i)
            spent += costs[i]
    return kept, spent


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(1, 40),
    st.floats(0, 30),
    st.sampled_from(["entropy", "margin", "random"]),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_budgeted_selection_equals_a_naive_walk(
    n: int, k: int, budget: float, name: str, seed: int, with_costs: bool
) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), size=n)
    p[rng.random(n) < 0.2] = p[0]  # repeated rows: tied scores
    costs = rng.choice([0.5, 1.0, 2.5, 7.0], size=n) if with_costs else None
    exclude = tuple(rng.choice(n, size=n // 5, replace=False).tolist())
    k = min(k, n - len(exclude))
    [result] = select(make_selection([name], p, k, costs, budget, exclude, seed))
    scores = scores_of(name, probabilities=p, seed=seed)
    candidates = sorted(set(range(n)) - set(exclude))
    expected, spent = naive_budget_walk(scores, np.ones(n) if costs is None else costs,
                                        candidates, budget, k)  # fmt: skip
    assert result.indices.tolist() == expected
    assert result.total_cost == pytest.approx(spent)
    assert result.total_cost <= budget + 1e-9
    np.testing.assert_array_equal(result.scores, scores[result.indices])


def test_total_cost_without_a_budget_is_the_count_or_the_costs() -> None:
    p = np.random.default_rng(0).dirichlet(np.ones(3), size=10)
    [plain] = select(make_selection(["entropy"], p, 4))
    assert plain.total_cost == 4.0
    costs = np.arange(1.0, 11.0)
    [costed] = select(make_selection(["entropy"], p, 4, costs=costs))
    assert costed.total_cost == costs[costed.indices].sum()
    assert costed.indices.tolist() == plain.indices.tolist()  # costs alone change nothing


def test_a_zero_budget_selects_nothing() -> None:
    p = np.full((5, 2), 0.5)
    [result] = select(make_selection(["margin"], p, 3, budget=0.0))
    assert result.indices.shape == (0,) and result.total_cost == 0.0


def test_stop_is_checked_between_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "BLOCK_BYTES", 1)  # 1024-row blocks
    p = np.full((5000, 2), 0.5)
    calls = 0

    def stop() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise DeadlineExceeded()

    with pytest.raises(DeadlineExceeded):
        select(make_selection(["entropy", "random"], p, 3), stop=stop)
    assert calls == 3


def test_every_strategy_is_timed_once_per_request() -> None:
    p = np.random.default_rng(1).dirichlet(np.ones(4), size=100)
    seen: list[tuple[str, float]] = []
    select(
        make_selection(["entropy", "random", "margin", "entropy"], p, 5),
        observe=lambda name, seconds: seen.append((name, seconds)),
    )
    assert [name for name, _ in seen] == ["entropy", "random", "margin", "entropy"]
    assert all(seconds >= 0 for _, seconds in seen)


def test_shared_intermediates_are_computed_once_per_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from labelwise_server.strategies import intermediates

    counts = {"top_two": 0, "entropy_scores": 0}
    real_top_two = intermediates.uncertainty.top_two
    real_entropy = intermediates.uncertainty.entropy_scores

    def top_two(p: Any) -> Any:
        counts["top_two"] += 1
        return real_top_two(p)

    def entropy_scores(p: Any) -> Any:
        counts["entropy_scores"] += 1
        return real_entropy(p)

    monkeypatch.setattr(intermediates.uncertainty, "top_two", top_two)
    monkeypatch.setattr(intermediates.uncertainty, "entropy_scores", entropy_scores)
    monkeypatch.setattr(selection, "BLOCK_BYTES", 1)  # 1024-row blocks
    p = np.random.default_rng(2).dirichlet(np.ones(3), size=3000)  # three blocks
    names = ["least_confidence", "margin", "ratio", "entropy", "entropy"]
    select(make_selection(names, p, 5))
    assert counts == {"top_two": 3, "entropy_scores": 3}
