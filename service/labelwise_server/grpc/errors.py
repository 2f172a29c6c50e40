"""The one mapping from core exceptions to gRPC statuses with google.rpc details."""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from labelwise_server import reasons
from labelwise_server.errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidArgument,
    ModelNotCached,
    StreamIdle,
    WorkFailed,
)

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


def model_not_cached_status(err: ModelNotCached) -> grpc.Status:
    """NOT_FOUND with an ErrorInfo (reason MODEL_NOT_CACHED) telling the client to send bytes."""
    return _status(
        code_pb2.NOT_FOUND,
        str(err),
        error_details_pb2.ErrorInfo(
            reason=reasons.MODEL_NOT_CACHED,
            domain=DOMAIN,
            metadata={"field": err.field, "sha256": err.sha256},
        ),
        error_details_pb2.ResourceInfo(
            resource_type="onnx-model",
            resource_name=err.sha256,
            description="resend the request with the model's bytes in Model.onnx",
        ),
    )


def stream_idle_status(err: StreamIdle) -> grpc.Status:
    """DEADLINE_EXCEEDED with an ErrorInfo (reason STREAM_IDLE): the client stalled, not us."""
    return _status(
        code_pb2.DEADLINE_EXCEEDED,
        str(err),
        error_details_pb2.ErrorInfo(
            reason=reasons.STREAM_IDLE,
            domain=DOMAIN,
            metadata={"idle_seconds": f"{err.idle_seconds:g}", "chunks": str(err.chunks)},
        ),
    )


def shed_status(reason: str, message: str, limit: int) -> grpc.Status:
    """RESOURCE_EXHAUSTED with an ErrorInfo naming the limit: a call refused to keep the
    server within its budget; the client may retry with backoff."""
    return _status(
        code_pb2.RESOURCE_EXHAUSTED,
        message,
        error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata={"limit": str(limit)}),
    )


def work_failed_status(err: WorkFailed) -> grpc.Status:
    """RESOURCE_EXHAUSTED with an ErrorInfo (WORK_MEMORY_EXCEEDED, WORK_PROCESS_DIED): the
    request's work needed more than a work process may have; the server itself is fine."""
    return _status(
        code_pb2.RESOURCE_EXHAUSTED,
        err.description,
        error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN),
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
        except WorkFailed as err:
            await context.abort_with_status(work_failed_status(err))  # type: ignore[attr-defined]
        except StreamIdle as err:
            await context.abort_with_status(stream_idle_status(err))  # type: ignore[attr-defined]
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
