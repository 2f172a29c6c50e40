"""Tensors off the wire without copying them.

grpcio hands the server each request as one bytes object. Parsing it with
protobuf copies every raw_data payload once into the message and once more
on each field access; for a 40 MB pool those copies cost more than the
scoring. So requests are walked here at the wire level: tensor fields become
memoryviews into the received bytes (then NumPy arrays over them, read-only),
and everything else (strategies, k, seed, ...) is parsed by protobuf from the
few bytes left. tests/test_tensors.py checks the walk against protobuf's own
parse on random messages.
"""

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import reasons
from labelwise_server.errors import InvalidArgument

# Field numbers of SelectQueriesRequest that hold a Tensor.
TENSOR_FIELDS: dict[int, str] = {
    fd.number: fd.name
    for fd in pb.SelectQueriesRequest.DESCRIPTOR.fields
    if fd.message_type is not None and fd.message_type.full_name == "labelwise.v1.Tensor"
}
_STREAM_CHUNK_FIELD = pb.SelectQueriesStreamRequest.DESCRIPTOR.fields_by_name["chunk"].number
_MODELS_FIELD = pb.SelectQueriesRequest.DESCRIPTOR.fields_by_name["models"].number
_ONNX_FIELD = pb.Model.DESCRIPTOR.fields_by_name["onnx"].number
# A Model whose onnx bytes are over the limit is replaced in the header by a Model holding
# only these two unknown fields (its size and the limit), so no copy of the bytes is made
# and validation still reports it, for unary and stream requests alike.
_OVERSIZE_FIELD, _OVERSIZE_LIMIT_FIELD = 536_870_900, 536_870_901

# Tensors have at most this many dimensions (TOO_MANY_DIMENSIONS beyond).
MAX_DIMENSIONS = 8
# The walker keeps at most this many sizes of a shape; more are skipped, not decoded
# (a shape of millions of sizes would otherwise cost seconds of Python).
_MAX_SHAPE_KEPT = 1024

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5
_MAX_FIELD_NUMBER = (1 << 29) - 1  # protobuf rejects larger numbers, so the walker does too

FLOAT_DTYPES: dict[int, np.dtype[Any]] = {
    pb.DATA_TYPE_FLOAT16: np.dtype("<f2"),
    pb.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    pb.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    pb.DATA_TYPE_BFLOAT16: np.dtype("<u2"),  # widened to float32 on decode
}
INT_DTYPES: dict[int, np.dtype[Any]] = {
    pb.DATA_TYPE_INT32: np.dtype("<i4"),
    pb.DATA_TYPE_INT64: np.dtype("<i8"),
}
ALL_DTYPES = FLOAT_DTYPES | INT_DTYPES


class MalformedMessage(ValueError):
    """The bytes are not a valid protobuf encoding of the message."""


@dataclass
class RawTensor:
    """A Tensor as it arrived: dtype number, shape, and a view of its bytes.

    A tensor joined from a stream's chunks may come as `parts` instead: byte views that,
    laid end to end, are its raw_data (a work process gets them written straight into its
    memfd, one copy); `joined()` makes raw_data from them where the bytes are needed here.
    """

    dtype: int = 0
    shape: list[int] = field(default_factory=list)
    raw_data: memoryview = field(default_factory=lambda: memoryview(b""))
    parts: list[memoryview] | None = None

    def joined(self) -> "RawTensor":
        """This tensor with its parts joined into raw_data (itself when there are none)."""
        if self.parts is None:
            return self
        return RawTensor(self.dtype, self.shape, memoryview(b"".join(self.parts)))

    @property
    def nbytes(self) -> int:
        if self.parts is None:
            return self.raw_data.nbytes
        return sum(part.nbytes for part in self.parts)


@dataclass
class WireRequest:
    """A SelectQueriesRequest split into its small fields and its tensors."""

    header: pb.SelectQueriesRequest  # every field but the tensors
    tensors: dict[str, RawTensor]
    wire_bytes: int

    def release(self) -> None:
        """Let go of the received message once the call is over: its tensors' views are
        released, so the message's bytes are freed even while something (an exception's
        traceback that gRPC keeps) still refers to this request or to a view."""
        for tensor in self.tensors.values():
            for view in [tensor.raw_data, *(tensor.parts or ())]:
                with contextlib.suppress(BufferError):  # an array made from it is still alive
                    view.release()
        self.tensors = {}

    def joined(self) -> "WireRequest":
        """This request with every tensor's parts joined (for work done in this process)."""
        tensors = {name: tensor.joined() for name, tensor in self.tensors.items()}
        return WireRequest(self.header, tensors, self.wire_bytes)


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedMessage("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buf: memoryview, start: int, end: int) -> Any:
    """Yield (number, wire type, value start, value end, field start) for each field."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise MalformedMessage(f"field number {number} is outside [1, {_MAX_FIELD_NUMBER}]")
        if wire == _WIRE_VARINT:
            _, value_end = _varint(buf, pos, end)
        elif wire == _WIRE_I64:
            value_end = pos + 8
        elif wire == _WIRE_I32:
            value_end = pos + 4
        elif wire == _WIRE_LEN:
            length, pos = _varint(buf, pos, end)
            value_end = pos + length
        else:
            raise MalformedMessage(f"unsupported wire type {wire}")
        if value_end > end:
            raise MalformedMessage("field runs past the end of the message")
        yield number, wire, pos, value_end, field_start
        pos = value_end


def _int32(value: int) -> int:
    """A varint read as protobuf reads an int32 or enum field: its low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _merge_tensor(buf: memoryview, start: int, end: int, tensor: RawTensor) -> None:
    """Merge one encoded Tensor into tensor, with protobuf's merge rules.

    As in protobuf, a known field number with an unexpected wire type is an
    unknown field and is skipped.
    """
    for number, wire, pos, value_end, _ in _fields(buf, start, end):
        if number == 1 and wire == _WIRE_VARINT:
            tensor.dtype = _int32(_varint(buf, pos, value_end)[0])
        elif number == 2 and wire == _WIRE_LEN:  # packed repeated int64
            while pos < value_end:
                value, pos = _varint(buf, pos, value_end)
                if len(tensor.shape) > _MAX_SHAPE_KEPT:
                    break  # already too many: element_count refuses it
                tensor.shape.append(_signed(value))
        elif number == 2 and wire == _WIRE_VARINT:
            if len(tensor.shape) <= _MAX_SHAPE_KEPT:
                tensor.shape.append(_signed(_varint(buf, pos, value_end)[0]))
        elif number == 3 and wire == _WIRE_LEN:
            tensor.raw_data = buf[pos:value_end]


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _oversize_marker(size: int, limit: int) -> bytes:
    """A models field holding a Model that says only: its onnx was size bytes, over limit."""
    body = (
        _key(_OVERSIZE_FIELD, _WIRE_VARINT)
        + _encode_varint(size)
        + _key(_OVERSIZE_LIMIT_FIELD, _WIRE_VARINT)
        + _encode_varint(limit)
    )
    return _key(_MODELS_FIELD, _WIRE_LEN) + _encode_varint(len(body)) + body


def _largest_onnx(buf: memoryview, start: int, end: int) -> int:
    """The length of the longest onnx field of the Model encoded in buf[start:end]."""
    return max(
        (
            value_end - pos
            for number, wire, pos, value_end, _ in _fields(buf, start, end)
            if number == _ONNX_FIELD and wire == _WIRE_LEN
        ),
        default=0,
    )


def oversize_model(model: pb.Model) -> tuple[int, int] | None:
    """(size, limit) when the walker dropped this Model's onnx bytes for being over the limit."""
    if model.WhichOneof("source") is not None:
        return None
    data = model.SerializeToString()  # unknown fields only: a few bytes
    found = {
        number: _varint(memoryview(data), pos, value_end)[0]
        for number, wire, pos, value_end, _ in _fields(memoryview(data), 0, len(data))
        if wire == _WIRE_VARINT
    }
    if _OVERSIZE_FIELD in found and _OVERSIZE_LIMIT_FIELD in found:
        return found[_OVERSIZE_FIELD], found[_OVERSIZE_LIMIT_FIELD]
    return None


def _split_request(
    buf: memoryview, regions: list[tuple[int, int]], max_model_bytes: int | None = None
) -> WireRequest:
    """The request encoded in regions of buf; several regions merge as protobuf merges them.

    A Model whose onnx bytes exceed max_model_bytes is replaced by an oversize marker
    (see oversize_model) before protobuf copies anything.
    """
    tensors: dict[str, RawTensor] = {}
    rest: list[memoryview | bytes] = []
    for start, end in regions:
        for number, wire, pos, value_end, field_start in _fields(buf, start, end):
            name = TENSOR_FIELDS.get(number)
            if name is not None and wire == _WIRE_LEN:
                _merge_tensor(buf, pos, value_end, tensors.setdefault(name, RawTensor()))
                continue
            if (
                number == _MODELS_FIELD
                and wire == _WIRE_LEN
                and max_model_bytes is not None
                and value_end - pos > max_model_bytes
            ):
                size = _largest_onnx(buf, pos, value_end)
                if size > max_model_bytes:
                    rest.append(_oversize_marker(size, max_model_bytes))
                    continue
            rest.append(buf[field_start:value_end])
    try:
        header = pb.SelectQueriesRequest.FromString(b"".join(rest))
    except Exception as err:  # protobuf raises DecodeError, or others on hostile bytes
        raise MalformedMessage("SelectQueriesRequest does not parse") from err
    return WireRequest(header, tensors, sum(end - start for start, end in regions))


def parse_request(data: bytes, max_model_bytes: int | None = None) -> WireRequest:
    """Split an encoded SelectQueriesRequest; tensors stay views into data.

    Model bytes over max_model_bytes (None: no limit) are dropped, not copied; validation
    refuses the model (oversize_model).
    """
    return _split_request(memoryview(data), [(0, len(data))], max_model_bytes)


def parse_stream_chunk(data: bytes, max_model_bytes: int | None = None) -> WireRequest:
    """Split an encoded SelectQueriesStreamRequest (its chunk field, merged if repeated);
    max_model_bytes as in parse_request."""
    buf = memoryview(data)
    chunks = [
        (pos, value_end)
        for number, wire, pos, value_end, _ in _fields(buf, 0, len(buf))
        if number == _STREAM_CHUNK_FIELD and wire == _WIRE_LEN
    ]
    request = _split_request(buf, chunks, max_model_bytes)
    request.wire_bytes = len(data)
    return request


def element_count(shape: list[int], field_name: str, max_elements: int) -> int:
    """The product of shape, checked for its rank, negative sizes and the server's element
    limit."""
    if len(shape) > MAX_DIMENSIONS:
        raise InvalidArgument(
            f"{field_name}.shape",
            f"must have at most {MAX_DIMENSIONS} dimensions; got {_rank(shape)}",
            reason=reasons.TOO_MANY_DIMENSIONS,
        )
    if any(size < 0 for size in shape):
        raise InvalidArgument(f"{field_name}.shape", f"must have no negative sizes; got {shape}")
    count = math.prod(shape)  # Python ints: no overflow
    # With a zero size the count is 0 whatever the other sizes, but NumPy still refuses
    # shapes whose non-zero sizes multiply past its limits: hold those to the limit too.
    extent = math.prod(size for size in shape if size)
    if max(count, extent) > max_elements:
        raise InvalidArgument(
            f"{field_name}.shape",
            f"must hold at most {max_elements} elements (the server's limit); "
            f"got {shape} = {count}",
            reason=reasons.TOO_MANY_ELEMENTS,
        )
    return count


def _rank(shape: list[int]) -> str:
    return f"more than {_MAX_SHAPE_KEPT}" if len(shape) > _MAX_SHAPE_KEPT else str(len(shape))


def decode_tensor(
    tensor: RawTensor, field_name: str, max_elements: int, *, allow_int: bool = False
) -> npt.NDArray[Any]:
    """A read-only NumPy view of tensor's bytes (float16 and bfloat16 widened to float32)."""
    allowed = ALL_DTYPES if allow_int else FLOAT_DTYPES
    dtype = allowed.get(tensor.dtype)
    if dtype is None:
        names = ", ".join(pb.DataType.Name(number) for number in allowed)
        known = tensor.dtype in pb.DataType.values()
        got = pb.DataType.Name(tensor.dtype) if known else str(tensor.dtype)
        raise InvalidArgument(f"{field_name}.dtype", f"must be one of {names}; got {got}")
    count = element_count(tensor.shape, field_name, max_elements)
    expected = count * dtype.itemsize
    if len(tensor.raw_data) != expected:
        raise InvalidArgument(
            f"{field_name}.raw_data",
            f"must be {expected} bytes for {pb.DataType.Name(tensor.dtype)} {tensor.shape}; "
            f"got {len(tensor.raw_data)}",
        )
    array = np.frombuffer(tensor.raw_data, dtype=dtype).reshape(tensor.shape)
    if tensor.dtype == pb.DATA_TYPE_FLOAT16:
        return array.astype(np.float32)
    if tensor.dtype == pb.DATA_TYPE_BFLOAT16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array


def encode_tensor(array: npt.ArrayLike, dtype: int) -> pb.Tensor:
    """A Tensor message holding array as dtype (the inverse of decode_tensor)."""
    values = np.asarray(array)
    if dtype == pb.DATA_TYPE_BFLOAT16:
        bits = np.ascontiguousarray(values, dtype="<f4").view("<u4")
        # Round to nearest even, as the clients and hardware conversions do; NaN stays a quiet
        # NaN (rounding its payload could carry into the exponent and give ±Inf or 0).
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        nan = np.isnan(values) if values.dtype.kind == "f" else np.zeros(bits.shape, bool)
        raw = np.where(nan, (bits >> 16) | 0x0040, rounded).astype("<u2").tobytes()
    else:
        raw = np.ascontiguousarray(values, dtype=ALL_DTYPES[dtype]).tobytes()
    return pb.Tensor(dtype=dtype, shape=list(values.shape), raw_data=raw)  # type: ignore[arg-type]
