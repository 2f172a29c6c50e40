"""`labelwise simulate` end to end through the service, and the report's arithmetic."""

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labelwise import Client, Selection
from labelwise_server.cli import main
from labelwise_server.simulation.data import DataSource, load, split
from labelwise_server.simulation.defaults import Protocol
from labelwise_server.simulation.loop import SUPPORTED_INPUTS, StrategyPlan
from labelwise_server.simulation.loop import run as run_loop
from labelwise_server.simulation.report import aulc, bootstrap_saving, first_reach
from labelwise_server.simulation.service import InProcessServer

TINY = ["--seeds", "2", "--budget", "36", "--no-progress", "--committee-size", "3"]


def _simulate(out: Path, *flags: str) -> dict[str, Any]:
    assert main(["simulate", *flags, "--out", str(out)]) == 0
    for name in ("results.md", "results.json", "learning_curves.png"):
        assert (out / name).stat().st_size > 0, name
    raw: dict[str, Any] = json.loads((out / "results.json").read_text())
    return raw


def _fitting_strategies(address: str) -> list[str]:
    with Client(address) as client:
        return [
            s.name
            for s in client.list_strategies()
            if set(s.required_inputs) <= SUPPORTED_INPUTS and s.task == "classification"
        ]


def _check_curves(dataset: dict[str, Any], strategies: list[str], start: int) -> None:
    assert sorted(dataset["curves"]) == sorted(strategies)
    assert all(0.5 < a <= 1.0 for a in dataset["full_accuracy"])
    for name, runs in dataset["curves"].items():
        assert len(runs) == 2, name
        for run in runs:
            labels = run["labels"]
            assert labels[0] == start and labels[-1] == dataset["budget"], name
            assert all(b - a == 10 or b == dataset["budget"] for a, b in itertools.pairwise(labels))
            assert all(0.0 <= a <= 1.0 for a in run["accuracy"]), name
            assert np.all(np.diff(run["cost"]) > 0), name


def test_a_tiny_run_through_its_own_service_writes_curves_table_and_plots(tmp_path: Path) -> None:
    raw = _simulate(tmp_path, "--data", "wine", "--jobs", "1", *TINY)
    with InProcessServer() as server:
        strategies = _fitting_strategies(server.address)
    assert {"random", "entropy", "bald"} <= set(strategies)
    (wine,) = raw["datasets"]
    _check_curves(wine, strategies, start=2 * 3)
    # Active learning should not be a lottery here: entropy ends at least as well as random.
    final = {n: np.mean([r["accuracy"][-1] for r in runs]) for n, runs in wine["curves"].items()}
    assert final["entropy"] >= final["random"] - 0.05
    table = (tmp_path / "results.md").read_text()
    for name in strategies:
        assert f"| `{name}` |" in table
    assert (tmp_path / "learning_curves_wine.png").stat().st_size > 0


@pytest.mark.parametrize("cost_aware", [False, True], ids=["counted", "cost_aware"])
def test_a_csv_with_costs_through_a_given_address_reports_dollars(
    tmp_path: Path, cost_aware: bool
) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(150, 4))
    labels = np.where(features[:, 0] + 0.5 * features[:, 1] > 0, "cat", "dog")
    costs = rng.uniform(1, 5, size=150)
    rows = ["a,b,c,d,cost,animal"] + [
        ",".join([*(f"{v:.4f}" for v in x), f"{c:.2f}", y])
        for x, c, y in zip(features, costs, labels, strict=True)
    ]
    data = tmp_path / "animals.csv"
    data.write_text("\n".join(rows) + "\n")
    with InProcessServer() as server:
        raw = _simulate(
            tmp_path / "out",
            *("--data", str(data), "--label-column", "animal", "--cost-column", "cost"),
            *("--address", server.address, "--jobs", "1", "--strategies", "random", "margin"),
            *(["--cost-aware"] if cost_aware else []),
            *TINY,
        )
    (animals,) = raw["datasets"]
    table = (tmp_path / "out" / "results.md").read_text()
    assert "acc gained per $1000" in table
    if not cost_aware:
        _check_curves(animals, ["random", "margin"], start=2 * 2)
        return
    # On dollars: each run spends at most what the label budget costs on average.
    assert "| strategy | AULC | final acc | $ to 90% |" in table
    dollars = 36 * costs.mean()
    for runs in animals["curves"].values():
        for run in runs:
            assert np.all(np.diff(run["cost"]) > 0)
            assert run["cost"][-1] <= dollars * 1.2  # the pool mean differs from the file's
            assert dollars - run["cost"][-1] < 5  # stops only when no item fits any more
            assert all(0.0 <= a <= 1.0 for a in run["accuracy"])


def test_worker_processes_give_the_same_curves_as_one_process(tmp_path: Path) -> None:
    flags = ("--data", "breast_cancer", "--strategies", "margin", "bald", *TINY)  # + random
    one = _simulate(tmp_path / "one", *flags, "--jobs", "1")
    two = _simulate(tmp_path / "two", *flags, "--jobs", "2")
    for dataset in (*one["datasets"], *two["datasets"]):
        for runs in dataset["curves"].values():
            for run in runs:
                del run["select_seconds"]  # wall time, the only thing allowed to differ
    assert one["datasets"] == two["datasets"]
    assert sorted(one["datasets"][0]["curves"]) == ["bald", "margin", "random"]


def test_bad_flags_are_refused_before_anything_runs(tmp_path: Path, capsys: Any) -> None:
    assert main(["simulate", "--data", "nope.txt", "--out", str(tmp_path)]) == 2
    assert main(["simulate", "--batch-size", "0", "--out", str(tmp_path)]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "results.md").exists()


def test_first_reach_and_aulc() -> None:
    labels, accuracy = [4, 14, 24], [0.5, 0.8, 0.9]
    assert first_reach(labels, accuracy, 0.8) == 14
    assert first_reach(labels, accuracy, 0.95) is None
    # Trapezoids: (0.65 * 10 + 0.85 * 10) / 20.
    assert aulc(np.array(labels, float), np.array(accuracy)) == pytest.approx(0.75)


def test_bootstrap_saving_is_zero_for_equal_runs_and_brackets_its_estimate() -> None:
    rng = np.random.default_rng(0)
    same = bootstrap_saving(np.array([50.0, 60, 70]), np.array([50.0, 60, 70]), rng, False)
    assert same.percent == pytest.approx(0) and same.low <= 0 <= same.high
    half = bootstrap_saving(np.array([40.0, 50, 60]), np.array([100.0, 90, 110]), rng, False)
    assert half.percent == pytest.approx(50)
    assert half.low <= half.percent <= half.high and half.low > 0


class _RecordingClient:
    """Stands in for labelwise.Client: records what a round sends, picks the first k items."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def select(self, *, strategies: list[str], k: int, **inputs: Any) -> dict[str, Selection]:
        self.calls.append({"k": k, **inputs})
        n = len(inputs["probabilities"])
        picks = np.arange(min(k, n), dtype=np.int64)
        return {strategies[0]: Selection(strategies[0], picks, np.zeros(len(picks)), {}, 0.0)}


def test_embedding_and_committee_strategies_get_features_and_members_of_the_unlabeled_pool() -> (
    None
):
    data_split = split(load(DataSource("wine")), 0.3, seed=0)
    client = _RecordingClient()
    plan = StrategyPlan("a_hybrid", frozenset({"probabilities", "committee", "embeddings"}))
    curve = run_loop(
        client, data_split, plan, budget=26, protocol=Protocol(committee_size=3), seed=0
    )  # type: ignore[arg-type]
    assert curve.labels == [6, 16, 26]
    first, second = client.calls
    n, d = data_split.pool_x.shape
    assert first["embeddings"].shape == (n - 6, d)
    assert first["labeled_embeddings"].shape == (6, d)
    assert second["labeled_embeddings"].shape == (16, d)
    assert first["committee"].shape == (3, n - 6, 3)
    assert np.allclose(first["committee"].sum(axis=2), 1.0)
    assert first["probabilities"].shape == (n - 6, 3)
    # The first round labeled pool items 0.. of the unlabeled list; they are gone from the next.
    assert len(second["probabilities"]) == n - 16


def test_probability_strategies_send_no_committee_nor_embeddings() -> None:
    data_split = split(load(DataSource("wine")), 0.3, seed=1)
    client = _RecordingClient()
    run_loop(
        client, data_split, StrategyPlan("margin", frozenset({"probabilities"})), 16, Protocol(), 1
    )  # type: ignore[arg-type]
    (call,) = client.calls
    assert call["committee"] is None and call["embeddings"] is None
