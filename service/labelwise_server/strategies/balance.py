"""Class balance: per-class quotas by predicted label, for score and batch strategies alike.

Uncertainty sampling can starve a class: on one data set of the issue that asked for this
(#15), entropy picked 2 items of a class that makes up 25% of the pool in 500 labels (random
picked 124) and ended 20 points of accuracy below random. The items of a class the model is
confident about never top an uncertainty ranking, so the model never learns that it is
wrong about them. With `class_balance` each batch gives every predicted class (argmax of
the probabilities, or of the committee's mean) an equal quota, capped by how many
candidates it has, the rest shared among the classes that have more (as small-text's
ClassBalancer and Lightly's balanced selection do, with an equal target):

- a score strategy fills each class's quota by a seeded draw from that class's candidates
  with probability ∝ score^β, β = 1 (Kirsch et al. 2023's stochastic power acquisition, by
  Gumbel top-k: the largest β log s_i + G_i, G_i standard Gumbel noise drawn for every pool
  item from the request's seed; margin enters as 1 + margin, as power_bald's bases do), not
  by the class's top scores; the classes then give their drawn items round-robin (each
  class its next item in turn, a round in key order), and the k kept are reported by score;
- a batch strategy runs once per predicted class, on that class's candidates with its
  quota of k (and the same share of the budget), and its picks are interleaved, the first
  pick of every class first.

Why a draw and not the top for score strategies. Quotas alone stop the starvation but not
the other failure of uncertainty sampling: the top of each class's uncertainty ranking is
where label noise, outliers and near-duplicates collect, and a batch of them teaches the
model little. Measured in bench/savings.py (10 seeds, docs/savings.md), entropy with
quotas and each class's top was still significantly worse than random on segment (−0.047
AULC) and seattle_weather (−0.058); with quotas filled by the power draw it is at or above
random on all seven data sets. Quotas proportional to the predicted class shares instead of
equal ones were worse still (segment −0.065), and a draw by rank (∝ rank^−β, "softrank")
with β = 2 was significantly worse than random on segment: see docs/strategy-selection.md.
The draw uses the request's seed, so the same request gives the same picks.
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
from labelwise_server.strategies.bases import OFFSETS
from labelwise_server.strategies.params import Boolean, Param

PARAM = Param(
    Boolean(),
    default=False,
    description="Per-class quotas by predicted label (argmax of probabilities, or of the "
    "committee mean): every predicted class gets an equal share of the k picks, capped by "
    "its candidates, so no batch starves a class the model is sure about. Score strategies: "
    "each class's quota is drawn from its candidates with probability ∝ score (seeded by "
    "the request's seed; margin as 1 + margin), not taken from its top, because the top of "
    "an uncertainty ranking is where label noise collects; batch strategies: one run per "
    "class. See docs/strategy-selection.md.",
)
# The within-class draw: probability ∝ score^BETA (Kirsch et al. 2023's default power).
BETA = 1.0
# Scores below this share of the largest candidate score are raised to it (as power_bald).
_FLOOR = 1e-12
# Spawn key of the draw's random stream, apart from the strategy's own use of the seed.
_STREAM = 0xBA1A
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


def draw_keys(
    indices: IntArray, scores: FloatArray, n: int, seed: int, name: str, beta: float = BETA
) -> FloatArray:
    """Gumbel top-k keys β log s_i + G_i of the ranked items (pool indices, their scores
    from strategy name): G is standard Gumbel noise drawn by PCG64 for every pool item (n),
    so an item's key does not depend on which others are candidates; s_i is the score plus
    OFFSETS[name] (margin: 1 + margin, >= 0), raised to 1e-12 × the largest; every score 0:
    the noise alone (a uniform draw)."""
    noise = np.random.default_rng([seed, _STREAM]).gumbel(size=n)[indices]
    shifted = scores + OFFSETS.get(name, 0.0)
    top = float(shifted.max()) if shifted.size else 0.0
    if top <= 0:
        keys: FloatArray = noise
        return keys
    return beta * np.log(np.maximum(shifted, top * _FLOOR)) + noise


def drawn_order(
    indices: IntArray, scores: FloatArray, classes: IntArray, n: int, seed: int, name: str
) -> IntArray:
    """The positions of a ranking (pool indices, scores, predicted classes) in class-balanced
    draw order: within each class by draw key (draw_keys, largest first, ties to the lower
    index), the classes taking turns (round_robin). Every prefix of length k is a
    class-balanced draw of k."""
    keys = draw_keys(indices, scores, n, seed, name)
    by_key = np.lexsort((indices, -keys))
    return by_key[round_robin(classes[by_key])]


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
