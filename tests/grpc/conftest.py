"""An in-process labelwise server on a free port, reached over a real channel."""

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace

import grpc
import pytest
from prometheus_client import CollectorRegistry

from labelwise import Client
from labelwise_server.config import Config
from labelwise_server.grpc.server import RunningServer, start_server


class ServerThread:
    """A grpc.aio server running on its own event loop in a background thread."""

    def __init__(self, config: Config) -> None:
        self.registry = CollectorRegistry()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.running: RunningServer = self.run(start_server(config, self.registry))
        self.address = f"127.0.0.1:{self.running.port}"

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def stop(self, grace: float = 0.0) -> None:
        self.run(self.running.shutdown(grace))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


TEST_CONFIG = Config(host="127.0.0.1", port=0, metrics_port=0, compute_threads=2)


@pytest.fixture(scope="session")
def server() -> Iterator[ServerThread]:
    thread = ServerThread(replace(TEST_CONFIG, max_message_bytes=64 * 1024 * 1024))
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def client(server: ServerThread) -> Iterator[Client]:
    with Client(server.address) as c:
        yield c


@pytest.fixture(scope="session")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch
