"""top_k, merge_top_k and the budget walk: the one place ties are broken."""

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise_server.strategies.ranking import merge_top_k, rank, top_k, within_budget


def reference_top_k(
    scores: npt.NDArray[np.float64], k: int, indices: npt.NDArray[np.int64]
) -> list[int]:
    """Sort everything: score descending, then index ascending."""
    pairs = sorted(zip(scores.tolist(), indices.tolist(), strict=True), key=lambda p: (-p[0], p[1]))
    return [index for _, index in pairs[:k]]


# Few distinct values, so ties are the rule rather than the exception.
_scores = st.lists(st.sampled_from([-1.0, -0.0, 0.0, 0.25, 0.5, 1.0]), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(_scores, st.integers(1, 70), st.integers(0, 10))
def test_top_k_equals_a_full_sort_with_ties_to_the_lower_index(
    values: list[float], k: int, gap: int
) -> None:
    scores = np.asarray(values)
    indices = np.arange(len(values), dtype=np.int64) * (gap + 1) + 3  # ascending, not 0..n-1
    got_indices, got_scores = top_k(scores, k, indices)
    expected = reference_top_k(scores, k, indices)
    assert got_indices.tolist() == expected
    assert got_indices.dtype == np.int64 and got_scores.dtype == np.float64
    positions = (got_indices - 3) // (gap + 1)
    np.testing.assert_array_equal(got_scores, scores[positions])


@settings(max_examples=100, deadline=None)
@given(_scores, st.integers(1, 70), st.integers(1, 59))
def test_merging_the_top_k_of_two_parts_equals_the_top_k_of_the_whole(
    values: list[float], k: int, cut: int
) -> None:
    scores = np.asarray(values)
    cut = min(cut, len(values))
    positions = np.arange(len(values), dtype=np.int64)
    left = top_k(scores[:cut], k, positions[:cut])
    right = top_k(scores[cut:], k, positions[cut:])
    merged = merge_top_k(left, right, k)
    assert merged[0].tolist() == reference_top_k(scores, k, positions)


def test_top_k_of_nothing_is_empty() -> None:
    indices, scores = top_k(np.array([0.3, 0.1]), 0)
    assert indices.shape == scores.shape == (0,)


def test_rank_orders_by_score_then_index() -> None:
    indices, scores = rank(np.array([9, 2, 5, 1]), np.array([0.5, 0.5, 1.0, 0.5]))
    assert indices.tolist() == [5, 1, 2, 9]
    assert scores.tolist() == [1.0, 0.5, 0.5, 0.5]


def test_budget_walk_skips_what_does_not_fit_and_keeps_going() -> None:
    ranked = np.array([4, 0, 3, 1, 2])
    costs = np.array([5.0, 1.0, 1.0, 3.0, 2.0])  # by pool index
    kept, spent = within_budget(ranked, costs, budget=4.0, k=10)
    # 4 (cost 2) fits, 0 (5) does not, 3 (3) does not, 1 (1) fits, 2 (1) fits.
    assert kept.tolist() == [0, 3, 4] and spent == 4.0
    kept, spent = within_budget(ranked, costs, budget=4.0, k=2)
    assert kept.tolist() == [0, 3] and spent == 3.0
    kept, spent = within_budget(ranked, costs, budget=0.5, k=3)
    assert kept.tolist() == [] and spent == 0.0
