"""Invariants every batch strategy in the registry keeps, parametrised over the registry."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwise_server.errors import DeadlineExceeded
from labelwise_server.strategies import STRATEGIES
from tests.strategies.batch_support import BATCH_NAMES, batch_pool, run_one


def _variants(name: str) -> list[dict[str, object]]:
    variants: list[dict[str, object]] = [{}]
    for param_name, param in STRATEGIES[name].params.items():
        variants += [{param_name: choice} for choice in param.choices if choice != param.default]
    return variants


CASES = [(name, params) for name in BATCH_NAMES for params in _variants(name)]
IDS = [name + "".join(f"-{v}" for v in params.values()) for name, params in CASES]


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k_distinct_candidates_with_finite_float64_scores(
    name: str, params: dict[str, object], dtype: type
) -> None:
    pool = batch_pool(np.random.default_rng(0), dtype=dtype)
    exclude = np.array([0, 5, 7], dtype=np.int64)
    result = run_one(name, pool, 12, params, exclude=exclude)  # type: ignore[arg-type]
    assert result.indices.dtype == np.int64 and result.scores.dtype == np.float64
    assert result.indices.shape == result.scores.shape == (12,)
    assert len(set(result.indices.tolist())) == 12
    assert not set(result.indices.tolist()) & {0, 5, 7}
    assert np.isfinite(result.scores).all()
    assert result.total_cost == 12.0


# Whose work between picks is one library call or a single draw: nothing to stop inside.
UNSTOPPABLE_BETWEEN_PICKS = {"cluster_margin", "power_bald"}


@pytest.mark.parametrize("name", BATCH_NAMES)
def test_a_batch_strategy_checks_stop_at_every_pick(name: str) -> None:
    """A passed deadline abandons a batch strategy within one pick, not at its end."""
    pool = batch_pool(np.random.default_rng(3))
    calls = 0

    def count() -> None:
        nonlocal calls
        calls += 1

    result = run_one(name, pool, 12, stop=count)
    assert result.indices.shape == (12,)
    if name in UNSTOPPABLE_BETWEEN_PICKS:
        assert calls >= 1
        return
    assert calls >= 12

    def expire() -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise DeadlineExceeded()

    calls = 0
    with pytest.raises(DeadlineExceeded):
        run_one(name, pool, 12, stop=expire)
    assert calls == 4


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_the_same_seed_gives_the_same_batch(name: str, params: dict[str, object]) -> None:
    pool = batch_pool(np.random.default_rng(1), labeled=0)
    first = run_one(name, pool, 8, params, seed=42)  # type: ignore[arg-type]
    again = run_one(name, pool, 8, params, seed=42)  # type: ignore[arg-type]
    np.testing.assert_array_equal(first.indices, again.indices)
    np.testing.assert_array_equal(first.scores, again.scores)


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_k_equal_to_the_candidates_takes_them_all(name: str, params: dict[str, object]) -> None:
    pool = batch_pool(np.random.default_rng(2), n=9)
    pool = replace(pool, embeddings=np.repeat(pool.embeddings[:3], 3, axis=0))  # duplicates
    result = run_one(name, pool, 8, params, exclude=np.array([4]))  # type: ignore[arg-type]
    assert sorted(result.indices.tolist()) == [0, 1, 2, 3, 5, 6, 7, 8]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(BATCH_NAMES),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 30),
    k=st.integers(1, 30),
    budget=st.floats(0.0, 20.0),
    labeled=st.integers(0, 3),
    data=st.data(),
)
def test_budget_is_never_exceeded_and_excluded_items_never_chosen(
    name: str, seed: int, n: int, k: int, budget: float, labeled: int, data: st.DataObject
) -> None:
    pool = batch_pool(np.random.default_rng(seed), n=n, labeled=labeled, costs=True)
    exclude = np.array(
        sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n - 1))), dtype=np.int64
    )
    result = run_one(name, pool, k, seed=seed, exclude=exclude, budget=budget)
    chosen = result.indices.tolist()
    assert len(chosen) == len(set(chosen)) <= k
    assert not set(chosen) & set(exclude.tolist())
    assert pool.costs is not None
    spent = float(pool.costs[result.indices].sum())
    assert spent <= budget + 1e-9
    assert result.total_cost == pytest.approx(spent)
    assert np.isfinite(result.scores).all()
    # Greedy skipping only stops when nothing left fits (or k is reached).
    left = np.setdiff1d(np.setdiff1d(np.arange(n), exclude), result.indices)
    if len(chosen) < k and left.size:
        assert pool.costs[left].min() > budget - spent
