"""labelwise: which examples to label next, from any backend, over gRPC.

from labelwise import Client
with Client("localhost:50051") as client:
    picks = client.select(strategies=["entropy", "margin"], k=10, probabilities=p)
    picks["entropy"].indices
"""

from labelwise.client import (
    AutoArm,
    AutoSelection,
    Client,
    FieldViolation,
    LabelwiseError,
    ParamDescription,
    Round,
    Selection,
    StoppingCriterion,
    StoppingVerdict,
    StrategyDescription,
)
from labelwise.tensors import encode_tensor

__all__ = [
    "AutoArm",
    "AutoSelection",
    "Client",
    "FieldViolation",
    "LabelwiseError",
    "ParamDescription",
    "Round",
    "Selection",
    "StoppingCriterion",
    "StoppingVerdict",
    "StrategyDescription",
    "encode_tensor",
]
