"""Multi-label strategies: hand-computed rows, naive per-label loops, and small-text's LCI."""

import math
from typing import Any

import numpy as np
import pytest

from labelwise_server.strategies import multilabel
from tests.strategies.task_support import scores_through_select

P = np.array([[0.5, 0.9, 0.1], [0.99, 0.01, 0.8], [0.0, 1.0, 0.5]])


def h(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -p * math.log(p) - (1 - p) * math.log(1 - p)


# (strategy, params, pool fields, expected scores) worked out by hand.
ORACLES: list[tuple[str, dict[str, Any], dict[str, Any], list[float]]] = [
    ("multilabel_entropy", {}, {"multilabel": P},
     [(h(0.5) + 2 * h(0.9)) / 3, (h(0.99) + h(0.01) + h(0.8)) / 3, h(0.5) / 3]),
    ("multilabel_entropy", {"aggregate": "max"}, {"multilabel": P},
     [math.log(2), h(0.8), math.log(2)]),
    ("multilabel_least_confidence", {}, {"multilabel": P},
     [(0.5 + 0.1 + 0.1) / 3, (0.01 + 0.01 + 0.2) / 3, 0.5 / 3]),
    ("multilabel_least_confidence", {"aggregate": "max"}, {"multilabel": P}, [0.5, 0.2, 0.5]),
    # Predicted label counts 1, 2, 1 (0.5 is not > 0.5) against a labeled mean of 1.5.
    ("label_cardinality_inconsistency", {}, {"multilabel": P, "labeled_label_cardinality": 1.5},
     [0.5, 0.5, 0.5]),
    ("label_cardinality_inconsistency", {"threshold": 0.05},
     {"multilabel": P, "labeled_label_cardinality": 0.0}, [3.0, 2.0, 2.0]),
    # Two members that disagree fully on label 0 and agree on label 1.
    ("multilabel_bald", {},
     {"multilabel_committee": np.array([[[1.0, 0.3]], [[0.0, 0.3]]])}, [math.log(2)]),
    ("multilabel_bald", {"aggregate": "mean"},
     {"multilabel_committee": np.array([[[1.0, 0.3]], [[0.0, 0.3]]])}, [math.log(2) / 2]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params", "fields", "expected"), ORACLES)
def test_oracle_rows(
    name: str, params: dict[str, Any], fields: dict[str, Any], expected: list[float]
) -> None:
    scores = scores_through_select(name, params, **fields)
    np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=1e-15)


def _naive_binary_entropy(p: float) -> float:
    return sum(-q * math.log(q) for q in (p, 1.0 - p) if q > 0)


def naive_entropy(p: np.ndarray, aggregate: str) -> np.ndarray:
    out = []
    for row in p:
        values = [_naive_binary_entropy(float(v)) for v in row]
        out.append(max(values) if aggregate == "max" else sum(values) / len(values))
    return np.array(out)


def naive_least_confidence(p: np.ndarray, aggregate: str) -> np.ndarray:
    out = []
    for row in p:
        values = [1.0 - max(float(v), 1.0 - float(v)) for v in row]
        out.append(max(values) if aggregate == "max" else sum(values) / len(values))
    return np.array(out)


def small_text_lci(p: np.ndarray, y_labeled: np.ndarray) -> np.ndarray:
    """small-text's label_cardinality_inconsistency (its main branch; 1.4.1 does not ship it).

    It counts the predicted labels (predict = proba > 0.5), subtracts the labeled
    set's mean label count and takes sqrt(x²).
    """
    average = (y_labeled > 0).sum(axis=1).mean()
    difference = (p > 0.5).sum(axis=1) - average
    result: np.ndarray = np.sqrt(np.power(difference, 2))
    return result


def naive_bald(committee: np.ndarray, aggregate: str) -> np.ndarray:
    m, n, labels = committee.shape
    out = []
    for i in range(n):
        per_label = []
        for j in range(labels):
            mean = sum(float(committee[k, i, j]) for k in range(m)) / m
            expected = sum(_naive_binary_entropy(float(committee[k, i, j])) for k in range(m)) / m
            per_label.append(_naive_binary_entropy(mean) - expected)
        out.append(sum(per_label) if aggregate == "sum" else sum(per_label) / labels)
    return np.array(out)


NAIVE = ["multilabel_entropy", "multilabel_least_confidence", "label_cardinality_inconsistency",
         "multilabel_bald"]  # fmt: skip


@pytest.mark.parametrize("aggregate", ["mean", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_entropy_and_least_confidence_equal_naive_loops(aggregate: str, dtype: Any) -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(60, 7)).astype(dtype)
    p[:5, :2] = 0.0  # exact zeros and ones
    p[5:10, 3] = 1.0
    tol = {"rtol": 1e-12, "atol": 1e-15}
    np.testing.assert_allclose(
        scores_through_select("multilabel_entropy", {"aggregate": aggregate}, multilabel=p),
        naive_entropy(p, aggregate),
        **tol,
    )
    np.testing.assert_allclose(
        scores_through_select(
            "multilabel_least_confidence", {"aggregate": aggregate}, multilabel=p
        ),
        naive_least_confidence(p, aggregate),
        **tol,
    )


def test_label_cardinality_inconsistency_equals_small_text_definition() -> None:
    rng = np.random.default_rng(2)
    for trial in range(5):
        p = rng.uniform(size=(80, 6))
        y_labeled = (rng.uniform(size=(30 + trial, 6)) < 0.3).astype(int)
        cardinality = float((y_labeled > 0).sum(axis=1).mean())
        ours = scores_through_select(
            "label_cardinality_inconsistency", multilabel=p, labeled_label_cardinality=cardinality
        )
        np.testing.assert_allclose(ours, small_text_lci(p, y_labeled), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("aggregate", ["sum", "mean"])
def test_bald_equals_a_naive_loop_and_is_zero_for_agreeing_members(aggregate: str) -> None:
    rng = np.random.default_rng(3)
    committee = rng.uniform(size=(5, 40, 4))
    np.testing.assert_allclose(
        scores_through_select(
            "multilabel_bald", {"aggregate": aggregate}, multilabel_committee=committee
        ),
        naive_bald(committee, aggregate),
        rtol=1e-10,
        atol=1e-13,
    )
    agreeing = np.repeat(committee[:1], 3, axis=0)
    scores = multilabel.multilabel_bald_scores(agreeing, aggregate)
    # The mean of equal values can be off by an ulp: zero up to rounding, never negative.
    assert (scores <= 1e-12).all() and not np.signbit(scores).any()


def test_entropy_bounds_and_single_label_reduces_to_binary_classification() -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(size=(50, 1))
    scores = multilabel.multilabel_entropy_scores(p)
    binary = np.concatenate([p, 1 - p], axis=1)
    expected = -(binary * np.log(binary)).sum(axis=1)
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    assert scores.max() <= math.log(2) + 1e-12
