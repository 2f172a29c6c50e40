"""labelwise-simulate --stream: a tiny prequential run through a given service, on a CSV in
file order and on one of river's bundled streams."""

import json
from pathlib import Path

import numpy as np

from labelwise_simulate.cli import main
from labelwise_simulate.stream import load_stream, table


def _csv(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
    rows = ["a,b,label", *(f"{a:.4f},{b:.4f},{c}" for (a, b), c in zip(x, y, strict=True))]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_csv_stream_is_read_in_file_order_and_reported(tmp_path: Path, address: str) -> None:
    data = _csv(tmp_path / "s.csv")
    out = tmp_path / "out"
    code = main(["--stream", "--data", str(data), "--seeds", "2", "--budgets", "0.1",
                 "--strategies", "variable_uncertainty", "periodic", "--address", address,
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {r["strategy"] for r in runs} == {"variable_uncertainty", "periodic", "stream_random"}
    periodic = [r for r in runs if r["strategy"] == "periodic"]
    assert [r["labels_spent"] for r in periodic] == [30, 30]  # every 10th of 300 items
    assert all(0.0 <= r["accuracy"] <= 1.0 and len(r["curve"]) == 10 for r in runs)
    text = (out / "results.md").read_text()
    assert "| s (300) | 0.1 | variable_uncertainty |" in text and "periodic" in text
    assert table(runs) + "\n" == text


def test_rivers_bundled_phishing_stream_loads_without_network() -> None:
    stream = load_stream("phishing")
    assert stream.features.shape == (1250, 9) and stream.classes == 2
