"""Which nearest-neighbour library for the SEALS pre-filter: FAISS or hnswlib, measured.

The `neighbours` pre-filter of core_set, typiclust and badge (strategies/index.py) asks, in
one stateless call, for each labeled item's q nearest pool candidates. Nothing survives the
call, so an index is built, searched once and thrown away: what counts is build + search.
This benchmark runs that task, one thread each (the work process's budget), side by side:

- NumPy floor: blocked ‖x‖² − 2·x·yᵀ + ‖y‖² and argpartition, exact;
- FAISS `knn` (what the service uses): exact blocked BLAS search, no index;
- FAISS IVF-Flat: sqrt(r) lists trained on a sample, 16 probed: approximate;
- hnswlib HNSW (M = 16, ef_construction = 100, ef = max(2q, 64)): approximate.

Recall is against the exact neighbour sets. hnswlib ships only a source distribution (it
builds in about 8 minutes on 2 cores); it is a benchmark-only comparison, skipped with a note
when it is not installed.

Usage: python bench/index.py [--rows 100000 1000000] [--labeled 100 1000] [--q 100]
       python bench/index.py --report     # the table again, from bench/index/results.json
Progress goes to standard error, the table to standard output (bench/run keeps it in
bench/results/index.md).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "index" / "results.json"
D = 64
_BLOCK = 1 << 16

# A search returns the neighbours and the seconds spent building an index (0: none).
Search = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, float]]


def pool(rows: int, labeled: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings from 64 Gaussians in 64-d, float32, and labeled items drawn from the same."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 4.0, (64, D)).astype(np.float32)
    x = centres[rng.integers(0, 64, rows)] + rng.normal(0.0, 1.0, (rows, D)).astype(np.float32)
    noise = rng.normal(0.0, 1.0, (labeled, D)).astype(np.float32)
    y = centres[rng.integers(0, 64, labeled)] + noise
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def numpy_floor(x: np.ndarray, y: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    best_d = np.full((y.shape[0], 0), np.inf, dtype=np.float32)
    best_i = np.zeros((y.shape[0], 0), dtype=np.int64)
    yy = (y * y).sum(1)[:, None]
    for start in range(0, x.shape[0], _BLOCK):
        block = x[start : start + _BLOCK]
        dist = yy - 2.0 * (y @ block.T) + (block * block).sum(1)[None, :]
        dist_all = np.concatenate([best_d, dist], axis=1)
        idx_all = np.concatenate(
            [best_i, np.broadcast_to(np.arange(start, start + block.shape[0]), dist.shape)], axis=1
        )
        keep = np.argpartition(dist_all, min(q, dist_all.shape[1] - 1), axis=1)[:, :q]
        best_d = np.take_along_axis(dist_all, keep, 1)
        best_i = np.take_along_axis(idx_all, keep, 1)
    return best_i, 0.0


def faiss_knn(x: np.ndarray, y: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    _, idx = faiss.knn(y, x, q)
    return np.asarray(idx), 0.0


def faiss_ivf(x: np.ndarray, y: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    lists = max(1, int(math.sqrt(x.shape[0])))
    quantizer = faiss.IndexFlatL2(D)
    index = faiss.IndexIVFFlat(quantizer, D, lists)
    sample = np.random.default_rng(0).choice(x.shape[0], min(x.shape[0], 40 * lists), replace=False)
    train = x[sample]
    index.train(train)
    index.add(x)
    built = time.perf_counter() - started
    index.nprobe = 16
    _, idx = index.search(y, q)
    return np.asarray(idx), built


def hnsw(x: np.ndarray, y: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    import hnswlib

    started = time.perf_counter()
    index = hnswlib.Index(space="l2", dim=D)
    index.init_index(max_elements=x.shape[0], M=16, ef_construction=100, random_seed=0)
    index.set_num_threads(1)
    index.add_items(x, num_threads=1)
    built = time.perf_counter() - started
    index.set_ef(max(2 * q, 64))
    idx, _ = index.knn_query(y, k=q, num_threads=1)
    return np.asarray(idx, dtype=np.int64), built


def hnswlib_installed() -> bool:
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return False
    return True


def recall(got: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(set(g.tolist()) & set(e.tolist())) for g, e in zip(got, exact, strict=True))
    return hits / exact.size


def measure(rows: int, labeled: int, q: int, methods: dict[str, Search]) -> list[dict[str, Any]]:
    x, y = pool(rows, labeled, seed=rows + labeled)
    exact, _ = faiss_knn(x, y, q)
    out = []
    for name, search in methods.items():
        started = time.perf_counter()
        got, built = search(x, y, q)
        seconds = time.perf_counter() - started
        out.append({
            "rows": rows, "labeled": labeled, "q": q, "method": name, "seconds": round(seconds, 3),
            "build_seconds": round(built, 3), "recall": round(recall(got, exact), 4),
        })  # fmt: skip
        print(f"  {rows:>9,} × {labeled:>5,}  {name:<14} {seconds:8.2f} s"
              f"  recall {out[-1]['recall']}", file=sys.stderr, flush=True)  # fmt: skip
    return out


def table(rows: list[dict[str, Any]], note: str) -> str:
    lines = [
        f"Build + search, one thread each, d = 64 float32, q nearest per labeled item ({note}):",
        "",
        "| candidates | labeled | q | method | seconds | of which index build | vs FAISS knn"
        " | recall |",
        "|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = next(b for b in rows if (b["rows"], b["labeled"], b["method"]) ==
                    (r["rows"], r["labeled"], "faiss knn"))  # fmt: skip
        ratio = r["seconds"] / base["seconds"] if base["seconds"] else float("nan")
        lines.append(
            f"| {r['rows']:,} | {r['labeled']:,} | {r['q']} | {r['method']} | "
            f"{r['seconds']:.2f} | {r['build_seconds']:.2f} | {ratio:.2f}× | {r['recall']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--labeled", type=int, nargs="+", default=[100, 1_000])
    parser.add_argument("--q", type=int, default=100)
    parser.add_argument("--report", action="store_true", help="print the table of the last run")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(RESULTS.read_text())
        print(table(saved["rows"], saved["note"]))
        return
    faiss.omp_set_num_threads(1)
    methods: dict[str, Search] = {
        "numpy floor": numpy_floor, "faiss knn": faiss_knn, "faiss ivf": faiss_ivf,
    }  # fmt: skip
    note = "hnswlib 0.8.0 built from its source distribution"
    if hnswlib_installed():
        methods["hnswlib hnsw"] = hnsw
    else:
        note = "hnswlib not installed: `pip install hnswlib` builds it from source"
    rows: list[dict[str, Any]] = []
    for n in args.rows:
        for labeled in args.labeled:
            rows += measure(n, labeled, args.q, methods)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"note": note, "rows": rows}, indent=1) + "\n")
    print(table(rows, note))


if __name__ == "__main__":
    main()
