"""The service the tool starts: `labelwise serve` found beside this Python or on PATH."""

import inspect
import sys
from pathlib import Path

import pytest

from labelwise import Client
from labelwise_server import config
from labelwise_simulate import cores
from labelwise_simulate.service import ServeProcess, ServiceError, serve_command


def test_the_serve_command_is_the_labelwise_of_this_environment() -> None:
    command = serve_command()
    assert command[1:] == ["serve"]
    assert Path(command[0]).name == "labelwise"


def test_without_a_labelwise_command_the_error_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceError, match="--address of a running service"):
        serve_command()


def test_it_serves_on_a_free_port_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELWISE_PORT", "1")  # the shell's settings do not reach it
    with ServeProcess(workers=1) as server, Client(server.address) as client:
        assert any(s.name == "random" for s in client.list_strategies())
    assert server._process.poll() is not None


@pytest.mark.parametrize("name", ["cgroup_cpu_limit", "available_cores"])
def test_default_jobs_follow_the_servers_core_rule(name: str) -> None:
    # The tool keeps its own copy of the rule (it imports nothing from the server): the same code.
    assert inspect.getsource(getattr(cores, name)) == inspect.getsource(getattr(config, name))
    assert getattr(cores, name)() == getattr(config, name)()
