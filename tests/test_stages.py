"""The request's stages stay apart (issue 21): decode/validate → infer → select → encode.

Scans with ast over labelwise_server's runtime import graph (tests/test_imports.py builds
it and proves it acyclic): validation and the decoders reach no model runner, selection
reaches no validation or decoder, and the servicer holds no reassembly and no encoding.
"""

import ast

from tests.test_imports import PACKAGE, SERVICE, import_graph

GRAPH = import_graph(SERVICE, PACKAGE, runtime=True)
VALIDATING = [m for m in GRAPH if m == f"{PACKAGE}.validation" or m.startswith(f"{PACKAGE}.decode")]


def reachable(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for dependency in GRAPH.get(todo.pop(), ()):
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def test_no_module_that_validates_imports_the_model_runner_or_the_inference_stage() -> None:
    assert len(VALIDATING) >= 8  # validation, decode and its family modules
    runners = {f"{PACKAGE}.onnx_runner", f"{PACKAGE}.inference"}
    for module in [*VALIDATING, f"{PACKAGE}.checks"]:
        assert not reachable(module) & runners, module


def test_the_selection_stage_imports_no_validation_module() -> None:
    reached = reachable(f"{PACKAGE}.selection")
    assert f"{PACKAGE}.request" in reached
    assert not reached & set(VALIDATING)


def test_the_work_runs_the_stages_in_order() -> None:
    tree = ast.parse((SERVICE / PACKAGE / "work.py").read_text())
    select_response = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef)
        and node.name == "select_response"
    )  # fmt: skip
    calls = sorted(
        (node.lineno, node.col_offset, node.func.id) for node in ast.walk(select_response)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    )  # fmt: skip
    stages = [
        c for _, _, c in calls if c in ("decode_request", "infer", "select", "encode_response")
    ]
    assert stages == ["decode_request", "infer", "select", "encode_response"]


def test_the_servicer_holds_no_stream_reassembly_and_no_encoding() -> None:
    path = SERVICE / PACKAGE / "grpc" / "servicer.py"
    tree = ast.parse(path.read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert functions <= {"_deadline", "_cancelled"}  # the call's deadline and cancellation
    expected = {
        "QuerySelectionServicer": {
            "__init__", "SelectQueries", "SelectQueriesStream", "ListStrategies", "CheckStopping"
        },
        "LabelQualityServicer": {"__init__", "AssessLabels", "PlanLabeling"},
    }  # fmt: skip
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert {c.name for c in classes} == set(expected)
    for servicer in classes:
        methods = {
            n.name for n in servicer.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert methods == expected[servicer.name]
    imported = {
        alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
        and node.module == f"{PACKAGE}.grpc.codec" for alias in node.names
    }  # fmt: skip
    assert {"receive_stream", "list_strategies_response", "stream_response_bytes"} <= imported
    # No array work or wire-level building here: those belong to the codec.
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"np", "RawTensor", "encode_tensor", "element_count", "STREAM_AXIS"}
    for method in (m for c in classes for m in c.body):
        if isinstance(method, ast.AsyncFunctionDef):
            assert method.end_lineno - method.lineno < 15, f"{method.name} is more than a few lines"
