"""The metric set: the same with one worker or several, latency buckets to the max deadline."""

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import grpc
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc
from labelwise_server.grpc.server import METHOD_TYPES, SERVICE_NAME
from labelwise_server.metrics import Metrics
from tests.grpc.conftest import TEST_CONFIG, ServerThread
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
REQUEST = pb.SelectQueriesRequest(
    probabilities=encode_tensor(np.full((8, 2), 0.5, np.float32)),
    strategies=[pb.StrategySpec(name="margin")],
    k=2,
)

Shape = set[tuple[str, str, frozenset[str]]]  # (family type, sample name, label names)


@contextmanager
def serving(tmp: Path, workers: int) -> Iterator[tuple[str, int]]:
    """`labelwise serve --workers N` on free ports; yields (address, metrics port)."""
    port_file, metrics_port = tmp / f"port-{workers}", free_port()
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
         "--port", "0", "--port-file", str(port_file), "--metrics-port", str(metrics_port),
         "--workers", str(workers), "--compute-threads", "1", "--grace-seconds", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        yield f"127.0.0.1:{port_file.read_text().strip()}", metrics_port
    finally:
        process.terminate()
        process.wait(timeout=30)


def scrape(metrics_port: int) -> tuple[str, Shape]:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    shape = {
        (family.type, sample.name, frozenset(sample.labels))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, shape


def test_one_worker_and_two_workers_expose_the_same_metric_set(tmp_path: Path) -> None:
    shapes = {}
    for workers in (1, 2):
        with serving(tmp_path, workers) as (address, metrics_port):
            with grpc.insecure_channel(address) as channel:
                stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
                assert len(stub.SelectQueries(REQUEST, timeout=30).results[0].indices) == 2
            text, shapes[workers] = scrape(metrics_port)
        assert "_created" not in text
        assert "# TYPE labelwise_worker_rpcs_total counter" in text
        assert 'labelwise_worker_rpcs_total{worker="0"}' in text
        assert 'le="300.0"' in text  # --max-deadline-seconds' default
    assert shapes[1] == shapes[2], shapes[1] ^ shapes[2]


def buckets(registry: CollectorRegistry, name: str) -> list[str]:
    return [
        sample.labels["le"]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == f"{name}_bucket"
    ]


def test_latency_buckets_reach_the_max_deadline() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry, max_seconds=300)
    metrics.handling_seconds.labels(grpc_type="unary", grpc_service="s", grpc_method="m")
    metrics.strategy_seconds.labels(strategy="margin")
    for name in ("grpc_server_handling_seconds", "labelwise_strategy_duration_seconds"):
        assert buckets(registry, name)[-3:] == ["120.0", "300.0", "+Inf"]
    registry = CollectorRegistry()
    Metrics.create(registry, max_seconds=900).strategy_seconds.labels(strategy="margin")
    assert buckets(registry, "labelwise_strategy_duration_seconds")[-3:] == [
        "300.0",
        "900.0",
        "+Inf",
    ]


def test_counters_are_counters() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    metrics.worker_rpcs.inc()
    kinds = {family.name: family.type for family in registry.collect()}
    assert kinds["labelwise_worker_rpcs"] == "counter"
    assert {name for name, kind in kinds.items() if kind == "gauge"} == {
        "labelwise_build_info",
        "labelwise_requests_in_flight",
        "labelwise_model_cache_bytes",
    }


def handled(server: ServerThread, method: str, code: str) -> float:
    value = server.registry.get_sample_value(
        "grpc_server_handled_total",
        {"grpc_code": code, "grpc_method": method, "grpc_service": SERVICE_NAME,
         "grpc_type": METHOD_TYPES[method]},
    )  # fmt: skip
    return value or 0.0


def test_a_message_over_max_message_bytes_is_counted_with_its_code() -> None:
    """gRPC refuses it before the handler runs; the interceptor counts the call when its task
    ends without the handler. (A stream chunk over the limit cannot be told from the stream's
    end in Python: the call is counted with the code the servicer then answers.)"""
    server = ServerThread(replace(TEST_CONFIG, max_message_bytes=1 << 20))
    try:
        big = pb.SelectQueriesRequest(
            probabilities=encode_tensor(np.full((200_000, 2), 0.5, np.float32)),
            strategies=[pb.StrategySpec(name="margin")],
            k=2,
        )
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.QuerySelectionServiceStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.RpcError) as unary:
                stub.SelectQueries(big, timeout=10)
            assert unary.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert len(stub.SelectQueries(REQUEST, timeout=10).results[0].indices) == 2
        assert handled(server, "SelectQueries", "RESOURCE_EXHAUSTED") == 1
        assert handled(server, "SelectQueries", "OK") == 1
        started = server.registry.get_sample_value(
            "grpc_server_started_total",
            {"grpc_method": "SelectQueries", "grpc_service": SERVICE_NAME, "grpc_type": "unary"},
        )
        assert started == 2
    finally:
        server.stop()
