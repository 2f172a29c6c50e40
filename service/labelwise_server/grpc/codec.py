"""The gRPC messages from and to the stages: response encoding, ListStrategies, and the
reassembly of a SelectQueriesStream's chunks into one request.

Chunks arrive split by labelwise_server.tensors (dtype, shape and byte length checked
there); here they are joined along each tensor's stream axis (the proto's pool_axis /
labeled_axis option) under the stream's limits: chunk count, idle time, elements per tensor.
"""

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from labelwise.tensors import STREAM_AXIS
from labelwise.v1 import history_pb2
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.errors import InvalidArgument, StreamIdle
from labelwise_server.label_quality import METHODS as LABEL_QUALITY_METHODS
from labelwise_server.onnx_runner import GRADIENT_OPS
from labelwise_server.pool_stream import Chunks, RowWiseStream, plan
from labelwise_server.selection import Result
from labelwise_server.strategies import STRATEGIES
from labelwise_server.strategies._types import AutoReport, Input, Param, ParamValue
from labelwise_server.strategies.registry import STREAM_STRATEGIES
from labelwise_server.strategies.stream import StreamStrategy
from labelwise_server.tensors import (
    ALL_DTYPES,
    MalformedMessage,
    RawTensor,
    WireRequest,
    element_count,
    encode_tensor,
)


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
        adversarial_method=result.method,
    )
    if result.points is not None:
        message.adversarial_points.CopyFrom(encode_tensor(result.points, pb.DATA_TYPE_FLOAT64))
    if result.auto is not None:
        message.auto_selection.CopyFrom(_auto_selection(result.auto))
    if result.represented is not None:
        message.represented_weights.extend(result.represented.tolist())
    return message


def _auto_selection(report: AutoReport) -> history_pb2.AutoSelection:
    return history_pb2.AutoSelection(
        arms=[
            history_pb2.AutoArm(
                name=arm.name,
                picks=arm.picks,
                weight=arm.weight,
                expected_reward=arm.expected_reward,
                evidence=arm.evidence,
            )
            for arm in report.arms
        ],
        strategies=list(report.strategies),
        reward=report.reward,
        history_rounds=report.history_rounds,
        history_items=report.history_items,
    )


def encode_response(results: list[Result], n: int) -> pb.SelectQueriesResponse:
    return pb.SelectQueriesResponse(pool_size=n, results=[_result(r) for r in results])


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
        + [_stream_strategy_info(strategy) for strategy in STREAM_STRATEGIES.values()],
        label_quality_methods=[
            pb.LabelQualityMethodInfo(
                name=method.name,
                rpcs=method.rpcs,
                description=method.description,
                params=[_param_info(name, param) for name, param in method.params.items()],
                is_default=method.is_default,
            )
            for method in LABEL_QUALITY_METHODS
        ],
    )


def _stream_strategy_info(strategy: StreamStrategy) -> pb.StrategyInfo:
    """A stream strategy (StreamSelectionService.Decide), told apart by family "stream"."""
    needs = pb.POOL_INPUT_PROBABILITIES if strategy.reads_items else pb.POOL_INPUT_ANY
    return pb.StrategyInfo(
        name=strategy.name,
        family=strategy.family,
        description=strategy.summary,
        params=[_param_info(name, param) for name, param in strategy.params.items()],
        required_inputs=[needs],
        seeded=strategy.seeded,
        task="classification",
    )


@dataclass(frozen=True)
class StreamLimits:
    max_elements: int  # per tensor, over all its chunks
    idle_seconds: float = 10.0  # 0: no idle limit
    max_chunks: int = 65536  # 0: no chunk limit
    max_stream_elements: int = 1 << 36  # per tensor, streamed past while scored as they arrive


async def checked_chunks(
    requests: AsyncIterator[WireRequest | MalformedMessage], limits: StreamLimits
) -> AsyncIterator[tuple[int, WireRequest]]:
    """A stream's chunks with their positions, each checked as it arrives.

    A stream that stalls (no chunk for stream_idle_seconds) or sends more than
    max_stream_chunks chunks ends at once, so it holds a --max-concurrent-rpcs slot and
    its memory only while it makes progress within bounds.
    """
    i = 0
    idle = limits.idle_seconds if limits.idle_seconds > 0 else None
    chunks = aiter(requests)
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise StreamIdle(limits.idle_seconds, i) from None
        if 0 < limits.max_chunks <= i:
            raise InvalidArgument(
                f"chunks[{i}].chunk",
                f"a stream may send at most {limits.max_chunks} chunks (the server's "
                "limit, --max-stream-chunks); send bigger chunks",
                reason=reasons.TOO_MANY_CHUNKS,
            )
        if isinstance(chunk, MalformedMessage):
            raise InvalidArgument(
                f"chunks[{i}]", f"is not a valid SelectQueriesStreamRequest: {chunk}"
            )
        if i > 0:
            for descriptor, _ in chunk.header.ListFields():
                if descriptor.name != "exclude":
                    raise InvalidArgument(
                        f"chunks[{i}].chunk.{descriptor.name}",
                        "must be set only in the first chunk of a stream",
                    )
        yield i, chunk
        i += 1


async def receive_stream(
    requests: AsyncIterator[WireRequest | MalformedMessage],
    limits: StreamLimits,
    max_response_bytes: int,
) -> RowWiseStream | WireRequest:
    """A stream of row-wise strategies to score as it arrives, or any other stream
    reassembled into one request."""
    head, chunks = await first_rows(checked_chunks(requests, limits))
    if head is not None:
        calls = plan(*head, max_response_bytes)
        if calls is not None:
            return RowWiseStream(head[0], calls, chunks)
    return await assemble(chunks, limits)


async def first_rows(
    chunks: Chunks,
) -> tuple[tuple[pb.SelectQueriesRequest, dict[str, RawTensor]] | None, Chunks]:
    """Read a stream up to its first chunk with tensors: (the stream's header, that chunk's
    tensors), None for a stream without tensors; and the whole stream again, from its start."""
    head: list[tuple[int, WireRequest]] = []
    async for item in chunks:
        head.append(item)
        if item[1].tensors:
            break
    found = (head[0][1].header, head[-1][1].tensors) if head and head[-1][1].tensors else None
    return found, _resumed(head, chunks)


async def _resumed(head: list[tuple[int, WireRequest]], rest: Chunks) -> Chunks:
    for item in head:
        yield item
    async for item in rest:
        yield item


async def assemble(
    chunks: AsyncIterator[tuple[int, WireRequest]], limits: StreamLimits
) -> WireRequest:
    """Reassemble a stream's checked chunks (checked_chunks) into one request."""
    first: WireRequest | None = None
    parts: dict[str, list[RawTensor]] = {}
    exclude: list[int] = []
    wire_bytes = 0
    elements: dict[str, int] = {}  # tensor field -> elements received so far
    try:
        async for i, chunk in chunks:
            if first is None:
                first = chunk
            exclude.extend(chunk.header.exclude)
            for name, tensor in chunk.tensors.items():
                field = f"chunks[{i}].chunk.{name}"
                # The limit is per tensor, as in the unary call: the chunks of one add up.
                total = elements.get(name, 0)
                total += element_count(tensor.shape, field, limits.max_elements)
                if total > limits.max_elements:
                    raise InvalidArgument(
                        f"{field}.shape",
                        f"the stream's chunks of {name} must hold at most {limits.max_elements} "
                        f"elements in all (the server's limit); got {total} so far",
                        reason=reasons.TOO_MANY_ELEMENTS,
                    )
                elements[name] = total
                parts.setdefault(name, []).append(tensor)
            wire_bytes += chunk.wire_bytes
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
    # The joined tensor in C order is, for each index of the axes before the pool axis, each
    # chunk's block in turn: the parts, laid end to end, are its bytes (no copy made here).
    outer = math.prod(first.shape[:axis])
    views = [chunk.raw_data.cast("B") for chunk in chunks]
    blocks = [view.nbytes // outer if outer else 0 for view in views]
    parts = [
        view[o * block : (o + 1) * block]
        for o in range(outer)
        for view, block in zip(views, blocks, strict=True)
    ]
    shape = list(first.shape)
    shape[axis] = sum(chunk.shape[axis] for chunk in chunks)
    return RawTensor(first.dtype, shape, memoryview(b""), parts)
