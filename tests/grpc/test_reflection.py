"""Server reflection, v1 and v1alpha: services, methods and messages resolve, as tools ask."""

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from labelwise_server.grpc.reflection import V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME
from labelwise_server.grpc.server import SERVICES
from tests.grpc.conftest import ServerThread

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = {
    "labelwise.v1.QuerySelectionService.SelectQueries": "labelwise/v1/query_selection.proto",
    "labelwise.v1.QuerySelectionService.SelectQueriesStream": "labelwise/v1/query_selection.proto",
    "labelwise.v1.QuerySelectionService": "labelwise/v1/query_selection.proto",
    "labelwise.v1.SelectQueriesRequest": "labelwise/v1/query_selection.proto",
    "labelwise.v1.StrategySpec": "labelwise/v1/query_selection.proto",
    "labelwise.v1.DataType": "labelwise/v1/query_selection.proto",
    "grpc.health.v1.Health.Check": "grpc_health/v1/health.proto",
    "grpc.health.v1.Health": "grpc_health/v1/health.proto",
    "grpc.health.v1.HealthCheckRequest": "grpc_health/v1/health.proto",
}


def ask(
    channel: grpc.Channel, service: str, requests: list[reflection_pb2.ServerReflectionRequest]
) -> list[reflection_pb2.ServerReflectionResponse]:
    """One reflection stream under the given service name (v1 and v1alpha share the wire)."""
    info = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(info(iter(requests), timeout=10))


@pytest.mark.parametrize("service", [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME])
def test_methods_services_and_messages_resolve_under_v1_and_v1alpha(
    channel: grpc.Channel, service: str
) -> None:
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in SYMBOLS]
    for symbol, answer in zip(SYMBOLS, ask(channel, service, requests), strict=True):
        assert answer.WhichOneof("message_response") == "file_descriptor_response", symbol
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(data)
            for data in answer.file_descriptor_response.file_descriptor_proto
        ]
        assert files[0].name == SYMBOLS[symbol], symbol


@pytest.mark.parametrize("service", [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME])
def test_unknown_symbols_are_not_found_and_both_names_are_listed(
    channel: grpc.Channel, service: str
) -> None:
    missing, listed = ask(
        channel,
        service,
        [
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="labelwise.v1.QuerySelectionService.NoSuchMethod"
            ),
            reflection_pb2.ServerReflectionRequest(list_services=""),
        ],
    )
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    names = {s.name for s in listed.list_services_response.service}
    assert names == {*SERVICES, "grpc.health.v1.Health", V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME}


def test_a_descriptor_pool_over_reflection_finds_methods_by_name(channel: grpc.Channel) -> None:
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindMethodByName("labelwise.v1.QuerySelectionService.SelectQueries")
    assert method.input_type.full_name == "labelwise.v1.SelectQueriesRequest"
    check = pool.FindMethodByName("grpc.health.v1.Health.Check")
    assert check.output_type.full_name == "grpc.health.v1.HealthCheckResponse"


@pytest.fixture(scope="session")
def ghz() -> str:
    """ghz: .tools/bin's (bench/load.py installs it there), else `go install`ed the same way."""
    version = re.search(r'^GHZ_VERSION = "(\S+)"$', (ROOT / "bench/load.py").read_text(), re.M)
    assert version is not None
    built = ROOT / ".tools/bin/ghz"
    found = shutil.which("ghz") or (str(built) if built.exists() else None)
    if found is not None:
        return found
    go = shutil.which("go")
    if go is None:
        pytest.skip("ghz needs Go to build (`go` is not on PATH)")
    module = f"github.com/bojand/ghz/cmd/ghz@{version[1]}"
    subprocess.run([go, "install", module], env=dict(os.environ, GOBIN=str(built.parent)),
                   check=True, timeout=900, capture_output=True)  # fmt: skip
    return str(built)


def run_ghz(ghz: str, address: str, call: str, data: object) -> dict:  # type: ignore[type-arg]
    """ghz with no .proto and no protoset: every descriptor comes from reflection."""
    done = subprocess.run(
        [ghz, "--insecure", "--call", call, "--data", json.dumps(data), "-n", "6", "-c", "2",
         "--timeout", "10s", "--connect-timeout", "10s", "--format", "json", address],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict = json.loads(done.stdout)  # type: ignore[type-arg]
    return report


def test_ghz_runs_by_reflection_alone(server: ServerThread, ghz: str) -> None:
    probabilities = np.random.default_rng(0).dirichlet(np.ones(3), size=50).astype("<f4")
    data = {
        "strategies": [{"name": "margin"}],
        "k": 5,
        "probabilities": {
            "dtype": "DATA_TYPE_FLOAT32",
            "shape": [50, 3],
            "raw_data": base64.b64encode(probabilities.tobytes()).decode(),
        },
    }
    selected = run_ghz(ghz, server.address, "labelwise.v1.QuerySelectionService.SelectQueries",
                       data)  # fmt: skip
    assert selected["statusCodeDistribution"] == {"OK": 6}, selected
    health = run_ghz(ghz, server.address, "grpc.health.v1.Health.Check", {})
    assert health["statusCodeDistribution"] == {"OK": 6}, health
