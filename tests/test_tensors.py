"""The zero-copy wire walker against protobuf's own parse, and the tensor codec round trip."""

import time
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labelwise.tensors import encode_tensor, raw_bytes, tensor_field, varint, wire_dtype
from labelwise.v1 import query_selection_pb2 as pb
from labelwise_server.errors import InvalidArgument
from labelwise_server.tensors import (
    MAX_DIMENSIONS,
    TENSOR_FIELDS,
    MalformedMessage,
    RawTensor,
    decode_tensor,
    oversize_model,
    parse_request,
    parse_stream_chunk,
)

FIELD_NUMBERS = {name: number for number, name in TENSOR_FIELDS.items()}
# Every number SelectQueriesRequest defines: "unknown" fields must avoid them all, since a
# known message field (models, say) with arbitrary bytes in it is no longer a valid request.
REQUEST_FIELD_NUMBERS = {fd.number for fd in pb.SelectQueriesRequest.DESCRIPTOR.fields}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, body: bytes) -> bytes:
    return key(number, 2) + varint(len(body)) + body


@st.composite
def unknown_fields(draw: st.DrawFn, known: set[int]) -> bytes:
    """One field whose number the message does not define, of any wire type but groups."""
    number = draw(st.integers(1, 2000).filter(lambda n: n not in known))
    wire = draw(st.sampled_from([0, 1, 2, 5]))
    if wire == 0:
        return key(number, 0) + varint(draw(st.integers(0, 2**64 - 1)))
    if wire == 1:
        return key(number, 1) + draw(st.binary(min_size=8, max_size=8))
    if wire == 5:
        return key(number, 5) + draw(st.binary(min_size=4, max_size=4))
    return length_delimited(number, draw(st.binary(max_size=20)))


@st.composite
def tensor_bodies(draw: st.DrawFn) -> bytes:
    """An encoded Tensor body: fields in any order, repeated, packed or not, unknown ones too."""
    pieces: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["dtype", "packed", "unpacked", "raw", "unknown"]))
        if kind == "dtype":
            pieces.append(key(1, 0) + varint(draw(st.one_of(st.integers(0, 7), INT32))))
        elif kind == "packed":
            dims = b"".join(varint(d) for d in draw(st.lists(INT64, max_size=4)))
            pieces.append(length_delimited(2, dims))
        elif kind == "unpacked":
            pieces.append(key(2, 0) + varint(draw(INT64)))
        elif kind == "raw":
            pieces.append(length_delimited(3, draw(st.binary(max_size=64))))
        else:
            pieces.append(draw(unknown_fields({1, 2, 3})))
    return b"".join(pieces)


@st.composite
def headers(draw: st.DrawFn) -> pb.SelectQueriesRequest:
    params = st.one_of(
        st.builds(pb.ParamValue, int_value=INT64),
        st.builds(pb.ParamValue, double_value=st.floats(allow_nan=False)),
        st.builds(pb.ParamValue, string_value=st.text(max_size=8)),
        st.builds(pb.ParamValue, bool_value=st.booleans()),
    )
    specs = st.builds(
        pb.StrategySpec,
        name=st.sampled_from(["entropy", "margin", "bald", "", "nope", "ü"]),
        params=st.dictionaries(st.text(max_size=6), params, max_size=3),
    )
    header = pb.SelectQueriesRequest(
        strategies=draw(st.lists(specs, max_size=3)),
        k=draw(INT64),
        seed=draw(st.integers(0, 2**64 - 1)),
        exclude=draw(st.lists(INT64, max_size=5)),
        clamp_k=draw(st.booleans()),
    )
    if draw(st.booleans()):
        header.budget = draw(st.floats())
    if draw(st.booleans()):
        header.temperature = draw(st.floats())
    return header


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A SelectQueriesRequest as any conforming encoder (or a careless concatenation) sends it."""
    pieces = [draw(headers()).SerializeToString()]
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(sorted(FIELD_NUMBERS)))
        pieces.append(length_delimited(FIELD_NUMBERS[name], draw(tensor_bodies())))
    for _ in range(draw(st.integers(0, 3))):
        pieces.append(draw(unknown_fields(REQUEST_FIELD_NUMBERS)))
    if draw(st.booleans()):  # a tensor field number with the wrong wire type: an unknown field
        pieces.append(key(draw(st.sampled_from(sorted(TENSOR_FIELDS))), 0) + varint(7))
    order = draw(st.permutations(range(len(pieces))))
    return b"".join(pieces[i] for i in order)


def assert_agrees_with_protobuf(data: bytes, parsed: Any, message: pb.SelectQueriesRequest) -> None:
    for name in FIELD_NUMBERS:
        if message.HasField(name):
            expected = getattr(message, name)
            got = parsed.tensors[name]
            assert got.dtype == expected.dtype, name
            assert got.shape == list(expected.shape), name
            assert bytes(got.raw_data) == expected.raw_data, name
            assert isinstance(got.raw_data, memoryview)
        else:
            assert name not in parsed.tensors, name
        message.ClearField(name)
    assert parsed.header == message


@SETTINGS
@given(requests())
def test_walker_agrees_with_protobuf_parse(data: bytes) -> None:
    parsed = parse_request(data)
    assert parsed.wire_bytes == len(data)
    assert_agrees_with_protobuf(data, parsed, pb.SelectQueriesRequest.FromString(data))


@SETTINGS
@given(requests(), requests())
def test_two_concatenated_requests_merge_as_protobuf_merges(first: bytes, second: bytes) -> None:
    data = first + second
    assert_agrees_with_protobuf(data, parse_request(data), pb.SelectQueriesRequest.FromString(data))


@SETTINGS
@given(st.lists(requests(), max_size=3), st.lists(st.binary(max_size=6), max_size=2))
def test_stream_chunk_walker_agrees_with_protobuf(
    chunks: list[bytes], unknown: list[bytes]
) -> None:
    # A repeated chunk field merges, as protobuf merges any repeated message field.
    pieces = [length_delimited(1, chunk) for chunk in chunks]
    pieces += [length_delimited(7, extra) for extra in unknown]
    data = b"".join(pieces)
    message = pb.SelectQueriesStreamRequest.FromString(data)
    parsed = parse_stream_chunk(data)
    assert parsed.wire_bytes == len(data)
    assert_agrees_with_protobuf(data, parsed, message.chunk)


def test_tensors_are_views_into_the_received_bytes() -> None:
    values = np.arange(12, dtype="<f4").reshape(3, 4)
    data = pb.SelectQueriesRequest(probabilities=encode_tensor(values)).SerializeToString()
    parsed = parse_request(data)
    array = decode_tensor(parsed.tensors["probabilities"], "probabilities", 100)
    np.testing.assert_array_equal(array, values)
    assert not array.flags.writeable
    assert np.shares_memory(array, np.frombuffer(data, dtype=np.uint8))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid request truncated, or with a byte changed, inserted or deleted."""
    data = bytearray(draw(requests()))
    assume(data)
    at = draw(st.integers(0, len(data) - 1))
    how = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    if how == "truncate":
        return bytes(data[:at])
    if how == "flip":
        data[at] = draw(st.integers(0, 255))
    elif how == "insert":
        data.insert(at, draw(st.integers(0, 255)))
    else:
        del data[at]
    return bytes(data)


def _protobuf_parses(data: bytes) -> pb.SelectQueriesRequest | None:
    try:
        return pb.SelectQueriesRequest.FromString(data)
    except Exception:
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), st.binary(max_size=40)))
def test_malformed_bytes_raise_malformed_message_and_nothing_else(data: bytes) -> None:
    message = _protobuf_parses(data)
    try:
        parsed = parse_request(data)
    except MalformedMessage:
        assert message is None, "the walker rejected bytes protobuf accepts"
        return
    assert message is not None, "the walker accepted bytes protobuf rejects"
    assert_agrees_with_protobuf(data, parsed, message)


@pytest.mark.parametrize(
    "data",
    [
        b"\x10",  # k's varint is missing
        b"\x10\xff\xff",  # truncated varint
        b"\x10" + b"\xff" * 10 + b"\x01",  # an 11-byte varint
        b"\x52\x05\x08\x02",  # probabilities says 5 bytes, 2 follow
        b"\x52\x02\x1a\x05\x00",  # raw_data runs past the end of its Tensor
        b"\x52\x03\x12\x01\xff",  # a packed shape whose varint is cut short
        b"\x00\x01",  # field number 0
        b"\x80\x80\x80\x80\x10\x01",  # field number 2**29 (one past the largest)
        b"\x6a\x06\x80\x80\x80\x80\x10\x01",  # ... inside a Tensor
        b"\x13",  # wire type 3 (start group) with nothing after it
        b"\x0f",  # wire type 7
        b"\x0e\x01",  # wire type 6
        b"\x51\x00\x00",  # probabilities as a 64-bit field, cut short
        b"\x0a\x02\x0a\xff",  # a strategy whose name is cut short
        b"\x0a\x02\x0a\x01\xff",  # ... whose name is not UTF-8 (protobuf rejects it)
    ],
)
def test_known_malformations_raise_malformed_message(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_request(data)
    with pytest.raises(MalformedMessage):
        parse_stream_chunk(length_delimited(1, data))


# The codec: the client's encoders and the server's decoder are inverse.
FLOAT_WIRE = [
    (pb.DATA_TYPE_FLOAT16, np.float16),
    (pb.DATA_TYPE_FLOAT32, np.float32),
    (pb.DATA_TYPE_FLOAT64, np.float64),
    (pb.DATA_TYPE_BFLOAT16, None),
]


def _decode_message(tensor: pb.Tensor, allow_int: bool = False) -> Any:
    raw = RawTensor(tensor.dtype, list(tensor.shape), memoryview(tensor.raw_data))
    return decode_tensor(raw, "t", 1 << 30, allow_int=allow_int)


@pytest.mark.parametrize(("dtype", "numpy_type"), FLOAT_WIRE)
@pytest.mark.parametrize("shape", [(0,), (5,), (3, 4), (2, 3, 4), (1, 0, 3), ()])
def test_floats_round_trip(dtype: int, numpy_type: Any, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal(shape).astype(numpy_type or np.float32)
    if dtype == pb.DATA_TYPE_BFLOAT16:  # only bfloat16-representable values survive exactly
        values = (values.view(np.uint32) & 0xFFFF0000).view(np.float32)
    decoded = _decode_message(encode_tensor(values, dtype))
    assert decoded.shape == shape
    np.testing.assert_array_equal(decoded, values.astype(decoded.dtype))
    expected = np.float64 if dtype == pb.DATA_TYPE_FLOAT64 else np.float32
    assert decoded.dtype == expected  # float16 and bfloat16 are computed on as float32


@pytest.mark.parametrize(
    ("dtype", "numpy_type"), [(pb.DATA_TYPE_INT32, np.int32), (pb.DATA_TYPE_INT64, np.int64)]
)
def test_ints_round_trip_where_allowed(dtype: int, numpy_type: Any) -> None:
    values = np.array([[-3, 0, 2**30]], dtype=numpy_type)
    tensor = encode_tensor(values)
    assert tensor.dtype == dtype
    np.testing.assert_array_equal(_decode_message(tensor, allow_int=True), values)
    with pytest.raises(InvalidArgument, match=r"t\.dtype"):
        _decode_message(tensor)


def test_big_endian_and_strided_arrays_go_out_little_endian_in_c_order() -> None:
    values = np.arange(24, dtype=">f8").reshape(4, 6)[:, ::2].T  # big-endian, non-contiguous
    assert wire_dtype(values) == pb.DATA_TYPE_FLOAT64
    tensor = encode_tensor(values)
    assert tensor.raw_data == np.ascontiguousarray(values, dtype="<f8").tobytes()
    np.testing.assert_array_equal(_decode_message(tensor), values)


def test_other_dtypes_travel_as_float64() -> None:
    tensor = encode_tensor(np.array([1, 2], dtype=np.uint8))
    assert tensor.dtype == pb.DATA_TYPE_FLOAT64
    np.testing.assert_array_equal(_decode_message(tensor), [1.0, 2.0])


def test_bfloat16_rounds_to_nearest_even() -> None:
    bits = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF], dtype="<u4")
    halves = np.frombuffer(raw_bytes(bits.view("<f4"), pb.DATA_TYPE_BFLOAT16), dtype="<u2")
    # A tie goes to the even neighbour; above or below it goes to the nearer one.
    assert halves.tolist() == [0x3F80, 0x3F82, 0x3F81, 0x3F80]


def test_bfloat16_keeps_nan_and_infinity() -> None:
    bits = np.array(
        [0x7FC00000, 0xFFFFFFFF, 0x7F800001, 0xFFC00001, 0x7F800000, 0xFF800000, 0x7F7FFFFF],
        dtype="<u4",
    )
    values = bits.view("<f4")
    tensor = encode_tensor(values, pb.DATA_TYPE_BFLOAT16)
    decoded = _decode_message(tensor)
    assert np.isnan(decoded[:4]).all()
    assert decoded[4:].tolist() == [np.inf, -np.inf, np.inf]  # the largest float32 rounds up


@pytest.mark.parametrize(("dtype", "numpy_type"), FLOAT_WIRE)
@pytest.mark.parametrize("shape", [(3,), (2, 5), (0, 4)])
def test_tensor_field_equals_protobuf_serialization(
    dtype: int, numpy_type: Any, shape: tuple[int, ...]
) -> None:
    values = np.ones(shape, dtype=numpy_type or np.float32)
    for number in TENSOR_FIELDS:
        raw = raw_bytes(values, dtype)
        written = b"".join(bytes(part) for part in tensor_field(number, shape, dtype, raw))
        message = pb.SelectQueriesRequest()
        getattr(message, TENSOR_FIELDS[number]).CopyFrom(encode_tensor(values, dtype))
        assert written == message.SerializeToString()


def test_length_must_match_dtype_times_shape() -> None:
    tensor = RawTensor(pb.DATA_TYPE_FLOAT32, [2, 3], memoryview(bytes(23)))
    with pytest.raises(InvalidArgument, match="must be 24 bytes") as caught:
        decode_tensor(tensor, "probabilities", 100)
    assert caught.value.field == "probabilities.raw_data"


@pytest.mark.parametrize("dtype", [pb.DATA_TYPE_UNSPECIFIED, 99, -1])
def test_unknown_dtype_is_rejected(dtype: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_tensor(RawTensor(dtype, [1], memoryview(bytes(4))), "logits", 100)
    assert caught.value.field == "logits.dtype"


def test_negative_sizes_are_rejected() -> None:
    with pytest.raises(InvalidArgument, match="negative") as caught:
        decode_tensor(RawTensor(pb.DATA_TYPE_FLOAT32, [-1, -4], memoryview(bytes(16))), "x", 100)
    assert caught.value.field == "x.shape"


@pytest.mark.parametrize(
    "shape",
    [
        [101],
        [11, 10],
        [2**62, 2**62],  # overflows int64
        [2**63 - 1, 2**63 - 1, 2**63 - 1],
        [0, 2**63 - 1],  # no elements, but no array can have that shape
        [0, 2**40, 2**40],
        [2**31, 2**31, 0],
    ],
)
def test_element_count_over_the_limit_is_rejected(shape: list[int]) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_tensor(RawTensor(pb.DATA_TYPE_FLOAT32, shape, memoryview(b"")), "x", 100)
    assert caught.value.field == "x.shape"
    assert caught.value.reason == "TOO_MANY_ELEMENTS"


@pytest.mark.parametrize("shape", [[100], [10, 10], [0, 100], [0], [1, 0, 7]])
def test_element_count_at_the_limit_is_accepted(shape: list[int]) -> None:
    count = int(np.prod(shape))
    array = decode_tensor(
        RawTensor(pb.DATA_TYPE_FLOAT32, shape, memoryview(bytes(4 * count))), "x", 100
    )
    assert list(array.shape) == shape


# ---- Limits checked before allocation (issue 13) -------------------------------------------


@pytest.mark.parametrize("rank", [MAX_DIMENSIONS + 1, 100, 10_000])
def test_too_many_dimensions_are_refused_briefly(rank: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_tensor(RawTensor(pb.DATA_TYPE_FLOAT32, [1] * rank, memoryview(bytes(4))), "x", 100)
    assert (caught.value.field, caught.value.reason) == ("x.shape", "TOO_MANY_DIMENSIONS")
    assert len(caught.value.description) < 100  # the shape is not echoed


def test_a_rank_8_tensor_is_accepted() -> None:
    array = decode_tensor(RawTensor(pb.DATA_TYPE_FLOAT32, [1] * 8, memoryview(bytes(4))), "x", 1)
    assert array.shape == (1,) * 8


def test_a_shape_of_a_million_sizes_is_walked_quickly_and_refused() -> None:
    # 1 MB of packed sizes: the walker stops decoding them past the kept maximum.
    body = key(1, 0) + varint(pb.DATA_TYPE_FLOAT32) + length_delimited(2, b"\x01" * 1_000_000)
    data = length_delimited(FIELD_NUMBERS["probabilities"], body)
    started = time.perf_counter()
    parsed = parse_request(data)
    assert time.perf_counter() - started < 1.0
    with pytest.raises(InvalidArgument) as caught:
        decode_tensor(parsed.tensors["probabilities"], "probabilities", 100)
    assert caught.value.reason == "TOO_MANY_DIMENSIONS"
    assert "more than" in caught.value.description


def _model_request(onnx_size: int) -> bytes:
    request = pb.SelectQueriesRequest(k=1, strategies=[pb.StrategySpec(name="entropy")])
    request.models.add(sha256="ab" * 32)
    request.models.add(onnx=bytes(onnx_size))
    request.models.add(onnx=b"small")
    return request.SerializeToString()


@pytest.mark.parametrize("parse", [parse_request, "stream"])
def test_model_bytes_over_the_limit_are_dropped_before_protobuf_copies_them(parse: Any) -> None:
    size, limit = 8 << 20, 1 << 20
    data = _model_request(size)
    if parse == "stream":
        data = length_delimited(1, data)
        parse = parse_stream_chunk
    tracemalloc.start()
    try:
        parsed = parse(data, limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit  # no copy of the 8 MiB model was made
    models = parsed.header.models
    assert [m.WhichOneof("source") for m in models] == ["sha256", None, "onnx"]
    assert oversize_model(models[1]) == (size, limit)
    assert oversize_model(models[0]) is None and oversize_model(models[2]) is None
    assert models[2].onnx == b"small"
    copied = pb.SelectQueriesRequest()
    copied.CopyFrom(parsed.header)  # as the stream reassembly copies the first chunk's header
    assert oversize_model(copied.models[1]) == (size, limit)


def test_model_bytes_within_the_limit_parse_as_protobuf_does() -> None:
    data = _model_request(1000)
    assert parse_request(data, 1000).header == pb.SelectQueriesRequest.FromString(data)
    assert parse_request(data).header == pb.SelectQueriesRequest.FromString(data)


def test_a_callers_own_unknown_fields_in_a_model_are_no_oversize_marker() -> None:
    model = pb.Model()
    model.MergeFromString(key(536_870_900, 0) + varint(5))
    assert oversize_model(model) is None


def test_client_stream_chunks_equal_protobuf_serialization() -> None:
    """The Python client's stream chunks (row views, one join) are protobuf's bytes for the
    same rows, for a pool axis 0 tensor and a committee split along axis 1."""
    from labelwise.client import _Request, _split, _stream_chunk

    rng = np.random.default_rng(5)
    arrays = {
        "probabilities": rng.dirichlet(np.ones(3), size=50).astype(np.float32),
        "committee": rng.dirichlet(np.ones(3), size=(2, 50)),
    }
    header = pb.SelectQueriesRequest(k=3, strategies=[pb.StrategySpec(name="bald")])
    pieces = list(_split(_Request(header, arrays), chunk_bytes=600))
    assert len(pieces) > 3
    start = 0
    for rows in pieces:
        expected = pb.SelectQueriesRequest()
        expected.CopyFrom(header)
        end = start + rows["probabilities"].shape[0]
        expected.probabilities.CopyFrom(
            encode_tensor(arrays["probabilities"][start:end], pb.DATA_TYPE_FLOAT32)
        )
        expected.committee.CopyFrom(
            encode_tensor(arrays["committee"][:, start:end], pb.DATA_TYPE_FLOAT64)
        )
        message = pb.SelectQueriesStreamRequest(chunk=expected)
        assert _stream_chunk(_Request(header, rows)) == message.SerializeToString()
        start = end
    assert start == 50
