"""One `labelwise serve` for the simulation tests, started the way the tool starts it."""

from collections.abc import Iterator

import pytest

from labelwise_simulate.service import ServeProcess


@pytest.fixture(scope="session")
def address() -> Iterator[str]:
    with ServeProcess(workers=1) as server:
        yield server.address
