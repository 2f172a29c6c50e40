"""Facts the proto states once for every language: the tensor axes a stream splits along
(labelwise/v1/options.proto), and the one bfloat16 rounding rule of every encoder."""

import struct

import numpy as np
import pytest

from labelwise import tensors as client_tensors
from labelwise.v1 import options_pb2
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server import tensors as server_tensors


def _tensor_fields(message: type) -> list[object]:
    return [
        fd
        for fd in message.DESCRIPTOR.fields  # type: ignore[attr-defined]
        if fd.message_type is not None and fd.message_type.full_name == "labelwise.v1.Tensor"
    ]


def test_every_request_tensor_declares_exactly_one_split_axis() -> None:
    for fd in _tensor_fields(pb.SelectQueriesRequest):
        options = fd.GetOptions()  # type: ignore[attr-defined]
        declared = [
            options.HasExtension(options_pb2.pool_axis),
            options.HasExtension(options_pb2.labeled_axis),
        ]
        assert declared.count(True) == 1, fd.name  # type: ignore[attr-defined]


def test_committee_and_sample_tensors_have_pool_axis_1_the_others_0() -> None:
    ones = {name for name, axis in client_tensors.POOL_AXIS.items() if axis == 1}
    assert ones == {
        "committee",
        "committee_logits",
        "multilabel_committee",
        "multilabel_committee_logits",
        "regression_samples",
        "structured_committee",
        "structured_committee_logits",
    }
    assert set(client_tensors.POOL_AXIS.values()) == {0, 1}
    assert client_tensors.LABELED_AXIS == {"labeled_embeddings": 0, "labeled_targets": 0}


def test_the_server_joins_every_tensor_field_along_the_declared_axis() -> None:
    # The wire walker's tensor fields are the ones the stream reassembly looks up.
    assert set(server_tensors.TENSOR_FIELDS.values()) == set(client_tensors.STREAM_AXIS)


def test_no_other_message_declares_split_axes() -> None:
    for message in (pb.StrategyResult, pb.CheckStoppingRequest, pb.SelectQueriesResponse):
        for fd in _tensor_fields(message):
            options = fd.GetOptions()  # type: ignore[attr-defined]
            assert not options.HasExtension(options_pb2.pool_axis)
            assert not options.HasExtension(options_pb2.labeled_axis)


def _f32(bits: int) -> float:
    return float(struct.unpack("<f", struct.pack("<I", bits))[0])


def _bf16_reference(x: float) -> int:
    """bfloat16 bits of float32 x, rounded to nearest even, by exact comparison."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    if x != x:
        return (bits >> 16) | 0x0040
    down = bits >> 16
    if abs(x) == float("inf"):
        return down
    up = down + 1
    lo, hi = _f32(down << 16), _f32(up << 16)
    if (up & 0x7FFF) == 0x7F80:  # past the largest finite value: 2^128, as if unbounded
        hi = 2.0**128 if x > 0 else -(2.0**128)
    d_lo, d_hi = abs(x - lo), abs(hi - x)
    if d_lo < d_hi or (d_lo == d_hi and down % 2 == 0):
        return down
    return up


BOUNDARY_BITS = [
    0x3F800000,  # 1.0, exact
    0x3F808000,  # tie between 0x3F80 (even) and 0x3F81: stays down
    0x3F818000,  # tie between 0x3F81 (odd) and 0x3F82: goes up
    0x3F807FFF,  # just below the midpoint: down (truncation agrees)
    0x3F808001,  # just above the midpoint: up (truncation gave 0x3F80)
    0x3F80FFFF,  # almost the next value: up
    0xBF808001,  # negative, above the midpoint in magnitude: up in magnitude
    0xBF818000,  # negative tie, odd: up in magnitude
    0x7F7FFFFF,  # float32 max: rounds to +Inf
    0x7F7F7FFF,  # largest that stays finite
    0xFF7FFFFF,  # -max: -Inf
    0x00008000,  # subnormal tie, even: 0
    0x00018000,  # subnormal tie, odd: up
    0x00000001,  # smallest subnormal: 0
    0x80000000,  # -0
    0x7F800000,  # +Inf
    0xFF800000,  # -Inf
    0x7FC00000,  # quiet NaN
    0x7F800001,  # signalling NaN with a low payload: stays NaN, never Inf
    0xFFFFFFFF,  # NaN whose rounding would wrap to 0
]


@pytest.mark.parametrize("bits", BOUNDARY_BITS, ids=[f"{b:08x}" for b in BOUNDARY_BITS])
def test_server_and_client_round_bfloat16_to_nearest_even(bits: int) -> None:
    value = np.array([bits], dtype="<u4").view("<f4")
    want = _bf16_reference(float(value[0]))
    server = server_tensors.encode_tensor(value, pb.DATA_TYPE_BFLOAT16).raw_data
    client = bytes(client_tensors.raw_bytes(value, pb.DATA_TYPE_BFLOAT16))
    assert server == client == struct.pack("<H", want)
    if np.isnan(value[0]):
        assert (want & 0x7F80) == 0x7F80 and want & 0x7F  # still a NaN


def test_server_and_client_agree_on_float16() -> None:
    # numpy's float32 -> float16 cast rounds to nearest even; both encoders use it.
    values = np.array([1 + 2**-11, 1 + 3 * 2**-11, 65520.0, 2**-25, -(2**-25) * 3], "<f4")
    with np.errstate(over="ignore"):  # 65520 rounds to Inf, as it should
        server = server_tensors.encode_tensor(values, pb.DATA_TYPE_FLOAT16).raw_data
        client = bytes(client_tensors.raw_bytes(values, pb.DATA_TYPE_FLOAT16))
    assert server == client
    assert np.frombuffer(server, "<f2").tolist() == [1.0, 1 + 2**-9, float("inf"), 0.0, -(2**-23)]
