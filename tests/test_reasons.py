"""Every google.rpc.ErrorInfo reason the server sends is a value of labelwise.v1.ErrorReason.

The server names reasons only through labelwise_server.reasons (read from the generated
enum); an AST scan of service/ refuses a reason written as a string literal, so a new reason
cannot reach the wire without being declared, and documented, in the proto.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from labelwise.v1 import error_reason_pb2
from labelwise_server import errors, reasons

SERVICE = Path(__file__).resolve().parents[1] / "service" / "labelwise_server"
ENUM = {v.name for v in error_reason_pb2.ErrorReason.DESCRIPTOR.values if v.number != 0}
# Calls that take a reason positionally: (name, index of the reason argument).
REASON_ARGUMENT = {"InvalidArgument": 2, "ModelRejected": 2, "_reject": 2, "WorkFailed": 0}
REASON_ARGUMENT |= {"shed_status": 0, "ErrorInfo": -1, "FieldViolation": -1}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SERVICE.rglob("*.py")):
        yield str(path.relative_to(SERVICE.parent)), ast.parse(path.read_text(), str(path))


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _reason_literals(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, source) of each string literal in a reason's place."""
    for node in ast.walk(tree):
        places: list[ast.AST | None] = []
        if isinstance(node, ast.Call):
            places += [k.value for k in node.keywords if k.arg == "reason"]
            index = REASON_ARGUMENT.get(_called(node), -1)
            if 0 <= index < len(node.args):
                places.append(node.args[index])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args.posonlyargs + node.args.args
            defaults = dict(
                zip(args[len(args) - len(node.args.defaults) :], node.args.defaults, strict=True)
            )
            defaults |= dict(zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True))
            places += [value for arg, value in defaults.items() if arg.arg == "reason"]
        elif isinstance(node, ast.Constant) and node.value in ENUM:
            places.append(node)  # the enum's names as strings, wherever they stand
        for place in places:
            if _literal(place):
                assert place is not None
                yield place.lineno, ast.unparse(place)


def test_reasons_module_names_every_enum_value_by_its_own_name() -> None:
    constants = {k: v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)}
    assert set(constants) == ENUM
    assert all(name == value for name, value in constants.items())


def test_no_reason_in_the_server_is_a_string_literal() -> None:
    found = [
        f"{path}:{line}: {source}"
        + ("" if source.strip("'\"") in ENUM else "  (not in labelwise.v1.ErrorReason)")
        for path, tree in _modules()
        for line, source in sorted(set(_reason_literals(tree)))
    ]
    assert not found, (
        "reasons must come from labelwise_server.reasons (declare a new one in "
        "proto/labelwise/v1/error_reason.proto first):\n" + "\n".join(found)
    )


def _names_used(tree: ast.Module) -> Iterator[str]:
    """The reasons a module names: reasons.X, and X imported from labelwise_server.reasons."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "labelwise_server.reasons":
            yield from (alias.name for alias in node.names)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "reasons"
        ):
            yield node.attr


def test_every_reason_the_server_names_is_in_the_enum_and_every_value_is_sent() -> None:
    used = {name for _, tree in _modules() for name in _names_used(tree)}
    assert used - ENUM == set()
    assert ENUM - used == set(), "enum values the server never sends: remove or use them"


def test_the_default_reason_is_invalid_field() -> None:
    assert errors.InvalidArgument("k", "must be >= 1").reason == reasons.INVALID_FIELD


@pytest.mark.parametrize(
    "source",
    [
        'raise InvalidArgument("k", "bad", reason="NEW_REASON")',
        'raise ModelRejected("m", "bad", "MODEL_SIGNATURE")',
        'raise WorkFailed("WORK_PROCESS_DIED", "gone")',
        'def f(field, description, reason="INVALID_FIELD"): ...',
        'STREAM_IDLE = "STREAM_IDLE"',
    ],
)
def test_the_scan_finds_a_literal_reason(source: str) -> None:
    assert list(_reason_literals(ast.parse(source)))
