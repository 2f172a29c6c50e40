"""`labelwise simulate ...` hands its arguments to `labelwise-simulate`."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labelwise_server import cli


def test_labelwise_simulate_execs_the_tool_with_its_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, list[str]]] = []

    def execv(path: str, argv: list[str]) -> None:
        calls.append((path, argv))

    monkeypatch.setattr(os, "execv", execv)
    cli.main(["simulate", "--data", "wine", "--jobs", "1"])
    ((path, argv),) = calls
    assert Path(path).name == "labelwise-simulate"
    assert argv == [path, "--data", "wine", "--jobs", "1"]


def test_without_the_tool_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["simulate", "--help"]) == 2
    assert "pip install ./tools/simulate" in capsys.readouterr().err


def test_the_installed_command_shows_the_tools_help() -> None:
    labelwise = Path(sys.executable).with_name("labelwise")
    listed = subprocess.run([labelwise, "--help"], capture_output=True, text=True, check=True)
    assert "simulate" in listed.stdout
    tool = subprocess.run(
        [labelwise, "simulate", "--help"], capture_output=True, text=True, check=True
    )
    assert tool.stdout.startswith("usage: labelwise-simulate")
    assert "--serve-command" in tool.stdout
