"""QuerySelectionService: decode → validate → select → encode, nothing else.

Requests arrive already split by labelwise_server.tensors (see server.py's
handlers), so pool tensors are views into the received bytes. Strategy work
runs on a bounded thread pool so the event loop keeps serving.
"""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor
from typing import Any

import grpc
import numpy as np

from labelwise.tensors import POOL_AXIS
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import Cancelled, DeadlineExceeded, InvalidArgument
from labelwise_server.grpc.errors import translate_errors
from labelwise_server.metrics import Metrics
from labelwise_server.onnx_runner import GRADIENT_OPS, ModelStore
from labelwise_server.selection import Result, select
from labelwise_server.stopping import decode_stopping, encode_verdict, evaluate
from labelwise_server.strategies import STRATEGIES
from labelwise_server.strategies._types import Input, Param, ParamValue
from labelwise_server.tensors import (
    ALL_DTYPES,
    MalformedMessage,
    RawTensor,
    WireRequest,
    element_count,
    encode_tensor,
)
from labelwise_server.validation import decode_request

Context = grpc.aio.ServicerContext[Any, Any]


class QuerySelectionServicer:
    def __init__(
        self,
        metrics: Metrics,
        executor: Executor,
        max_pool_elements: int,
        models: ModelStore | None = None,
    ) -> None:
        self._metrics = metrics
        self._executor = executor
        self._max_elements = max_pool_elements
        self._models = models

    @translate_errors
    async def SelectQueries(
        self, request: WireRequest | MalformedMessage, context: Context
    ) -> pb.SelectQueriesResponse:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid SelectQueriesRequest: {request}")
        return await self._select(request, context)

    @translate_errors
    async def SelectQueriesStream(
        self, requests: AsyncIterator[WireRequest | MalformedMessage], context: Context
    ) -> pb.SelectQueriesStreamResponse:
        request = await self._assemble(requests)
        return pb.SelectQueriesStreamResponse(response=await self._select(request, context))

    @translate_errors
    async def ListStrategies(
        self, request: pb.ListStrategiesRequest, context: Context
    ) -> pb.ListStrategiesResponse:
        return list_strategies_response()

    @translate_errors
    async def CheckStopping(
        self, request: pb.CheckStoppingRequest | MalformedMessage, context: Context
    ) -> pb.CheckStoppingResponse:
        if isinstance(request, MalformedMessage):
            raise InvalidArgument("request", f"is not a valid CheckStoppingRequest: {request}")

        def work() -> pb.CheckStoppingResponse:
            return encode_verdict(evaluate(decode_stopping(request, self._max_elements)))

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def _select(self, request: WireRequest, context: Context) -> pb.SelectQueriesResponse:
        self._metrics.request_bytes.observe(request.wire_bytes)
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
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
            stop()
            selection = decode_request(request, self._max_elements, self._models, stop)
            self._metrics.pool_rows.observe(selection.pool.n)
            results = select(selection, stop, self._observe)
            return encode_response(results, selection.pool.n)

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
        """Reassemble a stream's chunks into one request, checking each as it arrives."""
        first: WireRequest | None = None
        parts: dict[str, list[RawTensor]] = {}
        exclude: list[int] = []
        wire_bytes = 0
        elements: dict[str, int] = {}  # tensor field -> elements received so far
        i = 0
        async for chunk in requests:
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
                        reason="TOO_MANY_ELEMENTS",
                    )
                elements[name] = total
                parts.setdefault(name, []).append(tensor)
            wire_bytes += chunk.wire_bytes
            i += 1
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
    axis = POOL_AXIS.get(name, 0)
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


def _param_value(value: ParamValue) -> pb.ParamValue:
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
        params={name: _param_value(v) for name, v in result.params.items()},
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
        default_value=_param_value(param.default),
        allowed_values=[_param_value(choice) for choice in param.choices],
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
