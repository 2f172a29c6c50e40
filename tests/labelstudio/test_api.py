"""The Label Studio client's checks and failure messages that need no Label Studio: bad
arguments, a closed port, a server that accepts and never answers."""

import socket
import threading
import time

import pytest

from labelwise_labelstudio.api import (
    LabelStudio,
    LabelStudioError,
    _detail,
    is_personal_access_token,
)
from tests.labelstudio.server import free_port


def test_token_kinds() -> None:
    assert not is_personal_access_token("0123456789abcdef0123456789abcdef01234567")
    assert is_personal_access_token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")
    assert not is_personal_access_token("eyJa..b")


def test_arguments_are_checked() -> None:
    for url in ("localhost:8080", "ftp://host", "http://"):
        with pytest.raises(ValueError, match="http"):
            LabelStudio(url, "key")
    with pytest.raises(ValueError, match="LABEL_STUDIO_API_KEY"):
        LabelStudio("http://localhost:8080", "")
    with pytest.raises(ValueError, match="timeout"):
        LabelStudio("http://localhost:8080", "key", timeout=0)
    with pytest.raises(ValueError, match="page_size"):
        next(LabelStudio("http://localhost:8080", "key").tasks(1, page_size=0))


def test_error_details_are_short_and_taken_from_detail() -> None:
    assert _detail(b'{"detail": "Invalid token."}') == "Invalid token."
    assert _detail(b'{"validation_errors": {"x": ["bad"]}}') == '{"x": ["bad"]}'
    long = _detail(b"<html>" + b"y" * 5000)
    assert len(long) == 301 and long.endswith("…")


def test_a_closed_port_is_named() -> None:
    ls = LabelStudio(f"http://127.0.0.1:{free_port()}", "key", timeout=5)
    with pytest.raises(LabelStudioError, match="cannot reach Label Studio at http://127"):
        ls.project(1)


def test_a_server_that_never_answers_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    ls = LabelStudio(f"http://127.0.0.1:{listener.getsockname()[1]}", "key", timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(LabelStudioError, match=r"GET /api/projects/1: .* within 0.5 s"):
            ls.project(1)
        assert time.monotonic() - started < 10
    finally:
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()
