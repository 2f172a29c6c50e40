"""The server and the simulate tool meet only through the client: an import scan.

labelwise_server imports nothing of labelwise_simulate; labelwise_simulate imports nothing of
labelwise_server, nor the generated stubs, and only what its own pyproject declares.
"""

import sys
import tomllib
from pathlib import Path

import pytest

from tests.test_layout import imported_modules  # absolute imports, lazy ones too

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "service" / "labelwise_server"
TOOL = ROOT / "tools" / "simulate"
# Import names of the distributions the tool's pyproject may declare.
IMPORT_NAMES = {
    "labelwise": "labelwise",
    "numpy": "numpy",
    "scikit-learn": "sklearn",
    "matplotlib": "matplotlib",
    "pillow": "PIL",
    "tqdm": "tqdm",
    "threadpoolctl": "threadpoolctl",
    "scipy": "scipy",
    "river": "river",
    "mlxtend": "mlxtend",
    "vega-datasets": "vega_datasets",
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _declared() -> set[str]:
    project = tomllib.loads((TOOL / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = requirement.split(";")[0].split("[")[0]
        for stop in "<>=!~ ":
            name = name.split(stop)[0]
        names.add(IMPORT_NAMES[name.strip().lower()])
    return names


SERVER_FILES = sorted(SERVER.rglob("*.py"))
TOOL_FILES = sorted((TOOL / "labelwise_simulate").rglob("*.py"))


@pytest.mark.parametrize("path", SERVER_FILES, ids=lambda p: p.relative_to(SERVER).as_posix())
def test_the_server_imports_nothing_of_the_tool(path: Path) -> None:
    bad = [m for m in imported_modules(path) if _within(m, "labelwise_simulate")]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", TOOL_FILES, ids=lambda p: p.name)
def test_the_tool_reaches_the_server_only_through_the_client(path: Path) -> None:
    allowed = _declared() | {"labelwise_simulate"} | set(sys.stdlib_module_names)
    modules = imported_modules(path)
    server = [m for m in modules if _within(m, "labelwise_server") or _within(m, "labelwise.v1")]
    assert not server, f"{path.name} imports {server}"
    undeclared = sorted({m.split(".")[0] for m in modules} - allowed)
    assert not undeclared, f"{path.name} imports {undeclared}, not in tools/simulate/pyproject"


def test_the_scan_sees_both_packages_and_catches_a_crossing(tmp_path: Path) -> None:
    assert len(SERVER_FILES) >= 10 and len(TOOL_FILES) >= 6
    assert not (SERVER / "simulation").exists()
    sample = tmp_path / "bad.py"
    sample.write_text(
        "import numpy\n"
        "def later():\n"
        "    from labelwise_server.config import Config\n"
        "    from labelwise import v1\n"
    )
    assert [m for m in imported_modules(sample) if m.startswith("labelwise")] == [
        "labelwise_server.config",
        "labelwise_server.config.Config",
        "labelwise",
        "labelwise.v1",
    ]


def test_the_server_wheel_and_image_package_only_the_server() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "service/labelwise_server"
    ]
    assert "labelwise_simulate" not in {p.name for p in SERVER.iterdir()}
    # Nor does the image: .dockerignore lets in none of tools/.
    admitted = [line for line in (ROOT / ".dockerignore").read_text().split() if line[:1] == "!"]
    assert admitted and not [line for line in admitted if line[1:].startswith("tools")]
