"""A labelwise server on a free local port, run on its own event loop in a background thread."""

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry

from labelwise_server.config import Config
from labelwise_server.grpc.server import RunningServer, start_server

T = TypeVar("T")


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
