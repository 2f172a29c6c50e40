"""Per-item weights [n] (item_weights), >= 0, as float64 whatever the wire dtype (ints allowed)."""

from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import FloatArray


def check_item_weights(weights: npt.NDArray[Any]) -> FloatArray:
    if weights.ndim != 1:
        raise InvalidArgument("item_weights.shape", f"must be [n]; got {list(weights.shape)}")
    values = weights.astype(np.float64)
    good = np.isfinite(values) & (values >= 0)
    if not good.all():
        bad = int(np.flatnonzero(~good)[0])
        raise InvalidArgument(
            "item_weights", f"must all be finite and >= 0; got {values[bad]} at index {bad}"
        )
    return values
