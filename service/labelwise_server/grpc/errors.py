"""The one mapping from core exceptions to gRPC statuses with google.rpc details."""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from labelwise_server.errors import Cancelled, DeadlineExceeded, InvalidArgument, ModelNotCached

DOMAIN = "labelwise.dev"
log = logging.getLogger(__name__)

T = TypeVar("T")


def _status(code: int, message: str, *details: Any) -> grpc.Status:
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))


def invalid_argument_status(err: InvalidArgument) -> grpc.Status:
    """INVALID_ARGUMENT with a BadRequest naming the field and an ErrorInfo with the reason."""
    violation = error_details_pb2.BadRequest.FieldViolation(
        field=err.field, description=err.description, reason=err.reason
    )
    return _status(
        code_pb2.INVALID_ARGUMENT,
        str(err),
        error_details_pb2.BadRequest(field_violations=[violation]),
        error_details_pb2.ErrorInfo(
            reason=err.reason, domain=DOMAIN, metadata={"field": err.field}
        ),
    )


MODEL_NOT_CACHED = "MODEL_NOT_CACHED"


def model_not_cached_status(err: ModelNotCached) -> grpc.Status:
    """NOT_FOUND with an ErrorInfo (reason MODEL_NOT_CACHED) telling the client to send bytes."""
    return _status(
        code_pb2.NOT_FOUND,
        str(err),
        error_details_pb2.ErrorInfo(
            reason=MODEL_NOT_CACHED,
            domain=DOMAIN,
            metadata={"field": err.field, "sha256": err.sha256},
        ),
        error_details_pb2.ResourceInfo(
            resource_type="onnx-model",
            resource_name=err.sha256,
            description="resend the request with the model's bytes in Model.onnx",
        ),
    )


def translate_errors(
    method: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T]]:
    """Abort the RPC with the status each core exception maps to; hide unexpected ones."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> T:
        try:
            return await method(self, request, context)
        except InvalidArgument as err:
            await context.abort_with_status(invalid_argument_status(err))  # type: ignore[attr-defined]
        except ModelNotCached as err:
            await context.abort_with_status(model_not_cached_status(err))  # type: ignore[attr-defined]
        except DeadlineExceeded:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed; the work was abandoned"
            )
        except Cancelled:
            await context.abort(grpc.StatusCode.CANCELLED, "the call was cancelled")
        except MemoryError:
            log.exception("out of memory in %s", method.__name__)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "the request needs more memory than is free"
            )
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
        raise AssertionError("abort returned")  # abort always raises

    return wrapper
