"""Structured outputs: per-element class probabilities, reduced to one score per item.

A pool item is a segmentation mask or a token sequence: probabilities
[n, c, E...] (class axis 1, one or more element axes, such as [n, c, H, W] or
[n, c, T]) or a committee of them [m, n, c, E...]. Any row-wise classification
measure (entropy, margin, BALD, ...) is applied to every element's class
distribution, giving per-element scores [n, E]; reduce_elements then makes one
score per item with a reduction over the item's valid elements (the mask
drops padding), as baal's heuristics do with `reduction` for segmentation.
Work goes in blocks of items so temporaries stay small.
"""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from labelwise_server.strategies._types import (
    FloatArray,
    Params,
    Pool,
    PoolScore,
    RealArray,
    Task,
    needed,
)

REDUCTIONS = ("mean", "max", "sum", "top_q_mean")
RowScore = Callable[[RealArray], FloatArray]  # [r, c] -> [r], or [m, r, c] -> [r]
Mask = npt.NDArray[np.bool_]
# Bytes of probabilities per block of items.
_BLOCK_BYTES = 1 << 22


def element_count(shape: tuple[int, ...], first_element_axis: int) -> int:
    """E, the number of elements per item: the product of the element axes."""
    return int(np.prod(shape[first_element_axis:], dtype=np.int64))


def element_rows(probabilities: RealArray) -> RealArray:
    """[b, c, E...] -> [b·E, c]: one row per element, item-major (a copy)."""
    b, c = probabilities.shape[:2]
    flat = probabilities.reshape(b, c, -1)
    rows: RealArray = np.ascontiguousarray(np.moveaxis(flat, 1, 2)).reshape(-1, c)
    return rows


def committee_element_rows(committee: RealArray) -> RealArray:
    """[m, b, c, E...] -> [m, b·E, c]."""
    m, b, c = committee.shape[:3]
    flat = committee.reshape(m, b, c, -1)
    rows: RealArray = np.ascontiguousarray(np.moveaxis(flat, 2, 3)).reshape(m, -1, c)
    return rows


def reduce_elements(
    scores: FloatArray, mask: Mask | None, reduction: str, q: float = 0.1
) -> FloatArray:
    """One score per item from per-element scores [b, E], over the valid elements.

    mean: Σ valid / #valid; max; sum: Σ valid; top_q_mean: the mean of the
    ⌈q · #valid⌉ largest valid scores (at least one). mask [b, E] (True = valid;
    None = all valid), each row with at least one valid element.
    """
    valid = np.ones(scores.shape, dtype=bool) if mask is None else mask
    count = valid.sum(axis=1)
    if reduction == "max":
        out: FloatArray = np.where(valid, scores, -np.inf).max(axis=1)
    elif reduction == "sum":
        out = np.where(valid, scores, 0.0).sum(axis=1)
    elif reduction == "mean":
        out = np.where(valid, scores, 0.0).sum(axis=1) / count
    else:
        # Valid scores sorted descending, padding (−inf) last; then a running sum.
        ordered = -np.sort(np.where(valid, -scores, np.inf), axis=1)
        ordered[~np.isfinite(ordered)] = 0.0
        # Round q·count first so 0.1 · 30 = 3.0000000000000004 takes 3, not 4.
        take = np.maximum(np.ceil(np.round(q * count, 9)), 1).astype(np.int64)
        running = np.cumsum(ordered, axis=1)
        out = running[np.arange(scores.shape[0]), take - 1] / take
    return out + 0.0  # no −0


def _block_items(n: int, bytes_per_item: int) -> int:
    return max(1, min(n, _BLOCK_BYTES // max(bytes_per_item, 1)))


def structured_scores(
    row_score: RowScore,
    probabilities: RealArray,
    mask: Mask | None,
    reduction: str,
    q: float = 0.1,
) -> FloatArray:
    """row_score on every element's distribution of P [n, c, E...], reduced per item: [n]."""
    n = probabilities.shape[0]
    elements = element_count(probabilities.shape, 2)
    flat_mask = None if mask is None else mask.reshape(n, elements)
    out = np.empty(n, dtype=np.float64)
    step = _block_items(n, probabilities[:1].nbytes)
    for start in range(0, n, step):
        end = min(start + step, n)
        per_element = row_score(element_rows(probabilities[start:end]))
        block_mask = None if flat_mask is None else flat_mask[start:end]
        out[start:end] = reduce_elements(
            per_element.reshape(end - start, elements), block_mask, reduction, q
        )
    return out


def structured_committee_scores(
    committee_score: RowScore,
    committee: RealArray,
    mask: Mask | None,
    reduction: str,
    q: float = 0.1,
) -> FloatArray:
    """committee_score on every element of a committee [m, n, c, E...], reduced per item: [n]."""
    n = committee.shape[1]
    elements = element_count(committee.shape, 3)
    flat_mask = None if mask is None else mask.reshape(n, elements)
    out = np.empty(n, dtype=np.float64)
    step = _block_items(n, committee[:, :1].nbytes)
    for start in range(0, n, step):
        end = min(start + step, n)
        per_element = committee_score(committee_element_rows(committee[:, start:end]))
        block_mask = None if flat_mask is None else flat_mask[start:end]
        out[start:end] = reduce_elements(
            per_element.reshape(end - start, elements), block_mask, reduction, q
        )
    return out


# Registry adapters (strategies/registry.py): the validated pool and task in, the math above
# called. Validation has checked the inputs each strategy needs are present.


def structured_adapter(row_score: RowScore, on_committee: bool) -> PoolScore:
    """The structured-output version of a row-wise score: per element, then reduced."""

    def score(pool: Pool, task: Task, params: Params) -> FloatArray:
        reduction, q = str(params["reduction"]), float(params["q"])
        if on_committee:
            committee = needed(pool.structured_committee, "structured_committee")
            return structured_committee_scores(
                row_score, committee, pool.structured_mask, reduction, q
            )
        probabilities = needed(pool.structured, "structured_probabilities")
        return structured_scores(row_score, probabilities, pool.structured_mask, reduction, q)

    return score
