"""`labelwise serve`: every setting a flag and an environment variable; graceful SIGTERM."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.cli import build_parser
from labelwise_server.config import HELP, Config, env_name

ROOT = Path(__file__).resolve().parents[1]


def serve_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", "--help"])
    assert exited.value.code == 0
    # argparse wraps lines; join them so a flag's text reads as one line.
    return " ".join(capsys.readouterr().out.split())


def test_help_lists_every_setting_with_its_env_var(capsys: pytest.CaptureFixture[str]) -> None:
    text = serve_help(capsys)
    for spec in fields(Config):
        flag = "--" + spec.name.replace("_", "-")
        assert flag in text, flag
        assert f"Env: {env_name(spec.name)}." in text, spec.name
        assert HELP[spec.name].split()[0] in text
    assert "--port INT" in text and "Default: 50051." in text
    assert "--reflection, --no-reflection" in text


def test_help_says_none_for_an_empty_default(capsys: pytest.CaptureFixture[str]) -> None:
    text = serve_help(capsys)
    assert "Default: ." not in text
    assert "Env: LABELWISE_PORT_FILE. Default: none." in text
    assert "Env: LABELWISE_PORT. Default: 50051." in text


def test_env_vars_set_defaults_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELWISE_PORT", "6000")
    monkeypatch.setenv("LABELWISE_GRACE_SECONDS", "2.5")
    monkeypatch.setenv("LABELWISE_REFLECTION", "false")
    monkeypatch.setenv("LABELWISE_LOG_LEVEL", "DEBUG")
    args = build_parser().parse_args(["serve"])
    assert (args.port, args.grace_seconds, args.reflection, args.log_level) == (
        6000,
        2.5,
        False,
        "DEBUG",
    )
    args = build_parser().parse_args(["serve", "--port", "7000", "--reflection"])
    assert (args.port, args.reflection) == (7000, True)


def test_without_env_vars_the_defaults_are_the_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in fields(Config):
        monkeypatch.delenv(env_name(spec.name), raising=False)
    args = build_parser().parse_args(["serve"])
    for spec in fields(Config):
        assert getattr(args, spec.name) == spec.default


@pytest.mark.parametrize(("name", "value"), [("LABELWISE_PORT", "fifty"),
                                              ("LABELWISE_REFLECTION", "maybe")])  # fmt: skip
def test_a_bad_env_value_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve"])
    assert exited.value.code == 2
    assert name in capsys.readouterr().err


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server_process(port: int, metrics_port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
    )
    env["LABELWISE_GRACE_SECONDS"] = "15"  # through the environment, to test that path too
    process = subprocess.Popen(
        [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", str(metrics_port), "--compute-threads", "1",
         "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def wait_until_serving(channel: grpc.Channel, process: subprocess.Popen[bytes]) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not start within 60 s")


def scrape(metrics_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def test_sigterm_finishes_the_in_flight_call_then_exits_0() -> None:
    port, metrics_port = free_port(), free_port()
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=100)
    first = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="entropy")], k=3, probabilities=encode_tensor(p[:50])
    )
    rest = pb.SelectQueriesRequest(probabilities=encode_tensor(p[50:]))
    release = threading.Event()

    def chunks() -> Iterator[pb.SelectQueriesStreamRequest]:
        yield pb.SelectQueriesStreamRequest(chunk=first)
        release.wait(timeout=30)  # the call stays open across the SIGTERM
        yield pb.SelectQueriesStreamRequest(chunk=rest)

    with (
        server_process(port, metrics_port) as process,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        wait_until_serving(channel, process)
        stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        assert stub.SelectQueries(first, timeout=10).results[0].indices
        metrics = scrape(metrics_port)
        assert (
            'grpc_server_handled_total{grpc_code="OK",grpc_method="SelectQueries",'
            'grpc_service="labelwise.v1.QuerySelectionService",grpc_type="unary"} 1.0'
        ) in metrics
        in_flight = stub.SelectQueriesStream.future(chunks(), timeout=30)
        started = (
            'grpc_server_started_total{grpc_method="SelectQueriesStream",'
            'grpc_service="labelwise.v1.QuerySelectionService",grpc_type="client_stream"} 1.0'
        )
        deadline = time.monotonic() + 20
        while started not in scrape(metrics_port):  # the server has the call
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # the server is now shutting down, the call still open
        assert process.poll() is None
        with pytest.raises(grpc.RpcError) as refused:  # new calls are turned away meanwhile
            stub.SelectQueries(first, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert process.poll() is None
        release.set()
        response = in_flight.result(timeout=30)
        expected = -(p * np.log(p)).sum(axis=1)
        assert list(response.response.results[0].indices) == np.argsort(-expected)[:3].tolist()
        assert process.wait(timeout=30) == 0
