"""A real Label Studio (its own virtualenv, SQLite) and a real `labelwise serve` for the
connector's end-to-end tests; both started once per session, each on a free loopback port."""

from collections.abc import Iterator

import pytest

from labelwise_simulate.service import ServeProcess
from tests.labelstudio import server


@pytest.fixture(scope="session")
def label_studio_url() -> Iterator[str]:
    with server.running() as url:
        yield url


@pytest.fixture(scope="session")
def labelwise_address() -> Iterator[str]:
    with ServeProcess(workers=1) as service:
        yield service.address
