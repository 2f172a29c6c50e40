"""Array checks and transforms shared by the decoders, the inference stage and stopping.

Each check raises InvalidArgument naming the field, saying what the array must be and where
it is not; checks scan in row blocks of about _CHECK_BYTES so their temporaries stay small.
The transforms (softmax, sigmoid) keep the input's precision and never mutate it.
"""

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import RealArray

# Row sums of probabilities must be within this of 1, by the wire dtype.
SUM_TOLERANCE: dict[int, float] = {
    pb.DATA_TYPE_FLOAT16: 1e-2,
    pb.DATA_TYPE_BFLOAT16: 1e-2,
    pb.DATA_TYPE_FLOAT32: 1e-3,
    pb.DATA_TYPE_FLOAT64: 1e-3,
}


# Bytes of rows checked per block, so the checks' temporaries stay small.
_CHECK_BYTES = 1 << 22


# Embedding strategies work in float32: with every |value| at most this, squared distances
# (sums of d squared differences) stay finite for any d the element limit allows.
EMBEDDING_BOUND = 1e15


# With every regression value (means, spreads, samples, targets) at most this in size, the
# greedy distances (and iGS's products of input and output distances), the variances and
# Gaussian BALD all stay finite.
REGRESSION_BOUND = 1e15


def _rows(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The array as rows of its last axis: [..., c] -> [r, c] (a view for C-ordered input)."""
    rows = math.prod(array.shape[:-1])  # not -1: NumPy cannot infer it when c = 0
    return array.reshape(rows, array.shape[-1])


def first_bad(mask: npt.NDArray[np.bool_], shape: tuple[int, ...]) -> list[int]:
    flat = int(np.flatnonzero(mask)[0])
    return [int(i) for i in np.unravel_index(flat, shape)]


def _block_rows(rows: npt.NDArray[Any]) -> int:
    return max(1, _CHECK_BYTES // max(int(rows.shape[1]) * rows.itemsize, 1))


def check_finite(array: npt.NDArray[Any], field: str) -> None:
    rows = _rows(array)
    step = _block_rows(rows)
    for start in range(0, rows.shape[0], step):
        if not np.isfinite(rows[start : start + step]).all():
            where = first_bad(~np.isfinite(array), array.shape)
            raise InvalidArgument(field, f"must be finite; got NaN or Inf at {where}")


def check_matrix(
    array: npt.NDArray[Any], field: str, layout: str, allow_empty: bool = False
) -> None:
    if array.ndim != 2 or (array.shape[1] < 1 and not allow_empty):
        raise InvalidArgument(f"{field}.shape", f"must be {layout}; got {list(array.shape)}")


def check_class_shape(array: npt.NDArray[Any], field: str, layout: str) -> None:
    ndim = 2 if layout == "[n, c]" else 3
    if array.ndim != ndim:
        raise InvalidArgument(f"{field}.shape", f"must be {layout}; got {list(array.shape)}")
    if array.shape[-1] < 2:
        raise InvalidArgument(
            f"{field}.shape", f"must be {layout} with c >= 2 classes; got {list(array.shape)}"
        )
    if ndim == 3 and array.shape[0] < 2:
        raise InvalidArgument(
            f"{field}.shape", f"must be {layout} with m >= 2 members; got {list(array.shape)}"
        )


def check_embedding_values(array: npt.NDArray[Any], field: str) -> None:
    """Finite, and every |value| <= EMBEDDING_BOUND."""
    check_finite(array, field)
    rows = _rows(array)
    step = _block_rows(rows)
    for start in range(0, rows.shape[0], step):
        if (np.abs(rows[start : start + step]) > EMBEDDING_BOUND).any():
            where = first_bad(np.abs(array) > EMBEDDING_BOUND, array.shape)
            raise InvalidArgument(
                field,
                f"must have every |value| <= {EMBEDDING_BOUND:g} (distances are computed in "
                f"float32); got {array[tuple(where)]:g} at {where}",
            )


def check_regression_values(array: npt.NDArray[Any], field: str) -> None:
    """Finite, and every |value| <= REGRESSION_BOUND."""
    check_finite(array, field)
    large = np.abs(array) > REGRESSION_BOUND
    if large.any():
        where = first_bad(large, array.shape)
        raise InvalidArgument(
            field,
            f"must have every |value| <= {REGRESSION_BOUND:g}; got {array[tuple(where)]:g} "
            f"at {where}",
        )


def check_row_stochastic(array: npt.NDArray[Any], field: str, tolerance: float) -> None:
    """Finite, non-negative, and each row (last axis) summing to 1 within tolerance."""
    rows = _rows(array)
    ones = np.ones(rows.shape[1], dtype=rows.dtype)
    step = _block_rows(rows)
    for start in range(0, rows.shape[0], step):
        block = rows[start : start + step]
        with np.errstate(invalid="ignore", over="ignore"):  # bad rows are reported below
            sums = block @ ones  # NaN/Inf anywhere in a row makes its sum non-finite
        bad = ~(np.abs(sums - 1.0) <= tolerance)
        if bad.any():
            if not np.isfinite(array).all():
                where = first_bad(~np.isfinite(array), array.shape)
                raise InvalidArgument(field, f"must be finite; got NaN or Inf at {where}")
            row = start + int(np.flatnonzero(bad)[0])
            where = [int(i) for i in np.unravel_index(row, array.shape[:-1])]
            raise InvalidArgument(
                field,
                f"rows must sum to 1 within {tolerance}; row {where} "
                f"sums to {float(sums[row - start]):.6g}",
            )
        if block.min() < 0:
            where = first_bad(array < 0, array.shape)
            raise InvalidArgument(field, f"must be >= 0; got a negative value at {where}")


def check_class_probabilities(
    array: npt.NDArray[Any], field: str, layout: str, tolerance: float
) -> None:
    """c >= 2 classes on the last axis; finite, non-negative rows summing to 1 within tolerance."""
    if array.shape[-1] < 2:
        raise InvalidArgument(
            f"{field}.shape", f"must be {layout} with c >= 2 classes; got {list(array.shape)}"
        )
    check_row_stochastic(array, field, tolerance)


def check_stochastic_along(
    array: npt.NDArray[Any], field: str, axis: int, tolerance: float
) -> None:
    """Finite, non-negative, and summing to 1 within tolerance along axis, in blocks of items."""
    pool_axis = axis - 1
    n = array.shape[pool_axis]
    per_item = max(array.nbytes // max(n, 1), 1)
    step = max(1, _CHECK_BYTES // per_item)
    for start in range(0, n, step):
        index = [slice(None)] * array.ndim
        index[pool_axis] = slice(start, start + step)
        block = array[tuple(index)]
        if not np.isfinite(block).all():
            where = first_bad(~np.isfinite(array), array.shape)
            raise InvalidArgument(field, f"must be finite; got NaN or Inf at {where}")
        if block.min() < 0:
            where = first_bad(array < 0, array.shape)
            raise InvalidArgument(field, f"must be >= 0; got a negative value at {where}")
        sums = block.sum(axis=axis, dtype=np.float64)
        bad = ~(np.abs(sums - 1.0) <= tolerance)
        if bad.any():
            where = first_bad(bad, sums.shape)
            where[pool_axis] += start
            raise InvalidArgument(
                field,
                f"must sum to 1 within {tolerance} over the classes (axis {axis}); element "
                f"{where} sums to {float(sums[tuple(first_bad(bad, sums.shape))]):.6g}",
            )


def softmax(logits: RealArray, temperature: float) -> RealArray:
    """Row-wise softmax of logits / temperature along the last axis, in logits' precision."""
    # Shift before scaling: each row's largest entry is then exactly 0 whatever the
    # temperature, so a small temperature cannot overflow logits / t to inf (and inf − inf
    # to NaN); the rest only go towards −inf, whose exp is 0.
    with np.errstate(over="ignore", divide="ignore"):  # overflow here goes to −inf: harmless
        scaled: RealArray = logits - logits.max(axis=-1, keepdims=True)
        # A temperature that underflows to 0 in float32 would make the 0 entries 0/0, and
        # one that overflows to inf the −inf entries (from the shift) inf/inf: both stay.
        np.divide(scaled, np.asarray(temperature, dtype=logits.dtype), out=scaled,
                  where=(scaled != 0) & (scaled != -np.inf))  # fmt: skip
    np.exp(scaled, out=scaled)
    scaled /= scaled.sum(axis=-1, keepdims=True)
    return scaled


def sigmoid(logits: RealArray, temperature: float) -> RealArray:
    """1 / (1 + exp(−x / temperature)) elementwise, in logits' precision."""
    scaled: RealArray = np.divide(logits, np.asarray(temperature, dtype=logits.dtype))
    with np.errstate(over="ignore"):  # exp(large) = inf gives 1 / inf = 0: the right limit
        np.negative(scaled, out=scaled)
        np.exp(scaled, out=scaled)
    scaled += 1
    np.reciprocal(scaled, out=scaled)
    return scaled
