"""NumPy arrays to labelwise Tensor messages: raw little-endian bytes in C order.

encode_tensor builds a Tensor message; tensor_field writes the same encoding
straight onto the wire as a field of an enclosing message, so a request with
a 40 MB pool is assembled with one copy of the pool instead of the three that
building a protobuf message and serializing it would take.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise.v1 import options_pb2
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import stream_selection_pb2 as spb

DTYPES: dict[int, np.dtype[Any]] = {
    pb.DATA_TYPE_FLOAT16: np.dtype("<f2"),
    pb.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    pb.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    pb.DATA_TYPE_BFLOAT16: np.dtype("<u2"),
    pb.DATA_TYPE_INT32: np.dtype("<i4"),
    pb.DATA_TYPE_INT64: np.dtype("<i8"),
}


def _axes(option: Any, message: Any = pb.SelectQueriesRequest) -> dict[str, int]:
    """The message's tensor fields that carry the field option, with its value, in field
    order."""
    return {
        fd.name: fd.GetOptions().Extensions[option]
        for fd in message.DESCRIPTOR.fields
        if fd.GetOptions().HasExtension(option)
    }


# The axis along which a stream splits each SelectQueriesRequest tensor, and the server joins
# its chunks: the proto's pool_axis option (pool tensors: 1 for committee and sample tensors
# [m, n, ...], 0 otherwise) and labeled_axis option (labeled-set tensors), read from the
# generated descriptors so every language takes them from labelwise/v1/options.proto.
POOL_AXIS: dict[str, int] = _axes(options_pb2.pool_axis)
LABELED_AXIS: dict[str, int] = _axes(options_pb2.labeled_axis)
STREAM_AXIS: dict[str, int] = POOL_AXIS | LABELED_AXIS
# The item tensors of a stream decision (DecideRequest) and each one's item axis, from the same
# option: the client and the server both take the list from here.
DECIDE_ITEM_AXIS: dict[str, int] = _axes(options_pb2.pool_axis, spb.DecideRequest)
_NATIVE = {
    np.dtype("float16"): pb.DATA_TYPE_FLOAT16,
    np.dtype("float32"): pb.DATA_TYPE_FLOAT32,
    np.dtype("float64"): pb.DATA_TYPE_FLOAT64,
    np.dtype("int32"): pb.DATA_TYPE_INT32,
    np.dtype("int64"): pb.DATA_TYPE_INT64,
}


def wire_dtype(array: npt.NDArray[Any]) -> int:
    """The DataType an array travels as: its own when the wire has it, else FLOAT64."""
    return _NATIVE.get(array.dtype.newbyteorder("="), pb.DATA_TYPE_FLOAT64)


def raw_bytes(array: npt.ArrayLike, dtype: int) -> memoryview:
    """array's elements as dtype, little-endian, C order; a view when no conversion is needed."""
    values = np.asarray(array)
    if dtype == pb.DATA_TYPE_BFLOAT16:
        bits = np.ascontiguousarray(values, dtype="<f4").view("<u4")
        # Round to nearest even, as hardware bfloat16 conversions do; NaN stays a quiet NaN
        # (rounding its payload could carry into the exponent and give ±Inf or, wrapping, 0).
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        nan = np.isnan(values) if values.dtype.kind == "f" else np.zeros(bits.shape, bool)
        halves = np.where(nan, (bits >> 16) | 0x0040, rounded).astype("<u2")
        return _byte_view(halves)
    return _byte_view(np.ascontiguousarray(values, dtype=DTYPES[dtype]))


def _byte_view(contiguous: npt.NDArray[Any]) -> memoryview:
    """The bytes of a C-contiguous array as a flat memoryview (len() counts bytes)."""
    return memoryview(contiguous.reshape(-1).view(np.uint8))  # type: ignore[arg-type]


def encode_tensor(array: npt.ArrayLike, dtype: int | None = None) -> pb.Tensor:
    """A Tensor message of array (as dtype, by default the array's own)."""
    values = np.asarray(array)
    chosen = wire_dtype(values) if dtype is None else dtype
    raw = bytes(raw_bytes(values, chosen))
    return pb.Tensor(dtype=chosen, shape=list(values.shape), raw_data=raw)  # type: ignore[arg-type]


def varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tensor_field(number: int, shape: tuple[int, ...], dtype: int, raw: memoryview) -> list[Any]:
    """The wire encoding of a Tensor as field `number`: [prefix bytes, raw bytes].

    Joined with the rest of a message (b"".join), it equals protobuf's
    serialization of the same Tensor in that field.
    """
    dims = b"".join(varint(size) for size in shape)
    body = b""
    if dtype:
        body += b"\x08" + varint(dtype)  # field 1, varint
    if shape:
        body += b"\x12" + varint(len(dims)) + dims  # field 2, packed
    if len(raw):
        body += b"\x1a" + varint(len(raw))  # field 3, bytes; the payload follows
    length = len(body) + len(raw)
    return [varint(number << 3 | 2) + varint(length) + body, raw]
