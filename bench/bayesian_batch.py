"""BatchBALD benchmark: 2,000 items × 20 MC samples, c = 10, batch 10, 10,000 joint samples.

Side by side in one run, interleaved repeat by repeat, on the same inputs:
  - labelwise's batch_bald (float32 and float64 input);
  - the NumPy floor: the same estimator scoring every candidate at every pick with
    one blocked [S, m]·[m, n·c] matmul (batch_bald_select(..., prune=False));
  - scikit-activeml's batch_bald(probas, 10, n_MC_samples=10_000);
  - baal's BatchBALD, only if torch is importable (it is not a dependency).
Two pools: MC-dropout-like samples (softmax of per-item logits plus per-item
noise) and i.i.d. Dirichlet(1) members (every sample disagrees: the hardest
case for pruning). Also: power_bald over bald on the same pool, and how far the
batches agree (the first five picks are exact in both; then both sample).
BLAS threads are limited to --threads for every contender (default 1: the
machine's cores are shared).

Usage: python bench/bayesian_batch.py [--repeats 3] [--peer-repeats 1] [--threads 1]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

N, M, C, K, SAMPLES = 2_000, 20, 10, 10, 10_000
OURS = "labelwise batch_bald, float32"
PEER = "scikit-activeml batch_bald"


def mc_dropout_like(seed: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N, C)) * 2.0
    noise = rng.normal(size=(M, N, C)) * rng.uniform(0.2, 2.0, size=(1, N, 1))
    z = logits[None] + noise
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def dirichlet(seed: int) -> npt.NDArray[np.float64]:
    return np.random.default_rng(seed).dirichlet(np.ones(C), size=(M, N))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def contenders(probas: npt.NDArray[np.float64]) -> dict[str, Callable[[], Any]]:
    from skactiveml.pool import batch_bald

    from labelwise_server.strategies.bayesian import bald_scores, batch_bald_select, power_sample

    single = probas.astype(np.float32)
    candidates = np.arange(N, dtype=np.int64)
    return {
        "labelwise batch_bald, float32": lambda: batch_bald_select(single, candidates, K, 0),
        "labelwise batch_bald, float64": lambda: batch_bald_select(probas, candidates, K, 0),
        "NumPy floor (every candidate, every pick), float32": lambda: batch_bald_select(
            single, candidates, K, 0, prune=False
        ),
        PEER: lambda: np.nanargmax(
            batch_bald(probas.copy(), K, n_MC_samples=SAMPLES, random_state=0), axis=1
        ),
        "labelwise power_bald (bald, β = 1), float32": lambda: power_sample(
            bald_scores(single), candidates, K, 0
        ),
    }


def run_pool(
    pool: str, probas: npt.NDArray[np.float64], repeats: int, peer_repeats: int
) -> list[str]:
    """One pool's table rows: every contender, interleaved repeat by repeat."""
    runs = contenders(probas)
    times: dict[str, list[float]] = {name: [] for name in runs}
    picks: dict[str, list[int]] = {}
    for repeat in range(max(repeats, peer_repeats)):
        for name, fn in runs.items():
            if repeat >= (peer_repeats if name == PEER else repeats):
                continue
            seconds, out = timed(fn)
            times[name].append(seconds)
            picks[name] = (out[0] if isinstance(out, tuple) else out).tolist()
    ours = statistics.median(times[OURS])
    theirs = set(picks[PEER])
    lines = []
    for name in runs:
        seconds = statistics.median(times[name])
        shared = f"{len(set(picks[name]) & theirs)}/{K}" if "batch_bald" in name else "–"
        lines.append(f"| {pool} | {name} | {seconds:.3f} | {seconds / ours:.1f}× | {shared} |")
    same = picks[OURS][:5] == picks[PEER][:5]
    lines.append(f"| {pool} | baal BatchBALD | – | – | {baal_note()} |")
    lines.append(f"| {pool} | first five (exact) picks equal scikit-activeml's, in order | "
                 f"{'yes' if same else 'no'} | | |")  # fmt: skip
    return lines


def baal_note() -> str:
    try:
        import torch  # noqa: F401
    except ImportError:
        return "not run: baal's BatchBALD needs PyTorch, which is not installed"
    return "not run: torch is importable, but baal is not installed here"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    lines = [
        f"BatchBALD, n = {N:,}, m = {M}, c = {C}, batch {K}, {SAMPLES:,} joint samples "
        f"(exact while ≤ {SAMPLES:,} configurations: the first 5 picks); BLAS threads "
        f"{args.threads}; medians of {args.repeats} (peers: {args.peer_repeats}) interleaved runs",
        "",
        "| pool | contender | seconds | vs labelwise f32 | picks shared with scikit-activeml |",
        "|---|---|---:|---:|---:|",
    ]
    with threadpool_limits(limits=args.threads):
        for pool, make in (("MC-dropout-like", mc_dropout_like), ("Dirichlet(1)", dirichlet)):
            lines += run_pool(pool, make(0), args.repeats, args.peer_repeats)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
