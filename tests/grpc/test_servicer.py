"""The service over a real channel: bad requests, stream = unary, softmax, discovery, metrics."""

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from labelwise import Client, LabelwiseError
from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server import work as work_module
from labelwise_server.grpc.server import SERVICE_NAME
from labelwise_server.strategies import STRATEGIES
from labelwise_server.strategies.registry import STREAM_STRATEGIES
from tests.grpc import test_auto, test_tasks_wire
from tests.grpc.conftest import TEST_CONFIG, ServerThread

RNG = np.random.default_rng(0)
P = RNG.dirichlet(np.ones(3), size=6)  # [6, 3]
COMMITTEE = RNG.dirichlet(np.ones(3), size=(4, 6))  # [4, 6, 3]


def tensor(array: Any, dtype: int | None = None) -> pb.Tensor:
    return encode_tensor(np.asarray(array), dtype)


def raw_tensor(dtype: int, shape: list[int], raw: bytes) -> pb.Tensor:
    return pb.Tensor(dtype=dtype, shape=shape, raw_data=raw)  # type: ignore[arg-type]


def request(
    strategies: list[Any] | None = None, k: int = 2, **fields: Any
) -> pb.SelectQueriesRequest:
    specs = []
    for spec in ["entropy"] if strategies is None else strategies:
        name, params = (spec, {}) if isinstance(spec, str) else spec
        specs.append(pb.StrategySpec(name=name, params=params))
    message = pb.SelectQueriesRequest(strategies=specs, k=k)
    for name, value in fields.items():
        if isinstance(value, pb.Tensor):
            getattr(message, name).CopyFrom(value)
        elif isinstance(value, list):
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def with_probabilities(**fields: Any) -> pb.SelectQueriesRequest:
    return request(probabilities=tensor(P), **fields)


def param(**kind: Any) -> pb.ParamValue:
    return pb.ParamValue(**kind)


def bad_rows() -> npt.NDArray[np.float64]:
    rows = P.copy()
    rows[4] = [0.5, 0.3, 0.1]
    return rows


def with_value(index: tuple[int, ...], value: float, array: Any = P) -> npt.NDArray[np.float64]:
    changed = np.array(array, dtype=np.float64)
    changed[index] = value
    return changed


F32 = pb.DATA_TYPE_FLOAT32
# (id, request, expected field, expected reason or None)
BAD_REQUESTS: list[tuple[str, pb.SelectQueriesRequest, str, str | None]] = [
    ("n-disagrees", request(probabilities=tensor(P), embeddings=tensor(np.ones((5, 2)))),
     "embeddings.shape", None),
    ("n-disagrees-committee", request(probabilities=tensor(P), committee=tensor(COMMITTEE[:, :5])),
     "committee.shape", None),
    ("c-disagrees", request(probabilities=tensor(P),
                            committee=tensor(np.full((2, 6, 2), 0.5))), "committee.shape", None),
    ("d-disagrees", request(["random"], embeddings=tensor(np.ones((6, 2))),
                            labeled_embeddings=tensor(np.ones((3, 4)))),
     "labeled_embeddings.shape", None),
    ("m-is-one", request(["bald"], committee=tensor(COMMITTEE[:1])), "committee.shape", None),
    ("c-is-one", request(probabilities=tensor(np.ones((6, 1)))), "probabilities.shape", None),
    ("probabilities-1d", request(probabilities=tensor(P[0])), "probabilities.shape", None),
    ("committee-2d", request(["bald"], committee=tensor(P)), "committee.shape", None),
    ("costs-2d", with_probabilities(costs=tensor(np.ones((6, 1)))), "costs.shape", None),
    ("costs-n", with_probabilities(costs=tensor(np.ones(5))), "costs.shape", None),
    ("costs-negative", with_probabilities(costs=tensor(-np.ones(6))), "costs", None),
    ("item-weights-2d", with_probabilities(item_weights=tensor(np.ones((6, 1)))),
     "item_weights.shape", None),
    ("item-weights-negative", with_probabilities(item_weights=tensor(-np.ones(6))),
     "item_weights", None),
    ("item-weights-not-read", with_probabilities(item_weights=tensor(np.ones(6))),
     "item_weights", None),
    ("nan", request(probabilities=tensor(with_value((2, 1), np.nan))), "probabilities", None),
    ("inf", request(probabilities=tensor(with_value((0, 0), np.inf))), "probabilities", None),
    ("nan-logits", request(logits=tensor(with_value((3, 2), np.nan))), "logits", None),
    ("inf-committee-logits", request(["bald"], committee_logits=tensor(
        with_value((1, 2, 0), -np.inf, COMMITTEE))), "committee_logits", None),
    ("nan-embeddings", request(["random"], embeddings=tensor(with_value((1, 1), np.nan,
                                                                       np.ones((6, 2))))),
     "embeddings", None),
    ("rows-do-not-sum-to-1", request(probabilities=tensor(bad_rows())), "probabilities", None),
    ("negative-probability", request(probabilities=tensor([[1.2, -0.2], [0.5, 0.5]])),
     "probabilities", None),
    ("committee-rows", request(["bald"], committee=tensor(COMMITTEE * 1.1)), "committee", None),
    ("k-zero", with_probabilities(k=0), "k", None),
    ("k-negative", with_probabilities(k=-3), "k", None),
    ("k-over-n", with_probabilities(k=7), "k", None),
    ("k-over-candidates", with_probabilities(k=5, exclude=[0, 1]), "k", None),
    ("exclude-out-of-range", with_probabilities(exclude=[1, 6]), "exclude[1]", None),
    ("exclude-negative", with_probabilities(exclude=[-1]), "exclude[0]", None),
    ("all-excluded", with_probabilities(clamp_k=True, exclude=list(range(6))), "exclude", None),
    ("empty-pool", request(probabilities=tensor(np.ones((0, 3)))), "probabilities.shape", None),
    ("no-pool-input", request(), "probabilities", "MISSING_INPUT"),
    ("no-strategies", with_probabilities(strategies=[]), "strategies", None),
    ("unknown-strategy", with_probabilities(strategies=["entropyy"]), "strategies[0].name",
     "UNKNOWN_STRATEGY"),
    ("unknown-parameter", with_probabilities(strategies=["entropy",
                                                         ("margin", {"beta": param(int_value=1)})]),
     "strategies[1].params[beta]", "UNKNOWN_PARAMETER"),
    ("param-type", request([("kl_to_consensus", {"aggregate": param(int_value=1)})],
                           committee=tensor(COMMITTEE)), "strategies[0].params[aggregate]", None),
    ("param-unset", request([("kl_to_consensus", {"aggregate": param()})],
                            committee=tensor(COMMITTEE)), "strategies[0].params[aggregate]", None),
    ("param-choice", request([("kl_to_consensus", {"aggregate": param(string_value="sum")})],
                             committee=tensor(COMMITTEE)), "strategies[0].params[aggregate]", None),
    ("missing-committee", with_probabilities(strategies=["entropy", "bald"]), "strategies[1].name",
     "MISSING_INPUT"),
    ("missing-probabilities", request(["margin"], committee=tensor(COMMITTEE)),
     "strategies[0].name", "MISSING_INPUT"),
    ("bytes-length", request(probabilities=raw_tensor(pb.DATA_TYPE_FLOAT64, [6, 3], bytes(143))),
     "probabilities.raw_data", None),
    ("bytes-length-float16", request(probabilities=raw_tensor(pb.DATA_TYPE_FLOAT16, [2, 2],
                                                               bytes(16))),
     "probabilities.raw_data", None),
    ("dtype-unset", request(probabilities=raw_tensor(0, [1, 2], bytes(8))), "probabilities.dtype",
     None),
    ("dtype-int", request(probabilities=tensor(np.array([[1, 0]], dtype=np.int32))),
     "probabilities.dtype", None),
    ("dtype-unknown", request(probabilities=raw_tensor(42, [1, 2], bytes(8))),
     "probabilities.dtype", None),
    ("negative-size", request(probabilities=raw_tensor(F32, [-2, -3], bytes(24))),
     "probabilities.shape", None),
    ("count-overflows", request(probabilities=raw_tensor(F32, [2**62, 2**62], b"")),
     "probabilities.shape", "TOO_MANY_ELEMENTS"),
    ("zero-times-huge", request(probabilities=raw_tensor(F32, [0, 2**63 - 1], b"")),
     "probabilities.shape", "TOO_MANY_ELEMENTS"),
    ("probabilities-and-logits", request(probabilities=tensor(P), logits=tensor(P)), "logits",
     None),
    ("committee-and-logits", request(["bald"], committee=tensor(COMMITTEE),
                                     committee_logits=tensor(COMMITTEE)),
     "committee_logits", None),
    ("temperature-zero", request(logits=tensor(P), temperature=0.0), "temperature", None),
    ("temperature-nan", request(logits=tensor(P), temperature=float("nan")), "temperature", None),
    ("budget-negative", with_probabilities(budget=-1.0), "budget", None),
    ("budget-inf", with_probabilities(budget=float("inf")), "budget", None),
    # Model mode; tests/grpc/test_model_mode.py has the hostile models.
    ("model-inputs-without-models", with_probabilities(model_inputs=tensor(np.ones((6, 2)))),
     "model_inputs", None),
    ("models-with-probabilities", with_probabilities(models=[pb.Model(onnx=b"x")]), "models",
     None),
]  # fmt: skip


def violations(error: grpc.RpcError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the error carries no google.rpc.Status"
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found += list(bad_request.field_violations)
    return found


def assert_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def call_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.QuerySelectionServiceStub:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("message", "field", "reason"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_request_is_invalid_argument_naming_the_field(
    stub: Any,
    channel: grpc.Channel,
    message: pb.SelectQueriesRequest,
    field: str,
    reason: str | None,
) -> None:
    error = call_error(lambda: stub.SelectQueries(message, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    [violation] = violations(error)
    assert violation.field == field, violation.description
    assert violation.description
    if reason is not None:
        assert violation.reason == reason
    assert_serving(channel)


def test_bad_requests_cover_every_pool_tensor() -> None:
    names = {fd.name for fd in pb.SelectQueriesRequest.DESCRIPTOR.fields if fd.message_type}
    tested = {case[2].split(".")[0] for case in BAD_REQUESTS}
    tested |= {field.split(".")[0] for _, field in test_tasks_wire.BAD}  # the new task outputs
    tested |= {field.split("[")[0] for _, _, field in test_auto.BAD}  # history
    assert names - {"strategies"} <= tested


def test_clamp_k_lowers_k_to_the_candidates(stub: Any) -> None:
    response = stub.SelectQueries(with_probabilities(k=50, clamp_k=True, exclude=[0, 3, 3]))
    [result] = response.results
    assert sorted(result.indices) == [1, 2, 4, 5]
    assert response.pool_size == 6


@pytest.mark.parametrize(
    "data",
    [b"\x10", b"\x52\x05\x08\x02", b"\x0f", b"\x0a\x02\x0a\x01\xff", b"\xff" * 11],
    ids=["truncated-varint", "tensor-past-end", "wire-type-7", "name-not-utf8", "overlong"],
)
def test_malformed_request_bytes_are_invalid_argument(channel: grpc.Channel, data: bytes) -> None:
    select = channel.unary_unary(
        f"/{SERVICE_NAME}/SelectQueries",
        request_serializer=lambda raw: raw,
        response_deserializer=pb.SelectQueriesResponse.FromString,
    )
    error = call_error(lambda: select(data, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations(error)] == ["request"]
    assert_serving(channel)


@pytest.fixture(scope="module")
def small_server() -> Iterator[ServerThread]:
    thread = ServerThread(
        replace(
            TEST_CONFIG, max_message_bytes=1 << 20, max_pool_elements=1000, max_stream_elements=2000
        )
    )
    yield thread
    thread.stop()


def test_element_count_over_the_server_limit(small_server: ServerThread) -> None:
    with grpc.insecure_channel(small_server.address) as channel:
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        ok = request(probabilities=tensor(np.full((500, 2), 0.5)))  # 1000 elements: the limit
        assert len(stub.SelectQueries(ok, timeout=10).results[0].indices) == 2
        over = request(probabilities=tensor(np.full((501, 2), 0.5)))
        error = call_error(lambda: stub.SelectQueries(over, timeout=10))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        [violation] = violations(error)
        assert (violation.field, violation.reason) == ("probabilities.shape", "TOO_MANY_ELEMENTS")
        # The same pool streamed in chunks and reassembled (a budget walk needs every row)
        # is held to the same limit.
        over.budget = 2.0
        chunks = stream_chunks(over, rows=100)
        error = call_error(lambda: stub.SelectQueriesStream(iter(chunks), timeout=10))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        [violation] = violations(error)
        assert violation.field == "chunks[5].chunk.probabilities.shape"
        assert_serving(channel)


def test_a_stream_scored_as_it_arrives_passes_the_element_limit_up_to_the_stream_limit(
    small_server: ServerThread,
) -> None:
    with grpc.insecure_channel(small_server.address) as channel:
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        rng = np.random.default_rng(5)
        # 1,400 elements: past --max-pool-elements (1,000), within --max-stream-elements.
        pool = rng.dirichlet(np.ones(2), size=700)
        message = request(probabilities=tensor(pool), k=3)
        streamed = stub.SelectQueriesStream(iter(stream_chunks(message, rows=100)), timeout=10)
        entropy = -(pool * np.log(pool)).sum(axis=1)
        expected = np.lexsort((np.arange(700), -entropy))[:3]
        assert list(streamed.response.results[0].indices) == expected.tolist()
        # Past --max-stream-elements (2,000) the stream ends as that chunk arrives.
        pool = rng.dirichlet(np.ones(2), size=1100)
        chunks = stream_chunks(request(probabilities=tensor(pool)), rows=100)
        error = call_error(lambda: stub.SelectQueriesStream(iter(chunks), timeout=10))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        [violation] = violations(error)
        assert (violation.field, violation.reason) == (
            "chunks[10].chunk.probabilities.shape",
            "TOO_MANY_ELEMENTS",
        )
        # Rows of one tensor held waiting for another's are bounded by --max-pool-elements.
        pool = rng.dirichlet(np.ones(2), size=600)
        costs = np.ones(600)
        first = request(probabilities=tensor(pool))
        later_costs = pb.SelectQueriesRequest(costs=tensor(costs))
        chunks = [
            pb.SelectQueriesStreamRequest(chunk=first),
            pb.SelectQueriesStreamRequest(chunk=later_costs),
        ]
        error = call_error(lambda: stub.SelectQueriesStream(iter(chunks), timeout=10))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert_serving(channel)


def test_oversize_message_is_resource_exhausted(small_server: ServerThread) -> None:
    with grpc.insecure_channel(small_server.address) as channel:
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        big = request(probabilities=tensor(np.full((70_000, 2), 0.5)))  # ~1.1 MB
        error = call_error(lambda: stub.SelectQueries(big, timeout=10))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert_serving(channel)


def handled(server: ServerThread, method: str, code: str) -> float:
    labels = {
        "grpc_type": "client_stream" if method == "SelectQueriesStream" else "unary",
        "grpc_service": SERVICE_NAME,
        "grpc_method": method,
        "grpc_code": code,
    }
    return server.registry.get_sample_value("grpc_server_handled_total", labels) or 0.0


@pytest.fixture(scope="module")
def threads_server() -> Iterator[ServerThread]:
    """A --no-sandbox server: work on in-process threads, where a test can inject faults."""
    thread = ServerThread(replace(TEST_CONFIG, sandbox=False))
    yield thread
    thread.stop()


@pytest.fixture()
def threads_stub(threads_server: ServerThread) -> Iterator[Any]:
    with grpc.insecure_channel(threads_server.address) as channel:
        yield pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


def test_expired_deadline_abandons_the_work(
    threads_server: ServerThread, threads_stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, stub = threads_server, threads_stub
    real_select = work_module.select
    reached: list[bool] = []

    def slow_select(selection: Any, stop: Any, observe: Any) -> Any:
        time.sleep(0.5)  # the 0.2 s deadline passes here
        stop()  # raises DeadlineExceeded: the strategies never run
        reached.append(True)
        return real_select(selection, stop, observe)

    monkeypatch.setattr(work_module, "select", slow_select)
    before = handled(server, "SelectQueries", "DEADLINE_EXCEEDED")
    error = call_error(lambda: stub.SelectQueries(with_probabilities(), timeout=0.2))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(200):  # the server finishes after the client gives up (10 s: CI is loaded)
        if handled(server, "SelectQueries", "DEADLINE_EXCEEDED") > before:
            break
        time.sleep(0.05)
    assert handled(server, "SelectQueries", "DEADLINE_EXCEEDED") == before + 1
    assert not reached
    monkeypatch.undo()
    assert stub.SelectQueries(with_probabilities(), timeout=10).results


def test_unexpected_errors_are_internal_without_details(
    threads_stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = threads_stub

    def broken(*args: Any) -> Any:
        raise RuntimeError("secret path /etc/shadow")

    monkeypatch.setattr(work_module, "select", broken)
    error = call_error(lambda: stub.SelectQueries(with_probabilities(), timeout=10))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (error.details() or "")
    monkeypatch.undo()
    assert stub.SelectQueries(with_probabilities(), timeout=10).results


# Streaming: a request cut into chunks along the pool axis gives the unary answer, byte for byte.
POOL_AXIS = {"committee": 1, "committee_logits": 1}
STREAMED_STRATEGIES = [
    "entropy", "margin", "random", "bald", "vote_entropy",
    ("kl_to_consensus", {"aggregate": param(string_value="max")}),
]  # fmt: skip


def stream_chunks(
    message: pb.SelectQueriesRequest, rows: int, labeled_rows: int = 3
) -> list[pb.SelectQueriesStreamRequest]:
    """message as stream chunks of `rows` pool rows; the header and exclude ride in the first."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    dtypes: dict[str, int] = {}
    header = pb.SelectQueriesRequest()
    header.CopyFrom(message)
    for fd, value in message.ListFields():
        if fd.message_type is not None and fd.message_type.full_name == "labelwise.v1.Tensor":
            numpy_type = {1: "<f2", 2: "<f4", 3: "<f8", 4: "<u2", 5: "<i4", 6: "<i8"}[value.dtype]
            array = np.frombuffer(value.raw_data, numpy_type).reshape(value.shape)
            if value.dtype == pb.DATA_TYPE_BFLOAT16:  # exact: every bfloat16 is a float32
                array = (array.astype(np.uint32) << 16).view(np.float32)
            arrays[fd.name] = array
            dtypes[fd.name] = value.dtype
            header.ClearField(fd.name)
    pool = {name: a for name, a in arrays.items() if name != "labeled_embeddings"}
    n = next(a.shape[POOL_AXIS.get(name, 0)] for name, a in pool.items())
    chunks = [pb.SelectQueriesRequest() for _ in range(0, n, rows)]
    for i, start in enumerate(range(0, n, rows)):
        for name, a in pool.items():
            part = np.take(a, range(start, min(start + rows, n)), axis=POOL_AXIS.get(name, 0))
            getattr(chunks[i], name).CopyFrom(encode_tensor(part, dtypes[name]))
    if "labeled_embeddings" in arrays:
        labeled = arrays["labeled_embeddings"]
        for start in range(0, labeled.shape[0], labeled_rows):
            part = pb.SelectQueriesRequest()
            part.labeled_embeddings.CopyFrom(
                encode_tensor(labeled[start : start + labeled_rows], dtypes["labeled_embeddings"])
            )
            chunks.append(part)
    chunks[0].MergeFrom(header)
    return [pb.SelectQueriesStreamRequest(chunk=chunk) for chunk in chunks]


def stream_pool(dtype: Any) -> pb.SelectQueriesRequest:
    rng = np.random.default_rng(11)
    n = 257
    committee = rng.dirichlet(np.ones(4), size=(5, n)).astype(dtype)
    return request(
        STREAMED_STRATEGIES,
        k=20,
        seed=5,
        exclude=[0, 7, 256],
        probabilities=tensor(rng.dirichlet(np.ones(4), size=n).astype(dtype)),
        committee=tensor(committee),
        embeddings=tensor(rng.standard_normal((n, 3)).astype(dtype)),
        labeled_embeddings=tensor(rng.standard_normal((10, 3)).astype(dtype)),
        costs=tensor(rng.uniform(0.5, 2.0, n)),
        budget=15.0,
    )


@pytest.mark.parametrize("rows", [1, 16, 100, 257, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_stream_equals_unary(stub: Any, rows: int, dtype: Any) -> None:
    message = stream_pool(dtype)
    unary = stub.SelectQueries(message, timeout=20)
    streamed = stub.SelectQueriesStream(iter(stream_chunks(message, rows)), timeout=20)
    assert streamed.response.SerializeToString(deterministic=True) == unary.SerializeToString(
        deterministic=True
    )
    assert [r.name for r in unary.results] == [
        s if isinstance(s, str) else s[0] for s in STREAMED_STRATEGIES
    ]
    assert all(len(r.indices) > 0 for r in unary.results)


@pytest.mark.parametrize("rows", [1, 257])
def test_stream_equals_unary_on_in_process_threads(threads_stub: Any, rows: int) -> None:
    """--no-sandbox joins the chunks' parts in the worker: the same answer as unary."""
    message = stream_pool(np.float32)
    unary = threads_stub.SelectQueries(message, timeout=20)
    streamed = threads_stub.SelectQueriesStream(iter(stream_chunks(message, rows)), timeout=20)
    assert streamed.response.SerializeToString(deterministic=True) == unary.SerializeToString(
        deterministic=True
    )


def test_stream_of_logits_equals_unary(stub: Any) -> None:
    rng = np.random.default_rng(12)
    message = request(["entropy", "bald"], k=5, temperature=0.7,
                      logits=tensor(rng.standard_normal((40, 3))),
                      committee_logits=tensor(rng.standard_normal((3, 40, 3))))  # fmt: skip
    unary = stub.SelectQueries(message, timeout=20)
    streamed = stub.SelectQueriesStream(iter(stream_chunks(message, 9)), timeout=20)
    assert streamed.response.SerializeToString(deterministic=True) == unary.SerializeToString(
        deterministic=True
    )


def _first_chunk() -> pb.SelectQueriesStreamRequest:
    return pb.SelectQueriesStreamRequest(chunk=with_probabilities())


def later(**fields: Any) -> pb.SelectQueriesStreamRequest:
    """A later stream chunk: tensors and exclude only."""
    return pb.SelectQueriesStreamRequest(chunk=pb.SelectQueriesRequest(**fields))


FIRST = _first_chunk()
BAD_STREAMS: list[tuple[str, list[pb.SelectQueriesStreamRequest], str]] = [
    ("dtype-differs", [FIRST, later(probabilities=tensor(P.astype(np.float32)))],
     "probabilities.dtype"),
    ("classes-differ", [FIRST, later(probabilities=tensor(np.full((2, 2), 0.5)))],
     "probabilities.shape"),
    ("k-in-later-chunk", [FIRST, later(k=3)], "chunks[1].chunk.k"),
    ("strategies-in-later-chunk", [FIRST, later(strategies=[pb.StrategySpec(name="margin")])],
     "chunks[1].chunk.strategies"),
    ("seed-in-later-chunk", [FIRST, later(seed=3)], "chunks[1].chunk.seed"),
    ("temperature-in-later-chunk", [FIRST, later(temperature=2.0)],
     "chunks[1].chunk.temperature"),
    ("bytes-length-in-a-chunk",
     [FIRST, later(probabilities=raw_tensor(pb.DATA_TYPE_FLOAT64, [2, 3], bytes(47)))],
     "probabilities.raw_data"),
    ("exclude-past-the-whole-pool", [FIRST, later(exclude=[6])], "exclude[0]"),
    ("rows-in-a-later-chunk", [FIRST, later(probabilities=tensor([[0.9, 0.9, 0.9]]))],
     "probabilities"),
    ("committee-without-pool-axis",
     [pb.SelectQueriesStreamRequest(chunk=request(["bald"], committee=tensor([0.5, 0.5]))),
      later(committee=tensor([0.5, 0.5]))], "committee.shape"),
    ("empty-stream", [], "chunks"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("chunks", "field"), [case[1:] for case in BAD_STREAMS], ids=[case[0] for case in BAD_STREAMS]
)
def test_bad_stream_is_invalid_argument_naming_the_field(
    stub: Any, channel: grpc.Channel, chunks: list[pb.SelectQueriesStreamRequest], field: str
) -> None:
    error = call_error(lambda: stub.SelectQueriesStream(iter(chunks), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert [v.field for v in violations(error)] == [field]
    assert_serving(channel)


def test_bad_rows_early_in_a_long_scored_stream_end_it_with_their_error(
    stub: Any, channel: grpc.Channel
) -> None:
    """The scoring task fails on chunk 1 while the receiving task still has 40 chunks to
    read: the call ends with chunk 1's error, and does not hang on the chunks queued."""
    rng = np.random.default_rng(17)
    good = [later(probabilities=tensor(rng.dirichlet(np.ones(3), size=50))) for _ in range(40)]
    bad = later(probabilities=tensor([[0.9, 0.9, 0.9]]))
    first = pb.SelectQueriesStreamRequest(
        chunk=request(probabilities=tensor(rng.dirichlet(np.ones(3), size=50)))
    )
    error = call_error(lambda: stub.SelectQueriesStream(iter([first, bad, *good]), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert [v.field for v in violations(error)] == ["probabilities"]
    assert_serving(channel)


def test_malformed_stream_chunk_is_invalid_argument(channel: grpc.Channel) -> None:
    stream = channel.stream_unary(
        f"/{SERVICE_NAME}/SelectQueriesStream",
        request_serializer=lambda raw: raw,
        response_deserializer=pb.SelectQueriesStreamResponse.FromString,
    )
    good = _first_chunk().SerializeToString()
    error = call_error(lambda: stream(iter([good, b"\x0a\x09\x10"]), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations(error)] == ["chunks[1]"]
    assert_serving(channel)


def softmax(logits: npt.NDArray[np.float64], temperature: float) -> npt.NDArray[np.float64]:
    scaled = logits / temperature
    e = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("temperature", [None, 0.3, 1.0, 4.0])
def test_logits_with_temperature_equal_numpy_softmax_probabilities(
    stub: Any, temperature: float | None
) -> None:
    rng = np.random.default_rng(13)
    logits = rng.standard_normal((80, 5)) * 3
    committee_logits = rng.standard_normal((4, 80, 5)) * 3
    names = ["least_confidence", "margin", "ratio", "entropy", "bald", "mean_std"]
    extra = {} if temperature is None else {"temperature": temperature}
    from_logits = stub.SelectQueries(
        request(names, k=80, logits=tensor(logits), committee_logits=tensor(committee_logits),
                **extra), timeout=10)  # fmt: skip
    t = 1.0 if temperature is None else temperature
    from_probabilities = stub.SelectQueries(
        request(names, k=80, probabilities=tensor(softmax(logits, t)),
                committee=tensor(softmax(committee_logits, t))), timeout=10)  # fmt: skip
    for a, b in zip(from_logits.results, from_probabilities.results, strict=True):
        ours = np.empty(80)
        ours[list(a.indices)] = a.scores
        reference = np.empty(80)
        reference[list(b.indices)] = b.scores
        np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)


def test_float32_logits_that_overflow_exp_still_give_probabilities(stub: Any) -> None:
    logits = np.array([[1e30, 0.0, -1e30], [500.0, 500.0, -500.0]], dtype=np.float32)
    response = stub.SelectQueries(request(["entropy"], k=2, logits=tensor(logits)), timeout=10)
    assert list(response.results[0].indices) == [1, 0]
    np.testing.assert_allclose(response.results[0].scores, [np.log(2), 0.0], atol=1e-6)


def test_list_strategies_describes_the_registry(stub: Any, client: Client) -> None:
    response = stub.ListStrategies(pb.ListStrategiesRequest(), timeout=10)
    # The stream strategies (StreamSelectionService) follow, family "stream".
    assert [s.name for s in response.strategies] == [*STRATEGIES, *STREAM_STRATEGIES]
    by_name = {s.name: s for s in response.strategies}
    for name, strategy in STRATEGIES.items():
        info = by_name[name]
        assert info.family == strategy.family and info.description == strategy.summary
        assert set(info.required_inputs) == {needed.value for needed in strategy.needs}
        assert info.seeded == strategy.seeded and info.batch == strategy.batch
        assert [p.name for p in info.params] == list(strategy.params)
    aggregate, balance = by_name["kl_to_consensus"].params
    assert (balance.name, balance.type) == ("class_balance", pb.PARAM_TYPE_BOOL)
    assert not balance.default_value.bool_value
    assert aggregate.type == pb.PARAM_TYPE_STRING
    assert aggregate.default_value.string_value == "mean"
    assert [v.string_value for v in aggregate.allowed_values] == ["mean", "max"]
    assert list(by_name["bald"].required_inputs) == [pb.POOL_INPUT_COMMITTEE]
    assert list(by_name["random"].required_inputs) == [pb.POOL_INPUT_ANY]

    described = {s.name: s for s in client.list_strategies(deadline=10)}
    assert list(described) == [*STRATEGIES, *STREAM_STRATEGIES]
    kl = described["kl_to_consensus"].params["aggregate"]
    assert (kl.type, kl.default, kl.allowed_values) == ("string", "mean", ["mean", "max"])
    assert described["entropy"].required_inputs == ["probabilities"]


def test_results_carry_the_parameters_used_with_defaults(stub: Any) -> None:
    response = stub.SelectQueries(
        request(["kl_to_consensus", ("kl_to_consensus", {"aggregate": param(string_value="max")})],
                committee=tensor(COMMITTEE)), timeout=10)  # fmt: skip
    assert [r.params["aggregate"].string_value for r in response.results] == ["mean", "max"]
    assert all(r.name == "kl_to_consensus" for r in response.results)


def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether condition holds within seconds: the server counts a call after answering it."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_metrics_count_calls_by_code(server: ServerThread, stub: Any) -> None:
    ok_before = handled(server, "SelectQueries", "OK")
    bad_before = handled(server, "SelectQueries", "INVALID_ARGUMENT")
    stub.SelectQueries(with_probabilities(), timeout=10)
    call_error(lambda: stub.SelectQueries(with_probabilities(k=0), timeout=10))
    stream_before = handled(server, "SelectQueriesStream", "OK")
    stream_bad_before = handled(server, "SelectQueriesStream", "INVALID_ARGUMENT")
    stub.SelectQueriesStream(iter([_first_chunk()]), timeout=10)
    call_error(lambda: stub.SelectQueriesStream(iter([]), timeout=10))
    assert eventually(lambda: handled(server, "SelectQueries", "OK") == ok_before + 1)
    assert eventually(
        lambda: handled(server, "SelectQueries", "INVALID_ARGUMENT") == bad_before + 1
    )
    assert eventually(lambda: handled(server, "SelectQueriesStream", "OK") == stream_before + 1)
    assert eventually(
        lambda: handled(server, "SelectQueriesStream", "INVALID_ARGUMENT") == stream_bad_before + 1
    )
    unary = {"grpc_type": "unary", "grpc_service": SERVICE_NAME, "grpc_method": "SelectQueries"}
    started = server.registry.get_sample_value("grpc_server_started_total", unary)
    assert started is not None
    assert server.registry.get_sample_value("grpc_server_msg_sent_total", unary)
    assert eventually(
        lambda: (
            server.registry.get_sample_value("grpc_server_handling_seconds_count", unary) == started
        )
    )
    # Every started call is handled exactly once.
    assert eventually(
        lambda: (
            sum(handled(server, "SelectQueries", code.name) for code in grpc.StatusCode) == started
        )
    )
    # Pre-initialised series exist before any call of that kind.
    assert server.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_type": "unary", "grpc_service": SERVICE_NAME, "grpc_method": "ListStrategies",
         "grpc_code": "UNAVAILABLE"},
    ) == 0.0  # fmt: skip
    seconds = server.registry.get_sample_value(
        "labelwise_strategy_duration_seconds_count", {"strategy": "entropy"}
    )
    assert seconds and seconds >= 1
    assert (server.registry.get_sample_value("labelwise_request_bytes_count") or 0) >= 2
    assert (server.registry.get_sample_value("labelwise_pool_rows_sum") or 0) >= 12


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
    found = database.FindFileContainingSymbol(SERVICE_NAME)
    assert found.package == "labelwise.v1"


def test_client_error_carries_code_and_violations(client: Client) -> None:
    with pytest.raises(LabelwiseError) as caught:
        client.select(strategies=["bald"], k=2, probabilities=P)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in caught.value.violations] == ["strategies[0].name"]
    assert "committee" in caught.value.violations[0].description


def test_client_select_returns_arrays_by_strategy(client: Client) -> None:
    picks = client.select(
        strategies=["entropy", ("kl_to_consensus", {"aggregate": "max"})],
        k=3,
        probabilities=P.astype(np.float32),
        committee=COMMITTEE,
        exclude=[0],
        deadline=10,
    )
    assert list(picks) == ["entropy", "kl_to_consensus"]
    entropy = picks["entropy"]
    assert entropy.indices.dtype == np.int64 and entropy.scores.dtype == np.float64
    assert 0 not in entropy.indices.tolist() and len(entropy.indices) == 3
    assert picks["kl_to_consensus"].params == {"aggregate": "max", "class_balance": False}
    assert entropy.total_cost == 3.0


def test_client_streams_a_pool_bigger_than_its_message_limit(server: ServerThread) -> None:
    rng = np.random.default_rng(14)
    p = rng.dirichlet(np.ones(8), size=4000)  # 256 KB of float64
    committee = rng.dirichlet(np.ones(8), size=(3, 4000)).astype(np.float32)
    started = server.registry.get_sample_value(
        "grpc_server_started_total",
        {"grpc_type": "client_stream", "grpc_service": SERVICE_NAME,
         "grpc_method": "SelectQueriesStream"},
    ) or 0.0  # fmt: skip
    args: dict[str, Any] = dict(
        strategies=["entropy", "bald", "random"], k=10, probabilities=p, committee=committee,
        embeddings=rng.standard_normal((4000, 2)), labeled_embeddings=np.ones((30, 2)), seed=3,
    )  # fmt: skip
    with Client(server.address, max_message_bytes=64 * 1024) as small:
        streamed = small.select(**args, deadline=20)
    with Client(server.address) as big:
        unary = big.select(**args, deadline=20)
    for name in args["strategies"]:
        np.testing.assert_array_equal(streamed[name].indices, unary[name].indices)
        np.testing.assert_array_equal(streamed[name].scores, unary[name].scores)
    after = server.registry.get_sample_value(
        "grpc_server_started_total",
        {"grpc_type": "client_stream", "grpc_service": SERVICE_NAME,
         "grpc_method": "SelectQueriesStream"},
    )  # fmt: skip
    assert after == started + 1


def test_client_rejects_a_strategy_named_twice(client: Client) -> None:
    with pytest.raises(ValueError, match="twice"):
        client.select(strategies=["entropy", "entropy"], k=1, probabilities=P)


def test_client_stream_chunks_fit_a_tiny_message_limit_with_a_long_exclude(
    server: ServerThread,
) -> None:
    rng = np.random.default_rng(15)
    p = rng.dirichlet(np.ones(4), size=300)
    exclude = rng.choice(300, size=250, replace=False)
    with Client(server.address, max_message_bytes=4096) as tiny:
        streamed = tiny.select(strategies=["margin"], k=5, probabilities=p, exclude=exclude)
    with Client(server.address) as big:
        unary = big.select(strategies=["margin"], k=5, probabilities=p, exclude=exclude)
    np.testing.assert_array_equal(streamed["margin"].indices, unary["margin"].indices)
    assert not set(streamed["margin"].indices.tolist()) & set(exclude.tolist())


def _slow_select(monkeypatch: pytest.MonkeyPatch, seconds: float) -> list[str]:
    """Make the server's select wait, then honour stop(); returns what became of each call."""
    real_select = work_module.select
    outcomes: list[str] = []

    def slow_select(selection: Any, stop: Any, observe: Any) -> Any:
        time.sleep(seconds)
        try:
            stop()
        except Exception as err:
            outcomes.append(type(err).__name__)
            raise
        outcomes.append("ran")
        return real_select(selection, stop, observe)

    monkeypatch.setattr(work_module, "select", slow_select)
    return outcomes


def test_a_cancelled_call_is_abandoned(
    threads_server: ServerThread, threads_stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, stub = threads_server, threads_stub
    outcomes = _slow_select(monkeypatch, 0.4)
    before = handled(server, "SelectQueries", "CANCELLED")
    future = stub.SelectQueries.future(with_probabilities(), timeout=10)
    time.sleep(0.1)
    assert future.cancel()
    for _ in range(50):
        if outcomes:
            break
        time.sleep(0.05)
    assert outcomes == ["Cancelled"]
    for _ in range(50):
        if handled(server, "SelectQueries", "CANCELLED") > before:
            break
        time.sleep(0.05)
    assert handled(server, "SelectQueries", "CANCELLED") == before + 1
    monkeypatch.undo()


def test_calls_over_the_concurrency_limit_are_resource_exhausted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread = ServerThread(replace(TEST_CONFIG, max_concurrent_rpcs=1, sandbox=False))
    try:
        outcomes = _slow_select(monkeypatch, 0.5)
        with grpc.insecure_channel(thread.address) as channel:
            stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
            busy = stub.SelectQueries.future(with_probabilities(), timeout=10)
            time.sleep(0.2)
            error = call_error(lambda: stub.SelectQueries(with_probabilities(), timeout=10))
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert busy.result(timeout=10).results
            assert outcomes == ["ran"]
            assert_serving(channel)
    finally:
        thread.stop()


def test_stream_whose_first_chunk_is_only_the_header(server: ServerThread, stub: Any) -> None:
    message = stream_pool(np.float32)
    chunks = stream_chunks(message, 64)
    header = pb.SelectQueriesRequest()
    header.CopyFrom(message)
    for name in ("probabilities", "committee", "embeddings", "labeled_embeddings", "costs"):
        header.ClearField(name)  # the header chunk: no tensors
    for field in ("strategies", "k", "seed", "exclude", "budget"):
        chunks[0].chunk.ClearField(field)  # the first row chunk: no header fields
    labels = {"grpc_type": "client_stream", "grpc_service": SERVICE_NAME,
              "grpc_method": "SelectQueriesStream"}  # fmt: skip
    received = server.registry.get_sample_value("grpc_server_msg_received_total", labels) or 0
    all_chunks = [pb.SelectQueriesStreamRequest(chunk=header), *chunks]
    streamed = stub.SelectQueriesStream(iter(all_chunks), timeout=20)
    unary = stub.SelectQueries(message, timeout=20)
    assert streamed.response.SerializeToString(deterministic=True) == unary.SerializeToString(
        deterministic=True
    )
    after = server.registry.get_sample_value("grpc_server_msg_received_total", labels)
    assert after == received + len(all_chunks)


def test_the_same_request_gives_the_same_bytes(stub: Any) -> None:
    message = stream_pool(np.float32)
    message.ClearField("budget")
    first = stub.SelectQueries(message, timeout=20).SerializeToString()
    assert all(stub.SelectQueries(message, timeout=20).SerializeToString() == first
               for _ in range(3))  # fmt: skip
    message.seed += 1  # only the random strategy moves
    moved = stub.SelectQueries(message, timeout=20)
    before = pb.SelectQueriesResponse.FromString(first)
    for old, new in zip(before.results, moved.results, strict=True):
        assert (old.indices == new.indices) == (old.name != "random")


def test_a_lone_strategy_name_is_one_strategy(client: Client) -> None:
    probabilities = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]], dtype=np.float32)
    picks = client.select(strategies="entropy", k=2, probabilities=probabilities, deadline=10)
    assert list(picks) == ["entropy"]
    assert picks["entropy"].indices.tolist() == [1, 2]
    pair = client.select(
        strategies=("core_set", {"metric": "cosine"}), k=1, embeddings=probabilities, deadline=10
    )
    assert list(pair) == ["core_set"]
    both = client.select(strategies=("entropy", "margin"), k=1, probabilities=probabilities)
    assert list(both) == ["entropy", "margin"]


@pytest.mark.parametrize("strategies", [[1], [("entropy",)], [("entropy", "k")], [None]])
def test_a_strategy_that_is_neither_name_nor_pair_is_a_type_error(
    client: Client, strategies: Any
) -> None:
    with pytest.raises(TypeError, match=r"strategies\[0\]"):
        client.select(strategies=strategies, k=1, probabilities=np.eye(2, dtype=np.float32))


def test_client_stream_sends_every_row_so_unequal_pool_sizes_are_refused(
    server: ServerThread,
) -> None:
    rng = np.random.default_rng(16)
    p = rng.dirichlet(np.ones(4), size=300)
    with (
        Client(server.address, max_message_bytes=4096) as tiny,
        pytest.raises(LabelwiseError) as caught,
    ):
        tiny.select(strategies=["margin"], k=5, probabilities=p, costs=np.ones(320))
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "same pool size" in str(caught.value)
