"""`labelwise-simulate` end to end through the service it starts, or one it is given."""

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labelwise import Client
from labelwise_simulate.cli import main
from labelwise_simulate.loop import SUPPORTED_INPUTS, StrategyPlan
from labelwise_simulate.runner import DEFAULT_VARIANTS

TINY = [
    "--seeds",
    "2",
    "--budget",
    "36",
    "--cap-factor",
    "2",
    "--no-progress",
    "--committee-size",
    "3",
]


def _simulate(out: Path, *flags: str) -> dict[str, Any]:
    assert main([*flags, "--out", str(out)]) == 0
    for name in ("results.md", "results.json", "learning_curves.png"):
        assert (out / name).stat().st_size > 0, name
    raw: dict[str, Any] = json.loads((out / "results.json").read_text())
    return raw


def _fitting_strategies(address: str) -> list[str]:
    """The default run: every strategy that fits, and the parameterised variants offered."""
    with Client(address) as client:
        offered = client.list_strategies()
    names = [
        s.name
        for s in offered
        if set(s.required_inputs) <= SUPPORTED_INPUTS
        and s.task == "classification"
        and s.family != "stream"  # StreamSelectionService's, not the pool loop's
    ]
    params = {s.name: set(s.params) for s in offered}
    return names + [
        StrategyPlan(name, frozenset(), "", values).label
        for name, values in DEFAULT_VARIANTS
        if {k for k, _ in values} <= params[name]
    ]


def _check_curves(dataset: dict[str, Any], strategies: list[str], start: int) -> None:
    assert sorted(dataset["curves"]) == sorted(strategies)
    assert all(0.5 < a <= 1.0 for a in dataset["full_accuracy"])
    budget, cap = dataset["budget"], dataset["cap"]
    assert cap == min(2 * budget, dataset["pool_size"])
    for name, runs in dataset["curves"].items():
        assert len(runs) == 2, name
        for run, full in zip(runs, dataset["full_accuracy"], strict=True):
            labels, accuracy = run["labels"], run["accuracy"]
            assert labels[0] == start and budget in labels, name
            assert all(b - a == 10 or b in (budget, cap) for a, b in itertools.pairwise(labels))
            # Past the budget only while short of 99% of full accuracy, and never past the cap.
            reached = [a >= 0.99 * full for a in accuracy]
            if labels[-1] == budget:
                assert any(reached), name
            else:
                assert not any(reached[:-1]) and (reached[-1] or labels[-1] == cap), name
            assert all(0.0 <= a <= 1.0 for a in accuracy), name
            assert np.all(np.diff(run["cost"]) > 0), name


def test_a_tiny_run_through_its_own_service_writes_curves_table_and_plots(
    tmp_path: Path, address: str
) -> None:
    raw = _simulate(tmp_path, "--data", "wine", "--jobs", "1", *TINY)
    strategies = _fitting_strategies(address)
    assert {"random", "entropy", "bald", "auto", "entropy:class_balance=true"} <= set(strategies)
    (wine,) = raw["datasets"]
    _check_curves(wine, strategies, start=2 * 3)
    # Active learning should not be a lottery here: entropy ends at least as well as random.
    final = {
        n: np.mean([r["accuracy"][r["labels"].index(36)] for r in runs])
        for n, runs in wine["curves"].items()
    }
    assert final["entropy"] >= final["random"] - 0.05
    table = (tmp_path / "results.md").read_text()
    for name in strategies:
        assert f"| `{name}` |" in table
    assert (tmp_path / "learning_curves_wine.png").stat().st_size > 0


@pytest.mark.parametrize("cost_aware", [False, True], ids=["counted", "cost_aware"])
def test_a_csv_with_costs_through_a_given_address_reports_dollars(
    tmp_path: Path, address: str, cost_aware: bool
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
    raw = _simulate(
        tmp_path / "out",
        *("--data", str(data), "--label-column", "animal", "--cost-column", "cost"),
        *("--address", address, "--jobs", "1", "--strategies", "random", "margin"),
        *(["--cost-aware"] if cost_aware else []),
        # A given address is used as it is: a command that cannot start anything is never run.
        *("--serve-command", "/nonexistent/labelwise serve"),
        *TINY,
    )
    (animals,) = raw["datasets"]
    table = (tmp_path / "out" / "results.md").read_text()
    assert "acc gained per $1000" in table
    if not cost_aware:
        _check_curves(animals, ["random", "margin"], start=2 * 2)
        return
    # On dollars: each run spends at most what the label budget costs on average.
    assert "| final acc | Δfinal vs random | $ to 90% |" in table
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
    assert main(["--data", "nope.txt", "--out", str(tmp_path)]) == 2
    assert main(["--batch-size", "0", "--out", str(tmp_path)]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "results.md").exists()


def test_a_service_that_cannot_start_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    flags = ["--data", "wine", "--no-progress", "--out", str(tmp_path)]
    assert main([*flags, "--serve-command", "/nonexistent/labelwise serve"]) == 2
    assert "could not start '/nonexistent/labelwise'" in capsys.readouterr().err
    assert main([*flags, "--serve-command", "false"]) == 2
    assert "the labelwise service exited with 1" in capsys.readouterr().err
    assert not (tmp_path / "results.md").exists()
