"""Fixtures of the hostile corpus: real `serve --workers 2` servers, and a per-test timeout
(pytest-timeout is not a dependency) so a hung case fails instead of hanging CI."""

import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import grpc
import pytest

from tests.hostile.harness import Server, seconds_until_idle, small_calls, start_server

CASE_TIMEOUT_SECONDS = 45.0
TOKEN = "hostile-test-token"


@pytest.fixture(autouse=True)
def case_timeout() -> Iterator[None]:
    def fire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the case ran past {CASE_TIMEOUT_SECONDS:g} s (hung?)")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Live:
    """One server for a module; a case that leaves it busy or not answering gets it replaced
    before the next case (that case fails on its own checks), so failures do not cascade."""

    def __init__(self, tmp: Path, extra: tuple[str, ...] = ()) -> None:
        self.tmp, self.extra, self.starts = tmp, extra, 1
        self.server = start_server(tmp / "1", extra)

    def ready(self) -> Server:
        server = self.server
        alive = server.process.poll() is None
        idle = seconds_until_idle(server.process.pid, time.monotonic(), limit=1.5) if alive else 0
        answers = small_calls(server.address, 4, timeout=2.0) if alive else []
        if alive and idle < 1.5 and all(a.code == grpc.StatusCode.OK for a in answers):
            return server
        warnings.warn(
            f"replacing the server left busy or unanswering by the previous case "
            f"(alive {alive}, idle after {idle:.2f} s, answers {[str(a) for a in answers]})",
            stacklevel=1,
        )
        server.stop(timeout=1.0)
        self.starts += 1
        self.server = start_server(self.tmp / str(self.starts), self.extra)
        return self.server


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    running = Live(tmp_path_factory.mktemp("hostile"))
    yield running
    running.server.stop(timeout=1.0)


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("hostile-auth"), ("--auth-tokens", TOKEN))
    yield server
    server.stop(timeout=1.0)
