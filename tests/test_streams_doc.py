"""docs/streams.md's result tables are what bench/stream.py renders from the committed result
files (bench/stream/results.json, bench/simulation/stream/results.json)."""

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_tables_of_docs_streams_are_generated_from_the_committed_results(
    tmp_path: Path,
) -> None:
    spec = importlib.util.spec_from_file_location("bench_stream", ROOT / "bench" / "stream.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = tmp_path / "streams.md"
    shutil.copyfile(ROOT / "docs" / "streams.md", doc)
    bench.render_docs(json.loads((ROOT / "bench" / "stream" / "results.json").read_text()), doc)
    assert doc.read_text() == (ROOT / "docs" / "streams.md").read_text(), (
        "docs/streams.md is stale: run python bench/stream.py --render-docs"
    )
