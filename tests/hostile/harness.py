"""A real `labelwise serve --workers 2` under observation, for the hostile corpus and
bench/hostile.py: its process tree, the tree's memory (a 50 ms sampler) and CPU (per-thread
schedstat), the status and ErrorInfo reason of a failed call, and a small request that tells
whether the server still serves.

Everything here talks to 127.0.0.1 only and every call carries a deadline.
"""

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
GiB = 1 << 30
WORK_MEMORY_BYTES = 3 * GiB // 2  # the sandbox limit the corpus runs under
MAX_DEADLINE_SECONDS = 30.0
GRACE_SECONDS = 3.0
STREAM_IDLE_SECONDS = 2.0
MAX_STREAM_CHUNKS = 1_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A large message is an attack input here, not a mistake: let the client send it.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 512 * MiB),
    ("grpc.max_receive_message_length", 512 * MiB),
    ("grpc.use_local_subchannel_pool", 1),  # a connection of its own: the kernel picks a worker
]


# -- the server ------------------------------------------------------------------------------


@functools.cache
def serve_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "labelwise_server.cli", "serve", "--help"],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def has_flag(flag: str) -> bool:
    return f"{flag} " in serve_help() or f"{flag}\n" in serve_help()


def server_env() -> dict[str, str]:
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def serve_command(port_file: Path, extra: Iterable[str] = ()) -> list[str]:
    """`serve --workers 2` with the corpus's limits; flags that do not exist yet are left out."""
    command = [
        sys.executable,
        "-m",
        "labelwise_server.cli",
        "serve",
        "--workers",
        "2",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--metrics-port",
        "0",
        "--max-deadline-seconds",
        str(MAX_DEADLINE_SECONDS),
        "--grace-seconds",
        str(GRACE_SECONDS),
        "--drain-seconds",
        "0",
        "--log-level",
        "INFO",
    ]
    optional = {
        "--work-memory-bytes": str(WORK_MEMORY_BYTES),
        "--stream-idle-seconds": str(STREAM_IDLE_SECONDS),
        "--max-stream-chunks": str(MAX_STREAM_CHUNKS),
    }
    for flag, value in optional.items():
        if has_flag(flag):
            command += [flag, value]
    return [*command, *extra]


@dataclass
class Server:
    process: "subprocess.Popen[bytes]"
    port: int
    log: Path
    command: list[str]
    survivors: set[int] = field(default_factory=set)  # of the tree after the last stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def work_memory_bytes(self) -> int | None:
        return WORK_MEMORY_BYTES if "--work-memory-bytes" in self.command else None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> set[int]:
        return family(self.process.pid)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)

    def stop(self, timeout: float = GRACE_SECONDS + 3) -> float | None:
        """SIGTERM; the seconds until the supervisor exited, or None if it had to be killed.

        Whatever is left of the tree (a wedged worker, an orphaned sandbox) is killed by pid.
        """
        tree = self.pids()
        began = time.monotonic()
        exited: float | None = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
                exited = time.monotonic() - began
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.2 if exited is not None else 0)
        self.survivors = {pid for pid in tree if pid != self.process.pid and _alive(pid)}
        for pid in tree | self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return exited


def start_server(tmp: Path, extra: Iterable[str] = (), workers: int = 2) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    port_file, log = tmp / "port", tmp / "server.log"
    port_file.unlink(missing_ok=True)
    command = serve_command(port_file, extra)
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=server_env(), stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, 0, log, command)
    deadline = time.monotonic() + 90
    # The supervisor logs this once every worker serves.
    while not port_file.exists() or f"with {workers} workers" not in server.output():
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the server did not start:\n{server.output()[-3000:]}")
        time.sleep(0.1)
    server.port = int(port_file.read_text())
    return server


# -- the process tree ------------------------------------------------------------------------


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return parents


def family(root: int) -> set[int]:
    """root and all its live descendants."""
    parents = _parents()
    found, grew = {root} if root in parents else set(), True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _status_kib(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in keys:
                values[key] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return values


def rss_bytes(pid: int) -> int:
    return _status_kib(pid, ("VmRSS",)).get("VmRSS", 0) * 1024


def tree_rss_bytes(root: int) -> int:
    return sum(rss_bytes(pid) for pid in family(root))


def reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its current RSS (clear_refs 5), so peaks are per case."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """The process's CPU time: every thread's schedstat (ns), or stat's ticks without it."""
    total, threads = 0, 0
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            try:
                total += int(Path(task.path, "schedstat").read_text().split()[0])
                threads += 1
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        return 0.0
    if threads:
        return total / 1e9
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


def tree_cpu(root: int) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in family(root)}


def cpu_busy(before: dict[int, float], after: dict[int, float], seconds: float) -> float:
    """Cores used between two tree_cpu readings (processes in both; a killed one stops counting)."""
    used = sum(max(0.0, after[pid] - before[pid]) for pid in after.keys() & before.keys())
    # A process born in between counts from zero.
    used += sum(after[pid] for pid in after.keys() - before.keys())
    return used / seconds


def seconds_until_idle(
    root: int, since: float, limit: float = 5.0, window: float = 0.2, threshold: float = 0.05
) -> float:
    """Seconds from `since` to the start of the first `window` in which the tree used less
    than `threshold` of a core; inf if none began within `limit`."""
    while True:
        began = time.monotonic()
        if began - since > limit:
            return float("inf")
        before = tree_cpu(root)
        time.sleep(window)
        after = tree_cpu(root)
        if cpu_busy(before, after, time.monotonic() - began) < threshold:
            return max(0.0, began - since)


@dataclass
class Peaks:
    per_process: dict[int, int]  # pid -> peak RSS bytes during the sampling
    commands: dict[int, str]
    tree: int  # the largest sum of RSS over the tree at one sample

    @property
    def largest(self) -> tuple[int, int, str]:
        """(pid, peak bytes, command line) of the process with the highest peak."""
        if not self.per_process:
            return 0, 0, ""
        pid = max(self.per_process, key=lambda p: self.per_process[p])
        return pid, self.per_process[pid], self.commands.get(pid, "")


@dataclass
class RssSampler:
    """Polls the tree every `interval` s in a thread: peak RSS per process (VmHWM, reset at
    start, so spikes between samples count) and of the whole tree."""

    root: int
    interval: float = 0.05
    _per_process: dict[int, int] = field(default_factory=dict)
    _commands: dict[int, str] = field(default_factory=dict)
    _tree: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "RssSampler":
        for pid in family(self.root):
            reset_peak(pid)
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    def _sample(self) -> None:
        total = 0
        for pid in family(self.root):
            values = _status_kib(pid, ("VmRSS", "VmHWM"))
            rss = values.get("VmRSS", 0) * 1024
            peak = max(rss, values.get("VmHWM", 0) * 1024)
            total += rss
            if peak > self._per_process.get(pid, 0):
                self._per_process[pid] = peak
            if pid not in self._commands:
                self._commands[pid] = cmdline(pid)
        self._tree = max(self._tree, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def peaks(self) -> Peaks:
        return Peaks(dict(self._per_process), dict(self._commands), self._tree)


def wait_rss_back(
    root: int, before: int, timeout: float = 5.0, ratio: float = 1.10, slack: int = 30 * MiB
) -> int:
    """Poll until the tree's RSS is within ratio·before + slack; returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        now = tree_rss_bytes(root)
        if now <= before * ratio + slack or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


# -- calls and their outcomes ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    reason: str | None  # the google.rpc.ErrorInfo reason, if the status carried one
    seconds: float
    message: str = ""

    @property
    def pair(self) -> tuple[str, str | None]:
        return self.code.name, self.reason

    def __str__(self) -> str:
        where = f"{self.code.name} {self.reason or '-'} after {self.seconds:.2f} s"
        return f"{where}: {self.message[:300]}"


def reason_of(error: grpc.RpcError) -> str | None:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # a status message that disagrees with the details
        return "<inconsistent status details>"
    if status is None:
        return None
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
            return str(info.reason)
    return None


def outcome(call: Callable[[], Any]) -> Outcome:
    began = time.monotonic()
    try:
        call()
    except grpc.RpcError as error:
        code, details = error.code(), error.details()
        return Outcome(code, reason_of(error), time.monotonic() - began, details or "")
    return Outcome(grpc.StatusCode.OK, None, time.monotonic() - began)


def stub(channel: grpc.Channel) -> Any:
    return pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]


SMALL_POOL = np.random.default_rng(0).dirichlet(np.ones(5), size=100).astype(np.float32)
SMALL_REQUEST = pb.SelectQueriesRequest(
    strategies=[pb.StrategySpec(name="entropy")], k=5, probabilities=encode_tensor(SMALL_POOL)
)


def small_call(
    address: str, timeout: float = 5.0, metadata: tuple[tuple[str, str], ...] | None = None
) -> Outcome:
    """Entropy top-5 of a 100 × 5 pool on a connection of its own."""
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)  # connect outside the timing
        return outcome(
            lambda: stub(channel).SelectQueries(SMALL_REQUEST, timeout=timeout, metadata=metadata)
        )


def small_calls(
    address: str,
    count: int,
    timeout: float = 5.0,
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> list[Outcome]:
    return [small_call(address, timeout, metadata) for _ in range(count)]


def model_request(
    models: list[bytes],
    x: np.ndarray[Any, Any],
    strategy: str = "entropy",
    k: int = 1,
    **fields: Any,
) -> pb.SelectQueriesRequest:
    return pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name=strategy)],
        k=k,
        clamp_k=True,
        models=[pb.Model(onnx=m) for m in models],
        model_inputs=encode_tensor(x),
        **fields,
    )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Background:
    """`threads` clients each sending small calls until `count` were sent in all."""

    def __init__(
        self,
        address: str,
        count: int = 50,
        threads: int = 4,
        timeout: float = 10.0,
        metadata: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self.outcomes: list[Outcome] = []
        self._left = count
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(address, timeout, metadata), daemon=True)
            for _ in range(threads)
        ]

    def _take(self) -> bool:
        with self._lock:
            self._left -= 1
            return self._left >= 0

    def _run(
        self, address: str, timeout: float, metadata: tuple[tuple[str, str], ...] | None
    ) -> None:
        while self._take():
            result = small_call(address, timeout, metadata)
            with self._lock:
                self.outcomes.append(result)

    def __enter__(self) -> "Background":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.join()

    def join(self, timeout: float = 120) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)


def idle_requests(stop: threading.Event) -> Iterator[pb.SelectQueriesStreamRequest]:
    """A stream's request iterator that never sends a chunk until `stop`."""
    stop.wait()
    return
    yield  # a generator


def health_probe(address: str) -> str | None:
    """grpc-health-probe's output (scripts/bootstrap --dev builds it into .tools/bin), or
    None where it is not installed."""
    found = shutil.which("grpc-health-probe")
    for local in (ROOT / ".tools/bin/grpc-health-probe", ROOT / ".venv/bin/grpc-health-probe"):
        found = found or (str(local) if local.exists() else None)
    if found is None:
        return None
    done = subprocess.run(
        [found, f"-addr={address}", "-connect-timeout=2s", "-rpc-timeout=2s"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return (done.stdout + done.stderr).strip()
