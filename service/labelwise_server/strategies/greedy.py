"""The budgeted greedy walk every batch strategy takes: the one place a pick meets the budget.

A batch strategy picks greedily; with per-item costs and a total budget it takes
the best pick that still fits what is left, spends its cost, and drops what no
longer fits, going on among the rest (docs/concepts/batches.md, Budgets). What is
left only shrinks, so an item dropped once never fits again. Without costs every
item fits and the walk stops at k picks, as without a budget.

Arithmetic: what is left is the budget minus each cost taken, in float64, in
pick order, and an item fits when cost <= what is left. The score strategies'
walk (ranking.within_budget) compares spent + cost <= budget instead; the two
can differ in the last bit, so each keeps its own.
"""

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server.strategies._types import FloatArray, IntArray

BoolArray = npt.NDArray[np.bool_]


class Budget:
    """What is left of a total budget as a greedy walk takes items of given costs.

    costs [r]: each item's cost (> 0), indexed as the walk indexes its items
    (candidate positions, or pool indices), or None: items cost nothing and
    every item fits. budget: the total, or None for no limit.
    """

    __slots__ = ("costs", "left")

    def __init__(self, costs: FloatArray | None, budget: float | None) -> None:
        self.costs = costs
        self.left = math.inf if budget is None else float(budget)

    def fits(self, item: int) -> bool:
        """Whether item's cost is at most what is left."""
        return self.costs is None or bool(self.costs[item] <= self.left)

    def take(self, item: int) -> None:
        """Spend item's cost (the caller has checked that it fits)."""
        if self.costs is not None:
            self.left -= float(self.costs[item])

    def first_fitting(self, order: IntArray) -> int | None:
        """The first item of order that fits, or None when none does (nothing is taken)."""
        if self.costs is None:
            return int(order[0]) if order.shape[0] else None
        fitting = np.flatnonzero(self.costs[order] <= self.left)
        return int(order[fitting[0]]) if fitting.shape[0] else None

    def drop(self, values: npt.NDArray[np.floating[Any]], gone: float | np.floating[Any]) -> None:
        """values[i] = gone, in place, for every item i that no longer fits (values [r])."""
        if self.costs is not None:
            values[self.costs > self.left] = gone

    def narrow(self, alive: BoolArray) -> None:
        """alive[i] = False, in place, for every item i that no longer fits (alive [r])."""
        if self.costs is not None:
            alive &= self.costs <= self.left

    def walk(self, order: IntArray, k: int) -> IntArray:
        """Walk order best first, taking each item that still fits, until k are taken.

        Returns the items taken, in order; an item that does not fit is skipped
        and the walk goes on, so a cheaper one further down can still be taken.
        """
        if self.costs is None or self.left == math.inf:
            return order[:k]
        taken: list[int] = []
        for item, cost in zip(order.tolist(), self.costs[order].tolist(), strict=True):
            if cost <= self.left:
                taken.append(item)
                self.left -= cost
                if len(taken) == k:
                    break
        return np.asarray(taken, dtype=np.int64)
