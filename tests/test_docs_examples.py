"""Every Python example in the README, the documentation site and the client READMEs runs
against a real `labelwise serve` (and every grpcurl command in them, with grpcurl).

A page's ```python blocks run in order in one namespace, in a fresh directory, with
`localhost:50051` meaning the test's server: the data an example needs is made in the example.
Go, TypeScript and Java examples run in their clients' suites (example_test.go,
test/examples.test.ts, ExamplesTest.java), whose regions scripts/docs copies into the pages.
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADDRESS = "localhost:50051"
GRPCURL = shutil.which("grpcurl") or (
    str(ROOT / ".tools/bin/grpcurl") if (ROOT / ".tools/bin/grpcurl").exists() else None
)


def pages() -> list[Path]:
    """Hand-written pages: generated ones (scripts/docs) copy a README that is listed itself."""
    found = [ROOT / "README.md", *sorted(ROOT.glob("clients/*/README.md"))]
    found.append(ROOT / "tools/simulate/README.md")
    found += sorted((ROOT / "bench/notes").glob("*.md"))  # the evidence pages' text
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if not page.read_text().startswith("<!-- GENERATED"):
            found.append(page)
    return found


# A block that needs more than a labelwise server (e.g. another service) is marked by the
# line `<!-- docs-test: skip REASON -->` right above its fence; it is reported as skipped.
_SKIP = re.compile(r"<!-- docs-test: skip (.+?) -->\n$")


def fenced(page: Path, language: str) -> list[tuple[str, str]]:
    """(code, the reason it is not run, or "") of each block in the language, in order."""
    found = []
    text = page.read_text()
    for match in re.finditer(rf"^```{language}\n(.*?)^```$", text, re.S | re.M):
        skip = _SKIP.search(text, 0, match.start())
        found.append((match.group(1), skip.group(1) if skip else ""))
    return found


def blocks(page: Path, language: str) -> list[str]:
    return [code for code, skip in fenced(page, language) if not skip]


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


PYTHON_PAGES = [p for p in pages() if blocks(p, "python")]


def is_grpcurl(block: str) -> bool:
    lines = [line for line in block.split("\n") if line.strip() and not line.startswith("#")]
    return bool(lines) and lines[0].startswith("grpcurl ")


# Shell blocks of grpcurl commands, each run whole by bash.
GRPCURL_BLOCKS = [
    (relative(page), block)
    for page in pages()
    for block in blocks(page, "(?:bash|sh)")
    if is_grpcurl(block)
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docs-server")
    port_file = tmp / "port"
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with (tmp / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
             "--port", "0", "--port-file", str(port_file), "--metrics-port", "0",
             "--workers", "1", "--grace-seconds", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, (tmp / "server.log").read_text()
            assert time.monotonic() < deadline, "labelwise serve did not start"
            time.sleep(0.1)
        yield f"127.0.0.1:{port_file.read_text().strip()}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()


def test_the_pages_have_examples() -> None:
    assert ROOT / "README.md" in PYTHON_PAGES
    assert ROOT / "docs/getting-started.md" in PYTHON_PAGES
    assert any(page == "README.md" for page, _ in GRPCURL_BLOCKS)


SKIPPED = [
    (relative(page), reason)
    for page in pages()
    for language in ("python", "(?:bash|sh)")
    for _, reason in fenced(page, language)
    if reason
]


@pytest.mark.parametrize(("page", "reason"), SKIPPED)
def test_examples_not_run_say_why(page: str, reason: str) -> None:
    pytest.skip(f"{page}: {reason}")


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=relative)
def test_python_examples_run(
    page: Path, server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, code in enumerate(blocks(page, "python"), 1):
        assert "localhost:50051" in code or "Client(" not in code, (
            f"{relative(page)} block {number}: examples call localhost:50051"
        )
        compiled = compile(
            code.replace(ADDRESS, server), f"{relative(page)} block {number}", "exec"
        )
        exec(compiled, namespace)


@pytest.mark.skipif(
    GRPCURL is None and not os.environ.get("CI"),
    reason="grpcurl is not installed (scripts/bootstrap --dev: go install)",
)
@pytest.mark.parametrize(("page", "block"), GRPCURL_BLOCKS, ids=[p for p, _ in GRPCURL_BLOCKS])
def test_grpcurl_examples_run(page: str, block: str, server: str) -> None:
    assert GRPCURL is not None, "grpcurl is missing: scripts/bootstrap --dev installs it"
    env = dict(os.environ, PATH=f"{Path(GRPCURL).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.replace(ADDRESS, server)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, f"{page}:\n{block}\n{done.stderr}"
    assert done.stdout.strip()
