"""A real Label Studio for the connector's tests: the registry's package, SQLite, loopback.

Label Studio pins many packages of its own (Django and more), so it gets a virtualenv of its
own, away from the project's lock, as checkov does in scripts/check-deploy:
.tools/label-studio-<version>/ (or $LABELWISE_LABEL_STUDIO_HOME). The first use installs it
with uv
and runs `label-studio init` once into a template data directory (database migrations and a
user whose legacy API token is known); each server then starts from a copy of the template,
which skips the migrations. A file lock keeps concurrent test runs from installing twice.
"""

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VERSION = "1.23.2"
USERNAME = "connector-test@example.com"
PASSWORD = "connector-test-password"
TOKEN = "0123456789abcdef0123456789abcdef01234567"  # a legacy API token, set at init
SECOND_USERNAME = "second-annotator@example.com"  # another annotator of the same organisation
SECOND_TOKEN = "76543210fedcba9876543210fedcba9876543210"
TEMPLATE = f"{VERSION}: two annotators"  # what the template holds; another is made anew
REPO = Path(__file__).resolve().parents[2]
START_SECONDS = 300.0
UV_VERSION = "0.13.8"  # scripts/lock's


def home() -> Path:
    configured = os.environ.get("LABELWISE_LABEL_STUDIO_HOME")
    return Path(configured) if configured else REPO / ".tools" / f"label-studio-{VERSION}"


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO"))}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LATEST_VERSION_CHECK="false",  # no call to PyPI at start
        COLLECT_ANALYTICS="false",
        LOG_LEVEL="WARNING",
        DEBUG="false",
        PYTHONUNBUFFERED="1",
    )
    env.pop("HOST", None)  # Label Studio reads HOST as its public URL
    return env


def _run(command: list[str], env: dict[str, str] | None, what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{tail}")


def uv() -> str:
    """uv, from .tools/uv as scripts/lock installs it (there first if missing): it installs
    Label Studio's ~300 packages several times faster than pip, from its cache on re-runs."""
    tool = REPO / ".tools" / "uv"
    executable = tool / "bin" / "uv"
    if not executable.exists():
        _run([sys.executable, "-m", "venv", str(tool)], None, "python -m venv .tools/uv")
        _run(
            [
                str(tool / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"uv=={UV_VERSION}",
            ],
            None,
            f"pip install uv=={UV_VERSION}",
        )
    return str(executable)


def install() -> Path:
    """Label Studio's executable, installed (and its template initialised) if not yet."""
    root = home()
    root.mkdir(parents=True, exist_ok=True)
    executable = root / "venv" / "bin" / "label-studio"
    template = root / "template"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "venv" / ".installed").exists():
            shutil.rmtree(root / "venv", ignore_errors=True)
            venv = [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")]
            _run(venv, None, "python -m venv")
            python = str(root / "venv" / "bin" / "python")
            _run(
                [uv(), "pip", "install", "--quiet", "--python", python, f"label-studio=={VERSION}"],
                None,
                f"uv pip install label-studio=={VERSION}",
            )
            (root / "venv" / ".installed").write_text(VERSION)
        marker = template / ".initialised"
        if not (marker.exists() and marker.read_text() == TEMPLATE):
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir()
            # The first init migrates the database and makes the organisation (with legacy
            # tokens on); the second adds a second annotator to it.
            for username, token in ((USERNAME, TOKEN), (SECOND_USERNAME, SECOND_TOKEN)):
                _run(
                    [
                        str(executable),
                        "init",
                        "--data-dir",
                        str(template),
                        "--quiet",
                        "--username",
                        username,
                        "--password",
                        PASSWORD,
                        "--user-token",
                        token,
                        "--enable-legacy-api-token",
                    ],
                    _env(template),
                    f"label-studio init ({username})",
                )
            marker.write_text(TEMPLATE)
    return executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running() -> Iterator[str]:
    """A Label Studio server on 127.0.0.1:<free port> with a fresh copy of the template;
    yields its URL and stops it (and removes its data) afterwards."""
    executable = install()
    with tempfile.TemporaryDirectory(prefix="labelwise-label-studio-") as scratch:
        data_dir = Path(scratch) / "data"
        shutil.copytree(home() / "template", data_dir)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = Path(scratch) / "label-studio.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [
                    str(executable),
                    "start",
                    "--no-browser",
                    "--data-dir",
                    str(data_dir),
                    "--internal-host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--username",
                    USERNAME,
                    "--password",
                    PASSWORD,
                ],
                env=_env(data_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + START_SECONDS
            while not _healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text()[-3000:]
                    raise RuntimeError(f"Label Studio did not start at {url}:\n{tail}")
                time.sleep(0.25)
            yield url
        finally:
            # Its own session: stop the server and anything it started, nothing else.
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


if __name__ == "__main__":
    # scripts/test: install and initialise ahead of pytest, so that the time it takes (and a
    # failure) shows under its own heading.
    started = time.monotonic()
    print(f"Label Studio {VERSION} at {install()} ({time.monotonic() - started:.0f} s)")
