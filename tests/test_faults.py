"""Faults against a real server process: clients that vanish mid-stream, a storm of deadlines
that expire mid-computation, a flood of oversize and malformed messages. The server keeps
serving, every call it started it also ended, the abandoned work stops using the CPU, and its
memory comes back down. (A killed worker and SIGTERM under load: tests/test_workers.py.)
"""

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.grpc.server import SERVICE_NAME
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
MAX_MESSAGE = 24 * 1024 * 1024
SELECT = f"/{SERVICE_NAME}/SelectQueries"
RNG = np.random.default_rng(7)
SMALL_P = RNG.dirichlet(np.ones(4), size=50)
SMALL = pb.SelectQueriesRequest(
    strategies=[pb.StrategySpec(name="margin")], k=3, probabilities=encode_tensor(SMALL_P)
)
# Slow on purpose: six committee strategies over 8 members x 60,000 rows (19 MB); the server
# checks between row blocks whether the call is still wanted.
HEAVY = pb.SelectQueriesRequest(
    strategies=[pb.StrategySpec(name=name) for name in (
        "vote_entropy", "consensus_entropy", "kl_to_consensus", "bald", "variation_ratio",
        "mean_std")],
    k=10,
    committee=encode_tensor(RNG.dirichlet(np.ones(10), size=(8, 60_000)).astype(np.float32)),
).SerializeToString()  # fmt: skip
# Slow in one strategy: BatchBALD's 10 greedy picks over 10 members x 2,000 rows take
# seconds; it checks at every pick whether the call is still wanted.
HEAVY_BATCH = pb.SelectQueriesRequest(
    strategies=[pb.StrategySpec(name="batch_bald")],
    k=10,
    committee=encode_tensor(RNG.dirichlet(np.ones(10), size=(10, 2_000)).astype(np.float32)),
).SerializeToString()


@dataclass
class Served:
    process: "subprocess.Popen[bytes]"
    address: str
    metrics_port: int
    log: Path

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def total(self, name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples().items() if n == name and wanted <= ls)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("faults")
    port_file, log, metrics_port = tmp / "port", tmp / "log", free_port()
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # As the image and the Deployment set them; without them glibc keeps freed request
    # buffers in its heap and per-thread arenas, and RSS ratchets up by hundreds of MiB.
    env.update(MALLOC_MMAP_THRESHOLD_="1048576", MALLOC_ARENA_MAX="2")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--port-file", str(port_file), "--metrics-port", str(metrics_port),
             "--workers", "1", "--compute-threads", "2", "--max-concurrent-rpcs", "32",
             "--max-message-bytes", str(MAX_MESSAGE)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 90
    while not port_file.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    running = Served(process, f"127.0.0.1:{int(port_file.read_text())}", metrics_port, log)
    yield running
    process.kill()
    process.wait(timeout=30)


def assert_serving(served: Served) -> None:
    with grpc.insecure_channel(served.address) as channel:
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        entropy = SMALL_P.max(axis=1) - np.sort(SMALL_P, axis=1)[:, -2]
        expected = np.argsort(entropy, kind="stable")[:3].tolist()
        assert list(stub.SelectQueries(SMALL, timeout=20).results[0].indices) == expected


def wait_for(condition: Callable[[], bool], seconds: float = 20, what: Any = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what() if callable(what) else "timed out"
        time.sleep(0.05)


def every_started_call_ended(served: Served, method: str) -> bool:
    labels = {"grpc_method": method, "grpc_service": SERVICE_NAME}
    started = served.total("grpc_server_started_total", **labels)
    return started == served.total("grpc_server_handled_total", **labels)


def calls(served: Served, requests: list[bytes], timeout: float) -> list[grpc.StatusCode]:
    """Send raw request bytes, 12 at a time; the status code of each."""
    options = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(served.address, options=options) as channel:
        call = channel.unary_unary(SELECT)

        def send(data: bytes) -> grpc.StatusCode:
            try:
                call(data, timeout=timeout)
            except grpc.RpcError as err:
                return err.code()  # type: ignore[no-any-return]
            return grpc.StatusCode.OK

        with ThreadPoolExecutor(12) as pool:
            return list(pool.map(send, requests))


def deadline_storm(served: Served) -> list[grpc.StatusCode]:
    # 0.3 s passes while the server is mid-computation
    return calls(served, [HEAVY] * 12, timeout=0.3)


def flood(served: Served) -> list[grpc.StatusCode]:
    oversize = b"\x00" * (MAX_MESSAGE + 1)
    garbage = [RNG.bytes(int(n)) for n in RNG.integers(1, 4096, size=60)]
    garbage += [b"\x0a\xff\xff\xff\xff\x0f", b"\xff" * 64]  # a huge length, bad tags
    return calls(served, [oversize] * 16 + garbage, timeout=30)


@pytest.fixture(scope="module")
def baseline(served: Served) -> float:
    """RSS once warmed up by one full-size call and one round of each fault, before the
    tests: the allocator keeps some of what a process once used, so the baseline is the
    size after the same traffic, and memory must not grow past it with more."""
    assert_serving(served)
    assert calls(served, [HEAVY], timeout=120) == [grpc.StatusCode.OK]
    deadline_storm(served)
    flood(served)
    wait_for(lambda: served.total("labelwise_requests_in_flight") == 0)
    time.sleep(1.0)
    assert_serving(served)
    time.sleep(0.5)
    return served.rss_mib()


def test_clients_that_vanish_mid_stream_leave_no_call_open(served: Served, baseline: float) -> None:
    chunk = pb.SelectQueriesRequest(probabilities=encode_tensor(SMALL_P))
    first = pb.SelectQueriesRequest()
    first.CopyFrom(SMALL)
    labels = {"grpc_method": "SelectQueriesStream"}
    before = served.total("grpc_server_handled_total", **labels)
    cancelled_before = served.total("grpc_server_handled_total", grpc_code="CANCELLED", **labels)
    started = served.total("grpc_server_started_total", grpc_method="SelectQueriesStream")
    hold = threading.Event()
    calls = []
    channels = [grpc.insecure_channel(served.address) for _ in range(10)]

    def chunks() -> Iterator[pb.SelectQueriesStreamRequest]:
        yield pb.SelectQueriesStreamRequest(chunk=first)
        yield pb.SelectQueriesStreamRequest(chunk=chunk)
        hold.wait(30)  # the client goes away before it sends the rest

    for channel in channels:
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        calls.append(stub.SelectQueriesStream.future(chunks(), timeout=60))
    wait_for(lambda: served.total("grpc_server_started_total",
                                  grpc_method="SelectQueriesStream") == started + 10)  # fmt: skip
    for channel in channels:
        channel.close()  # the connection is gone mid-stream
    wait_for(
        lambda: served.total("grpc_server_handled_total", **labels) == before + 10,
        what=lambda: {
            dict(ls)["grpc_code"]: v
            for (n, ls), v in served.samples().items()
            if n == "grpc_server_handled_total"
            and dict(ls)["grpc_method"] == "SelectQueriesStream"
            and v
        },
    )
    hold.set()
    # Every call ended, most as CANCELLED. Now and then grpc's client half-closes a stream as
    # its channel closes, and the server rightly answers the two chunks it got (OK).
    handled = served.total("grpc_server_handled_total", grpc_code="CANCELLED", **labels)
    assert handled - cancelled_before >= 8
    assert every_started_call_ended(served, "SelectQueriesStream")
    assert_serving(served)


def test_a_deadline_storm_abandons_the_work(served: Served, baseline: float) -> None:
    strategy_runs = served.total("labelwise_strategy_duration_seconds_count")
    cpu_before = served.cpu_seconds()
    codes = deadline_storm(served)
    assert codes.count(grpc.StatusCode.DEADLINE_EXCEEDED) >= 11, codes
    wait_for(lambda: served.total("labelwise_requests_in_flight") == 0)
    wait_for(lambda: every_started_call_ended(served, "SelectQueries"))
    # Abandoned, not left running: the CPU goes quiet and most strategies never finished.
    time.sleep(0.3)
    quiet = served.cpu_seconds()
    time.sleep(1.0)
    assert served.cpu_seconds() - quiet < 0.3
    finished = served.total("labelwise_strategy_duration_seconds_count") - strategy_runs
    assert finished < 12 * 6 / 2, finished
    assert served.cpu_seconds() - cpu_before < 30
    assert_serving(served)


def test_a_batch_strategy_past_its_deadline_is_abandoned_within_a_pick(
    served: Served, baseline: float
) -> None:
    codes = calls(served, [HEAVY_BATCH] * 2, timeout=0.3)
    assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 2
    wait_for(lambda: served.total("labelwise_requests_in_flight") == 0)
    # The picks under way when the deadline passed end, then nothing runs: seconds of
    # BatchBALD per call were left undone.
    time.sleep(1.0)
    quiet = served.cpu_seconds()
    time.sleep(1.0)
    assert served.cpu_seconds() - quiet < 0.3
    assert_serving(served)


def test_a_flood_of_oversize_and_malformed_messages(served: Served, baseline: float) -> None:
    codes = flood(served)
    big, bad = codes[:16], codes[16:]
    assert set(big) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    # Random bytes are almost never a valid request; those that are answer OK.
    assert set(bad) <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OK}
    assert bad.count(grpc.StatusCode.INVALID_ARGUMENT) >= len(bad) - 2
    wait_for(lambda: every_started_call_ended(served, "SelectQueries"))
    assert_serving(served)


def test_memory_returns_to_the_baseline(served: Served, baseline: float) -> None:
    """Last: after every fault above, the process is back near its warmed-up size."""
    for _ in range(1):  # more of the same traffic
        deadline_storm(served)
        flood(served)
    wait_for(lambda: served.total("labelwise_requests_in_flight") == 0)
    time.sleep(1.0)
    assert_serving(served)  # the last call's end trims the heap
    wait_for(
        lambda: served.rss_mib() < baseline + 64,
        seconds=10,
        what=lambda: f"RSS {served.rss_mib():.0f} MiB, baseline {baseline:.0f} MiB",
    )
    assert served.process.poll() is None
    # The only traceback allowed: grpc.aio logging that aborting a call whose deadline had
    # already ended it failed (ExecuteBatchError); the server carries on. One log record holds
    # a whole chained traceback ("During handling of the above exception, ..."), so records
    # are split at their timestamps, not at each "Traceback".
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", served.log.read_text())
    for record in records:
        if "Traceback" in record:
            assert "ExecuteBatchError" in record, record
