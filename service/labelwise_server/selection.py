"""The transport-free core: run the requested strategies on a validated pool.

Row-wise strategies run block by block over the pool, sharing one
Intermediates per block, and keep a running top-k each, so memory stays
O(block + k) however large n is. Whole-pool and batch strategies get the
whole pool. The stop callback is checked between blocks and strategies, and by
batch strategies at every pick, so a request whose deadline passed or whose
caller left is abandoned there.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from labelwise_server.request import Pool, Selection, StrategyCall, Task
from labelwise_server.strategies import balance
from labelwise_server.strategies._types import (
    AutoReport,
    FloatArray,
    IntArray,
    Params,
    ParamValue,
    StopCheck,
    never_stop,
)
from labelwise_server.strategies.intermediates import pool_blocks
from labelwise_server.strategies.ranking import merge_top_k, rank, top_k, within_budget

# Target bytes of pool rows per block: large enough to amortise NumPy call
# overhead, small enough that a block's temporaries stay in cache.
BLOCK_BYTES = 1 << 22

Observe = Callable[[str, float], None]


@dataclass(frozen=True)
class Result:
    """One strategy's answer."""

    name: str
    params: Mapping[str, ParamValue]
    indices: IntArray  # [<= k] pool indices, best first
    scores: FloatArray  # [<= k] aligned with indices
    total_cost: float
    candidates_considered: int  # after any pre-filter of a batch strategy
    points: FloatArray | None = None  # [len(indices), d] extra per-item output, when asked for
    method: str = ""  # the way the strategy worked, when it can work more than one way
    auto: AutoReport | None = None  # "auto": the arm of each pick and the arms' weights
    represented: FloatArray | None = None  # [len(indices)] badge's represented_weights


def _no_observe(strategy: str, seconds: float) -> None:
    return None


def select(
    selection: Selection, stop: StopCheck = never_stop, observe: Observe = _no_observe
) -> list[Result]:
    """Every strategy's result, in the order of selection.calls."""
    pool, task = selection.pool, replace(selection.task, stop=stop)
    ranked: dict[int, tuple[IntArray, FloatArray]] = {}
    seconds: dict[int, float] = {}
    considered: dict[int, int] = {}
    reports: dict[int, AutoReport] = {}

    block_calls = [(i, c) for i, c in enumerate(selection.calls) if c.strategy.block_score]
    if block_calls:
        for i, ranking in _run_block_scores(pool, task, block_calls, stop, seconds).items():
            ranked[i] = ranking
    for i, call in enumerate(selection.calls):
        if i in ranked:
            continue
        stop()
        started = time.perf_counter()
        if call.strategy.pool_score is not None:
            scores = call.strategy.pool_score(pool, task, call.params)
            ranked[i] = _rank_scores(scores, task, _balanced(call))
        elif call.strategy.batch_select is not None:
            run = _batch_run(call)
            if _balanced(call):
                indices, scores, considered[i] = balance.balanced_batch(
                    pool, task, call.params, run
                )
            else:
                indices, scores, considered[i] = run(pool, task, call.params)
            ranked[i] = (indices, scores)
        elif call.strategy.explained_select is not None:
            indices, scores, reports[i] = call.strategy.explained_select(pool, task, call.params)
            ranked[i] = (indices, scores)
        seconds[i] = seconds.get(i, 0.0) + time.perf_counter() - started

    results = []
    for i, call in enumerate(selection.calls):
        indices, scores = ranked[i]
        if not call.strategy.batch:
            if _balanced(call):  # a draw within each predicted class, classes in turn
                classes = balance.predicted_classes(pool, indices)
                order = balance.drawn_order(
                    indices, scores, classes, pool.n, task.seed, call.strategy.name
                )
                indices, scores, cost = _apply_budget(indices[order], scores[order], pool, task)
                indices, scores = rank(indices, scores)
            else:
                indices, scores, cost = _apply_budget(indices, scores, pool, task)
        else:
            cost = _cost(indices, pool)
        points = None
        if call.strategy.points is not None:
            stop()
            points = call.strategy.points(pool, task, indices, call.params)
        represented = None
        if call.strategy.represented is not None:
            stop()
            represented = call.strategy.represented(pool, task, indices, call.params)
        method = "" if call.strategy.method is None else call.strategy.method(pool, call.params)
        observe(call.strategy.name, seconds.get(i, 0.0))
        results.append(
            Result(
                call.strategy.name,
                call.params,
                indices,
                scores,
                cost,
                considered.get(i, int(task.candidates.shape[0])),
                points,
                method,
                reports.get(i),
                represented,
            )
        )
    return results


def _cost(indices: IntArray, pool: Pool) -> float:
    if pool.costs is None:
        return float(indices.shape[0])
    return float(pool.costs[indices].sum())


def _balanced(call: StrategyCall) -> bool:
    return bool(call.params.get("class_balance"))


def _batch_run(call: StrategyCall) -> balance.BatchRun:
    """The call's batch strategy after its pre-filter; also the candidates it chose among."""
    strategy = call.strategy
    assert strategy.batch_select is not None
    select_batch = strategy.batch_select

    def run(pool: Pool, task: Task, params: Params) -> tuple[IntArray, FloatArray, int]:
        if strategy.narrow is not None:
            task = replace(task, candidates=strategy.narrow(pool, task, params))
            task.stop()
        return (*select_batch(pool, task, params), int(task.candidates.shape[0]))

    return run


def _rank_scores(
    scores: FloatArray, task: Task, every: bool = False
) -> tuple[IntArray, FloatArray]:
    """The ranking a score strategy hands on: top k, or every candidate when a budget applies
    or the call is class-balanced (every: the round-robin may go past k)."""
    candidate_scores = scores[task.candidates]
    if task.budget is not None or every:  # the budget walk may go past k
        return rank(task.candidates, candidate_scores)
    return top_k(candidate_scores, task.k, task.candidates)


def _apply_budget(
    indices: IntArray, scores: FloatArray, pool: Pool, task: Task
) -> tuple[IntArray, FloatArray, float]:
    if task.budget is None:
        return indices[: task.k], scores[: task.k], _cost(indices[: task.k], pool)
    costs = pool.costs if pool.costs is not None else np.ones(pool.n)
    kept, spent = within_budget(indices, costs, task.budget, task.k)
    return indices[kept], scores[kept], spent


def _run_block_scores(
    pool: Pool,
    task: Task,
    calls: Sequence[tuple[int, StrategyCall]],
    stop: StopCheck,
    seconds: dict[int, float],
) -> dict[int, tuple[IntArray, FloatArray]]:
    """Rankings of the row-wise strategies, computed block by block."""
    # A budget walk, or a class-balanced round-robin, needs every candidate ranked.
    full = task.budget is not None or any(_balanced(call) for _, call in calls)
    excluded = task.candidates.shape[0] < pool.n
    keep = np.zeros(pool.n, dtype=bool)
    if excluded:
        keep[task.candidates] = True
    best: dict[int, tuple[IntArray, FloatArray]] = {
        i: (np.empty(0, np.int64), np.empty(0, np.float64)) for i, _ in calls
    }
    all_scores = {i: np.empty(pool.n) for i, _ in calls} if full else {}
    for start, end, block in pool_blocks(pool, BLOCK_BYTES):
        stop()
        positions = np.arange(start, end, dtype=np.int64)
        if excluded:
            positions = positions[keep[start:end]]
        for i, call in calls:
            started = time.perf_counter()
            assert call.strategy.block_score is not None
            scores = call.strategy.block_score(block, call.params)
            if full:
                all_scores[i][start:end] = scores
            else:
                chosen = top_k(scores[positions - start], task.k, positions)
                best[i] = merge_top_k(best[i], chosen, task.k)
            seconds[i] = seconds.get(i, 0.0) + time.perf_counter() - started
    if full:
        return {i: _rank_scores(scores, task, every=True) for i, scores in all_scores.items()}
    return best
