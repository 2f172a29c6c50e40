"""docs/label-studio.md's examples run as written, against a real Label Studio and a real
`labelwise serve`: its shell blocks in order (http://localhost:8080 and localhost:50051 meaning
the test's servers), with its tasks.json and a classifier.onnx made here. The blocks marked
`<!-- not run: ... -->` install packages or start Label Studio, which the fixtures do.
The printed report must read as the page shows it, and the order must be labelwise's."""

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from labelwise_labelstudio.cli import build_parser
from tests.labelstudio import server
from tests.onnx_models import Linear

PAGE = Path(__file__).resolve().parents[2] / "docs" / "label-studio.md"
FENCE = re.compile(
    r"^(?:<!-- not run: (?P<why>[^>]*) -->\n\n)?```(?P<lang>\w+)\n(?P<body>.*?)^```$", re.S | re.M
)


def blocks() -> list[tuple[str, str, str | None]]:
    return [(m["lang"], m["body"], m["why"]) for m in FENCE.finditer(PAGE.read_text())]


def get(url: str, path: str) -> Any:
    request = urllib.request.Request(url + path, headers={"Authorization": f"Token {server.TOKEN}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def pattern(text: str) -> str:
    """A printed report's lines as a regex: any number or digest where the page shows one."""
    parts = re.split(r"([0-9a-f]{12}|\d+)", text.strip())
    return "".join(
        re.escape(part) if i % 2 == 0 else ("[0-9a-f]{12}" if len(part) == 12 else r"\d+")
        for i, part in enumerate(parts)
    )


def test_the_page_examples_run(
    label_studio_url: str, labelwise_address: str, tmp_path: Path
) -> None:
    found = blocks()
    shell = [(body, why) for lang, body, why in found if lang == "bash"]
    assert [why for _, why in shell if why] == [
        "an install",
        "starts a server (tests/labelstudio/server.py starts one the same way)",
    ]
    runnable = [body for body, why in shell if not why]
    assert len(runnable) == 4  # project and import, sync, model-mode sync, clear
    (tasks_json,) = [body for lang, body, _ in found if lang == "json"]
    (report,) = [body for lang, body, _ in found if lang == "text"]
    (tmp_path / "tasks.json").write_text(tasks_json)
    tasks = json.loads(tasks_json)
    model = Linear.random(np.random.default_rng(5), d=4, c=2)
    (tmp_path / "classifier.onnx").write_bytes(model.onnx())

    env = {**os.environ, "LABEL_STUDIO_API_KEY": server.TOKEN}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("LABEL_STUDIO_URL", None)

    def run(body: str) -> str:
        script = body.replace("http://localhost:8080", label_studio_url)
        script = script.replace("localhost:50051", labelwise_address)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    out = run(runnable[0] + '\necho; echo "PROJECT=$PROJECT"')
    env["PROJECT"] = re.findall(r"^PROJECT=(\d+)$", out, re.M)[-1]
    project = int(env["PROJECT"])
    listed = get(label_studio_url, f"/api/tasks?project={project}&page_size=100")["tasks"]
    ids = [t["id"] for t in listed]
    assert [t["data"]["text"] for t in listed] == [t["text"] for t in tasks]

    # entropy: the page's printed order, and the order of the page's probabilities.
    out = run(runnable[1])
    assert re.fullmatch(pattern(report), out.strip()), out
    probs = np.array([t["probs"] for t in tasks])
    by_entropy = [ids[i] for i in np.argsort((probs * np.log(probs)).sum(axis=1), kind="stable")]
    printed = [int(x) for x in out.split(": ", 1)[1].split("\n")[0].split(", ")]
    assert printed == by_entropy
    shown = [int(x) for x in report.split(": ", 1)[1].split("\n")[0].split(", ")]
    assert [ids.index(t) + 1 for t in printed] == shown
    views = get(label_studio_url, f"/api/dm/views?project={project}")
    (view,) = [v["id"] for v in views if v["data"]["title"] == "labelwise"]
    tab = get(label_studio_url, f"/api/tasks?view={view}&page_size=100")["tasks"]
    assert [t["id"] for t in tab] == by_entropy

    # margin on the classifier's probabilities, the top 2 as a batch.
    run(runnable[2])
    logits = model.logits(np.array([t["features"] for t in tasks], dtype=np.float32))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    by_margin = [ids[i] for i in np.argsort(np.abs(p[:, 0] - p[:, 1]), kind="stable")[:2]]
    tab = get(label_studio_url, f"/api/tasks?view={view}&page_size=100")["tasks"]
    assert [t["id"] for t in tab[:2]] == by_margin
    assert [t["predictions_score"] for t in tab[2:]] == [None] * 3

    run(runnable[3])
    assert get(label_studio_url, f"/api/projects/{project}/model-versions") == {}


def test_the_connector_readme_command_parses() -> None:
    readme = PAGE.parents[1] / "tools" / "labelstudio" / "README.md"
    commands = [
        shlex.split(line)
        for body in re.findall(r"^```bash\n(.*?)^```$", readme.read_text(), re.S | re.M)
        for line in body.replace("\\\n", " ").splitlines()
        if line.startswith("labelwise-labelstudio ")
    ]
    assert len(commands) == 1
    args = build_parser().parse_args(commands[0][1:])
    assert (args.command, args.strategy, args.probabilities_field) == ("sync", "entropy", "probs")
