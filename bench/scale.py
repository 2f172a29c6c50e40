"""Pools past one pod: a streamed pool scored as it arrives, and one pool over two replicas.

Parts (each appends its rows to bench/scale/results.json; --report rewrites the tables of
docs/scale.md from that file without running anything):

  stream   Entropy top-100 over an n × 10 float32 pool (default 100,000,000 rows, 4 GB)
           streamed to one `labelwise serve --workers 1` in 4 MiB chunks, each chunk
           generated from (seed, chunk number) as it is sent, so neither side ever holds
           the pool. Side by side in one run: the same chunks' bytes to a grpcio server
           whose handler drops them (bench/echo_server.py, bench.Echo/Drain), and the
           generation alone. The answer is checked against NumPy on the same chunks.
           Peak RSS (VmHWM) of the server process, and of its idle work processes.
  sharded  Two replicas on loopback: ShardedClient's entropy equals one server's, byte
           for byte; core_set, badge and typiclust on an n-item pool (default 1,000,000
           × 64 float32, a mixture of 64 Gaussians; k = 100; 100 labeled) sharded
           (each replica picks oversample · k of its half, one picks k from the union)
           and exact (one server, whole pool): each strategy's objective and the ratio.

Usage: python bench/scale.py [--parts stream,sharded] [--rows N] [--pool N] [--report]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "clients/python/src"), str(HERE)]

from core import free_port, reset_peak, status_kib, wait_ready  # noqa: E402

RESULTS = HERE / "scale" / "results.json"
DOC = ROOT / "docs" / "scale.md"
CHUNK_BYTES = 4 << 20
CLASSES = 10
SEED = 19


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "service"), str(ROOT / "clients/python/src"), env.get("PYTHONPATH", "")]
    )
    return env


def serve(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", "0", "--log-level", "WARNING",
         "--workers", "1", "--max-deadline-seconds", "0", *flags],
        env=_env(),
    )  # fmt: skip
    wait_ready(f"127.0.0.1:{port}")
    return server, f"127.0.0.1:{port}"


def children(pid: int) -> list[int]:
    """Every descendant of pid (work processes are forked by a zygote, itself a child)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *children(int(child))]
    return found


def _peak(pid: int) -> int:
    try:
        return status_kib(pid, "VmHWM")
    except (OSError, KeyError):
        return 0


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=60)


# -- stream ----------------------------------------------------------------------------------


def chunk_rows() -> int:
    return CHUNK_BYTES // (CLASSES * 4)


def make_chunk(i: int, rows: int) -> npt.NDArray[np.float32]:
    """Chunk i of the pool: rows × 10 float32 probabilities, from (SEED, i) alone."""
    rng = np.random.default_rng([SEED, i])
    u = rng.random((rows, CLASSES), dtype=np.float32)
    u *= u
    u *= u  # u⁴: spread the entropies out, so the top 100 are not a float32 tie
    u += np.float32(1e-4)
    u /= u.sum(axis=1, keepdims=True)
    return u


def pool_chunks(n: int) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    step = chunk_rows()
    for i, start in enumerate(range(0, n, step)):
        yield start, make_chunk(i, min(step, n - start))


def encoded_chunks(n: int, k: int) -> Iterator[bytes]:
    """The SelectQueriesStream chunks of the pool, as the Python client encodes them."""
    from labelwise.client import _Request, _stream_chunk
    from labelwise.v1 import query_selection_pb2 as pb

    header = pb.SelectQueriesRequest(k=k, strategies=[pb.StrategySpec(name="entropy")])
    for start, chunk in pool_chunks(n):
        first = header if start == 0 else pb.SelectQueriesRequest()
        yield _stream_chunk(_Request(first, {"probabilities": chunk}))


def numpy_top_k(n: int, k: int) -> tuple[list[int], list[int]]:
    """Entropy top k by NumPy over the same chunks: in float32 as the server computes it
    (log, multiply, row sum), and in float64; ties by lower index."""
    best32: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
    best64: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
    ones = np.ones(CLASSES, np.float32)
    for start, chunk in pool_chunks(n):
        index = np.arange(start, start + chunk.shape[0])
        plogp = np.log(chunk)
        plogp *= chunk
        score32 = -(plogp @ ones).astype(np.float64)
        wide = chunk.astype(np.float64)
        score64 = -(wide * np.log(wide)).sum(axis=1)
        for which, score in ((0, score32), (1, score64)):
            top = np.argpartition(-score, k)[:k] if score.shape[0] > k else np.arange(len(score))
            part = (index[top], score[top])
            held = best32 if which == 0 else best64
            if held is not None:
                part = (np.concatenate([held[0], part[0]]), np.concatenate([held[1], part[1]]))
            order = np.lexsort((part[0], -part[1]))[:k]
            kept = (part[0][order], part[1][order])
            if which == 0:
                best32 = kept
            else:
                best64 = kept
    assert best32 is not None and best64 is not None
    return best32[0].tolist(), best64[0].tolist()


def run_stream(n: int, k: int) -> dict[str, Any]:
    from labelwise.v1 import query_selection_pb2 as pb

    result: dict[str, Any] = {"rows": n, "classes": CLASSES, "k": k, "chunk_bytes": CHUNK_BYTES}
    result["pool_bytes"] = n * CLASSES * 4
    started = time.perf_counter()
    for _ in encoded_chunks(n, k):
        pass
    result["generate_seconds"] = time.perf_counter() - started

    echo_port = free_port()
    echo = subprocess.Popen(
        [sys.executable, str(HERE / "echo_server.py"), "--port", str(echo_port)], env=_env()
    )
    wait_ready(f"127.0.0.1:{echo_port}")
    options = [("grpc.max_send_message_length", 64 << 20)]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{echo_port}", options=options) as channel:
            drain = channel.stream_unary("/bench.Echo/Drain", lambda b: b, lambda b: b)
            started = time.perf_counter()
            drain(encoded_chunks(n, k), timeout=7200)
            result["drain_seconds"] = time.perf_counter() - started
            result["drain_server_peak_mib"] = status_kib(echo.pid, "VmHWM") / 1024
    finally:
        stop(echo)

    server, address = serve()
    try:
        time.sleep(2)  # the work processes start
        result["server_idle_mib"] = status_kib(server.pid, "VmRSS") / 1024
        reset_peak(server.pid)
        workers = children(server.pid)
        for pid in workers:
            reset_peak(pid)
        with grpc.insecure_channel(address, options=options) as channel:
            stream = channel.stream_unary(
                "/labelwise.v1.QuerySelectionService/SelectQueriesStream",
                lambda b: b,
                pb.SelectQueriesStreamResponse.FromString,
            )
            started = time.perf_counter()
            response = stream(encoded_chunks(n, k), timeout=7200).response
            result["labelwise_seconds"] = time.perf_counter() - started
        result["server_peak_mib"] = status_kib(server.pid, "VmHWM") / 1024
        result["work_process_peak_mib"] = [status_kib(pid, "VmHWM") / 1024 for pid in workers]
        indices = list(response.results[0].indices)
    finally:
        stop(server)
    result["ratio"] = result["labelwise_seconds"] / result["drain_seconds"]
    started = time.perf_counter()
    top32, top64 = numpy_top_k(n, k)
    result["numpy_seconds"] = time.perf_counter() - started
    result["same_as_numpy_float32"] = indices == top32
    result["same_set_as_numpy_float64"] = sorted(indices) == sorted(top64)
    result["first_indices"] = indices[:10]
    return result


# -- sharded ---------------------------------------------------------------------------------


def mixture(n: int, d: int, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """n × d float32 embeddings from 64 Gaussians, and softmax probabilities of a random
    linear model over 10 classes."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(64, d)).astype(np.float32)
    x = np.empty((n, d), np.float32)
    step = 1 << 18
    for start in range(0, n, step):
        end = min(n, start + step)
        x[start:end] = centres[rng.integers(0, 64, end - start)]
        x[start:end] += rng.normal(size=(end - start, d)).astype(np.float32)
    w = rng.normal(scale=0.3, size=(d, CLASSES)).astype(np.float32)
    logits = (x @ w).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return x, p


def covering_radius(x: npt.NDArray[np.float32], centres: npt.NDArray[np.float32]) -> float:
    """max over the pool of the distance to the nearest centre (core-set's objective)."""
    c = centres.astype(np.float64)
    c2 = (c**2).sum(axis=1)
    worst = 0.0
    step = max(1, (1 << 22) // c.shape[0])  # 2^22 distances (32 MiB) per block, any k
    for start in range(0, x.shape[0], step):
        block = x[start : start + step].astype(np.float64)
        d2 = block @ c.T
        d2 *= -2
        d2 += c2
        d2 += (block**2).sum(axis=1)[:, None]
        worst = max(worst, float(np.sqrt(max(d2.min(axis=1).max(), 0.0))))
    return worst


def badge_cost(
    x: npt.NDArray[np.float32], p: npt.NDArray[np.float64], picks: npt.NDArray[np.int64],
    sample: npt.NDArray[np.int64],
) -> float:  # fmt: skip
    """BADGE's k-means++ objective: mean squared distance, in gradient-embedding space
    g = (p − e_ŷ) ⊗ x, from each item of an evaluation sample to its nearest pick
    (via <g_i, g_j> = <p_i − e_i, p_j − e_j> · <x_i, x_j>)."""

    def grad(rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        q = p[rows].copy()
        q[np.arange(rows.shape[0]), q.argmax(axis=1)] -= 1.0
        return q, x[rows].astype(np.float64)

    qs, xs = grad(sample)
    qp, xp = grad(picks)
    norm_s = (qs**2).sum(1) * (xs**2).sum(1)
    norm_p = (qp**2).sum(1) * (xp**2).sum(1)
    nearest = []
    step = max(1, (1 << 22) // qp.shape[0])  # 2^22 distances (32 MiB) per block of the sample
    for start in range(0, qs.shape[0], step):
        end = start + step
        d2 = (qs[start:end] @ qp.T) * (xs[start:end] @ xp.T)
        d2 *= -2
        d2 += norm_p
        d2 += norm_s[start:end, None]
        nearest.append(np.maximum(d2.min(axis=1), 0))
    return float(np.concatenate(nearest).mean())


def pool_typicality(
    x: npt.NDArray[np.float32], picks: npt.NDArray[np.int64], sample: npt.NDArray[np.int64]
) -> float:
    """TypiClust's typicality of the picks, mean over them: 1 / mean distance to the 20
    nearest items of an evaluation sample of the pool (higher is more typical)."""
    xs = x[sample].astype(np.float64)
    s2 = (xs**2).sum(1)
    typicality = []
    step = max(1, (1 << 22) // xs.shape[0])  # 2^22 distances (32 MiB) per block of picks
    for start in range(0, picks.shape[0], step):
        xp = x[picks[start : start + step]].astype(np.float64)
        d2 = xp @ xs.T
        d2 *= -2
        d2 += s2
        d2 += (xp**2).sum(1)[:, None]
        nearest = np.sqrt(np.maximum(np.partition(d2, 21, axis=1)[:, 1:21], 0))
        typicality.append(1.0 / (nearest.mean(axis=1) + 1e-7))
    return float(np.concatenate(typicality).mean())


def run_sharded(
    n: int, k: int, oversample: int, only: list[str] | None = None, seeds: int = 1
) -> dict[str, Any]:
    from labelwise import Client
    from labelwise.sharded import ShardedClient

    result: dict[str, Any] = {"pool": n, "d": 64, "k": k, "oversample": oversample}
    servers = [serve() for _ in range(2)]
    addresses = [address for _, address in servers]
    try:
        # Entropy over a pool of several scoring blocks: sharded equals one server.
        rng = np.random.default_rng(SEED)
        p = rng.dirichlet(np.ones(CLASSES) * 0.3, size=2_000_000).astype(np.float32)
        with Client(addresses[0]) as one, ShardedClient(addresses) as sharded:
            expected = one.select(strategies=["entropy", "bald"][:1], k=100, probabilities=p)
            got = sharded.select(strategies=["entropy"], k=100, probabilities=p)
        e, g = expected["entropy"], got["entropy"]
        result["entropy_rows"] = p.shape[0]
        result["entropy_identical"] = (
            e.indices.tobytes() == g.indices.tobytes() and e.scores.tobytes() == g.scores.tobytes()
        )
        del p
        x, probs = mixture(n + 100, 64, SEED)
        labeled, x, probs = x[:100], x[100:], probs[100:]
        sample = np.random.default_rng(1).choice(n, size=min(n, 100_000), replace=False)
        rows = []
        for name in only or ["core_set", "badge", "typiclust"]:
            # core_set with labeled items draws nothing: one seed. badge and typiclust are
            # seeded: the exact and the sharded run at each of `seeds` seeds (3, 4, ...),
            # the ratio per seed, the table the median and range.
            per_seed: list[dict[str, float]] = []
            for seed in range(3, 3 + (1 if name == "core_set" else seeds)):
                inputs: dict[str, Any] = {
                    "embeddings": x, "labeled_embeddings": labeled, "seed": seed
                }  # fmt: skip
                if name == "badge":
                    inputs["probabilities"] = probs
                runs = {}
                with Client(addresses[0]) as one:
                    started = time.perf_counter()
                    runs["exact"] = one.select(strategies=[name], k=k, **inputs)[name].indices
                    exact_s = time.perf_counter() - started
                with ShardedClient(addresses, oversample=oversample) as sharded:
                    started = time.perf_counter()
                    runs["sharded"] = sharded.select(strategies=[name], k=k, **inputs)[name].indices
                    sharded_s = time.perf_counter() - started
                values = {}
                for how, picks in runs.items():
                    if name == "core_set":
                        values[how] = covering_radius(x, np.concatenate([labeled, x[picks]]))
                    elif name == "badge":
                        values[how] = badge_cost(x, probs, picks, sample)
                    else:
                        values[how] = pool_typicality(x, picks, sample)
                per_seed.append(
                    {
                        "seed": seed,
                        "exact": values["exact"],
                        "sharded": values["sharded"],
                        "ratio": values["sharded"] / values["exact"],
                        "exact_seconds": exact_s,
                        "sharded_seconds": sharded_s,
                    }
                )
                print(json.dumps({"strategy": name, **per_seed[-1]}), flush=True)
            ratios = [s["ratio"] for s in per_seed]
            rows.append(
                {
                    "strategy": name,
                    "objective": {
                        "core_set": "covering radius (lower is better)",
                        "badge": "k-means++ cost in gradient space (lower is better)",
                        "typiclust": "mean typicality of the picks (higher is better)",
                    }[name],
                    "exact": float(np.median([s["exact"] for s in per_seed])),
                    "sharded": float(np.median([s["sharded"] for s in per_seed])),
                    "ratio": float(np.median(ratios)),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                    "seeds": len(per_seed),
                    "per_seed": per_seed,
                    "exact_seconds": float(np.median([s["exact_seconds"] for s in per_seed])),
                    "sharded_seconds": float(np.median([s["sharded_seconds"] for s in per_seed])),
                    "oversample": oversample,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        result["batch"] = rows
    finally:
        for server, _ in servers:
            stop(server)
    return result


# -- index: batch strategies on a 10^7 pool with the neighbours pre-filter -------------------


def run_index(
    n: int, k: int, margin_k: int, prefilter_size: int, subsample: int,
    quality_k: dict[str, int], full: bool = True,
) -> dict[str, Any]:  # fmt: skip
    from labelwise import Client

    result: dict[str, Any] = {
        "pool": n, "d": 64, "dtype": "float16", "labeled": 100, "k": k,
        "cluster_margin_k": margin_k, "prefilter_size": prefilter_size, "subsample": subsample,
        "quality_k": quality_k,
    }  # fmt: skip
    x32, probs = mixture(n + 100, 64, SEED + 1)
    labeled, x = x32[:100], x32[100:].astype(np.float16)
    probs = probs[100:].astype(np.float32)
    del x32
    server, address = serve("--max-pool-elements", str(1 << 30))
    rows: list[dict[str, Any]] = []
    # prefilter_size 0: the server's default, max(10,000, 4·k) candidates.
    near = {"prefilter": "neighbours", "prefilter_size": prefilter_size}
    calls: dict[str, tuple[list[Any], int, bool]] = {
        "core_set": ([("core_set", near)], k, False),
        "typiclust": ([("typiclust", near)], k, False),
        "badge": ([("badge", near)], k, True),
        "cluster_margin": ([("cluster_margin", {"margin_multiple": 2.0})], margin_k, True),
    }
    try:
        time.sleep(2)
        with Client(address) as client:
            kept: list[dict[str, Any]] = []
            if not full:  # the quality part alone: keep the saved run's full rows
                saved = json.loads(RESULTS.read_text())["index"]
                result["full"] = saved["full"]
                result["full_measured"] = saved.get("full_measured", saved["measured"])
                # and its quality rows of strategies not rerun, with their date
                kept = [
                    {"measured": saved["measured"], **q}
                    for q in saved.get("quality", [])
                    if q["strategy"] not in quality_k
                ]
            for name, (spec, kk, needs_p) in calls.items() if full else ():
                workers = children(server.pid)  # a killed work process is replaced
                for pid in [server.pid, *workers]:
                    reset_peak(pid)
                inputs: dict[str, Any] = {"embeddings": x, "labeled_embeddings": labeled}
                if needs_p:
                    inputs["probabilities"] = probs
                started = time.perf_counter()
                picks = client.select(strategies=spec, k=kk, seed=3, **inputs)[name]
                seconds = time.perf_counter() - started
                row = {
                    "strategy": name, "k": kk, "seconds": seconds,
                    "server_peak_mib": status_kib(server.pid, "VmHWM") / 1024,
                    "work_peak_mib": max(_peak(pid) for pid in children(server.pid)) / 1024,
                    "candidates_considered": picks.candidates_considered,
                    "picked": int(picks.indices.shape[0]),
                }  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
            if full:
                result["full"] = rows
                result["full_measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            save("index", {**result, "incomplete": True})  # a stopped run keeps what it did
            # Quality: on the first `subsample` rows (an i.i.d. sample), exact against
            # pre-filtered, each strategy at its quality_k (an exact run must fit the time).
            subsample = min(subsample, n)
            result["subsample"] = subsample
            xs, ps = x[:subsample].astype(np.float32), probs[:subsample]
            sample = np.random.default_rng(1).choice(
                subsample, size=min(subsample, 100_000), replace=False
            )
            quality: list[dict[str, Any]] = list(kept)
            for name in quality_k:
                spec, _, needs_p = calls[name]
                kk = quality_k[name]
                inputs = {"embeddings": xs, "labeled_embeddings": labeled}
                if needs_p:
                    inputs["probabilities"] = ps
                runs, times = {}, {}
                for how, strategy in (("exact", [name]), ("prefiltered", spec)):
                    started = time.perf_counter()
                    runs[how] = client.select(strategies=strategy, k=kk, seed=3, **inputs)[
                        name
                    ].indices
                    times[how] = time.perf_counter() - started
                values = {}
                for how, picks_ in runs.items():
                    if name == "core_set":
                        values[how] = covering_radius(xs, np.concatenate([labeled, xs[picks_]]))
                    elif name == "badge":
                        values[how] = badge_cost(xs, ps.astype(np.float64), picks_, sample)
                    else:
                        values[how] = pool_typicality(xs, picks_, sample)
                q = {
                    "strategy": name,
                    "k": kk,
                    "exact": values["exact"],
                    "prefiltered": values["prefiltered"],
                    "ratio": values["prefiltered"] / values["exact"],
                    "exact_seconds": times["exact"],
                    "prefiltered_seconds": times["prefiltered"],
                }
                quality.append(q)
                save("index", {**result, "quality": quality, "incomplete": True})
                print(json.dumps(q), flush=True)
            result["quality"] = quality
    finally:
        stop(server)
    return result


# -- results and report ----------------------------------------------------------------------


def save(part: str, result: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    result["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    data[part] = result
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def _within(row: dict[str, Any], tolerance: float) -> bool:
    """The sharded objective within tolerance of the exact one, in its better direction."""
    if "higher" in row["objective"]:
        return bool(row["ratio"] >= 1 - tolerance)
    return bool(row["ratio"] <= 1 + tolerance)


def tables(data: dict[str, Any]) -> str:
    out: list[str] = []
    s = data.get("stream")
    if s:
        gb = s["pool_bytes"] / 1e9
        out += [
            f"Entropy top-{s['k']} over {s['rows']:,} × {s['classes']} float32 ({gb:.1f} GB), "
            f"{s['chunk_bytes'] >> 20} MiB chunks, one worker (measured {s['measured']}):",
            "",
            "| | seconds | GB/s | peak RSS (MiB) |",
            "|---|---:|---:|---:|",
            f"| generating the chunks alone (client) | {s['generate_seconds']:.1f} | "
            f"{gb / s['generate_seconds']:.2f} | |",
            f"| plain grpcio stream to a do-nothing handler | {s['drain_seconds']:.1f} | "
            f"{gb / s['drain_seconds']:.2f} | {s['drain_server_peak_mib']:.0f} |",
            f"| labelwise SelectQueriesStream, scored as it arrives | "
            f"{s['labelwise_seconds']:.1f} | {gb / s['labelwise_seconds']:.2f} | "
            f"{s['server_peak_mib']:.0f} (idle {s['server_idle_mib']:.0f}) |",
            "",
            f"- labelwise / plain stream: **{s['ratio']:.2f}×** (the target is ≤ 1.2×; both "
            "include generating the chunks).",
            f"- Same indices as NumPy (float32, as the server computes entropy): "
            f"**{s['same_as_numpy_float32']}**; same set as NumPy in float64: "
            f"{s['same_set_as_numpy_float64']}.",
            "- The peak RSS is the server process's (this call runs no work process). Its "
            "direct children, idle through the call (the work-process zygote; the work "
            "processes it forks were not measured in this run), peaked at "
            + ", ".join(f"{m:.0f} MiB" for m in s["work_process_peak_mib"])
            + ".",
            "",
        ]
    h = data.get("sharded")
    if h:
        out += [
            f"Two replicas on loopback (measured {h['measured']}): sharded entropy over "
            f"{h['entropy_rows']:,} × 10 float32 identical to one server, byte for byte: "
            f"**{h['entropy_identical']}**.",
            "",
            f"Batch strategies, {h['pool']:,} × {h['d']} float32 (64 Gaussians), 100 labeled, "
            f"k = {h['k']}, each replica picks oversample·k of its half; badge's shards also "
            "report what each pick stands for and the final badge is weighted by it. Seeded "
            "strategies ran at several seeds (exact and sharded at each): the columns give "
            "the medians, and the ratio's range over the seeds:",
            "",
            "| strategy | objective | oversample | seeds | exact | sharded | sharded / exact "
            "(range) | within 5% | exact s | sharded s | measured |",
            "|---|---|---:|---:|---:|---:|---|---|---:|---:|---|",
        ]
        for row in h["batch"]:
            seeds = row.get("seeds", 1)
            spread = f" ({row['ratio_min']:.3f}–{row['ratio_max']:.3f})" if seeds > 1 else ""
            out.append(
                f"| {row['strategy']} | {row['objective']} | "
                f"{row.get('oversample', h['oversample'])} | {seeds} | {row['exact']:.4g} | "
                f"{row['sharded']:.4g} | {row['ratio']:.3f}{spread} | "
                f"{'yes' if _within(row, 0.05) else '**no**'} | {row['exact_seconds']:.1f} | "
                f"{row['sharded_seconds']:.1f} | {row.get('measured', h['measured'])} |"
            )
        out.append("")
    x = data.get("index")
    if x:
        out += [
            f"Batch strategies on {x['pool']:,} × {x['d']} {x['dtype']} embeddings through one "
            f"server (measured {x.get('full_measured', x['measured'])}), {x['labeled']} "
            "labeled, seed 3; core_set, "
            "typiclust and badge with prefilter = neighbours, prefilter_size = "
            + (
                f"{x['prefilter_size']:,}"
                if x["prefilter_size"]
                else "0 (the default, max(10,000, 4·k) candidates)"
            )
            + "; cluster_margin with margin_multiple = 2 (k-means past 4,096 items); peak "
            "memory is VmHWM, reset before each call:",
            "",
            "| strategy | k | seconds | server peak MiB | work process peak MiB | candidates |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in x.get("full", []):
            out.append(
                f"| {row['strategy']} | {row['k']:,} | {row['seconds']:.0f} | "
                f"{row['server_peak_mib']:.0f} | {row['work_peak_mib']:.0f} | "
                f"{row['candidates_considered']:,} |"
            )
        if x.get("incomplete"):
            out += [
                "",
                "The run was stopped before its quality part finished: the quality rows "
                "below are the ones it finished"
                + (
                    f"; not measured: {', '.join(x['not_measured'])}."
                    if x.get("not_measured")
                    else "."
                ),
            ]
        if x.get("quality"):
            out += [
                "",
                f"Quality on a {x['subsample']:,}-item subsample (the pool's first rows): "
                "exact (no pre-filter) against the neighbours pre-filter (default size), "
                "objectives as above:",
                "",
                "| strategy | k | exact | pre-filtered | pre-filtered / exact | exact s "
                "| pre-filtered s | measured |",
                "|---|---:|---:|---:|---:|---:|---:|---|",
            ]
            for q in x["quality"]:
                qk = q.get("k", x["quality_k"])
                out.append(
                    f"| {q['strategy']} | {qk:,} | {q['exact']:.4g} | {q['prefiltered']:.4g} | "
                    f"{q['ratio']:.3f} | {q['exact_seconds']:.0f} | "
                    f"{q['prefiltered_seconds']:.0f} | {q.get('measured', x['measured'])} |"
                )
        out.append("")
    return "\n".join(out)


def report() -> None:
    data = json.loads(RESULTS.read_text())
    text = DOC.read_text()
    begin, end = "<!-- scale tables: bench/scale.py --report -->", "<!-- end scale tables -->"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    DOC.write_text(f"{head}{begin}\n{tables(data)}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="stream,sharded")
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--oversample", type=int, default=4)
    parser.add_argument("--index-pool", type=int, default=10_000_000)
    parser.add_argument("--index-k", type=int, default=10_000)
    parser.add_argument("--quality-k", type=int, default=10_000)
    parser.add_argument("--badge-quality-k", type=int, default=1_000)
    parser.add_argument("--quality-strategies", default="core_set,typiclust,badge")
    parser.add_argument("--sharded-strategies", default="")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--quality-only", action="store_true", help="index: keep the saved full rows"
    )
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        for part in args.parts.split(","):
            if part == "stream":
                save(part, run_stream(args.rows, args.k))
            elif part == "sharded":
                only = args.sharded_strategies.split(",") if args.sharded_strategies else None
                result = run_sharded(args.pool, args.k, args.oversample, only, args.seeds)
                for row in result["batch"]:
                    row["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                if only and RESULTS.exists():  # replace those rows of the saved run
                    saved = json.loads(RESULTS.read_text()).get("sharded", {})
                    kept = [r for r in saved.get("batch", []) if r["strategy"] not in only]
                    for r in kept:  # rows of an earlier run keep its settings and date
                        r.setdefault("measured", saved.get("measured"))
                        r.setdefault("oversample", saved.get("oversample"))
                    result["batch"] = sorted(
                        kept + result["batch"],
                        key=lambda r: ["core_set", "badge", "typiclust"].index(r["strategy"]),
                    )
                save(part, result)
            elif part == "index":
                save(
                    part,
                    run_index(
                        args.index_pool,
                        args.index_k,
                        10_000,
                        0,
                        1_000_000,
                        {
                            name: args.badge_quality_k if name == "badge" else args.quality_k
                            for name in args.quality_strategies.split(",")
                        },
                        full=not args.quality_only,
                    ),
                )
            else:
                raise SystemExit(f"unknown part {part}")
            print(json.dumps(json.loads(RESULTS.read_text())[part], indent=2), flush=True)
    if DOC.exists():
        report()
    print(tables(json.loads(RESULTS.read_text())))


if __name__ == "__main__":
    main()
