"""One request's work, transport-free: decode and validate → infer → select → encode.

The same functions run in a work process (labelwise_server.sandbox, the default) and on the
in-process threads of `--no-sandbox`; the gRPC layer only moves bytes to and from them.
"""

from collections.abc import Callable

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.inference import infer
from labelwise_server.onnx_runner import ModelStore
from labelwise_server.selection import Result, select
from labelwise_server.stopping import decode_stopping, encode_verdict, evaluate
from labelwise_server.strategies._types import ParamValue
from labelwise_server.tensors import WireRequest, encode_tensor
from labelwise_server.validation import decode_request

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


def param_value(value: ParamValue) -> pb.ParamValue:
    if isinstance(value, bool):
        return pb.ParamValue(bool_value=value)
    if isinstance(value, int):
        return pb.ParamValue(int_value=value)
    if isinstance(value, float):
        return pb.ParamValue(double_value=value)
    return pb.ParamValue(string_value=value)


def _result(result: Result) -> pb.StrategyResult:
    message = pb.StrategyResult(
        name=result.name,
        params={name: param_value(v) for name, v in result.params.items()},
        indices=result.indices.tolist(),
        scores=result.scores.tolist(),
        total_cost=result.total_cost,
        candidates_considered=result.candidates_considered,
    )
    if result.points is not None:
        message.adversarial_points.CopyFrom(encode_tensor(result.points, pb.DATA_TYPE_FLOAT64))
    return message


def encode_response(results: list[Result], n: int) -> pb.SelectQueriesResponse:
    return pb.SelectQueriesResponse(pool_size=n, results=[_result(r) for r in results])
