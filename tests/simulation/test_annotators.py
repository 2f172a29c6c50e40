"""`labelwise-simulate annotators`: a tiny run through the service, the summary maths, and the
committed tables of docs/label-quality.md regenerated from the committed results."""

import json
from pathlib import Path

import numpy as np
import pytest

from labelwise_simulate import annotators as sim
from labelwise_simulate.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "simulation" / "annotators" / "results.json"
DOCS = ROOT / "docs" / "label-quality.md"


def test_a_tiny_run_spends_within_each_round_and_only_activelab_relabels(
    address: str, tmp_path: Path
) -> None:
    code = cli_main(["annotators", "--data", "breast_cancer", "--seeds", "1", "--rounds", "2",
                     "--address", address, "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    curves = results["curves"]
    assert sorted({c["policy"] for c in curves}) == sorted(sim.POLICIES) and len(curves) == 4
    per_round = sim.Setup().round_budget
    for curve in curves:
        steps = np.diff(curve["spent"])
        assert np.all(steps >= 0) and np.all(steps <= per_round + 1e-9)
        assert len(curve["accuracy"]) == 3
        for name in sim.CONSENSUS:
            assert len(curve[name]) == len(curve[f"multi_{name}"]) == 3
            assert all(0 <= v <= 1 for v in curve[name])
            for share, items in zip(curve[f"multi_{name}"], curve["multi_items"], strict=True):
                assert (share is None) == (items == 0)
        assert all(0 <= v <= 1 for v in curve["label_accuracy"])
        # Until an item has two labels CROWDLAB is the majority vote.
        for r, items in enumerate(curve["multi_items"]):
            if items == 0:
                assert curve["crowdlab"][r] == curve["majority"][r]
        if curve["policy"] != "activelab":
            assert curve["relabels"][-1] == 0
            assert curve["labeled"][-1] == curve["annotations"][-1]
            assert curve["multi_items"][-1] == 0
    text = (tmp_path / "results.md").read_text()
    assert (
        "| breast_cancer | activelab |" in text
        and "| breast_cancer | new_random_annotators |" in text
    )
    assert (tmp_path / "annotators.png").stat().st_size > 0


def test_accuracy_at_a_spend_and_per_dollar_are_steps() -> None:
    curve = {"spent": [10.0, 20.0, 30.0], "accuracy": [0.5, 0.7, 0.9]}
    assert sim.at_spend(curve, 25.0) == 0.7
    assert sim.at_spend(curve, 30.0) == 0.9
    # 0.5 over [10, 20], 0.7 over [20, 30]: (5 + 7) / 20
    assert sim.aulc(curve, 30.0) == pytest.approx(0.6)
    mean, low, high = sim.mean_interval(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and low < 2.0 < high


def test_the_committed_tables_are_the_committed_results() -> None:
    results = json.loads(RESULTS.read_text())
    text = DOCS.read_text()
    block = text.split(sim.BEGIN, 1)[1].split(sim.END, 1)[0]
    assert block == "\n" + sim.table(results)


def test_a_tiny_static_check_labels_every_item_as_asked(address: str, tmp_path: Path) -> None:
    code = cli_main(["annotators", "--static", "--data", "breast_cancer", "--seeds", "1",
                     "--address", address, "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "static" / "results.json").read_text())
    records = results["records"]
    assert [r["labels_per_item"] for r in records] == list(sim.STATIC_LABELS)
    for record in records:
        assert all(0 <= record[k] <= 1 for k in sim.CONSENSUS if k != "crowdlab")
        # CROWDLAB needs an item with two labels.
        assert (record["crowdlab"] is None) == (record["labels_per_item"] == 1)
    table = (tmp_path / "static" / "results.md").read_text()
    assert "| breast_cancer | 3 |" in table and "| breast_cancer | 1 |" in table


def test_the_committed_static_table_is_the_committed_results() -> None:
    results = json.loads((RESULTS.parent / "static" / "results.json").read_text())
    block = DOCS.read_text().split(sim.STATIC_BEGIN, 1)[1].split(sim.END, 1)[0]
    assert block == "\n" + sim.static_table(results)
