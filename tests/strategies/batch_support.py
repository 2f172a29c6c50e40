"""Pools and a runner for the batch strategies, which need embeddings as well as model outputs."""

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server.selection import Result, select
from labelwise_server.strategies import STRATEGIES, Input, Pool, Task
from labelwise_server.strategies._types import ParamValue, StopCheck, never_stop
from labelwise_server.validation import Selection, StrategyCall

BATCH_NAMES = [name for name, strategy in STRATEGIES.items() if strategy.batch]


def batch_pool(
    rng: np.random.Generator,
    n: int = 40,
    d: int = 5,
    c: int = 3,
    m: int = 4,
    labeled: int = 3,
    dtype: Any = np.float32,
    costs: bool = False,
) -> Pool:
    """A pool with every input a batch strategy may need."""
    committee = rng.dirichlet(np.ones(c), size=(m, n)).astype(dtype)
    return Pool(
        n=n,
        probabilities=committee.mean(axis=0, dtype=dtype),
        committee=committee,
        embeddings=rng.normal(size=(n, d)).astype(dtype),
        labeled_embeddings=rng.normal(size=(labeled, d)).astype(dtype),
        costs=rng.uniform(0.5, 3.0, size=n) if costs else None,
        regression_mean=rng.normal(size=n),
        labeled_targets=rng.normal(size=labeled) if labeled else None,
    )


def run_one(
    name: str,
    pool: Pool,
    k: int,
    params: dict[str, ParamValue] | None = None,
    *,
    seed: int = 0,
    exclude: npt.NDArray[np.int64] | None = None,
    budget: float | None = None,
    stop: StopCheck = never_stop,
) -> Result:
    """One strategy's result through selection.select, as the service runs it."""
    keep = np.ones(pool.n, dtype=bool)
    if exclude is not None:
        keep[exclude] = False
    candidates = np.flatnonzero(keep).astype(np.int64)
    filled = {p: spec.default for p, spec in STRATEGIES[name].params.items()}
    filled.update(params or {})
    task = Task(k=k, candidates=candidates, seed=seed, budget=budget)
    if Input.LABELED_TARGETS in STRATEGIES[name].needs and pool.labeled_targets is None:
        # These need l >= 1 labeled targets (the service rejects l = 0): give one.
        assert pool.embeddings is not None
        pool = replace(
            pool,
            labeled_embeddings=pool.embeddings.mean(axis=0, keepdims=True),
            labeled_targets=np.zeros(1),
        )
    call = StrategyCall(STRATEGIES[name], filled, "strategies[0]")
    [result] = select(Selection(pool, (call,), task), stop=stop)
    return result
