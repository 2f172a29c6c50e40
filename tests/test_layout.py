"""Strategies stay pure NumPy: nothing under strategies/ imports the transport or the runtime;
only onnx_runner.py touches onnx and onnxruntime."""

import ast
from pathlib import Path

import pytest

STRATEGIES_DIR = Path(__file__).resolve().parents[1] / "service" / "labelwise_server" / "strategies"
FORBIDDEN = ("grpc", "labelwise.v1", "onnxruntime", "labelwise_server.grpc", "google.protobuf")


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # `from labelwise import v1` imports labelwise.v1 too.
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN)


@pytest.mark.parametrize("path", sorted(STRATEGIES_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_strategy_module_imports_no_transport(path: Path) -> None:
    bad = [module for module in imported_modules(path) if _forbidden(module)]
    assert not bad, f"{path.name} imports {bad}"


def test_the_scan_finds_modules_and_catches_a_forbidden_import(tmp_path: Path) -> None:
    assert len(list(STRATEGIES_DIR.rglob("*.py"))) >= 5
    sample = tmp_path / "bad.py"
    sample.write_text("import numpy\nfrom labelwise import v1\nimport grpc.aio\n")
    assert [m for m in imported_modules(sample) if _forbidden(m)] == ["labelwise.v1", "grpc.aio"]


def test_only_onnx_runner_imports_onnx_and_onnxruntime() -> None:
    service = STRATEGIES_DIR.parent
    importers = sorted(
        path.relative_to(service).as_posix()
        for path in service.rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in ("onnx", "onnxruntime")
    )
    assert set(importers) == {"onnx_runner.py"}
