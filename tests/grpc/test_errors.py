"""The one mapping from core exceptions to statuses: BadRequest and ErrorInfo details."""

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

from labelwise_server.errors import InvalidArgument
from labelwise_server.grpc.errors import DOMAIN, invalid_argument_status


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
