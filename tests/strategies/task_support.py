"""Run the multi-label, regression and structured strategies through selection.select."""

from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server.selection import Result, select
from labelwise_server.strategies import STRATEGIES, Pool, Task
from labelwise_server.strategies._types import ParamValue
from labelwise_server.validation import Selection, StrategyCall
from tests.strategies.support import with_defaults

TASK_NAMES = [name for name, s in STRATEGIES.items() if s.task != "classification"]
TASK_SCORE_NAMES = [name for name in TASK_NAMES if not STRATEGIES[name].batch]


def pool_of(**fields: Any) -> Pool:
    """A Pool from fields; n from the first pool-sized one."""
    if "regression_samples" in fields and "regression_mean" not in fields:
        samples = np.asarray(fields["regression_samples"], dtype=np.float64)
        fields["regression_samples"] = samples
        fields["regression_mean"] = samples.mean(axis=0)
        fields["regression_std"] = samples.std(axis=0)
    axis1 = ("multilabel_committee", "structured_committee", "regression_samples")
    n = next(
        np.shape(value)[1 if key in axis1 else 0]
        for key, value in fields.items()
        if key not in ("labeled_label_cardinality", "labeled_embeddings", "labeled_targets")
    )
    return Pool(n=n, **fields)


def run_task(
    name: str,
    params: dict[str, ParamValue] | None = None,
    *,
    k: int | None = None,
    exclude: npt.NDArray[np.int64] | None = None,
    budget: float | None = None,
    seed: int = 0,
    **fields: Any,
) -> Result:
    pool = pool_of(**fields)
    keep = np.ones(pool.n, dtype=bool)
    if exclude is not None:
        keep[exclude] = False
    candidates = np.flatnonzero(keep).astype(np.int64)
    task = Task(k=candidates.shape[0] if k is None else k, candidates=candidates, seed=seed,
                budget=budget)  # fmt: skip
    call = StrategyCall(STRATEGIES[name], with_defaults(name, params), "strategies[0]")
    [result] = select(Selection(pool, (call,), task))
    return result


def scores_through_select(
    name: str, params: dict[str, ParamValue] | None = None, **fields: Any
) -> npt.NDArray[np.float64]:
    """Every item's score [n] in pool order, read off the full ranking."""
    result = run_task(name, params, **fields)
    out = np.full(result.indices.shape[0], np.nan)
    out[result.indices] = result.scores
    return out
