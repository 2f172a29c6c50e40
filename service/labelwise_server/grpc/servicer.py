"""QuerySelectionService: convert, call the data plane, convert; nothing else.

Requests arrive already split by labelwise_server.tensors (see server.py's handlers), so
pool tensors are views into the received bytes. A stream of row-wise strategies is scored
as it arrives (labelwise_server.pool_stream); any other stream's chunks are reassembled by the
codec (labelwise_server.grpc.codec). The work (labelwise_server.work: decode and validate →
infer → select → encode) is run by the data plane (labelwise_server.dataplane) under the
call's deadline and cancellation. Answers from a work process are encoded already: the
handlers' serializers pass bytes through (server.py).
"""

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from labelwise.v1 import label_quality_pb2 as lq
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.dataplane import DataPlane
from labelwise_server.errors import InvalidArgument
from labelwise_server.grpc.codec import (
    StreamLimits,
    list_strategies_response,
    receive_stream,
    stream_response_bytes,
)
from labelwise_server.grpc.errors import translate_errors
from labelwise_server.tensors import MalformedMessage, WireRequest

__all__ = [
    "LabelQualityServicer",
    "QuerySelectionServicer",
    "list_strategies_response",
    "stream_response_bytes",
]

Context = grpc.aio.ServicerContext[Any, Any]


class QuerySelectionServicer:
    def __init__(self, plane: DataPlane, stream: StreamLimits) -> None:
        self._plane = plane
        self._stream = stream

    @translate_errors
    async def SelectQueries(
        self, request: WireRequest | MalformedMessage, context: Context
    ) -> pb.SelectQueriesResponse | bytes:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid SelectQueriesRequest: {request}")
        try:
            return await self._plane.select(request, _deadline(context), _cancelled(context))
        finally:
            request.release()

    @translate_errors
    async def SelectQueriesStream(
        self, requests: AsyncIterator[WireRequest | MalformedMessage], context: Context
    ) -> pb.SelectQueriesStreamResponse | bytes:
        request = await receive_stream(requests, self._stream, self._plane.max_response_bytes)
        response = await self._plane.select_stream(request, _deadline(context), _cancelled(context))
        if isinstance(response, bytes):
            return stream_response_bytes(response)
        return pb.SelectQueriesStreamResponse(response=response)

    @translate_errors
    async def ListStrategies(
        self, request: pb.ListStrategiesRequest, context: Context
    ) -> pb.ListStrategiesResponse:
        return list_strategies_response()

    @translate_errors
    async def CheckStopping(
        self, request: pb.CheckStoppingRequest | MalformedMessage, context: Context
    ) -> pb.CheckStoppingResponse | bytes:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid CheckStoppingRequest: {request}")
        return await self._plane.stopping(request, _deadline(context))


class LabelQualityServicer:
    def __init__(self, plane: DataPlane) -> None:
        self._plane = plane

    @translate_errors
    async def AssessLabels(
        self, request: lq.AssessLabelsRequest | MalformedMessage, context: Context
    ) -> lq.AssessLabelsResponse | bytes:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid AssessLabelsRequest: {request}")
        return await self._plane.labels(  # type: ignore[return-value]
            "assess_labels", request, _deadline(context), _cancelled(context)
        )

    @translate_errors
    async def PlanLabeling(
        self, request: lq.PlanLabelingRequest | MalformedMessage, context: Context
    ) -> lq.PlanLabelingResponse | bytes:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid PlanLabelingRequest: {request}")
        return await self._plane.labels(  # type: ignore[return-value]
            "plan_labeling", request, _deadline(context), _cancelled(context)
        )


def _deadline(context: Context) -> float | None:
    """The call's deadline on the monotonic clock (shared by the work processes)."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _cancelled(context: Context) -> threading.Event:
    """Set once the call ends (the client left, or the deadline passed)."""
    cancelled = threading.Event()
    context.add_done_callback(lambda _: cancelled.set())  # type: ignore[arg-type]
    if context.done():  # it ended before the callback was added (a stream whose client left)
        cancelled.set()
    return cancelled
