"""The labelwise service a simulation talks to: `labelwise serve` as a child process.

ServeProcess runs `labelwise serve --workers N` on 127.0.0.1:<free port> (the port read
from --port-file), N worker processes sharing the port, so that loops run in parallel
(--jobs) score on every core rather than queueing for one. The simulation reaches it
only through the client, as it would reach any other service (--address).
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# How long the service may take to come up (interpreters importing NumPy, scikit-learn
# and onnxruntime on a loaded machine).
START_SECONDS = 120.0


class ServiceError(RuntimeError):
    """The service could not be found or started."""


def serve_command() -> list[str]:
    """`labelwise serve` of this environment: the `labelwise` script beside this Python
    (a venv not on PATH), else the one on PATH."""
    beside = Path(sys.executable).with_name("labelwise")
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None
    found = found or shutil.which("labelwise")
    if found is None:
        raise ServiceError(
            "no `labelwise` command to start the service with: install the server "
            "(pip install ./clients/python . from a clone; scripts/bootstrap does), "
            "or give --address of a running service"
        )
    return [found, "serve"]


class ServeProcess:
    """`labelwise serve --workers N` on 127.0.0.1:<free port>, one compute thread per worker;
    a context manager that stops it (SIGTERM, then a kill if it does not stop in time)."""

    def __init__(self, workers: int, command: Sequence[str] | None = None) -> None:
        command = list(command) if command is not None else serve_command()
        self._dir = tempfile.TemporaryDirectory(prefix="labelwise-simulate-")
        port_file = Path(self._dir.name) / "port"
        command += ["--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
                    "--metrics-port", "0", "--workers", str(workers), "--compute-threads", "1",
                    "--no-reflection", "--grace-seconds", "0",
                    "--log-level", "WARNING"]  # fmt: skip
        # Each worker scores on one core: keep its BLAS to one thread as well.
        # Embedded defaults: no LABELWISE_* setting of this shell (a token, TLS) applies.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABELWISE_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the server's own, private one
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        try:
            self._process = subprocess.Popen(command, env=env)
        except OSError as err:
            self._dir.cleanup()
            raise ServiceError(f"could not start {command[0]!r}: {err.strerror}") from None
        deadline = time.monotonic() + START_SECONDS
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None:
                self._dir.cleanup()
                raise ServiceError(f"the labelwise service exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"the labelwise service did not start in {START_SECONDS:g} s")
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

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
