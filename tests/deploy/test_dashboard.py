"""deploy/grafana/labelwise.json: every query of the dashboard runs against a real
Prometheus (Debian's `prometheus`) that scraped a real `labelwise serve` on loopback, every
second, while calls were made; each must parse and answer, and, with traffic, be non-empty."""

import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labelwise import Client, LabelwiseError
from tests.deploy.manifests import ROOT, tool
from tests.test_cli import free_port

DASHBOARD = ROOT / "deploy" / "grafana" / "labelwise.json"
JOB = "labelwise"
# Grafana's variables, as Grafana would fill them in.
VARIABLES = {"$__rate_interval": "15s", "$job": JOB}


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def fill(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


@contextlib.contextmanager
def running(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_for(check: Any, what: str, log: Path, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if result := check():
                return result
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def test_the_dashboard_uses_no_unknown_variables() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = {v["name"] for v in dashboard["templating"]["list"]}
    for _, expr in queries():
        for variable in re.findall(r"\$\{?(\w+)", expr):
            assert variable in names or variable.startswith("__"), variable
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"


def test_every_dashboard_query_runs_against_prometheus_scraping_labelwise(
    tmp_path: Path,
) -> None:
    prometheus = tool("prometheus")
    port, metrics_port, prometheus_port = free_port(), free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    serve = [str(bin_dir / "labelwise"), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--metrics-host", "127.0.0.1", "--metrics-port", str(metrics_port),
             "--workers", "1", "--work-processes", "1", "--drain-seconds", "0"]  # fmt: skip
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: {JOB}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    base = f"http://127.0.0.1:{prometheus_port}"
    with (
        running(serve, tmp_path / "serve.log") as server,
        running(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            tmp_path / "prometheus.log",
        ),  # fmt: skip
    ):
        with Client(f"127.0.0.1:{port}") as client:
            wait_for(lambda: client.list_strategies(), "labelwise serving", tmp_path / "serve.log")
            rng = np.random.default_rng(0)
            # Calls over a few seconds, so rates over 15 s have two samples with traffic.
            for _ in range(8):
                for n in (100, 5_000):
                    probabilities = rng.dirichlet(np.ones(5), n).astype(np.float32)
                    client.select(strategies=["entropy", "margin"], k=5,
                                  probabilities=probabilities, deadline=30.0)  # fmt: skip
                with pytest.raises(LabelwiseError):  # a failed call, for the error panels
                    client.select(strategies=["no-such-strategy"], k=5,
                                  probabilities=probabilities, deadline=30.0)  # fmt: skip
                time.sleep(0.5)
        assert server.poll() is None
        # Traffic seen by Prometheus: a rate over the window has samples on both sides.
        wait_for(
            lambda: api(
                base,
                "/api/v1/query",
                query=fill(
                    'sum(rate(grpc_server_handled_total{job="$job", grpc_code="OK"}'
                    "[$__rate_interval])) > 0"
                ),
            )["data"]["result"],
            "Prometheus scraped the calls",
            tmp_path / "prometheus.log",
        )
        empty = []
        for name, expr in queries():
            answer = api(base, "/api/v1/query", query=fill(expr))
            assert answer["status"] == "success", (name, answer)
            assert not answer.get("warnings"), (name, answer)
            if not answer["data"]["result"]:
                empty.append(name)
        assert empty == [], f"queries with no data although calls were made: {empty}"
