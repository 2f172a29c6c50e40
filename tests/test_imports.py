"""No import cycles in labelwise_server, and the strategies' types import no strategy.

The graph is built with ast from module-level imports (function-level imports are
deliberate and lazy). Two graphs must be acyclic: the one Python runs (imports under
`if TYPE_CHECKING:` left out; importing a submodule first runs its package's
__init__, so each module also depends on its parents), and the one the type checker
and a reader follow (every module-level import, TYPE_CHECKING ones included).
"""

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"
PACKAGE = "labelwise_server"

Graph = Mapping[str, set[str]]


def modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package __init__), for every .py under package."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(
    body: list[ast.stmt], name: str, is_package: bool, type_checking: bool
) -> Iterator[tuple[str, list[str], bool]]:
    """(module, names imported from it, under TYPE_CHECKING) of module-level imports."""
    for node in body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], type_checking
        elif isinstance(node, ast.ImportFrom):
            base = name.split(".") if is_package else name.split(".")[:-1]
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module, [alias.name for alias in node.names], type_checking
        elif isinstance(node, ast.If):
            guarded = "TYPE_CHECKING" in ast.unparse(node.test)
            yield from _imports(node.body, name, is_package, type_checking or guarded)
            yield from _imports(node.orelse, name, is_package, type_checking)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse):
                yield from _imports(block, name, is_package, type_checking)


def import_graph(root: Path, package: str, *, runtime: bool) -> dict[str, set[str]]:
    """Edges module -> modules of the package it imports. `from p import m` counts as an import
    of the submodule p.m when there is one; runtime graphs leave TYPE_CHECKING imports out and
    add each module's parent packages."""
    found = modules(root, package)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in found.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for module, names, type_checking in _imports(tree.body, name, is_package, False):
            if runtime and type_checking:
                continue
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in found]
            if len(targets) < len(names) or not names:
                targets.append(module)
            edges |= {t for t in targets if t in found}
        if runtime:
            parts = name.split(".")
            edges |= {".".join(parts[:i]) for i in range(1, len(parts))} & found.keys()
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


@pytest.mark.parametrize("runtime", [True, False], ids=["runtime", "with-type-checking"])
def test_labelwise_server_has_no_import_cycle(runtime: bool) -> None:
    graph = import_graph(SERVICE, PACKAGE, runtime=runtime)
    assert len(graph) > 20 and f"{PACKAGE}.strategies.registry" in graph
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_graph_finds_a_cycle_through_a_package_init_and_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.a import A\n")
    (pkg / "sub" / "a.py").write_text("A = 1\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import C\n"
    )
    (pkg / "c.py").write_text("from pkg import b\n")
    runtime = import_graph(tmp_path, "pkg", runtime=True)
    assert find_cycle(runtime) == ["pkg.sub", "pkg.sub.a", "pkg.sub"]
    typed = import_graph(tmp_path, "pkg", runtime=False)
    assert typed["pkg.b"] == {"pkg.c"} and typed["pkg.c"] == {"pkg.b"}
    assert find_cycle({"pkg.b": {"pkg.c"}, "pkg.c": {"pkg.b"}}) == ["pkg.b", "pkg.c", "pkg.b"]
    assert find_cycle({"x": {"y"}, "y": set()}) is None


def _loaded_after(statement: str) -> set[str]:
    """The labelwise_server modules a fresh interpreter has loaded after the statement."""
    listing = f"print(*sorted(m for m in sys.modules if m.startswith('{PACKAGE}')))"
    code = f"{statement}; import sys; {listing}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


FAMILIES = {
    f"{PACKAGE}.strategies.{name}"
    for name in ("uncertainty", "committee", "bayesian", "diversity", "hybrid", "regression",
                 "multilabel", "structured", "adversarial", "prefilter", "registry")
}  # fmt: skip


def test_importing_the_strategy_types_builds_no_registry_and_imports_no_family() -> None:
    loaded = _loaded_after(f"import {PACKAGE}.strategies._types")
    assert f"{PACKAGE}.strategies._types" in loaded
    assert not loaded & FAMILIES, sorted(loaded & FAMILIES)


def test_the_strategies_package_builds_the_registry_on_first_use_of_its_names() -> None:
    assert not _loaded_after(f"import {PACKAGE}.strategies") & FAMILIES
    loaded = _loaded_after(f"from {PACKAGE}.strategies import STRATEGIES")
    assert loaded >= FAMILIES
