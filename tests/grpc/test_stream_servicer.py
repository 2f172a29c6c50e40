"""StreamSelectionService over a real channel: answers, tokens (tampered, from another key or
configuration, malformed), DecideStream equal to Decide, ListStrategies, and two server
processes answering byte for byte the same."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from labelwise import Client
from labelwise.stream import decide_request
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise.v1 import stream_selection_pb2 as spb
from labelwise.v1 import stream_selection_pb2_grpc as spb_grpc
from labelwise_server.strategies.registry import STREAM_STRATEGIES
from labelwise_server.stream_token import DEVELOPMENT_KEY, TokenKey, encode_token
from labelwise_server.streaming import decide, stream_config
from tests.grpc.test_servicer import assert_serving, violations

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> spb_grpc.StreamSelectionServiceStub:
    return spb_grpc.StreamSelectionServiceStub(channel)  # type: ignore[no-untyped-call]


def _batches(count: int, n: int = 10, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.dirichlet(np.full(3, 0.6), size=n) for _ in range(count)]


def _run_unary(
    stub: spb_grpc.StreamSelectionServiceStub,
    strategy: str,
    batches: list[np.ndarray],
    field: str = "probabilities",
    **kw: object,
) -> list[bytes]:
    token, answers = b"", []
    for batch in batches:
        request = decide_request(strategy, token=token, items={field: batch}, **kw)  # type: ignore[arg-type]
        response = stub.Decide(request, timeout=10)
        answers.append(response.SerializeToString(deterministic=True))
        token = response.token
    return answers


def test_decide_answers_each_item_and_matches_the_core(
    stub: spb_grpc.StreamSelectionServiceStub,
) -> None:
    batch = _batches(1, n=50)[0]
    request = decide_request("variable_uncertainty", budget=0.2, items={"probabilities": batch})
    response = stub.Decide(request, timeout=10)
    assert len(response.label) == len(response.utilities) == 50
    assert response.items_seen == 50 and response.items_labeled == sum(response.label)
    np.testing.assert_allclose(response.utilities, 1 - batch.max(axis=1))
    expected, _, _ = decide(request, TokenKey(DEVELOPMENT_KEY), 1 << 28)
    assert response == expected


@pytest.mark.parametrize("strategy", sorted(STREAM_STRATEGIES))
def test_stream_equals_unary_byte_for_byte(
    stub: spb_grpc.StreamSelectionServiceStub, strategy: str
) -> None:
    batches = _batches(12, n=7, seed=1)
    field = "frequencies" if strategy == "pal" else "probabilities"
    if strategy == "pal":
        batches = [b * np.arange(1, 8)[:, None] for b in batches]  # kernel frequencies
    unary = _run_unary(stub, strategy, batches, budget=0.3, seed=9, field=field)
    first = decide_request(strategy, budget=0.3, seed=9, items={field: batches[0]})
    rest = [decide_request(strategy, budget=0.3, seed=9, items={field: b}) for b in batches[1:]]
    messages = [spb.DecideStreamRequest(request=r) for r in [first, *rest]]
    streamed = [
        a.response.SerializeToString(deterministic=True)
        for a in stub.DecideStream(iter(messages), timeout=10)
    ]
    assert streamed == unary


def test_the_python_helper_carries_the_token(client: Client) -> None:
    batches = _batches(6, n=20, seed=2)
    selector = client.stream_selector("quantile_filter", {"w": 30}, budget=0.25, seed=4)
    unary = [selector.decide(probabilities=b) for b in batches]
    resumed = client.stream_selector("quantile_filter", {"w": 30}, budget=0.25, seed=4)
    streamed = list(resumed.decide_stream({"probabilities": b} for b in batches))
    for a, b in zip(unary, streamed, strict=True):
        np.testing.assert_array_equal(a.label, b.label)
        assert a.token == b.token
    assert selector.token == resumed.token == unary[-1].token
    assert unary[-1].items_seen == 120


def _error(stub: spb_grpc.StreamSelectionServiceStub, request: spb.DecideRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Decide(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


def _token(stub: spb_grpc.StreamSelectionServiceStub, **kw: object) -> bytes:
    batch = _batches(1, n=30)[0]
    request = decide_request("quantile_filter", items={"probabilities": batch}, **kw)  # type: ignore[arg-type]
    return bytes(stub.Decide(request, timeout=10).token)


def _next(token: bytes, **kw: object) -> spb.DecideRequest:
    batch = _batches(1, n=3, seed=5)[0]
    return decide_request("quantile_filter", token=token, items={"probabilities": batch}, **kw)  # type: ignore[arg-type]


def test_every_altered_byte_is_refused_naming_the_token(
    stub: spb_grpc.StreamSelectionServiceStub, channel: grpc.Channel
) -> None:
    token = _token(stub)
    assert len(token) < 4096
    for position in range(0, len(token), 7):
        altered = bytearray(token)
        altered[position] ^= 0x01
        error = _error(stub, _next(bytes(altered)))
        assert [v.field for v in violations(error)] == ["token"]
    assert_serving(channel)


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("empty-bytes-of-garbage", lambda t: b"\x00" * 40),
        ("truncated", lambda t: t[:-1]),
        ("extended", lambda t: t + b"\x00"),
        ("oversize", lambda t: t + b"x" * 9000),
        ("other-magic", lambda t: b"XXst" + t[4:]),
        ("other-version", lambda t: t[:4] + b"\x02" + t[5:]),
    ],
)
def test_malformed_tokens_are_refused_naming_the_token(
    stub: spb_grpc.StreamSelectionServiceStub, case: str, make: object
) -> None:
    token = _token(stub)
    error = _error(stub, _next(make(token)))  # type: ignore[operator]
    assert [v.field for v in violations(error)] == ["token"], case


def test_a_token_of_another_configuration_is_refused(
    stub: spb_grpc.StreamSelectionServiceStub,
) -> None:
    token = _token(stub, budget=0.1)
    error = _error(stub, _next(token, budget=0.2))
    [violation] = violations(error)
    assert violation.field == "token" and "another configuration" in violation.description
    error = _error(stub, _next(token, budget=0.1, params={"w": 50}))
    assert [v.field for v in violations(error)] == ["token"]


def test_a_token_signed_with_another_key_is_refused(
    stub: spb_grpc.StreamSelectionServiceStub,
) -> None:
    request = _next(b"", budget=0.1)
    config = stream_config(request)
    from labelwise_server.strategies.stream import StreamState

    forged = encode_token(StreamState(seed=1, seen=10), config.digest, TokenKey(b"x" * 32))
    error = _error(stub, _next(forged, budget=0.1))
    [violation] = violations(error)
    assert violation.field == "token" and "integrity" in violation.description
    # The same state signed with the server's key is taken: only the key differed.
    genuine = encode_token(StreamState(seed=1, seen=10), config.digest, TokenKey(DEVELOPMENT_KEY))
    assert stub.Decide(_next(genuine, budget=0.1), timeout=10).items_seen == 13


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (decide_request("nope", items={"utilities": [0.5]}), "strategy.name"),
        (decide_request("split", {"v": 2.0}, items={"utilities": [0.5]}), "strategy.params[v]"),
        (decide_request("split", {"x": 1}, items={"utilities": [0.5]}), "strategy.params[x]"),
        (decide_request("split", budget=0.0, items={"utilities": [0.5]}), "budget"),
        (decide_request("split", budget=float("nan"), items={"utilities": [0.5]}), "budget"),
        (decide_request("split", items={"utilities": [1.5]}), "utilities"),
        (decide_request("split", items={"utilities": [float("nan")]}), "utilities"),
        (decide_request("split", items={}), "probabilities"),
        (
            decide_request("split", items={"utilities": [0.5], "probabilities": [[0.5, 0.5]]}),
            "probabilities",
        ),
        (decide_request("split", items={"probabilities": [[0.7, 0.7]]}), "probabilities"),
        (
            decide_request("fixed_uncertainty", items={"utilities": [0.5]}),
            "strategy.params[classes]",
        ),
        (decide_request("split", items={"frequencies": [[1.0, 2.0]]}), "frequencies"),
        (decide_request("pal", items={"probabilities": [[0.5, 0.5]]}), "frequencies"),
        (decide_request("pal", items={"frequencies": [[1.0, -2.0]]}), "frequencies"),
        (decide_request("pal", items={"frequencies": np.ones((2, 40))}), "frequencies.shape"),
        (
            decide_request("pal", {"m_max": 3}, items={"frequencies": np.ones((2, 17))}),
            "frequencies.shape",
        ),
        (
            decide_request("split", window_items=0, max_labels=0, items={"utilities": [0.5]}),
            "window_cap.window_items",
        ),
        (
            decide_request("split", window_items=5, max_labels=6, items={"utilities": [0.5]}),
            "window_cap.max_labels",
        ),
    ],
)
def test_bad_requests_name_their_field(
    stub: spb_grpc.StreamSelectionServiceStub, request_: spb.DecideRequest, field: str
) -> None:
    assert [v.field for v in violations(_error(stub, request_))] == [field]


def test_too_many_items_are_refused_before_decoding(
    stub: spb_grpc.StreamSelectionServiceStub,
) -> None:
    request = decide_request("periodic", items={})
    request.utilities.CopyFrom(pb.Tensor(dtype=pb.DATA_TYPE_FLOAT64, shape=[1 << 40]))
    assert [v.field for v in violations(_error(stub, request))] == ["utilities.shape"]
    wide = decide_request("periodic", items={})
    wide.probabilities.CopyFrom(pb.Tensor(dtype=pb.DATA_TYPE_FLOAT32, shape=[4, 1 << 21]))
    [violation] = violations(_error(stub, wide))
    assert violation.field == "probabilities.shape" and "4194304" in violation.description


def test_stream_errors_name_the_field_inside_the_message(
    stub: spb_grpc.StreamSelectionServiceStub,
) -> None:
    good = decide_request("split", budget=0.1, items={"utilities": [0.5]})
    other = decide_request("split", budget=0.2, items={"utilities": [0.5]})
    messages = [spb.DecideStreamRequest(request=r) for r in (good, other)]
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.DecideStream(iter(messages), timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations(caught.value)] == ["request.strategy"]


def test_list_strategies_marks_the_stream_family(channel: grpc.Channel) -> None:
    stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
    infos = stub.ListStrategies(pb.ListStrategiesRequest(), timeout=10).strategies
    stream = [i.name for i in infos if i.family == "stream"]
    assert stream == list(STREAM_STRATEGIES)
    periodic = next(i for i in infos if i.name == "periodic")
    assert list(periodic.required_inputs) == [pb.POOL_INPUT_ANY]


def test_select_queries_does_not_take_stream_strategies(channel: grpc.Channel) -> None:
    stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
    request = pb.SelectQueriesRequest(strategies=[pb.StrategySpec(name="split")], k=1)
    request.probabilities.CopyFrom(
        decide_request("x", items={"probabilities": [[0.5, 0.5]]}).probabilities
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.SelectQueries(request, timeout=10)
    assert [v.field for v in violations(caught.value)] == ["strategies[0].name"]


# Two replicas: separate `labelwise serve` processes sharing one key file.


def _serve(tmp: Path, name: str, key_file: Path) -> tuple[subprocess.Popen[bytes], Path]:
    port_file, log_path = tmp / f"{name}.port", tmp / f"{name}.log"
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
    )
    env.pop("LABELWISE_STREAM_TOKEN_KEY", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--port-file", str(port_file), "--metrics-port", "0",
             "--workers", "1", "--compute-threads", "1", "--grace-seconds", "1",
             "--no-sandbox", "--stream-token-key-file", str(key_file)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, port_file


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    tmp = tmp_path_factory.mktemp("replicas")
    key_file = tmp / "key"
    key_file.write_bytes(os.urandom(32).hex().encode())
    started = [_serve(tmp, name, key_file) for name in ("a", "b")]
    try:
        addresses = []
        deadline = time.monotonic() + 120
        for process, port_file in started:
            while not port_file.exists():
                assert process.poll() is None, "labelwise serve exited"
                assert time.monotonic() < deadline, "labelwise serve did not start in 120 s"
                time.sleep(0.1)
            addresses.append(f"127.0.0.1:{int(port_file.read_text())}")
        yield addresses
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(timeout=30)


@pytest.mark.parametrize("strategy", ["split", "quantile_filter", "entropy_sampler"])
def test_two_replicas_answer_byte_for_byte_the_same(replicas: list[str], strategy: str) -> None:
    channels = [grpc.insecure_channel(a) for a in replicas]
    stubs = [spb_grpc.StreamSelectionServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
    try:
        token = b""
        for i, batch in enumerate(_batches(10, n=25, seed=3)):
            request = decide_request(
                strategy, budget=0.2, seed=7, token=token, items={"probabilities": batch}
            )
            a, b = (s.Decide(request, timeout=10).SerializeToString() for s in stubs)
            assert a == b, f"batch {i}"
            # Alternate replicas, as a load balancer would.
            token = spb.DecideResponse.FromString(a if i % 2 else b).token
        # A token of this key is refused by the in-process server, whose key differs.
        assert len(token) > 0
    finally:
        for c in channels:
            c.close()


def test_an_idle_decide_stream_ends_and_frees_its_slot() -> None:
    import queue
    from dataclasses import replace

    from tests.grpc.conftest import TEST_CONFIG, ServerThread

    thread = ServerThread(replace(TEST_CONFIG, stream_idle_seconds=0.5))
    try:
        with grpc.insecure_channel(thread.address) as channel:
            stub = spb_grpc.StreamSelectionServiceStub(channel)  # type: ignore[no-untyped-call]
            outbox: queue.Queue[spb.DecideStreamRequest | None] = queue.Queue()
            answers = stub.DecideStream(iter(outbox.get, None), timeout=10)
            request = decide_request("periodic", items={"utilities": [0.5]})
            outbox.put(spb.DecideStreamRequest(request=request))
            assert next(answers).response.items_seen == 1
            with pytest.raises(grpc.RpcError) as caught:
                next(answers)  # nothing more is sent: the server ends the call
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            outbox.put(None)
            assert_serving(channel)
    finally:
        thread.stop()


@pytest.mark.parametrize("method", ["Decide", "DecideStream"])
def test_bytes_that_do_not_parse_are_refused_naming_the_request(
    channel: grpc.Channel, method: str
) -> None:
    path = f"/labelwise.v1.StreamSelectionService/{method}"
    garbage = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, a length past the end
    with pytest.raises(grpc.RpcError) as caught:
        if method == "Decide":
            channel.unary_unary(path)(garbage, timeout=10)
        else:
            list(channel.stream_stream(path)(iter([garbage]), timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations(caught.value)] == ["request"]
    assert_serving(channel)
