"""A C++ client built from proto/ and the vendored google.rpc protos (third_party/googleapis)
calls a real `labelwise serve` and decodes an INVALID_ARGUMENT's BadRequest and ErrorInfo from
grpc-status-details-bin, the way docs/clients/other-languages.md tells other languages to:
tests/cpp/client.cc."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2

from labelwise.tensors import encode_tensor
from labelwise.v1 import query_selection_pb2 as pb
from labelwise.v1 import query_selection_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT / "third_party/googleapis"
RPC_PROTOS = ("code.proto", "error_details.proto", "status.proto")
TOOLS = ("g++", "pkg-config", "protoc", "grpc_cpp_plugin")


def _toolchain_missing() -> str | None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not missing and subprocess.run(["pkg-config", "--exists", "grpc++", "protobuf"]).returncode:
        missing.append("grpc++.pc")
    return ", ".join(missing) or None


MISSING = _toolchain_missing()
# Skipped without the toolchain on a developer's machine; in CI (CI set) its absence fails.
needs_toolchain = pytest.mark.skipif(
    MISSING is not None and not os.environ.get("CI"),
    reason=f"no C++ gRPC toolchain ({MISSING}; scripts/bootstrap --dev: apt-get g++ pkg-config "
    "protobuf-compiler protobuf-compiler-grpc libgrpc++-dev)",
)


def test_the_vendored_rpc_protos_are_the_locked_wheels() -> None:
    """scripts/generate copies them from googleapis-common-protos; a lock update refreshes them."""
    wheel = importlib.metadata.distribution("googleapis-common-protos")
    for name in RPC_PROTOS:
        shipped = Path(str(wheel.locate_file(f"google/rpc/{name}"))).read_text()
        assert (VENDORED / "google/rpc" / name).read_text() == shipped, name
    assert (VENDORED / "VERSION").read_text() == f"googleapis-common-protos {wheel.version}\n"
    assert "Apache License" in (VENDORED / "LICENSE").read_text()


@pytest.fixture(scope="session")
def cpp_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/cpp/client.cc and the stubs protoc makes for it, compiled once (in parallel)."""
    assert MISSING is None, f"no C++ gRPC toolchain: {MISSING}"
    out = tmp_path_factory.mktemp("cpp")
    protoc = ["protoc", "-I", str(ROOT / "proto"), "-I", str(VENDORED), f"--cpp_out={out}"]
    plugin = shutil.which("grpc_cpp_plugin")
    subprocess.run(
        [*protoc, f"--grpc_out={out}", f"--plugin=protoc-gen-grpc={plugin}",
         "labelwise/v1/query_selection.proto"],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*protoc, "labelwise/v1/options.proto", "labelwise/v1/error_reason.proto",
         "labelwise/v1/history.proto",
         *(f"google/rpc/{name}" for name in RPC_PROTOS)],
        check=True,
    )  # fmt: skip
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "grpc++", "protobuf"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    sources = [*sorted(out.rglob("*.cc")), ROOT / "tests/cpp/client.cc"]

    def compile_one(index_source: tuple[int, Path]) -> Path:
        index, source = index_source
        obj = out / f"{index}.o"
        subprocess.run(
            ["g++", "-std=c++17", "-O0", "-c", "-I", str(out),
             *(f for f in flags if not f.startswith(("-l", "-L"))), str(source), "-o", str(obj)],
            check=True,
        )  # fmt: skip
        return obj

    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        objects = list(pool.map(compile_one, enumerate(sources)))
    binary = out / "client"
    subprocess.run(["g++", *map(str, objects), "-o", str(binary), *flags], check=True)
    return binary


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `labelwise serve` on a free port; yields its address."""
    tmp = tmp_path_factory.mktemp("serve")
    port_file, log_path = tmp / "port", tmp / "serve.log"
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--port-file", str(port_file), "--metrics-port", "0",
             "--workers", "1", "--compute-threads", "1", "--grace-seconds", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "labelwise serve did not start within 120 s"
            time.sleep(0.1)
        yield f"127.0.0.1:{int(port_file.read_text())}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def python_view(address: str, strategy: str) -> list[str]:
    """What the Python client decodes from the same refused call, in client.cc's lines."""
    probabilities = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.99, 0.01]], np.float32)
    request = pb.SelectQueriesRequest(
        probabilities=encode_tensor(probabilities), strategies=[pb.StrategySpec(name=strategy)], k=2
    )
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as refused:
        pb_grpc.QuerySelectionServiceStub(channel).SelectQueries(request, timeout=30)
    error: grpc.Call = refused.value  # type: ignore[assignment]
    [detail_bytes] = [v for k, v in error.trailing_metadata() if k == "grpc-status-details-bin"]
    status = status_pb2.Status.FromString(detail_bytes)
    bad_request, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(bad_request) and status.details[1].Unpack(info)
    [violation] = bad_request.field_violations
    return [
        "grpc.code=3",
        "status.code=INVALID_ARGUMENT",
        f"status.message={status.message}",
        f"violation.field={violation.field}",
        f"violation.reason={violation.reason}",
        f"violation.description={violation.description}",
        f"info.reason={info.reason}",
        f"info.domain={info.domain}",
        "info.reason_known=1",
    ]


@needs_toolchain
def test_a_cpp_client_decodes_bad_request_from_the_trailer(cpp_client: Path, serve: str) -> None:
    strategy = "no-such-strategy"
    run = subprocess.run(
        [str(cpp_client), serve, strategy], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "ok.indices=1,2"  # entropy: the even item first, then 0.6/0.4
    assert lines[1:] == python_view(serve, strategy)
    assert "violation.field=strategies[0].name" in lines
    assert "violation.reason=UNKNOWN_STRATEGY" in lines
    assert "info.domain=labelwise.dev" in lines
