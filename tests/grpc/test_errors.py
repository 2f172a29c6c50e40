"""The one mapping from core exceptions to statuses: BadRequest and ErrorInfo details."""

import grpc
import numpy as np
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.errors import InvalidArgument
from labelwise_server.grpc.errors import (
    DOMAIN,
    STATUS_BYTES,
    TEXT_CHARS,
    _status,
    bounded,
    invalid_argument_status,
    wire_bytes,
)


def test_invalid_argument_carries_bad_request_and_error_info() -> None:
    error = InvalidArgument("strategies[1].params[beta]", "must be > 0; got -1", reason="X")
    status = invalid_argument_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "strategies[1].params[beta]: must be > 0; got -1"
    [(key, value)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    detail = status_pb2.Status.FromString(value)
    assert detail.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    info = error_details_pb2.ErrorInfo()
    assert detail.details[0].Unpack(bad_request) and detail.details[1].Unpack(info)
    [violation] = bad_request.field_violations
    assert (violation.field, violation.description, violation.reason) == (
        "strategies[1].params[beta]",
        "must be > 0; got -1",
        "X",
    )
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "X",
        DOMAIN,
        {"field": "strategies[1].params[beta]"},
    )


BIG = "x" * 100_000


def _bad_requests() -> dict[str, tuple[pb.StrategySpec, str]]:
    """A 100 KB strategy name, parameter name and parameter value, and the field each names."""
    name = pb.StrategySpec(name=BIG)
    param_name = pb.StrategySpec(name="margin", params={BIG: pb.ParamValue(string_value="1")})
    param_value = pb.StrategySpec(
        name="core_set", params={"metric": pb.ParamValue(string_value=BIG)}
    )
    return {
        "strategy name": (name, "strategies[0].name"),
        "param name": (param_name, "strategies[0].params[xxxxxxxx"),
        "param value": (param_value, "strategies[0].params[metric]"),
    }


@pytest.mark.parametrize("case", sorted(_bad_requests()))
def test_a_100_kb_name_or_value_gets_invalid_argument_in_a_status_under_8_kib(
    channel: grpc.Channel, case: str
) -> None:
    spec, field = _bad_requests()[case]
    probabilities = encode_tensor(np.full((4, 2), 0.5, np.float32))
    request = pb.SelectQueriesRequest(probabilities=probabilities, strategies=[spec], k=1)
    stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
    with pytest.raises(grpc.RpcError) as raised:
        stub.SelectQueries(request, timeout=10)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailer = error.trailing_metadata()
    sizes = {key: len(value) for key, value in trailer}
    # What goes on the wire: the message percent-encoded (ASCII here), -bin values base64.
    on_wire = len(error.details()) + sum(
        len(key) + (4 * -(-size // 3) if key.endswith("-bin") else size)
        for key, size in sizes.items()
    )
    assert on_wire < 8 * 1024, sizes
    assert len(error.details()) < 1100
    detail = status_pb2.Status.FromString(dict(trailer)["grpc-status-details-bin"])
    bad_request = error_details_pb2.BadRequest()
    assert detail.details[0].Unpack(bad_request)
    [violation] = bad_request.field_violations
    assert violation.field.startswith(field)
    assert len(violation.field) <= 200 + len("strategies[0].params[…]")
    assert len(violation.description) <= 1024 + 1
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_bounded_cuts_long_runs_but_keeps_lists_of_names() -> None:
    names = ", ".join(f"strategy_{i}" for i in range(60))
    assert bounded(f"must be one of {names}; got 'ab'") == f"must be one of {names}; got 'ab'"
    cut = bounded(f"must be one of a, b; got '{BIG}'")
    assert cut == "must be one of a, b; got '" + "x" * 199 + "…"  # the run: ' and 199 x
    assert len(bounded("x " * 100_000)) == TEXT_CHARS + 1


def test_every_detail_string_is_bounded_and_the_status_fits() -> None:
    status = _status(
        code_pb2.INVALID_ARGUMENT,
        "é" * 50_000,  # percent-encoded, 6 bytes each on the wire
        error_details_pb2.ErrorInfo(reason="X", domain=DOMAIN, metadata={BIG: BIG, "k": BIG}),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=BIG, description="y " * 9_000)
            ]
            * 20
        ),
    )
    [(_, value)] = status.trailing_metadata
    detail = status_pb2.Status.FromString(value)
    assert wire_bytes(detail) <= STATUS_BYTES
    info = error_details_pb2.ErrorInfo()
    assert detail.details[0].Unpack(info)
    assert info.reason == "X" and all(len(v) <= TEXT_CHARS + 1 for v in info.metadata.values())
