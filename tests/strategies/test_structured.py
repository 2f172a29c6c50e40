"""Structured outputs: per-element scores reduced per item, checked against naive loops.

The per-element measures are the classification formulas written out again here;
the reductions follow baal's `reduction` (mean/max/sum over every axis but the
first) when no mask is given, and a naive loop over the valid elements otherwise.
"""

import math
from typing import Any

import numpy as np
import pytest

from labelwise_server.strategies import STRATEGIES, structured
from tests.strategies.task_support import scores_through_select


def _entropy(p: list[float]) -> float:
    return -sum(v * math.log(v) for v in p if v > 0)


def _top2(p: list[float]) -> tuple[float, float]:
    ordered = sorted(p, reverse=True)
    return ordered[0], ordered[1]


ELEMENT = {
    "least_confidence": lambda p: 1.0 - max(p),
    "margin": lambda p: _top2(p)[1] - _top2(p)[0],
    "ratio": lambda p: _top2(p)[1] / _top2(p)[0],
    "entropy": _entropy,
}


def _bald(members: list[list[float]]) -> float:
    m = len(members)
    mean = [sum(col) / m for col in zip(*members, strict=True)]
    return _entropy(mean) - sum(_entropy(p) for p in members) / m


def _variation_ratio(members: list[list[float]]) -> float:
    votes = [p.index(max(p)) for p in members]
    return 1.0 - max(votes.count(v) for v in set(votes)) / len(members)


def _mean_std(members: list[list[float]]) -> float:
    m, c = len(members), len(members[0])
    total = 0.0
    for j in range(c):
        col = [p[j] for p in members]
        mu = sum(col) / m
        total += math.sqrt(sum((v - mu) ** 2 for v in col) / m)
    return total / c


COMMITTEE_ELEMENT = {"bald": _bald, "variation_ratio": _variation_ratio, "mean_std": _mean_std}
NAIVE = [f"structured_{base}" for base in [*ELEMENT, *COMMITTEE_ELEMENT]]


def naive_reduce(values: list[float], reduction: str, q: float) -> float:
    if reduction == "mean":
        return sum(values) / len(values)
    if reduction == "max":
        return max(values)
    if reduction == "sum":
        return sum(values)
    take = max(1, math.ceil(round(q * len(values), 9)))
    return sum(sorted(values, reverse=True)[:take]) / take


def naive_structured(
    base: str, array: np.ndarray, mask: np.ndarray | None, reduction: str, q: float
) -> np.ndarray:
    committee = base in COMMITTEE_ELEMENT
    n = array.shape[1] if committee else array.shape[0]
    element_shape = array.shape[3:] if committee else array.shape[2:]
    out = []
    for i in range(n):
        values = []
        for e in np.ndindex(*element_shape):
            if mask is not None and not mask[(i, *e)]:
                continue
            if committee:
                members = [list(map(float, array[(k, i, slice(None), *e)]))
                           for k in range(array.shape[0])]  # fmt: skip
                values.append(COMMITTEE_ELEMENT[base](members))
            else:
                values.append(ELEMENT[base](list(map(float, array[(i, slice(None), *e)]))))
        out.append(naive_reduce(values, reduction, q))
    return np.array(out)


def _random_structured(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> Any:
    raw = rng.dirichlet(np.ones(shape[axis]), size=shape[:axis] + shape[axis + 1 :])
    return np.moveaxis(raw, -1, axis)


@pytest.mark.parametrize("reduction", structured.REDUCTIONS)
@pytest.mark.parametrize("base", list(ELEMENT) + list(COMMITTEE_ELEMENT))
@pytest.mark.parametrize("masked", [False, True])
def test_every_structured_strategy_equals_a_naive_loop(
    base: str, reduction: str, masked: bool
) -> None:
    rng = np.random.default_rng(hash((base, reduction, masked)) % 2**32)
    q = 0.3
    committee = base in COMMITTEE_ELEMENT
    array = _random_structured(rng, (3, 7, 3, 4, 5) if committee else (7, 3, 4, 5),
                               2 if committee else 1)  # fmt: skip
    mask = None
    fields: dict[str, Any] = {"structured_committee" if committee else "structured": array}
    if masked:
        mask = rng.uniform(size=(7, 4, 5)) < 0.6
        mask[:, 0, 0] = True  # at least one valid element per item
        fields["structured_mask"] = mask
    ours = scores_through_select(f"structured_{base}", {"reduction": reduction, "q": q}, **fields)
    np.testing.assert_allclose(
        ours, naive_structured(base, array, mask, reduction, q), rtol=1e-10, atol=1e-13
    )


@pytest.mark.parametrize("reduction", ["mean", "max", "sum"])
def test_unmasked_reductions_equal_baals_over_every_axis_but_the_first(reduction: str) -> None:
    # baal: available_reductions[r](x) = np.<r>(x, axis=tuple(range(1, x.ndim))).
    scores = np.random.default_rng(5).normal(size=(6, 4, 3))
    baal_style = getattr(np, reduction)(scores, axis=(1, 2))
    ours = structured.reduce_elements(scores.reshape(6, -1), None, reduction)
    np.testing.assert_allclose(ours, baal_style, rtol=1e-12)


def test_top_q_mean_hand_case_and_rounding() -> None:
    scores = np.array([[5.0, 1.0, 3.0, 2.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0]] * 1)
    mask = np.array([[True] * 5 + [False] * 5])
    # 5 valid: q = 0.4 takes 2 -> (5 + 4) / 2; q = 0.01 takes 1 -> 5; q = 1 -> mean of 5.
    assert structured.reduce_elements(scores, mask, "top_q_mean", 0.4)[0] == 4.5
    assert structured.reduce_elements(scores, mask, "top_q_mean", 0.01)[0] == 5.0
    assert structured.reduce_elements(scores, mask, "top_q_mean", 1.0)[0] == 3.0
    # 0.1 · 30 is 3.0000000000000004 in floating point: still 3 elements.
    thirty = np.arange(30, dtype=np.float64)[None, :]
    assert structured.reduce_elements(thirty, None, "top_q_mean", 0.1)[0] == 28.0


def test_tokens_and_pixels_give_the_same_scores_when_flattened() -> None:
    rng = np.random.default_rng(6)
    pixels = _random_structured(rng, (9, 4, 3, 5), 1)
    tokens = pixels.reshape(9, 4, 15)
    for name in ("structured_entropy", "structured_margin"):
        np.testing.assert_array_equal(
            scores_through_select(name, {"reduction": "max"}, structured=pixels),
            scores_through_select(name, {"reduction": "max"}, structured=tokens),
        )


def test_a_structured_strategy_exists_for_every_row_wise_uncertainty_and_bayesian_one() -> None:
    for name in [*ELEMENT, *COMMITTEE_ELEMENT]:
        assert STRATEGIES[name].family in ("uncertainty", "bayesian")
        structured_version = STRATEGIES[f"structured_{name}"]
        assert structured_version.task == "structured"
        assert structured_version.family == STRATEGIES[name].family


def test_blocks_of_items_give_the_same_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    probabilities = _random_structured(rng, (50, 3, 8), 1).astype(np.float32)
    committee = _random_structured(rng, (3, 50, 3, 8), 2).astype(np.float32)
    whole = scores_through_select("structured_entropy", structured=probabilities)
    whole_bald = scores_through_select("structured_bald", structured_committee=committee)
    monkeypatch.setattr(structured, "_BLOCK_BYTES", 200)  # a couple of items per block
    np.testing.assert_array_equal(
        scores_through_select("structured_entropy", structured=probabilities), whole
    )
    np.testing.assert_array_equal(
        scores_through_select("structured_bald", structured_committee=committee), whole_bald
    )
