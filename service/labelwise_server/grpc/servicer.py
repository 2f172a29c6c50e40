"""QuerySelectionService: receive, hand the work over, answer; nothing else.

Requests arrive already split by labelwise_server.tensors (see server.py's
handlers), so pool tensors are views into the received bytes. The work itself
(labelwise_server.work: decode → validate → models → select → encode) runs in a
work process of the worker's WorkPool, which kills it when the call's deadline
passes or the call is cancelled; with --no-sandbox, on a bounded thread pool.
Answers from a work process are encoded already: the handlers' serializers pass
bytes through (server.py).
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor
from typing import Any

import grpc
import numpy as np

from labelwise.tensors import STREAM_AXIS
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.errors import Cancelled, DeadlineExceeded, InvalidArgument, StreamIdle
from labelwise_server.grpc.errors import translate_errors
from labelwise_server.metrics import Metrics
from labelwise_server.onnx_runner import GRADIENT_OPS, ModelStore
from labelwise_server.sandbox.pool import WorkPool
from labelwise_server.strategies import STRATEGIES
from labelwise_server.strategies._types import Input, Param
from labelwise_server.tensors import (
    ALL_DTYPES,
    MalformedMessage,
    RawTensor,
    WireRequest,
    element_count,
)
from labelwise_server.work import param_value, select_response, stopping_response

Context = grpc.aio.ServicerContext[Any, Any]


class QuerySelectionServicer:
    def __init__(
        self,
        metrics: Metrics,
        executor: Executor,
        max_pool_elements: int,
        models: ModelStore | None = None,
        *,
        pool: WorkPool | None = None,
        max_response_bytes: int = 256 << 20,
        stream_idle_seconds: float = 10.0,  # 0: no idle limit (see _assemble)
        max_stream_chunks: int = 65536,  # 0: no chunk limit
    ) -> None:
        self._stream_idle_seconds = stream_idle_seconds
        self._max_stream_chunks = max_stream_chunks
        self._metrics = metrics
        self._executor = executor
        self._max_elements = max_pool_elements
        self._models = models
        self._pool = pool
        self._max_response_bytes = max_response_bytes

    @translate_errors
    async def SelectQueries(
        self, request: WireRequest | MalformedMessage, context: Context
    ) -> pb.SelectQueriesResponse | bytes:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid SelectQueriesRequest: {request}")
        try:
            return await self._select(request, context)
        finally:
            request.release()

    @translate_errors
    async def SelectQueriesStream(
        self, requests: AsyncIterator[WireRequest | MalformedMessage], context: Context
    ) -> pb.SelectQueriesStreamResponse | bytes:
        request = await self._assemble(requests)
        try:
            response = await self._select(request, context)
        finally:
            request.release()
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
        if self._pool is not None:
            return await self._pool.stopping(request, _deadline(context))

        def work() -> pb.CheckStoppingResponse:
            return stopping_response(request, self._max_elements)

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def _select(
        self, request: WireRequest, context: Context
    ) -> pb.SelectQueriesResponse | bytes:
        self._metrics.request_bytes.observe(request.wire_bytes)
        deadline = _deadline(context)
        if self._pool is not None:
            self._metrics.in_flight.inc()
            try:
                reply = await self._pool.select(request, deadline)
            finally:
                self._metrics.in_flight.dec()
            self._metrics.pool_rows.observe(reply.rows)
            for strategy, seconds in reply.timings:
                self._observe(strategy, seconds)
            self._metrics.model_cache_bytes.set(self._pool.models.nbytes)
            return reply.body
        cancelled = threading.Event()
        context.add_done_callback(lambda _: cancelled.set())  # type: ignore[arg-type]
        if context.done():  # it ended before the callback was added (a stream whose client left)
            cancelled.set()

        def stop() -> None:
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded()
            if cancelled.is_set():
                raise Cancelled()

        def work() -> pb.SelectQueriesResponse:
            response, rows = select_response(
                request,
                self._max_elements,
                self._models,
                stop,
                self._observe,
                self._max_response_bytes,
            )
            self._metrics.pool_rows.observe(rows)
            return response

        self._metrics.in_flight.inc()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, work)
        finally:
            self._metrics.in_flight.dec()

    def _observe(self, strategy: str, seconds: float) -> None:
        self._metrics.strategy_seconds.labels(strategy=strategy).observe(seconds)

    async def _assemble(
        self, requests: AsyncIterator[WireRequest | MalformedMessage]
    ) -> WireRequest:
        """Reassemble a stream's chunks into one request, checking each as it arrives.

        A stream that stalls (no chunk for stream_idle_seconds) or sends more than
        max_stream_chunks chunks ends at once, so it holds a --max-concurrent-rpcs slot and
        its memory only while it makes progress within bounds.
        """
        first: WireRequest | None = None
        parts: dict[str, list[RawTensor]] = {}
        exclude: list[int] = []
        wire_bytes = 0
        elements: dict[str, int] = {}  # tensor field -> elements received so far
        i = 0
        idle = self._stream_idle_seconds if self._stream_idle_seconds > 0 else None
        chunks = aiter(requests)
        try:
            while True:
                try:
                    async with asyncio.timeout(idle):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise StreamIdle(self._stream_idle_seconds, i) from None
                if 0 < self._max_stream_chunks <= i:
                    raise InvalidArgument(
                        f"chunks[{i}].chunk",
                        f"a stream may send at most {self._max_stream_chunks} chunks (the server's "
                        "limit, --max-stream-chunks); send bigger chunks",
                        reason=reasons.TOO_MANY_CHUNKS,
                    )
                if isinstance(chunk, MalformedMessage):
                    raise InvalidArgument(
                        f"chunks[{i}]", f"is not a valid SelectQueriesStreamRequest: {chunk}"
                    )
                if first is None:
                    first = chunk
                else:
                    for descriptor, _ in chunk.header.ListFields():
                        if descriptor.name != "exclude":
                            raise InvalidArgument(
                                f"chunks[{i}].chunk.{descriptor.name}",
                                "must be set only in the first chunk of a stream",
                            )
                exclude.extend(chunk.header.exclude)
                for name, tensor in chunk.tensors.items():
                    field = f"chunks[{i}].chunk.{name}"
                    # The limit is per tensor, as in the unary call: the chunks of one add up.
                    total = elements.get(name, 0)
                    total += element_count(tensor.shape, field, self._max_elements)
                    if total > self._max_elements:
                        raise InvalidArgument(
                            f"{field}.shape",
                            f"the stream's chunks of {name} must hold at most {self._max_elements} "
                            f"elements in all (the server's limit); got {total} so far",
                            reason=reasons.TOO_MANY_ELEMENTS,
                        )
                    elements[name] = total
                    parts.setdefault(name, []).append(tensor)
                wire_bytes += chunk.wire_bytes
                i += 1
        except BaseException:
            # A refused stream lets go of the chunks it received (see WireRequest.release).
            for received in parts.values():
                for tensor in received:
                    with contextlib.suppress(BufferError):
                        tensor.raw_data.release()
            raise
        if first is None:
            raise InvalidArgument("chunks", "must hold at least one chunk; the stream was empty")
        header = pb.SelectQueriesRequest()
        header.CopyFrom(first.header)
        del header.exclude[:]
        header.exclude.extend(exclude)
        tensors = {name: _concatenate(name, chunks) for name, chunks in parts.items()}
        return WireRequest(header, tensors, wire_bytes)


def _concatenate(name: str, chunks: list[RawTensor]) -> RawTensor:
    """One tensor from its chunks, joined along its pool axis."""
    if len(chunks) == 1:
        return chunks[0]
    axis = STREAM_AXIS[name]  # the proto's pool_axis / labeled_axis option
    first = chunks[0]
    if len(first.shape) <= axis:
        raise InvalidArgument(
            f"{name}.shape", f"must have a pool axis {axis} to split along; got {first.shape}"
        )
    arrays = []
    for i, chunk in enumerate(chunks):
        where = f"{name} (stream chunk {i})"
        if chunk.dtype != first.dtype:
            raise InvalidArgument(
                f"{name}.dtype", f"must be the same in every chunk; {where} differs from chunk 0"
            )
        dtype = ALL_DTYPES.get(chunk.dtype)
        if dtype is None:
            raise InvalidArgument(
                f"{name}.dtype", f"must be one of the float dtypes; got {chunk.dtype}"
            )
        rest = chunk.shape[:axis] + chunk.shape[axis + 1 :]
        if (
            len(chunk.shape) != len(first.shape)
            or rest != first.shape[:axis] + first.shape[axis + 1 :]
        ):
            raise InvalidArgument(
                f"{name}.shape",
                f"chunks must agree on every axis but the pool axis {axis}; "
                f"chunk 0 is {first.shape}, {where} is {chunk.shape}",
            )
        count = element_count(chunk.shape, name, 1 << 62)
        if len(chunk.raw_data) != count * dtype.itemsize:
            raise InvalidArgument(
                f"{name}.raw_data",
                f"must be {count * dtype.itemsize} bytes in {where}; got {len(chunk.raw_data)}",
            )
        arrays.append(np.frombuffer(chunk.raw_data, dtype=dtype).reshape(chunk.shape))
    joined = np.concatenate(arrays, axis=axis)
    raw = memoryview(joined.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    return RawTensor(first.dtype, list(joined.shape), raw)


def _deadline(context: Context) -> float | None:
    """The call's deadline on the monotonic clock (shared by the work processes)."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def stream_response_bytes(response: bytes) -> bytes:
    """SelectQueriesStreamResponse{response} encoded around an encoded SelectQueriesResponse
    (field 1, length-delimited), without parsing it again."""
    size, length = bytearray(), len(response)
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            size.append(byte | 0x80)
        else:
            size.append(byte)
            break
    return b"\x0a" + bytes(size) + response


_PARAM_TYPES: Mapping[type, int] = {
    bool: pb.PARAM_TYPE_BOOL,
    int: pb.PARAM_TYPE_INT,
    float: pb.PARAM_TYPE_FLOAT,
    str: pb.PARAM_TYPE_STRING,
}


def _param_info(name: str, param: Param) -> pb.ParamInfo:
    info = pb.ParamInfo(
        name=name,
        type=_PARAM_TYPES[param.type],  # type: ignore[arg-type]
        default_value=param_value(param.default),
        allowed_values=[param_value(choice) for choice in param.choices],
        description=param.description,
        exclusive_minimum=param.exclusive_minimum,
    )
    if param.minimum is not None:
        info.minimum = param.minimum
    if param.maximum is not None:
        info.maximum = param.maximum
    return info


def list_strategies_response() -> pb.ListStrategiesResponse:
    return pb.ListStrategiesResponse(
        strategies=[
            pb.StrategyInfo(
                name=strategy.name,
                family=strategy.family,
                description=strategy.summary,
                params=[_param_info(name, param) for name, param in strategy.params.items()],
                required_inputs=[
                    needed.value  # type: ignore[misc]
                    for needed in sorted(strategy.needs, key=lambda i: i.value)
                ],
                batch=strategy.batch,
                seeded=strategy.seeded,
                task=strategy.task,
                gradient_ops=GRADIENT_OPS if Input.MODEL in strategy.needs else (),
            )
            for strategy in STRATEGIES.values()
        ]
    )
