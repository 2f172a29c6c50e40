"""The connector against a real Label Studio and a real `labelwise serve`.

Each test makes its own project through Label Studio's REST API, runs the connector (its CLI,
in process), and then reads the order back through Label Studio's own API, independently of
the connector's code: the Data Manager tab's task listing, and the label stream's next task
(/api/projects/<id>/next, what the "Label All Tasks" button serves an annotator), annotating
each task it serves. The expected order is computed twice: labelwise's answer to the same
arrays, and a NumPy re-implementation of the strategy.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from labelwise import Client
from labelwise_labelstudio.cli import main
from tests.labelstudio import server
from tests.onnx_models import Linear

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text">
    <Choice value="a"/><Choice value="b"/><Choice value="c"/>
  </Choices>
</View>"""
ANSWER = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["a"]}}]


def call(url: str, method: str, path: str, body: Any = None, token: str = server.TOKEN) -> Any:
    """Label Studio's REST API, with nothing of the connector."""
    request = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def make_project(url: str, data: list[dict[str, Any]], labeled: int = 0) -> tuple[int, list[int]]:
    """A project with these tasks (in this order); the first `labeled` get an annotation."""
    project = call(
        url, "POST", "/api/projects", {"title": "labelwise test", "label_config": CONFIG}
    )
    call(url, "POST", f"/api/projects/{project['id']}/import", data)
    ids = [t["id"] for t in listing(url, f"project={project['id']}")]
    assert len(ids) == len(data)
    for task in ids[:labeled]:
        call(url, "POST", f"/api/tasks/{task}/annotations", {"result": ANSWER})
    return project["id"], ids


def listing(url: str, selector: str) -> list[dict[str, Any]]:
    """Every task of /api/tasks?<selector>, in the order Label Studio lists them."""
    tasks: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = call(url, "GET", f"/api/tasks?{selector}&page={page}&page_size=7")
        tasks += answer["tasks"]
        if len(tasks) >= answer["total"]:
            return tasks
        page += 1


def labelwise_view(url: str, project: int) -> int:
    views = [v for v in call(url, "GET", f"/api/dm/views?project={project}")
             if v["data"].get("title") == "labelwise"]  # fmt: skip
    assert len(views) == 1
    return int(views[0]["id"])


def served_in_order(url: str, project: int, count: int) -> list[int]:
    """The label stream's next `count` tasks, each annotated before asking for the next."""
    served = []
    for _ in range(count):
        task = call(url, "GET", f"/api/projects/{project}/next")
        served.append(task["id"])
        call(url, "POST", f"/api/tasks/{task['id']}/annotations", {"result": ANSWER})
    return served


def sync(url: str, address: str, project: int, *flags: str) -> int:
    return main(["sync", "--url", url, "--project", str(project), "--address", address, *flags])


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.TOKEN)


def entropy(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return -(p * np.log(p)).sum(axis=1)


def test_tasks_come_back_in_labelwise_order(label_studio_url: str, labelwise_address: str) -> None:
    url = label_studio_url
    probs = np.random.default_rng(7).dirichlet([0.6, 0.6, 0.6], size=30)
    data = [{"text": f"item {i}", "probs": row.tolist()} for i, row in enumerate(probs)]
    project, ids = make_project(url, data, labeled=4)
    assert sync(url, labelwise_address, project, "--strategy", "entropy",
                "--probabilities-field", "probs") == 0  # fmt: skip

    pool = probs[4:]
    with Client(labelwise_address) as client:
        picks = client.select(strategies=["entropy"], k=len(pool), probabilities=pool)
    expected = [ids[4 + int(i)] for i in picks["entropy"].indices]
    naive = [ids[4 + int(i)] for i in np.argsort(-entropy(pool), kind="stable")]
    assert expected == naive

    # The Data Manager tab: the ranking first, then the labeled tasks (no labelwise score).
    tab = listing(url, f"view={labelwise_view(url, project)}")
    assert [t["id"] for t in tab[: len(expected)]] == expected
    assert sorted(t["id"] for t in tab[len(expected) :]) == ids[:4]
    scores = [t["predictions_score"] for t in tab[: len(expected)]]
    assert scores == sorted(scores) and scores[0] == 0.0

    settings = call(url, "GET", f"/api/projects/{project}")
    assert settings["sampling"] == "Uncertainty sampling"
    assert settings["model_version"].startswith("labelwise@entropy.")

    # What an annotator is served next, one task after another.
    assert served_in_order(url, project, 8) == expected[:8]


def test_two_annotators_work_down_the_ranking_together(
    label_studio_url: str, labelwise_address: str
) -> None:
    url = label_studio_url
    probs = np.random.default_rng(29).dirichlet([1.0, 1.0, 1.0], size=12)
    data = [{"text": f"item {i}", "probs": row.tolist()} for i, row in enumerate(probs)]
    project, ids = make_project(url, data)
    assert sync(url, labelwise_address, project, "--strategy", "entropy",
                "--probabilities-field", "probs") == 0  # fmt: skip
    expected = [ids[int(i)] for i in np.argsort(-entropy(probs), kind="stable")]

    # Both ask before either submits: each holds a task, the second the next one down.
    tokens = [server.TOKEN, server.SECOND_TOKEN]
    held = [call(url, "GET", f"/api/projects/{project}/next", token=t)["id"] for t in tokens]
    served = list(held)
    for step in range(8):
        who = step % 2
        call(url, "POST", f"/api/tasks/{held[who]}/annotations", {"result": ANSWER},
             token=tokens[who])  # fmt: skip
        held[who] = call(url, "GET", f"/api/projects/{project}/next", token=tokens[who])["id"]
        served.append(held[who])
    assert served == expected[:10]


def test_a_second_run_changes_nothing_and_a_run_after_labeling_follows_the_pool(
    label_studio_url: str, labelwise_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = label_studio_url
    probs = np.random.default_rng(11).dirichlet([1.0, 1.0, 1.0], size=20)
    data = [{"text": f"item {i}", "probs": row.tolist()} for i, row in enumerate(probs)]
    project, _ = make_project(url, data)
    flags = ["--strategy", "margin", "--probabilities-field", "probs", "--json"]
    assert sync(url, labelwise_address, project, *flags) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["changed"] and first["created"] == 20
    assert sync(url, labelwise_address, project, *flags) == 0
    second = json.loads(capsys.readouterr().out)
    assert not second["changed"] and second["created"] == 0 and second["deleted"] == 0
    assert second["model_version"] == first["model_version"]
    assert call(url, "GET", f"/api/projects/{project}/model-versions") == {
        first["model_version"]: 20
    }
    labelwise_view(url, project)  # still exactly one tab

    served = served_in_order(url, project, 3)
    assert served == first["ranking"][:3]
    assert sync(url, labelwise_address, project, *flags) == 0
    third = json.loads(capsys.readouterr().out)
    assert third["changed"] and third["model_version"] != first["model_version"]
    assert third["ranking"] == [t for t in first["ranking"] if t not in served]
    # The old version is gone; only the new one's 17 predictions remain.
    assert call(url, "GET", f"/api/projects/{project}/model-versions") == {
        third["model_version"]: 17
    }
    tab = listing(url, f"view={labelwise_view(url, project)}")
    assert [t["id"] for t in tab[:17]] == third["ranking"]


def test_model_mode_ranks_a_batch_with_the_callers_onnx_model(
    label_studio_url: str, labelwise_address: str, tmp_path: Path
) -> None:
    url = label_studio_url
    rng = np.random.default_rng(3)
    model = Linear.random(rng, d=4, c=3)
    path = tmp_path / "classifier.onnx"
    path.write_bytes(model.onnx())
    features = rng.normal(size=(25, 4)).astype(np.float32)
    data = [{"text": f"item {i}", "x": row.tolist()} for i, row in enumerate(features)]
    project, ids = make_project(url, data)
    assert sync(url, labelwise_address, project, "--strategy", "margin", "--model", str(path),
                "--features-field", "x", "--batch-size", "6") == 0  # fmt: skip

    logits = model.logits(features)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    top2 = np.sort(p, axis=1)[:, -2:]
    naive = [ids[int(i)] for i in np.argsort(top2[:, 1] - top2[:, 0], kind="stable")[:6]]
    with Client(labelwise_address) as client:
        picks = client.select(strategies=["margin"], k=6, model=path.read_bytes(),
                              model_inputs=features)  # fmt: skip
    assert [ids[int(i)] for i in picks["margin"].indices] == naive

    assert sum(call(url, "GET", f"/api/projects/{project}/model-versions").values()) == 6
    tab = listing(url, f"view={labelwise_view(url, project)}")
    assert [t["id"] for t in tab[:6]] == naive
    assert all(t["predictions_score"] is None for t in tab[6:])
    assert served_in_order(url, project, 6) == naive


def test_errors_are_named_and_exit_non_zero(
    label_studio_url: str,
    labelwise_address: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = label_studio_url
    data = [{"text": "a", "probs": [0.2, 0.8]}, {"text": "b", "probs": [0.5, "x"]}]
    project, ids = make_project(url, data)
    flags = ["--strategy", "entropy", "--probabilities-field", "probs"]

    assert sync(url, labelwise_address, project, *flags) == 2
    assert f"task {ids[1]}: data field 'probs'" in capsys.readouterr().err

    assert sync(url, labelwise_address, 987654, *flags) == 1
    assert "GET /api/projects/987654: HTTP 404" in capsys.readouterr().err

    assert sync(url, labelwise_address, project, "--strategy", "no_such_strategy",
                "--probabilities-field", "text") == 2  # fmt: skip
    assert "data field 'text' must be a non-empty list" in capsys.readouterr().err

    call(url, "PATCH", f"/api/tasks/{ids[1]}", {"data": {"text": "b", "probs": [0.5, 0.5]}})
    assert sync(url, labelwise_address, project, "--strategy", "no_such_strategy",
                "--probabilities-field", "probs") == 2  # fmt: skip
    assert "labelwise: INVALID_ARGUMENT" in capsys.readouterr().err

    assert sync(url, f"127.0.0.1:{server.free_port()}", project, *flags, "--deadline", "5") == 1
    assert "labelwise: UNAVAILABLE" in capsys.readouterr().err

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-a-token")
    assert sync(url, labelwise_address, project, *flags) == 1
    assert "HTTP 401" in capsys.readouterr().err
    assert sync(f"http://127.0.0.1:{server.free_port()}", labelwise_address, project, *flags) == 1
    assert "cannot reach Label Studio" in capsys.readouterr().err


def test_a_personal_access_token_works_and_clear_removes_what_sync_wrote(
    label_studio_url: str,
    labelwise_address: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = label_studio_url
    data = [{"text": f"item {i}", "probs": [i / 10, 1 - i / 10]} for i in range(1, 10)]
    project, _ = make_project(url, data)
    token = call(url, "POST", "/api/token/")
    personal = token.get("token") or token.get("refresh")
    assert isinstance(personal, str) and personal.startswith("eyJ")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", personal)
    assert sync(url, labelwise_address, project, "--strategy", "least_confidence",
                "--probabilities-field", "probs", "--keep-sampling", "--no-view") == 0  # fmt: skip
    assert "ranked 9 of 9 unlabeled tasks" in capsys.readouterr().out
    settings = call(url, "GET", f"/api/projects/{project}")
    assert settings["sampling"] == "Sequential sampling"
    assert settings["model_version"].startswith("labelwise@least_confidence.")
    assert not [v for v in call(url, "GET", f"/api/dm/views?project={project}")
                if v["data"].get("title") == "labelwise"]  # fmt: skip

    assert main(["clear", "--url", url, "--project", str(project)]) == 0
    assert "deleted 9 predictions" in capsys.readouterr().out
    assert call(url, "GET", f"/api/projects/{project}/model-versions") == {}
    assert not call(url, "GET", f"/api/projects/{project}")["model_version"]


def k_center_greedy(
    x: npt.NDArray[np.float64], labeled: npt.NDArray[np.float64], k: int
) -> list[int]:
    """Naive core-set: each pick is the point farthest from the labeled set and earlier picks."""
    nearest = np.min(np.linalg.norm(x[:, None, :] - labeled[None, :, :], axis=2), axis=1)
    picks: list[int] = []
    for _ in range(k):
        pick = int(np.argmax(nearest))
        picks.append(pick)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[pick], axis=1))
    return picks


def test_a_diversity_strategy_covers_the_pool_around_the_labeled_tasks(
    label_studio_url: str, labelwise_address: str
) -> None:
    url = label_studio_url
    embeddings = np.random.default_rng(21).normal(size=(24, 3))
    data = [{"text": f"item {i}", "vec": row.tolist()} for i, row in enumerate(embeddings)]
    project, ids = make_project(url, data, labeled=3)
    assert sync(url, labelwise_address, project, "--strategy", "core_set",
                "--embeddings-field", "vec", "--batch-size", "5") == 0  # fmt: skip
    naive = [ids[3 + i] for i in k_center_greedy(embeddings[3:], embeddings[:3], 5)]
    tab = listing(url, f"view={labelwise_view(url, project)}")
    assert [t["id"] for t in tab[:5]] == naive
    assert served_in_order(url, project, 5) == naive


def test_the_loop_follows_annotations_until_interrupted(
    label_studio_url: str, labelwise_address: str
) -> None:
    url = label_studio_url
    probs = np.random.default_rng(5).dirichlet([1.0, 1.0, 1.0], size=12)
    data = [{"text": f"item {i}", "probs": row.tolist()} for i, row in enumerate(probs)]
    project, _ = make_project(url, data)
    process = subprocess.Popen(
        [sys.executable, "-m", "labelwise_labelstudio", "sync", "--url", url,
         "--project", str(project), "--address", labelwise_address, "--strategy", "entropy",
         "--probabilities-field", "probs", "--interval", "0.5", "--json"],
        env={**os.environ, "LABEL_STUDIO_API_KEY": server.TOKEN},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["changed"] and len(first["ranking"]) == 12
        served = served_in_order(url, project, 2)
        assert served == first["ranking"][:2]
        # A sync may fall between the two annotations: wait for the one that saw both.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            report = json.loads(process.stdout.readline())
            if report["labeled"] == 2:
                break
        assert report["ranking"] == first["ranking"][2:]
        assert not report["missing"]
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "interrupted" in err


def test_a_sync_cut_short_is_completed_by_the_next(
    label_studio_url: str, labelwise_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = label_studio_url
    probs = np.random.default_rng(17).dirichlet([1.0, 1.0], size=10)
    data = [{"text": f"item {i}", "probs": row.tolist()} for i, row in enumerate(probs)]
    project, ids = make_project(url, data)
    flags = ["--strategy", "ratio", "--probabilities-field", "probs", "--json"]
    assert sync(url, labelwise_address, project, *flags) == 0
    version = json.loads(capsys.readouterr().out)["model_version"]
    # What an import interrupted after its first predictions leaves: part of the version,
    # which the project does not follow yet.
    assert main(["clear", "--url", url, "--project", str(project)]) == 0
    partial = [{"task": t, "score": 0.5, "model_version": version, "result": []} for t in ids[:3]]
    call(url, "POST", f"/api/projects/{project}/import/predictions", partial)
    capsys.readouterr()
    assert sync(url, labelwise_address, project, *flags) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_version"] == version
    assert report["changed"] and report["deleted"] == 3 and report["created"] == 10
    assert call(url, "GET", f"/api/projects/{project}/model-versions") == {version: 10}
    assert call(url, "GET", f"/api/projects/{project}")["model_version"] == version
