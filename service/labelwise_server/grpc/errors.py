"""The one mapping from core exceptions to gRPC statuses with google.rpc details.

Every status leaves here bounded, whatever the caller sent: a run of characters without a
space (a quoted name or value) keeps QUOTE_CHARS of them, one string TEXT_CHARS, and the
status as it goes on the wire (`grpc-message` percent-encoded, `grpc-status-details-bin`
base64) at most STATUS_BYTES. gRPC refuses metadata over 8 KiB (the call then fails
RESOURCE_EXHAUSTED) and proxies have smaller buffers (nginx's grpc_buffer_size: 4 KiB or 8 KiB
by default, beyond which it answers 502 and marks the replica down).
"""

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
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

QUOTE_CHARS = 200
TEXT_CHARS = 1024
STATUS_BYTES = 4096
# Tighter (quote, text) bounds, tried in turn while a status is still over STATUS_BYTES.
_BOUNDS = ((QUOTE_CHARS, TEXT_CHARS), (64, 256), (16, 64))


def bounded(text: str, quote: int = QUOTE_CHARS, total: int = TEXT_CHARS) -> str:
    """text with every run of more than `quote` non-space characters cut to `quote` and the
    whole to `total`, each cut marked with "…" (a list of names keeps its names, a 100 KB
    name keeps its first 200 characters)."""
    if len(text) > quote:
        text = re.sub(rf"\S{{{quote + 1},}}", lambda run: run[0][:quote] + "…", text)
    if len(text) > total:
        text = text[:total] + "…"
    return text


def _bound_strings(message: Message, quote: int, total: int) -> None:
    """Bound every string field of message and its sub-messages (map keys and values too)."""
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entries = dict(value)
            value.clear()
            for key, item in entries.items():
                key = bounded(key, quote, total) if isinstance(key, str) else key
                if isinstance(item, Message):
                    value[key].CopyFrom(item)
                    _bound_strings(value[key], quote, total)
                else:
                    value[key] = bounded(item, quote, total) if isinstance(item, str) else item
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                value[:] = [bounded(item, quote, total) for item in value]
            else:
                setattr(message, field.name, bounded(value, quote, total))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value if field.is_repeated else (value,):
                _bound_strings(item, quote, total)


def wire_bytes(status: status_pb2.Status) -> int:
    """Bytes of grpc-message (percent-encoded) and grpc-status-details-bin (base64)."""
    message = sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in status.message.encode())
    details: int = status.ByteSize()
    return message + 4 * -(-details // 3)


def _status(code: int, message: str, *details: Message) -> grpc.Status:
    for quote, total in _BOUNDS:
        packed = []
        for detail in details:
            detail = type(detail).FromString(detail.SerializeToString())
            _bound_strings(detail, quote, total)
            holder = any_pb2.Any()
            holder.Pack(detail)
            packed.append(holder)
        status = status_pb2.Status(
            code=code, message=bounded(message, quote, total), details=packed
        )
        if wire_bytes(status) <= STATUS_BYTES:
            break
    else:  # only a status of many details could get here: keep its message alone
        status = status_pb2.Status(code=code, message=bounded(message, 16, 64))
    return rpc_status.to_status(status)


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
