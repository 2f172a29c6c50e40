"""A committee's class probabilities [m, n, c], sent as probabilities or as logits."""

from labelwise_server.decode.fields import Fields
from labelwise_server.decode.probabilities import class_scores
from labelwise_server.errors import InvalidArgument
from labelwise_server.strategies._types import RealArray


def decode_committee(fields: Fields, temperature: float) -> RealArray | None:
    return class_scores(fields, "committee", "committee_logits", ndim=3, temperature=temperature)


def check_committee_classes(
    fields: Fields, committee: RealArray, probabilities: RealArray | None
) -> None:
    """The committee has the class count c of probabilities, when both are sent."""
    if probabilities is not None and committee.shape[2] != probabilities.shape[1]:
        raise InvalidArgument(
            f"{fields.present('committee', 'committee_logits')}.shape",
            f"must have the same number of classes c as "
            f"{fields.present('probabilities', 'logits')} ({probabilities.shape[1]}); "
            f"got {committee.shape[2]}",
        )
