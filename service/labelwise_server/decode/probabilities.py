"""Class probabilities [n, c] (uncertainty strategies), sent as probabilities or as logits."""

from labelwise_server.checks import (
    SUM_TOLERANCE,
    check_class_shape,
    check_finite,
    check_row_stochastic,
    softmax,
)
from labelwise_server.decode.fields import Fields
from labelwise_server.strategies._types import RealArray


def class_scores(
    fields: Fields, probs_name: str, logits_name: str, *, ndim: int, temperature: float
) -> RealArray | None:
    """Probabilities from either the probabilities field or the logits field, checked."""
    fields.one_of(probs_name, logits_name)
    layout = "[n, c]" if ndim == 2 else "[m, n, c]"
    probabilities = fields.get(probs_name)
    if probabilities is not None:
        check_class_shape(probabilities, probs_name, layout)
        check_row_stochastic(probabilities, probs_name, SUM_TOLERANCE[fields.dtype(probs_name)])
        return probabilities
    logits = fields.get(logits_name)
    if logits is not None:
        check_class_shape(logits, logits_name, layout)
        check_finite(logits, logits_name)
        return softmax(logits, temperature)
    return None


def decode_probabilities(fields: Fields, temperature: float) -> RealArray | None:
    return class_scores(fields, "probabilities", "logits", ndim=2, temperature=temperature)
