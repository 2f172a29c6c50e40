"""Per-item labeling costs [n], > 0, as float64 whatever the wire dtype (ints allowed)."""

from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import FloatArray


def check_costs(costs: npt.NDArray[Any]) -> FloatArray:
    if costs.ndim != 1:
        raise InvalidArgument("costs.shape", f"must be [n]; got {list(costs.shape)}")
    values = costs.astype(np.float64)
    if not np.isfinite(values).all() or (values <= 0).any():
        bad = int(np.flatnonzero(~(np.isfinite(values) & (values > 0)))[0])
        raise InvalidArgument(
            "costs", f"must all be finite and > 0; got {values[bad]} at index {bad}"
        )
    return values
