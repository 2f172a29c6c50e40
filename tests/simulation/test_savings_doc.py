"""docs/savings.md is generated from the committed curves under bench/savings/, never edited."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _savings() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_savings", ROOT / "bench" / "savings.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_is_what_the_committed_curves_give(tmp_path: Path) -> None:
    savings = _savings()
    doc = tmp_path / "savings.md"
    savings.table(doc)
    assert doc.read_text() == (ROOT / "docs" / "savings.md").read_text()


def test_every_built_in_data_set_has_10_seeds_of_random_and_the_issue_15_strategies() -> None:
    savings = _savings()
    results, _ = savings.merged()
    assert [d.name for d in results.datasets] == list(savings.BUILT_IN)
    for dataset in results.datasets:
        assert {"random", "margin", "entropy", "auto", savings.CLASS_BALANCED} <= set(
            dataset.curves
        ), dataset.name
        assert all(len(runs) == 10 for runs in dataset.curves.values()), dataset.name


def test_batches_that_disagree_on_random_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    savings = _savings()
    source = sorted((savings.STORE / "wine").glob("*.json"))
    assert len(source) >= 2
    for path in source[:2]:
        (tmp_path / "wine").mkdir(exist_ok=True)
        (tmp_path / "wine" / path.name).write_text(path.read_text())
    monkeypatch.setattr(savings, "STORE", tmp_path)
    savings.merged()  # the committed batches agree
    other = tmp_path / "wine" / source[1].name
    raw = json.loads(other.read_text())
    raw["datasets"][0]["curves"]["random"][0]["accuracy"][-1] += 0.01
    other.write_text(json.dumps(raw))
    with pytest.raises(SystemExit, match="random's curves differ"):
        savings.merged()
