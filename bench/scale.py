"""Pools past one pod: a streamed pool scored as it arrives, and one pool over two replicas.

Parts (each appends its rows to bench/scale/results.json; --report rewrites the tables of
docs/scale.md from that file without running anything):

  stream   Entropy top-100 over an n × 10 float32 pool (default 100,000,000 rows, 4 GB)
           streamed to one `labelwise serve --workers 1` in 4 MiB chunks, each chunk
           generated from (seed, chunk number) as it is sent, so neither side ever holds
           the pool. Side by side in one run, in --rounds rounds (default 5) whose order
           alternates: the same chunks' bytes to a grpcio server whose handler drops them
           (bench/echo_server.py, bench.Echo/Drain), labelwise, and the generation alone;
           wall time and the client's and server's CPU time of each arm, and the median
           of the rounds' ratios. The answer is checked against NumPy on the same chunks.
           Peak RSS (VmHWM) of the server process, and of its idle work processes.
  sharded  Two replicas on loopback: ShardedClient's entropy equals one server's, byte
           for byte; core_set, badge and typiclust on an n-item pool (default 1,000,000
           × 64 float32, a mixture of 64 Gaussians; k = 100; 100 labeled) sharded
           (each replica picks oversample · k of its half, one picks k from the union)
           and exact (one server, whole pool): each strategy's objective and the ratio.

Usage: python bench/scale.py [--parts stream,sharded] [--rows N] [--rounds R] [--pool N] [--report]
"""

import argparse
import json
import os
import resource
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/pid/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process (the client: generating, encoding and sending chunks)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_stream(n: int, k: int, rounds: int) -> dict[str, Any]:
    """Three arms, interleaved over `rounds` rounds (the order alternates, so load from other
    processes falls on both arms alike): generating the chunks alone, the plain grpcio stream
    to a do-nothing handler, labelwise. Each arm's wall time, and the CPU time of the client
    and of the server; the ratio is the median of the rounds' ratios."""
    from labelwise.v1 import query_selection_pb2 as pb

    result: dict[str, Any] = {"rows": n, "classes": CLASSES, "k": k, "chunk_bytes": CHUNK_BYTES}
    result["pool_bytes"] = n * CLASSES * 4
    result["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    options = [("grpc.max_send_message_length", 64 << 20)]
    echo_port = free_port()
    echo = subprocess.Popen(
        [sys.executable, str(HERE / "echo_server.py"), "--port", str(echo_port)], env=_env()
    )
    server, address = serve()
    rows: list[dict[str, Any]] = []
    answers: list[list[int]] = []
    try:
        wait_ready(f"127.0.0.1:{echo_port}")
        time.sleep(2)  # the work processes start
        result["server_idle_mib"] = status_kib(server.pid, "VmRSS") / 1024
        workers = children(server.pid)
        for pid in [server.pid, echo.pid, *workers]:
            reset_peak(pid)
        with (
            grpc.insecure_channel(f"127.0.0.1:{echo_port}", options=options) as plain,
            grpc.insecure_channel(address, options=options) as ours,
        ):
            drain = plain.stream_unary("/bench.Echo/Drain", lambda b: b, lambda b: b)
            select = ours.stream_unary(
                "/labelwise.v1.QuerySelectionService/SelectQueriesStream",
                lambda b: b,
                pb.SelectQueriesStreamResponse.FromString,
            )

            def generate() -> None:
                for _ in encoded_chunks(n, k):
                    pass

            def plain_stream() -> None:
                drain(encoded_chunks(n, k), timeout=7200)

            def labelwise() -> None:
                response = select(encoded_chunks(n, k), timeout=7200).response
                answers.append(list(response.results[0].indices))

            arms = {
                "generate": (generate, None),
                "drain": (plain_stream, echo.pid),
                "labelwise": (labelwise, server.pid),
            }
            for r in range(rounds):
                order = ["generate", "drain", "labelwise"]
                row: dict[str, Any] = {"order": order if r % 2 == 0 else order[::-1]}
                for arm in row["order"]:
                    run, pid = arms[arm]
                    load = os.getloadavg()[0]
                    client, serving = own_cpu_seconds(), cpu_seconds(pid) if pid else 0.0
                    started = time.perf_counter()
                    run()
                    row[arm] = {
                        "seconds": time.perf_counter() - started,
                        "client_cpu_seconds": own_cpu_seconds() - client,
                        "server_cpu_seconds": (cpu_seconds(pid) - serving) if pid else None,
                        "load_before": load,
                    }
                row["ratio"] = row["labelwise"]["seconds"] / row["drain"]["seconds"]
                rows.append(row)
                print(json.dumps(row), flush=True)
        result["drain_server_peak_mib"] = status_kib(echo.pid, "VmHWM") / 1024
        result["server_peak_mib"] = status_kib(server.pid, "VmHWM") / 1024
        result["work_process_peak_mib"] = [status_kib(pid, "VmHWM") / 1024 for pid in workers]
    finally:
        stop(server)
        stop(echo)
    result["rounds"] = rows
    for arm in ("generate", "drain", "labelwise"):
        result[f"{arm}_seconds"] = float(np.median([row[arm]["seconds"] for row in rows]))
    result["generate_client_cpu_seconds"] = float(
        np.median([row["generate"]["client_cpu_seconds"] for row in rows])
    )
    for arm in ("drain", "labelwise"):
        for side in ("client", "server"):
            result[f"{arm}_{side}_cpu_seconds"] = float(
                np.median([row[arm][f"{side}_cpu_seconds"] for row in rows])
            )
    ratios = [row["ratio"] for row in rows]
    result["ratio"] = float(np.median(ratios))
    result["ratio_min"], result["ratio_max"] = min(ratios), max(ratios)
    # What a machine with no idle core sees: the CPU time both processes need, per arm.
    cpu = {
        arm: float(
            np.median(
                [row[arm]["client_cpu_seconds"] + row[arm]["server_cpu_seconds"] for row in rows]
            )
        )
        for arm in ("drain", "labelwise")
    }
    result["cpu_ratio"] = cpu["labelwise"] / cpu["drain"]
    result["same_every_round"] = all(a == answers[0] for a in answers)
    indices = answers[0]
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


def earlier_stream_runs() -> list[dict[str, Any]]:
    """The saved stream run's summary and the ones it kept: one run's wall-time median
    depends on the load of the moment, so the table shows every run's."""
    saved = json.loads(RESULTS.read_text()).get("stream", {}) if RESULTS.exists() else {}
    if "rounds" not in saved:
        return []
    keys = ("measured", "commit", "ratio", "ratio_min", "ratio_max", "cpu_ratio")
    summary = {key: saved[key] for key in keys if key in saved}
    summary["rounds"], summary["rows"] = len(saved["rounds"]), saved["rows"]
    return [*saved.get("earlier_runs", []), summary]


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
        rounds = s.get("rounds", [])
        earlier = [r for r in s.get("earlier_runs", []) if r.get("rows", s["rows"]) == s["rows"]]
        out += [
            f"Entropy top-{s['k']} over {s['rows']:,} × {s['classes']} float32 ({gb:.1f} GB), "
            f"{s['chunk_bytes'] >> 20} MiB chunks, one worker, {len(rounds)} rounds of the "
            f"three arms in alternating order (measured {s['measured']}"
            + (f" at {s['commit']}" if s.get("commit") else "")
            + "); medians:",
            "",
            "| | seconds | GB/s | client CPU s | server CPU s | server peak RSS (MiB) |",
            "|---|---:|---:|---:|---:|---:|",
            f"| generating the chunks alone (client) | {s['generate_seconds']:.1f} | "
            f"{gb / s['generate_seconds']:.2f} | {s['generate_client_cpu_seconds']:.1f} | | |",
            f"| plain grpcio stream to a do-nothing handler | {s['drain_seconds']:.1f} | "
            f"{gb / s['drain_seconds']:.2f} | {s['drain_client_cpu_seconds']:.1f} | "
            f"{s['drain_server_cpu_seconds']:.1f} | {s['drain_server_peak_mib']:.0f} |",
            f"| labelwise SelectQueriesStream, scored as it arrives | "
            f"{s['labelwise_seconds']:.1f} | {gb / s['labelwise_seconds']:.2f} | "
            f"{s['labelwise_client_cpu_seconds']:.1f} | {s['labelwise_server_cpu_seconds']:.1f} | "
            f"{s['server_peak_mib']:.0f} (idle {s['server_idle_mib']:.0f}) |",
            "",
            f"- labelwise / plain stream: **{s['ratio']:.2f}×**, the median of the rounds' "
            f"ratios ({', '.join(format(row['ratio'], '.2f') for row in rounds)}; the target is "
            "≤ 1.2×; both arms include generating the chunks). In CPU time (client + "
            f"server, the time a machine with no idle core would take): {s['cpu_ratio']:.2f}×.",
            *(
                [
                    "- Earlier runs of this size (median ratio, range over rounds, CPU-time "
                    "ratio): "
                    + "; ".join(
                        f"{run['measured']}"
                        + (f" at {run['commit']}" if run.get("commit") else "")
                        + f": {run['ratio']:.2f}× ({run['ratio_min']:.2f}–{run['ratio_max']:.2f}"
                        + (f"), {run['cpu_ratio']:.2f}×" if "cpu_ratio" in run else ")")
                        for run in earlier
                    )
                    + "."
                ]
                if earlier
                else []
            ),
            "- Load average (1 min) before each arm: "
            + ", ".join(
                f"{row['drain']['load_before']:.1f} / {row['labelwise']['load_before']:.1f}"
                for row in rounds
            )
            + " (plain / labelwise, by round).",
            f"- Same indices as NumPy (float32, as the server computes entropy): "
            f"**{s['same_as_numpy_float32']}**; same set as NumPy in float64: "
            f"{s['same_set_as_numpy_float64']}; the same answer in every round: "
            f"{s['same_every_round']}.",
            "- The peak RSS is the server process's over all rounds (this call runs no work "
            "process). Its direct children, idle through the call (the work-process zygote), "
            "peaked at " + ", ".join(f"{m:.0f} MiB" for m in s["work_process_peak_mib"]) + ".",
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
    parser.add_argument("--rounds", type=int, default=5, help="stream: rounds of the arms")
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
                result = run_stream(args.rows, args.k, args.rounds)
                result["earlier_runs"] = earlier_stream_runs()
                save(part, result)
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
