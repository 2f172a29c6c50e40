"""Prometheus grpc_server_* metrics for a grpc.aio server.

py-grpc-prometheus has no released asyncio interceptor, so this is ours; it
emits the names and labels of go-grpc-middleware's provider.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from labelwise_server.metrics import Metrics

# grpc-stubs makes these generic; at run time they are plain classes, hence the string.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def _grpc_type(handler: Handler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def _code(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # aio reports the cygrpc integer
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status.name
    if isinstance(error, asyncio.CancelledError):
        remaining = context.time_remaining()
        return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
    if error is not None:
        return "UNKNOWN"
    return "OK"


class PrometheusInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        _, service, method = handler_call_details.method.split("/", 2)  # "/pkg.Service/Method"
        labels = {"grpc_type": _grpc_type(handler), "grpc_service": service, "grpc_method": method}
        metrics = self._metrics
        reached = False  # whether the behavior ran: a unary request may never arrive
        task = asyncio.current_task()  # the call's task, which also runs the behavior
        if not handler.request_streaming and task is not None:

            def unread(_: object) -> None:
                # gRPC refuses a message over --max-message-bytes (RESOURCE_EXHAUSTED) before
                # the behavior runs; the call's task then ends without it. (A client that went
                # away before its message arrived looks the same, and is counted so too.)
                if not reached:
                    metrics.started.labels(**labels).inc()
                    metrics.handled.labels(**labels, grpc_code="RESOURCE_EXHAUSTED").inc()

            task.add_done_callback(unread)

        def finish(context: Any, started: float, error: BaseException | None) -> None:
            metrics.handled.labels(**labels, grpc_code=_code(context, error)).inc()
            metrics.handling_seconds.labels(**labels).observe(time.perf_counter() - started)

        async def count_requests(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for request in requests:
                metrics.received.labels(**labels).inc()
                yield request

        async def call(behavior: Any, request: Any, context: Any) -> Any:
            nonlocal reached
            reached = True
            metrics.started.labels(**labels).inc()
            metrics.worker_rpcs.inc()
            started = time.perf_counter()
            if handler.request_streaming:
                request = count_requests(request)
            else:
                metrics.received.labels(**labels).inc()
            error: BaseException | None = None
            deferred = False  # an async generator reports when it ends, not here
            try:
                result = behavior(request, context)
                if hasattr(result, "__anext__"):
                    deferred = True
                    return _count_responses(result, metrics, labels, context, started, finish)
                response = await result
                if response is not None and not handler.response_streaming:
                    metrics.sent.labels(**labels).inc()
                return response
            except BaseException as err:
                error = err
                raise
            finally:
                if not deferred:
                    finish(context, started, error)

        # grpc.aio tells coroutine handlers from generators by inspection, so
        # each wrapper must be a real `async def`, not a lambda.
        if handler.unary_unary or handler.stream_unary:
            behavior = handler.unary_unary or handler.stream_unary

            async def unary_response(request: Any, context: Any) -> Any:
                return await call(behavior, request, context)

            make = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary
                else grpc.stream_unary_rpc_method_handler
            )
            return make(unary_response, handler.request_deserializer, handler.response_serializer)

        streaming = handler.unary_stream or handler.stream_stream

        async def stream_response(request: Any, context: Any) -> AsyncIterator[Any]:
            result = await call(streaming, request, context)
            if result is not None:
                async for response in result:
                    yield response

        make = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream
            else grpc.stream_stream_rpc_method_handler
        )
        return make(stream_response, handler.request_deserializer, handler.response_serializer)


async def _count_responses(
    responses: AsyncIterator[Any],
    metrics: Metrics,
    labels: dict[str, str],
    context: Any,
    started: float,
    finish: Callable[[Any, float, BaseException | None], None],
) -> AsyncIterator[Any]:
    error: BaseException | None = None
    try:
        async for response in responses:
            metrics.sent.labels(**labels).inc()
            yield response
    except BaseException as err:
        error = err
        raise
    finally:
        finish(context, started, error)
