"""`serve --workers`: the core count, and worker processes sharing one port for real.

One supervisor with two workers serves the whole module: distinct worker processes answer,
their metrics are summed, a killed worker is replaced, and finally SIGTERM under load fails
no call that was in flight.
"""

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server import config as config_module
from labelwise_server.config import Config, available_cores, cgroup_cpu_limit
from labelwise_server.grpc.server import SERVICE_NAME
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
P = np.random.default_rng(1).dirichlet(np.ones(10), size=2_000).astype(np.float32)
REQUEST = pb.SelectQueriesRequest(
    strategies=[pb.StrategySpec(name="entropy")], k=5, probabilities=encode_tensor(P)
)


# -- the core count ---------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


def test_cgroup_v2_quota_of_the_process_cgroup(tmp_path: Path) -> None:
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    write(proc / "cgroup", "0::/kubepods/pod1/c1\n")
    write(root / "kubepods/pod1/c1/cpu.max", "150000 100000\n")
    write(root / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(root, proc) == 1.5
    write(root / "kubepods/pod1/c1/cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(root, proc) == math.inf


def test_cgroup_v2_in_a_container_namespace_reads_the_root(tmp_path: Path) -> None:
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    write(proc / "cgroup", "0::/\n")
    write(root / "cpu.max", "200000 100000\n")
    assert cgroup_cpu_limit(root, proc) == 2.0


def test_cgroup_v1_cfs_quota(tmp_path: Path) -> None:
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    write(proc / "cgroup", "12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n")
    write(root / "cpu,cpuacct/docker/x/cpu.cfs_quota_us", "250000\n")
    write(root / "cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n")
    assert cgroup_cpu_limit(root, proc) == 2.5
    write(root / "cpu,cpuacct/docker/x/cpu.cfs_quota_us", "-1\n")
    assert cgroup_cpu_limit(root, proc) == math.inf


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path / "none", tmp_path / "none") == math.inf


def test_available_cores_is_the_affinity_capped_by_the_quota_rounded_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(config_module, "cgroup_cpu_limit", lambda: math.inf)
    assert available_cores() == affinity
    monkeypatch.setattr(config_module, "cgroup_cpu_limit", lambda: 0.5)
    assert available_cores() == 1
    monkeypatch.setattr(config_module, "cgroup_cpu_limit", lambda: affinity + 8.0)
    assert available_cores() == affinity
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(4)))
    monkeypatch.setattr(config_module, "cgroup_cpu_limit", lambda: 1.2)
    assert available_cores() == 2
    config = Config(workers=0, compute_threads=0)
    assert (config.worker_count, config.worker_threads, config.threads) == (2, 1, 2)
    assert replace(config, workers=1).worker_threads == 2
    assert replace(config, workers=1, compute_threads=3).worker_threads == 3


# -- two real workers ---------------------------------------------------------------------


@dataclass
class Supervised:
    process: "subprocess.Popen[bytes]"
    port: int
    metrics_port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def worker_pids(self) -> dict[int, float]:
        """Live workers (each slot's latest pid, from the log) and the RPCs their slot has
        started (labelwise_worker_rpcs_total{worker})."""
        pids = {int(m[1]): int(m[2]) for m in re.finditer(r"worker (\d+) started, pid (\d+)",
                                                          self.output())}  # fmt: skip
        counts = {
            int(dict(labels)["worker"]): value
            for (name, labels), value in self.metrics().items()
            if name == "labelwise_worker_rpcs_total"
        }
        return {pid: counts.get(slot, 0.0) for slot, pid in pids.items()}


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    tmp = tmp_path_factory.mktemp("workers")
    metrics_dir = tmp / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale garbage")  # must be wiped
    port_file, log = tmp / "port", tmp / "log"
    metrics_port = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        LABELWISE_WORKERS="2",  # through the environment, to test that path too
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--port-file", str(port_file), "--metrics-port", str(metrics_port),
             "--drain-seconds", "1", "--grace-seconds", "10", "--compute-threads", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 90
    while not port_file.exists():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the workers did not start within 90 s"
        time.sleep(0.1)
    running = Supervised(process, int(port_file.read_text()), metrics_port, log)
    yield running
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def fresh_channel(address: str) -> grpc.Channel:
    # A channel of its own connection (no shared subchannel), so the kernel may pick
    # another worker for it.
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def select_once(address: str) -> None:
    with fresh_channel(address) as channel:
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        assert len(stub.SelectQueries(REQUEST, timeout=20).results[0].indices) == 5


def spread_calls(server: Supervised, pids: set[int], limit: int = 60) -> int:
    """Call on fresh connections until every pid has answered; returns the calls made."""
    before = server.worker_pids()
    for made in range(1, limit + 1):
        select_once(server.address)
        now = server.worker_pids()
        if made >= 2 and all(now.get(pid, 0) > before.get(pid, 0) for pid in pids):
            return made
    raise AssertionError(f"not every worker answered in {limit} connections: {now}")


def handled_ok(server: Supervised) -> float:
    key = ("grpc_server_handled_total", tuple(sorted({
        "grpc_code": "OK", "grpc_method": "SelectQueries",
        "grpc_service": SERVICE_NAME, "grpc_type": "unary"}.items())))  # fmt: skip
    return server.metrics().get(key, 0.0)


def test_two_worker_processes_answer_on_one_port_and_metrics_are_summed(
    supervised: Supervised,
) -> None:
    pids = set(supervised.worker_pids())
    assert len(pids) == 2, supervised.output()
    assert pids <= children(supervised.process.pid)  # the supervisor's own processes
    before = handled_ok(supervised)
    made = spread_calls(supervised, pids)
    metrics = supervised.metrics()
    assert handled_ok(supervised) - before == made  # one sum over both workers
    started = sum(v for (name, _), v in metrics.items() if name == "grpc_server_started_total")
    assert started == sum(supervised.worker_pids().values())  # every RPC, counted once
    in_flight = metrics[("labelwise_requests_in_flight", ())]
    assert in_flight == 0
    assert "stale" not in supervised.output()


def test_a_killed_worker_is_restarted_and_the_counts_survive(supervised: Supervised) -> None:
    pids = set(supervised.worker_pids())
    before = handled_ok(supervised)
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = set(supervised.worker_pids())
        if victim not in now and len(now) == 2:
            break
        assert time.monotonic() < deadline, (now, supervised.output())
        time.sleep(0.2)
    assert supervised.process.poll() is None
    (replacement,) = now - pids
    assert replacement in children(supervised.process.pid)
    assert "restarting it" in supervised.output()
    deadline = time.monotonic() + 60  # the new worker needs its imports before it serves
    while f"(pid {replacement}) serving" not in supervised.output():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    made = spread_calls(supervised, now)
    assert handled_ok(supervised) == before + made  # the dead worker's counts are kept


def test_sigterm_under_load_fails_no_call_in_flight(supervised: Supervised) -> None:
    outcomes: list[tuple[float, float, grpc.StatusCode]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with fresh_channel(supervised.address) as channel:
            stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
            while not stop.is_set():
                began = time.monotonic()
                try:
                    stub.SelectQueries(REQUEST, timeout=20)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as err:
                    code = err.code()
                with lock:
                    outcomes.append((began, time.monotonic(), code))
                if code != grpc.StatusCode.OK:
                    return  # the server is gone for this client

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    sent = time.monotonic()
    supervised.process.send_signal(signal.SIGTERM)
    assert supervised.process.wait(timeout=40) == 0, supervised.output()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    before = [code for began, _, code in outcomes if began < sent]
    draining = [code for began, _, code in outcomes if sent <= began < sent + 0.9]
    after = [code for began, _, code in outcomes if began >= sent + 0.9]
    assert len(before) >= 6
    assert set(before) == {grpc.StatusCode.OK}, outcomes  # zero failed in-flight calls
    # During the 1 s drain (health NOT_SERVING) the workers still take new calls...
    assert draining and set(draining) == {grpc.StatusCode.OK}, draining
    # ...then refuse them: UNAVAILABLE, or CANCELLED from gRPC core for a call that arrives
    # in the instant the server stops (before any handler saw it).
    allowed = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert set(after) <= allowed, after
    assert "stopped (worker exit statuses [0, 0])" in supervised.output()
