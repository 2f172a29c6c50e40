"""One request's work, transport-free: decode and validate → infer → select → encode.

The same functions run in a work process (labelwise_server.sandbox, the default) and on the
in-process threads of `--no-sandbox`; the gRPC layer only moves bytes to and from them.
"""

from collections.abc import Callable
from typing import Any

from labelwise.v1 import label_quality_pb2 as lq
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.grpc.codec import encode_response
from labelwise_server.inference import infer
from labelwise_server.label_quality import assess, decode_assess, decode_plan, plan
from labelwise_server.onnx_runner import ModelStore
from labelwise_server.selection import select
from labelwise_server.stopping import decode_stopping, encode_verdict, evaluate
from labelwise_server.tensors import WireRequest
from labelwise_server.validation import decode_request

__all__ = [
    "assess_response",
    "encode_response",
    "plan_response",
    "select_response",
    "stopping_response",
]

Observe = Callable[[str, float], None]


def select_response(
    request: WireRequest,
    max_elements: int,
    models: ModelStore | None,
    stop: Callable[[], None],
    observe: Observe,
    max_response_bytes: int,
) -> tuple[pb.SelectQueriesResponse, int]:
    """The response to a SelectQueries request, and the pool's row count."""
    stop()
    selection = decode_request(
        request,
        max_elements,
        model_mode=models is not None,
        max_response_bytes=max_response_bytes,
    )
    if models is not None:
        selection = infer(selection, models, stop, max_elements)
    results = select(selection, stop, observe)
    return encode_response(results, selection.pool.n), selection.pool.n


def stopping_response(
    request: pb.CheckStoppingRequest, max_elements: int
) -> pb.CheckStoppingResponse:
    return encode_verdict(evaluate(decode_stopping(request, max_elements)))


def assess_response(
    request: lq.AssessLabelsRequest, max_elements: int, stop: Callable[[], None]
) -> lq.AssessLabelsResponse:
    stop()
    return assess(decode_assess(request, max_elements), stop)


def plan_response(
    request: lq.PlanLabelingRequest, max_elements: int, stop: Callable[[], None]
) -> lq.PlanLabelingResponse:
    stop()
    return plan(decode_plan(request, max_elements), stop)


# The LabelQualityService calls a work process runs, by op name: (request type, work).
LABEL_OPS: dict[str, tuple[Any, Callable[[Any, int, Callable[[], None]], Any]]] = {
    "assess_labels": (lq.AssessLabelsRequest, assess_response),
    "plan_labeling": (lq.PlanLabelingRequest, plan_response),
}
