"""SelectQueriesStream's own limits: a stream that stalls ends DEADLINE_EXCEEDED (STREAM_IDLE),
one of too many chunks INVALID_ARGUMENT (TOO_MANY_CHUNKS), each as it happens."""

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from tests.grpc.conftest import TEST_CONFIG, ServerThread
from tests.grpc.test_guards import error_info, rpcs, sample, wait_for

P = np.random.default_rng(1).dirichlet(np.ones(3), size=8)  # [8, 3]
ENTROPY = -(P * np.log(P)).sum(axis=1)
EXPECTED = np.argsort(-ENTROPY, kind="stable")[:2].tolist()


def chunks(rows: int, pause: float = 0.0) -> Iterator[pb.SelectQueriesStreamRequest]:
    """P's first `rows` rows one a chunk (the header in the first), `pause` s apart."""
    for i in range(rows):
        chunk = pb.SelectQueriesRequest(probabilities=encode_tensor(P[i : i + 1]))
        if i == 0:
            chunk.strategies.append(pb.StrategySpec(name="entropy"))
            chunk.k = 2
        if i and pause:
            time.sleep(pause)
        yield pb.SelectQueriesStreamRequest(chunk=chunk)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    thread = ServerThread(replace(TEST_CONFIG, stream_idle_seconds=0.5, max_stream_chunks=4))
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def stub(server: ServerThread) -> Iterator[pb_grpc.QuerySelectionServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


def stream_error(
    stub: pb_grpc.QuerySelectionServiceStub, requests: Iterator[pb.SelectQueriesStreamRequest]
) -> tuple[grpc.RpcError, float]:
    began = time.monotonic()
    with pytest.raises(grpc.RpcError) as failed:
        stub.SelectQueriesStream(requests, timeout=10)
    return failed.value, time.monotonic() - began


def stalled(
    first: Iterator[pb.SelectQueriesStreamRequest], gate: threading.Event
) -> Iterator[pb.SelectQueriesStreamRequest]:
    yield from first
    gate.wait(10)


@pytest.mark.parametrize("sent", [0, 2])
def test_a_stream_that_stalls_ends_stream_idle(
    server: ServerThread, stub: pb_grpc.QuerySelectionServiceStub, sent: int
) -> None:
    code = "DEADLINE_EXCEEDED"
    ended = rpcs(server, "handled", "SelectQueriesStream", grpc_code=code)
    gate = threading.Event()
    try:
        error, took = stream_error(stub, stalled(chunks(sent), gate))
    finally:
        gate.set()
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server counts the call once its status is out, a moment after the client has it.
    wait_for(lambda: rpcs(server, "handled", "SelectQueriesStream", grpc_code=code) == ended + 1)
    assert sample(server, "labelwise_requests_in_flight") == 0
    info = error_info(error)
    assert (info.reason, info.domain) == ("STREAM_IDLE", "labelwise.dev")
    assert info.metadata["chunks"] == str(sent)
    assert "--stream-idle-seconds" in str(error.details())
    assert 0.4 < took < 3, took  # 0.5 s after the start, or after the last chunk


def test_the_idle_clock_restarts_at_every_chunk(stub: pb_grpc.QuerySelectionServiceStub) -> None:
    # 4 chunks 0.3 s apart: 0.9 s in all, longer than the idle limit, never idle that long.
    response = stub.SelectQueriesStream(chunks(4, pause=0.3), timeout=10)
    expected = np.argsort(-ENTROPY[:4], kind="stable")[:2].tolist()
    assert list(response.response.results[0].indices) == expected


def test_too_many_chunks_end_the_stream_as_they_arrive(
    server: ServerThread, stub: pb_grpc.QuerySelectionServiceStub
) -> None:
    assert stub.SelectQueriesStream(chunks(4), timeout=10).response.pool_size == 4
    gate = threading.Event()
    try:  # the fifth chunk ends it at once, not the stream's end, which never comes
        error, took = stream_error(stub, stalled(chunks(5), gate))
    finally:
        gate.set()
    assert took < 0.4, took
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "TOO_MANY_CHUNKS"
    assert "--max-stream-chunks" in str(error.details())
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    request = error_details_pb2.BadRequest()
    assert any(d.Unpack(request) for d in status.details if d.Is(request.DESCRIPTOR))
    assert [v.field for v in request.field_violations] == ["chunks[4].chunk"]


def test_a_stream_scored_as_it_arrives_ends_at_its_deadline(
    server: ServerThread, stub: pb_grpc.QuerySelectionServiceStub
) -> None:
    # Entropy streams are scored chunk by chunk (no work process): 4 chunks 0.3 s apart
    # pass a 0.5 s deadline, and the call ends there with nothing left running.
    began = time.monotonic()
    with pytest.raises(grpc.RpcError) as failed:
        stub.SelectQueriesStream(chunks(4, pause=0.3), timeout=0.5)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - began < 3
    wait_for(lambda: sample(server, "labelwise_requests_in_flight") == 0)
    assert stub.SelectQueriesStream(chunks(2), timeout=10).response.pool_size == 2
