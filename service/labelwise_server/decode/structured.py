"""Structured outputs: per-element class distributions [n, c, E...] and a committee's
[m, n, c, E...], as probabilities (summing to 1 over c) or logits; and a 0/1 element mask
[n, E...] that leaves every item at least one valid element."""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from labelwise_server.checks import (
    SUM_TOLERANCE,
    check_finite,
    check_stochastic_along,
    first_bad,
    softmax,
)
from labelwise_server.decode.fields import Fields
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import RealArray


@dataclass(frozen=True)
class Structured:
    probabilities: RealArray | None = None
    committee: RealArray | None = None
    mask: npt.NDArray[np.bool_] | None = None


def decode_structured(fields: Fields, temperature: float, sizes: dict[str, int]) -> Structured:
    """The structured inputs, checked; their pool sizes go into sizes (field -> n)."""
    structured = _structured(
        fields, "structured_probabilities", "structured_logits", 1, temperature
    )
    committee = _structured(
        fields, "structured_committee", "structured_committee_logits", 2, temperature
    )
    element_shape: tuple[int, ...] | None = None
    source = ""
    if structured is not None:
        source = fields.present("structured_probabilities", "structured_logits")
        sizes[source] = structured.shape[0]
        element_shape = structured.shape[2:]
    if committee is not None:
        name = fields.present("structured_committee", "structured_committee_logits")
        sizes[name] = committee.shape[1]
        shape = committee.shape
        if structured is not None and (
            shape[2] != structured.shape[1] or shape[3:] != element_shape
        ):
            raise InvalidArgument(
                f"{name}.shape",
                f"must be [m, {', '.join(map(str, structured.shape))}] to match "
                f"{source}; got {list(shape)}",
            )
        if element_shape is None:
            source, element_shape = name, shape[3:]
    mask = fields.get("structured_mask", True)
    valid: npt.NDArray[np.bool_] | None = None
    if mask is not None:
        if element_shape is None:
            raise InvalidArgument(
                "structured_mask",
                "must be sent only with structured_probabilities, structured_logits, "
                "structured_committee or structured_committee_logits",
            )
        n_items = sizes[source]
        expected = [n_items, *element_shape]
        if list(mask.shape) != expected:
            raise InvalidArgument(
                "structured_mask.shape",
                f"must be [n, ...] = {expected}, the item and element axes of {source}; "
                f"got {list(mask.shape)}",
            )
        binary = (mask == 0) | (mask == 1)  # NaN compares False: not binary
        if not binary.all():
            bad_at = first_bad(~binary, mask.shape)
            raise InvalidArgument(
                "structured_mask", f"must be 0 or 1; got {mask[tuple(bad_at)]} at {bad_at}"
            )
        valid = mask.astype(bool)
        empty = ~valid.reshape(n_items, -1).any(axis=1)
        if empty.any():
            raise InvalidArgument(
                "structured_mask",
                f"must leave every item at least one valid element; item "
                f"{int(np.flatnonzero(empty)[0])} has none",
            )
    return Structured(structured, committee, valid)


def _structured(
    fields: Fields, probs_name: str, logits_name: str, class_axis: int, temperature: float
) -> RealArray | None:
    """Per-element class probabilities [(m,) n, c, E...] from probabilities or logits, checked."""
    name = fields.one_of(probs_name, logits_name)
    if name is None:
        return None
    array = fields.require(name)
    layout = "[n, c, ...]" if class_axis == 1 else "[m, n, c, ...]"
    shape = list(array.shape)
    if array.ndim < class_axis + 2:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with at least one element axis; got {shape}"
        )
    if array.shape[class_axis] < 2:
        raise InvalidArgument(f"{name}.shape", f"must be {layout} with c >= 2 classes; got {shape}")
    if class_axis == 2 and array.shape[0] < 2:
        raise InvalidArgument(f"{name}.shape", f"must be {layout} with m >= 2 members; got {shape}")
    if math.prod(array.shape[class_axis + 1 :]) == 0:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with at least one element per item; got {shape}"
        )
    if name == logits_name:
        check_finite(array, name)
        moved = softmax(np.moveaxis(array, class_axis, -1), temperature)
        return np.moveaxis(moved, -1, class_axis)
    check_stochastic_along(array, name, class_axis, SUM_TOLERANCE[fields.dtype(name)])
    return array
