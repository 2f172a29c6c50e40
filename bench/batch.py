"""Batch strategies benchmark: core_set and badge next to their peers, and scaling through gRPC.

Side by side in one run:
  1. core_set, 100,000 × 128 float32, k = 1,000 from 1,000 labeled: labelwise's
     k_center_greedy, scikit-activeml's k_greedy_center (what its CoreSet runs) and a
     one-pass-per-pick NumPy floor; the same picks asserted.
  2. badge, 10,000 items, c = 10, d = 128, k = 100: labelwise's badge_select and
     scikit-activeml's Badge, the same picks from the same uniform draws asserted (with
     scikit-activeml's origin-as-centre variant switched on for the comparison).
  3. Scaling through the service (a `labelwise serve` subprocess on loopback, the Python
     client, streaming for pools over one message): core_set, badge and typiclust at
     n = 10k, 100k, 1M (d = 128 float32, k = 100, 100 labeled): time per call and the
     server's peak memory above its idle RSS.

Usage: python bench/batch.py [--repeats 3] [--parts core_set,badge,scaling] [--sizes 10000,...]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "clients/python/src"), str(HERE)]

from core import free_port, reset_peak, status_kib, wait_ready  # noqa: E402


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds over repeats, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def numpy_k_center(
    x: npt.NDArray[np.float32], labeled: npt.NDArray[np.float32], k: int
) -> npt.NDArray[np.int64]:
    """The floor: k-center greedy with one [n, d]·[d] pass per pick, ‖x‖² precomputed."""
    x_norms = np.einsum("ij,ij->i", x, x)
    min_d2 = np.full(x.shape[0], np.inf, dtype=np.float32)
    for start in range(0, labeled.shape[0], 64):
        block = labeled[start : start + 64]
        d2 = x_norms[:, None] - 2.0 * (x @ block.T) + np.einsum("ij,ij->i", block, block)
        np.minimum(min_d2, d2.min(axis=1), out=min_d2)
    picks = np.empty(k, dtype=np.int64)
    for i in range(k):
        best = int(np.argmax(min_d2))
        picks[i] = best
        d2 = x_norms - 2.0 * (x @ x[best]) + x_norms[best]
        np.minimum(min_d2, d2, out=min_d2)
        min_d2[best] = -1.0
    return picks


def bench_core_set(repeats: int) -> list[str]:
    from skactiveml.pool import k_greedy_center

    from labelwise_server.strategies.diversity import k_center_greedy

    n, d, k, labeled_count = 100_000, 128, 1_000, 1_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float32)
    labeled = rng.normal(size=(labeled_count, d)).astype(np.float32)
    candidates = np.arange(n)
    ours_s, (ours, _) = timed(lambda: k_center_greedy(x, labeled, candidates, k, 0), repeats)
    floor_s, floor = timed(lambda: numpy_k_center(x, labeled, k), repeats)
    both = np.concatenate([labeled, x])
    y = np.concatenate([np.zeros(labeled_count), np.full(n, np.nan)])
    peer_s, (peer, _) = timed(lambda: k_greedy_center(both, y, batch_size=k, random_state=0), 1)
    same_peer = bool(np.array_equal(ours, np.asarray(peer) - labeled_count))
    assert same_peer  # scikit-activeml works in float64: the exact picks
    agree = int(np.argmax(ours != floor)) if not np.array_equal(ours, floor) else k
    floor_note = "True" if agree == k else f"the first {agree} (float32 rounding: see below)"
    lines = [
        f"core_set: n = {n:,} × {d} float32, k = {k:,} from {labeled_count:,} labeled",
        "",
        "| implementation | seconds | ours is × faster | same picks as ours |",
        "|---|---:|---:|---|",
        f"| labelwise `k_center_greedy` | {ours_s:.2f} | 1.0 | — |",
        f"| NumPy one-pass-per-pick floor (float32) | {floor_s:.2f} | {floor_s / ours_s:.2f} "
        f"| {floor_note} |",
        f"| scikit-activeml `k_greedy_center` (CoreSet; float64) | {peer_s:.2f} | "
        f"{peer_s / ours_s:.1f} | {same_peer} |",
    ]
    if agree < k:  # which of the two is right at the first difference, in float64
        centres = np.concatenate([labeled, x[ours[:agree]]]).astype(np.float64)

        def exact(row: int) -> float:
            return float(((centres - x[row].astype(np.float64)) ** 2).sum(axis=1).min())

        lines.append(
            f"\nAt pick {agree} the float32 floor takes item {floor[agree]} "
            f"(exact squared distance {exact(int(floor[agree])):.6f}), labelwise and "
            f"scikit-activeml take item {ours[agree]} ({exact(int(ours[agree])):.6f}): "
            "a near-tie that float32 rounding misorders; labelwise re-checks such near-ties "
            "in float64."
        )
    return lines


def bench_badge(repeats: int) -> list[str]:
    from skactiveml.base import SkactivemlClassifier
    from skactiveml.pool import Badge

    from labelwise_server.strategies.hybrid import badge_select

    class Fixed(SkactivemlClassifier):  # type: ignore[misc]
        def __init__(self, probabilities: Any = None, classes: Any = None) -> None:
            super().__init__(classes=classes)
            self.probabilities = probabilities

        def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "Fixed":  # noqa: N803
            return self

        def predict_proba(self, X: Any) -> Any:  # noqa: N803
            return self.probabilities

    n, c, d, k, seed = 10_000, 10, 128, 100, 0
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, d)).astype(np.float32)
    p = rng.dirichlet(np.ones(c) * 0.3, size=n).astype(np.float32)
    candidates = np.arange(n)
    ours_s, _ = timed(
        lambda: badge_select(p, x, candidates, k, np.random.default_rng(seed)), repeats
    )
    # The draws scikit-activeml's Badge makes (check_random_state with the unlabeled count).
    derived = (np.random.RandomState(seed).randint(1, 2**31) * (n + 1)) % 2**31
    variant_s, (variant, _) = timed(
        lambda: badge_select(
            p, x, candidates, k, np.random.RandomState(derived), origin_centre=True
        ),
        repeats,
    )
    clf = Fixed(p.astype(np.float64), classes=np.arange(c))
    peer_s, peer = timed(
        lambda: Badge(random_state=seed).query(
            x.astype(np.float64), np.full(n, np.nan), clf, fit_clf=False, batch_size=k
        ),
        1,
    )
    same = bool(np.array_equal(variant, peer))
    assert same
    return [
        f"badge: n = {n:,}, c = {c}, d = {d} float32, k = {k}",
        "",
        "| implementation | seconds | ours is × faster | same picks |",
        "|---|---:|---:|---|",
        f"| labelwise `badge_select` (served: no origin centre) | {ours_s * 1e3:.0f} ms | 1.0 "
        "| — |",
        f"| labelwise `badge_select(origin_centre=True)`, scikit-activeml's draws | "
        f"{variant_s * 1e3:.0f} ms | {variant_s / ours_s:.2f} | {same} (vs scikit-activeml) |",
        f"| scikit-activeml `Badge` ([n, c·d] gradients) | {peer_s * 1e3:.0f} ms | "
        f"{peer_s / ours_s:.0f} | {same} |",
    ]


def _serve() -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "service"), str(ROOT / "clients/python/src"), env.get("PYTHONPATH", "")]
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", "0", "--log-level", "WARNING",
         "--workers", "1"],  # one process (its peak memory is the one measured)
        env=env,
    )  # fmt: skip
    wait_ready(f"127.0.0.1:{port}")
    return server, f"127.0.0.1:{port}"


def bench_scaling(sizes: list[int], repeats: int) -> list[str]:
    from labelwise import Client

    d, k, labeled_count, c = 128, 100, 100, 10
    rows = [
        f"Through the service (loopback, Python client; streaming above one 256 MiB message): "
        f"d = {d} float32, k = {k}, {labeled_count} labeled (core_set, typiclust), "
        f"c = {c} (badge); median of {repeats} calls; peak = the server's VmHWM above its RSS "
        "after a 1,000-item warm-up call (a fresh server per cell)",
        "",
        "| n | pool MB | core_set s | core_set peak MiB | badge s | badge peak MiB "
        "| typiclust s | typiclust peak MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rng = np.random.default_rng(2)
    labeled = rng.normal(size=(labeled_count, d)).astype(np.float32)
    for n in sizes:
        x = rng.normal(size=(n, d)).astype(np.float32)
        p = rng.dirichlet(np.ones(c) * 0.3, size=n).astype(np.float32)
        cells = [f"{n:,}", f"{x.nbytes / 1e6:.0f}"]
        for name in ("core_set", "badge", "typiclust"):
            server, address = _serve()
            try:
                with Client(address) as client:

                    def call(
                        rows: int, name: str = name, client: Any = client, x: Any = x, p: Any = p
                    ) -> Any:
                        inputs: dict[str, Any] = {"embeddings": x[:rows]}
                        if name == "badge":
                            inputs["probabilities"] = p[:rows]
                        else:
                            inputs["labeled_embeddings"] = labeled
                        return client.select(strategies=[name], k=k, **inputs)

                    call(1000)  # imports and first-touch work
                    time.sleep(0.5)
                    idle = status_kib(server.pid, "VmRSS")
                    reset_peak(server.pid)
                    seconds, _ = timed(lambda call=call, n=n: call(n), repeats)  # type: ignore[misc]
                    peak = status_kib(server.pid, "VmHWM")
                    cells += [f"{seconds:.2f}", f"{(peak - idle) / 1024:.0f}"]
            finally:
                server.terminate()
                server.wait(timeout=60)
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--parts", default="core_set,badge,scaling")
    args = parser.parse_args()
    parts = args.parts.split(",")
    lines: list[str] = []
    if "core_set" in parts:
        lines += [*bench_core_set(args.repeats), ""]
    if "badge" in parts:
        lines += [*bench_badge(args.repeats), ""]
    if "scaling" in parts and not args.skip_scaling:
        sizes = [int(s) for s in args.sizes.split(",")]
        lines += bench_scaling(sizes, args.repeats)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
