"""labelwise: which examples to label next, from any backend, over gRPC.

from labelwise import Client
with Client("localhost:50051") as client:
    picks = client.select(strategies=["entropy", "margin"], k=10, probabilities=p)
    picks["entropy"].indices
"""

from labelwise.client import (
    MISSING,
    AnnotatorEstimate,
    AutoArm,
    AutoSelection,
    Client,
    FieldViolation,
    LabelAssessment,
    LabelingPlan,
    LabelingTask,
    LabelQualityMethodDescription,
    LabelwiseError,
    ParamDescription,
    Round,
    Selection,
    StoppingCriterion,
    StoppingVerdict,
    StrategyDescription,
)
from labelwise.stream import StreamDecisions, StreamSelector
from labelwise.tensors import encode_tensor

__all__ = [
    "MISSING",
    "AnnotatorEstimate",
    "AutoArm",
    "AutoSelection",
    "Client",
    "FieldViolation",
    "LabelAssessment",
    "LabelQualityMethodDescription",
    "LabelingPlan",
    "LabelingTask",
    "LabelwiseError",
    "ParamDescription",
    "Round",
    "Selection",
    "StoppingCriterion",
    "StoppingVerdict",
    "StrategyDescription",
    "StreamDecisions",
    "StreamSelector",
    "encode_tensor",
]
