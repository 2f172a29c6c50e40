"""The labelwise service a simulation talks to, on a free local port.

InProcessServer runs it on its own event loop in a background thread of this process
(one core's worth of Python: fine for one loop at a time). WorkerServer runs
`labelwise serve --workers N` as a child process, N worker processes sharing the port,
so that loops run in parallel (--jobs) score on every core rather than queueing for one.
"""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from labelwise_server.config import Config
from labelwise_server.grpc.server import RunningServer, start_server

T = TypeVar("T")

# How long a worker server may take to come up (spawned interpreters importing NumPy,
# scikit-learn and onnxruntime on a loaded machine).
START_SECONDS = 120.0


class InProcessServer:
    """The real gRPC service on 127.0.0.1:<free port>; a context manager that stops it."""

    def __init__(self, compute_threads: int = 1) -> None:
        config = Config(host="127.0.0.1", port=0, metrics_port=0, compute_threads=compute_threads,
                        reflection=False)  # fmt: skip
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._running: RunningServer = self._run(start_server(config, CollectorRegistry()))
        self.address = f"127.0.0.1:{self._running.port}"

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=60)

    def stop(self) -> None:
        if self._loop.is_running():
            self._run(self._running.shutdown(0.0))
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> "InProcessServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerServer:
    """`labelwise serve --workers N` on 127.0.0.1:<free port>, one compute thread per worker;
    a context manager that stops it (SIGTERM, then a kill if it does not stop in time)."""

    def __init__(self, workers: int) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="labelwise-simulate-")
        port_file = Path(self._dir.name) / "port"
        command = [sys.executable, "-m", "labelwise_server.cli", "serve",
                   "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
                   "--metrics-port", "0", "--workers", str(workers), "--compute-threads", "1",
                   "--no-reflection", "--grace-seconds", "0", "--log-level", "WARNING"]  # fmt: skip
        # Each worker scores on one core: keep its BLAS to one thread as well.
        # Embedded defaults: no LABELWISE_* setting of this shell (a token, TLS) applies.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABELWISE_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the server's own, private one
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self._process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + START_SECONDS
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None:
                self._dir.cleanup()
                raise RuntimeError(f"the labelwise service exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the labelwise service did not start in {START_SECONDS:g} s")
            time.sleep(0.05)
        self.address = f"127.0.0.1:{int(port_file.read_text())}"

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._dir.cleanup()

    def __enter__(self) -> "WorkerServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
