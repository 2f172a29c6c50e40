"""Serve on every core: worker processes sharing one port, under a supervisor.

A Python process scores on one core at a time for much of its work (the GIL), so
`labelwise serve --workers N` (default: the available cores) starts N worker processes,
each its own grpc.aio server bound to the same port with SO_REUSEPORT; the kernel spreads
incoming connections over them (grpc's examples/python/multiprocessing). The parent, the
supervisor, creates no gRPC object and:

- reserves the port first (a socket bound with SO_REUSEPORT, never listening), so that
  `--port 0` picks one free port all workers share, and `--port-file` gets it once every
  worker serves;
- serves /metrics alone, summing the workers' values through prometheus_client's
  multiprocess mode (PROMETHEUS_MULTIPROC_DIR; a private temporary directory when unset,
  emptied at start either way);
- forwards SIGTERM and SIGINT to the workers, each of which drains and stops gracefully
  (health NOT_SERVING, in-flight calls finish within --grace-seconds), and exits 0 when all
  did;
- restarts a worker that exits while it is not stopping, whatever its exit status (a worker
  never ends on its own: any exit is a crash, an OOM kill or a kill by hand). A worker that
  dies more than CRASH_LIMIT times within CRASH_WINDOW seconds stops the whole server with
  exit status 1, so that Kubernetes restarts the pod and reports the crash loop.

Workers are started with the "spawn" method: a fresh interpreter each, as gRPC needs
(no gRPC state may cross a fork, grpc/grpc#16001).
"""

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from labelwise_server.config import Config

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER_ENV = "LABELWISE_WORKER"  # labelwise_server.metrics reads it
CRASH_LIMIT = 5
CRASH_WINDOW = 60.0
START_TIMEOUT = 120.0
log = logging.getLogger(__name__)


def prepare_metrics_dir() -> tuple[Path, bool]:
    """Empty PROMETHEUS_MULTIPROC_DIR (creating it), or make a private one and set the
    variable for the workers. Returns the directory and whether it is ours to remove."""
    configured = os.environ.get(MULTIPROC_ENV)
    if not configured:
        path = Path(tempfile.mkdtemp(prefix="labelwise-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
        return path, True
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # values of a previous run would be summed in
        stale.unlink(missing_ok=True)
    return path, False


@contextlib.contextmanager
def reserve_port(host: str, port: int) -> Iterator[int]:
    """Bind host:port (0: a free one) with SO_REUSEPORT and hold it, not listening, while the
    workers bind it too; yields the port."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def _exit_with_parent() -> None:
    """Have the kernel send this process SIGTERM if the supervisor dies (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _worker_main(config: Config, slot: int, ready: Any, log_level: str) -> None:
    """A worker process: one grpc.aio server on the shared port, until SIGTERM."""
    _exit_with_parent()
    os.environ[WORKER_ENV] = str(slot)  # labelwise_worker_rpcs_total{worker}
    logging.basicConfig(
        level=log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker-{slot} %(name)s: %(message)s",
    )
    import asyncio

    from labelwise_server.grpc.server import serve

    asyncio.run(
        serve(config, reuse_port=True, on_ready=lambda port: ready.put((slot, os.getpid())))
    )


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.count = config.worker_count
        self._context = multiprocessing.get_context("spawn")
        self._ready = self._context.Queue()
        self._procs: list[BaseProcess] = []
        self._crashes: list[list[float]] = [[] for _ in range(self.count)]
        self._stopping = False
        self._wake_read, self._wake_write = socket.socketpair()
        self._metrics_dir = Path()
        self._worker_config = config

    def _start(self, slot: int) -> BaseProcess:
        process = self._context.Process(
            target=_worker_main,
            args=(self._worker_config, slot, self._ready, self.config.log_level),
            name=f"labelwise-worker-{slot}",
            daemon=False,
        )
        process.start()
        log.info("worker %d started, pid %d", slot, process.pid)
        return process

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")

    def run(self) -> int:
        config = self.config
        self._metrics_dir, ours = prepare_metrics_dir()
        # Threads for numeric libraries: each worker gets its share of the cores.
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, str(config.worker_threads))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            with reserve_port(config.host, config.port) as port:
                per_worker = config.work_processes or max(2, config.worker_threads)
                self._worker_config = replace(
                    config, port=port, metrics_port=0, port_file="", workers=1,
                    compute_threads=config.worker_threads, work_processes=per_worker,
                    work_memory_bytes=config.work_memory_limit(per_worker * self.count),
                )  # fmt: skip
                return self._supervise(port)
        finally:
            if ours:
                shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _supervise(self, port: int) -> int:
        config = self.config
        self._procs = [self._start(slot) for slot in range(self.count)]
        if not self._wait_ready(port):
            return self._stop(failed=True)
        if config.metrics_port:
            self._serve_metrics()
        if config.port_file:
            from labelwise_server.grpc.server import write_port_file

            write_port_file(config.port_file, port)
        from labelwise_server.grpc.server import metrics_where

        log.info(
            "labelwise serving on %s:%d with %d workers (pids %s), %s",
            config.host, port, self.count, ", ".join(str(p.pid) for p in self._procs),
            metrics_where(config),
        )  # fmt: skip
        while not self._stopping:
            self._wait(timeout=1.0)
            self._drain_ready()
            if self._stopping:
                break
            for slot, process in enumerate(self._procs):
                if process.is_alive():
                    continue
                if not self._restart(slot, process):
                    return self._stop(failed=True)
        return self._stop(failed=False)

    def _wait(self, timeout: float) -> None:
        waitables: list[Any] = [p.sentinel for p in self._procs] + [self._wake_read]
        multiprocessing.connection.wait(waitables, timeout=timeout)
        with contextlib.suppress(BlockingIOError):
            self._wake_read.setblocking(False)
            self._wake_read.recv(64)

    def _wait_ready(self, port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        waiting = set(range(self.count))
        while waiting:
            if self._stopping or time.monotonic() > deadline:
                return False
            if any(not self._procs[slot].is_alive() for slot in waiting):
                log.error("a worker exited before it served; stopping")
                return False
            with contextlib.suppress(Exception):
                slot, _pid = self._ready.get(timeout=0.2)
                waiting.discard(slot)
        return True

    def _drain_ready(self) -> None:
        while True:
            try:
                slot, pid = self._ready.get_nowait()
            except Exception:
                return
            log.info("worker %d (pid %d) serving", slot, pid)

    def _restart(self, slot: int, process: BaseProcess) -> bool:
        from prometheus_client import multiprocess

        process.join(timeout=1)
        assert process.pid is not None
        multiprocess.mark_process_dead(process.pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]
        log.error("worker %d (pid %d) exited with status %s; restarting it", slot, process.pid,
                  process.exitcode)  # fmt: skip
        now = time.monotonic()
        crashes = [t for t in self._crashes[slot] if now - t < CRASH_WINDOW] + [now]
        self._crashes[slot] = crashes
        if len(crashes) > CRASH_LIMIT:
            log.error("worker %d died %d times within %.0f s; giving up", slot, len(crashes),
                      CRASH_WINDOW)  # fmt: skip
            return False
        if len(crashes) > 1:
            time.sleep(min(2.0 ** (len(crashes) - 2), 10.0))  # back off a crash loop
        self._procs[slot] = self._start(slot)
        return True

    def _serve_metrics(self) -> None:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self._metrics_dir))  # type: ignore[no-untyped-call]
        start_http_server(
            self.config.metrics_port, addr=self.config.metrics_host.strip("[]"), registry=registry
        )

    def _stop(self, failed: bool) -> int:
        """SIGTERM every worker, wait for their graceful stop, kill what is left."""
        config = self.config
        log.info("stopping %d workers", len(self._procs))
        for process in self._procs:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + config.drain_seconds + config.grace_seconds + 10
        for process in self._procs:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
                process.join(timeout=5)
        codes = [p.exitcode for p in self._procs]
        log.info("stopped (worker exit statuses %s)", codes)
        return 1 if failed or any(code != 0 for code in codes) else 0


def run(config: Config) -> int:
    """Serve with config.worker_count workers (one: in this process, no supervisor)."""
    if config.worker_count == 1:
        import asyncio

        from labelwise_server.grpc.server import serve

        if os.environ.get(MULTIPROC_ENV):
            prepare_metrics_dir()
        asyncio.run(serve(config))
        return 0
    return Supervisor(config).run()
