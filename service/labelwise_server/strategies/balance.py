"""Class balance: per-class quotas by predicted label, for score and batch strategies alike.

Uncertainty sampling can starve a class: on one data set of the issue that asked for this
(#15), entropy picked 2 items of a class that makes up 25% of the pool in 500 labels (random
picked 124) and ended 20 points of accuracy below random. The items of a class the model is
confident about never top an uncertainty ranking, so the model never learns that it is
wrong about them. With `class_balance` each batch gives every predicted class (argmax of
the probabilities, or of the committee's mean) an equal quota, capped by how many
candidates it has, the rest shared among the classes that have more (as small-text's
ClassBalancer and Lightly's balanced selection do, with an equal target):

- a score strategy keeps the k items that a round-robin over the predicted classes takes,
  each class giving its best remaining item in turn (ties: the class whose next item scores
  higher, then the lower index), reported by score as usual;
- a batch strategy runs once per predicted class, on that class's candidates with its
  quota of k (and the same share of the budget), and its picks are interleaved, the first
  pick of every class first.
"""

from collections.abc import Callable

import numpy as np

from labelwise_server.strategies._types import (
    FloatArray,
    Input,
    IntArray,
    Params,
    Pool,
    RealArray,
    Task,
)
from labelwise_server.strategies.params import Boolean, Param

PARAM = Param(
    Boolean(),
    default=False,
    description="Per-class quotas by predicted label (argmax of probabilities, or of the "
    "committee mean): every predicted class gets an equal share of the k picks, capped by "
    "its candidates, so no batch starves a class the model is sure about. Score strategies: "
    "a round-robin over the classes' rankings; batch strategies: one run per class. See "
    "docs/strategy-selection.md.",
)
# Rows per block when predicted labels are read.
_BLOCK_ROWS = 1 << 16

BatchRun = Callable[[Pool, Task, Params], tuple[IntArray, FloatArray, int]]


def needs(strategy_needs: frozenset[Input], params: Params) -> frozenset[Input]:
    """What class_balance adds: the probabilities, unless the strategy reads a committee."""
    if not params.get("class_balance") or Input.COMMITTEE in strategy_needs:
        return frozenset()
    return frozenset({Input.PROBABILITIES})


def predicted_classes(pool: Pool, rows: IntArray) -> IntArray:
    """argmax_j of each row's probabilities (or committee mean), ties to the lower class."""
    out = np.empty(rows.shape[0], dtype=np.int64)
    for start in range(0, rows.shape[0], _BLOCK_ROWS):
        block = rows[start : start + _BLOCK_ROWS]
        probabilities: RealArray
        if pool.probabilities is not None:
            probabilities = pool.probabilities[block]
        elif pool.committee is not None:
            probabilities = pool.committee[:, block].mean(axis=0)
        else:
            raise ValueError("class_balance needs probabilities or a committee")
        out[start : start + _BLOCK_ROWS] = np.argmax(probabilities, axis=1)
    return out


def round_robin(classes: IntArray) -> IntArray:
    """The positions of a ranking (best first, its items' classes given) in round-robin
    order: every class's best, then every class's second, ...; within a round, in ranking
    order. Every prefix of length k is the class-balanced choice of k."""
    n = classes.shape[0]
    by_class = np.argsort(classes, kind="stable")  # ranking order within each class
    sorted_classes = classes[by_class]
    starts = np.flatnonzero(np.r_[True, sorted_classes[1:] != sorted_classes[:-1]])
    lengths = np.diff(np.r_[starts, n])
    within = np.empty(n, dtype=np.int64)
    within[by_class] = np.arange(n) - np.repeat(starts, lengths)
    return np.lexsort((np.arange(n), within))


def quotas(available: IntArray, k: int) -> IntArray:
    """Each class's share of k [C]: equal, capped by available, the remainder to the classes
    with the most candidates left (ties: the lower class). Σ = min(k, Σ available)."""
    share = np.zeros_like(available)
    left = min(k, int(available.sum()))
    while left > 0:
        open_ = np.flatnonzero(share < available)
        each = left // open_.shape[0]
        if each == 0:
            spare = available[open_] - share[open_]
            order = open_[np.lexsort((open_, -spare))]
            share[order[:left]] += 1
            break
        share[open_] = np.minimum(share[open_] + each, available[open_])
        left = min(k, int(available.sum())) - int(share.sum())
    return share


def balanced_batch(
    pool: Pool, task: Task, params: Params, run: BatchRun
) -> tuple[IntArray, FloatArray, int]:
    """A batch strategy run once per predicted class on its quota, picks interleaved by pick
    position (then class); also the candidates considered, summed over the classes."""
    classes = predicted_classes(pool, task.candidates)
    labels, counts = np.unique(classes, return_counts=True)
    share = quotas(counts.astype(np.int64), task.k)
    picks: list[IntArray] = []
    scores: list[FloatArray] = []
    ranks: list[IntArray] = []
    order_class: list[IntArray] = []
    considered = 0
    for label, quota in zip(labels.tolist(), share.tolist(), strict=True):
        if quota == 0:
            continue
        task.stop()
        budget = None if task.budget is None else task.budget * quota / task.k
        sub = Task(quota, task.candidates[classes == label], task.seed, budget, task.stop)
        indices, values, seen = run(pool, sub, params)
        considered += seen
        picks.append(indices)
        scores.append(values)
        ranks.append(np.arange(indices.shape[0]))
        order_class.append(np.full(indices.shape[0], label))
    if not picks:
        return np.empty(0, np.int64), np.empty(0, np.float64), considered
    all_picks, all_ranks = np.concatenate(picks), np.concatenate(ranks)
    order = np.lexsort((np.concatenate(order_class), all_ranks))
    return all_picks[order], np.concatenate(scores)[order], considered
