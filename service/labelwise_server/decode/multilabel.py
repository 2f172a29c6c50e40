"""Multi-label outputs: per-label probabilities [n, L] and a committee's [m, n, L], in [0, 1]
or as logits through a sigmoid; and the labeled set's mean label cardinality."""

from dataclasses import dataclass

import numpy as np

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.checks import check_finite, first_bad, sigmoid
from labelwise_server.decode.fields import Fields
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import RealArray


@dataclass(frozen=True)
class MultiLabel:
    probabilities: RealArray | None = None
    committee: RealArray | None = None
    labeled_label_cardinality: float | None = None


def decode_multilabel(
    fields: Fields, header: pb.SelectQueriesRequest, temperature: float, sizes: dict[str, int]
) -> MultiLabel:
    """The multi-label inputs, checked; their pool sizes go into sizes (field -> n)."""
    probabilities = _unit_interval(
        fields, "multilabel_probabilities", "multilabel_logits", 2, temperature
    )
    committee = _unit_interval(
        fields, "multilabel_committee", "multilabel_committee_logits", 3, temperature
    )
    if probabilities is not None:
        sizes[fields.present("multilabel_probabilities", "multilabel_logits")] = (
            probabilities.shape[0]
        )
    if committee is not None:
        name = fields.present("multilabel_committee", "multilabel_committee_logits")
        sizes[name] = committee.shape[1]
        if probabilities is not None and committee.shape[2] != probabilities.shape[1]:
            raise InvalidArgument(
                f"{name}.shape",
                f"must have the same number of labels L as "
                f"{fields.present('multilabel_probabilities', 'multilabel_logits')} "
                f"({probabilities.shape[1]}); got {committee.shape[2]}",
            )
    cardinality: float | None = None
    if header.HasField("labeled_label_cardinality"):
        cardinality = header.labeled_label_cardinality
        if not (np.isfinite(cardinality) and cardinality >= 0):
            raise InvalidArgument(
                "labeled_label_cardinality", f"must be finite and >= 0; got {cardinality}"
            )
    return MultiLabel(probabilities, committee, cardinality)


def _unit_interval(
    fields: Fields, probs_name: str, logits_name: str, ndim: int, temperature: float
) -> RealArray | None:
    """Per-label probabilities from the probabilities or the logits field, checked."""
    name = fields.one_of(probs_name, logits_name)
    if name is None:
        return None
    array = fields.require(name)
    layout = "[n, L]" if ndim == 2 else "[m, n, L]"
    if array.ndim != ndim or array.shape[-1] < 1:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with L >= 1; got {list(array.shape)}"
        )
    if ndim == 3 and array.shape[0] < 2:
        raise InvalidArgument(
            f"{name}.shape", f"must be {layout} with m >= 2 members; got {list(array.shape)}"
        )
    check_finite(array, name)
    if name == logits_name:
        return sigmoid(array, temperature)
    outside = (array < 0) | (array > 1)
    if outside.any():
        where = first_bad(outside, array.shape)
        raise InvalidArgument(
            name, f"must be in [0, 1]; got {float(array[tuple(where)])} at {where}"
        )
    return array
