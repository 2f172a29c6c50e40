"""Stream selection benchmark: labeling rates against the target, and throughput through gRPC.

Two parts, each writing bench/stream/results.json (the part it ran) and printing Markdown:
  rates       every budgeted stream strategy over 100,000 items at budgets 0.05, 0.1 and 0.3,
              3 seeds each (the item stream's and the strategy's): the realised labeling rate
              against the target; river's EntropySampler against ours at discount factors 1, 3
              and 8 over 100,000 items (its own RNG, our counter-based one). In-process core
              (labelwise_server.strategies.stream): the rules, not the transport.
  throughput  a `labelwise serve` subprocess on loopback (one worker, --no-sandbox is not
              used: stream decisions never enter the work processes anyway), the Python stubs:
              Decide with 1 item per call and with 100 items per call, and DecideStream with
              the same, for variable_uncertainty and quantile_filter: items per second and the
              p50/p99 latency of one call (one message and its answer in the stream), from one
              client, sequential calls.

docs/streams.md's tables are generated from the results file by
`python bench/stream.py --render-docs` (no run).

Usage: python bench/stream.py [--parts rates,throughput] [--items 100000] [--calls 2000]
"""

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "clients/python/src"), str(HERE)]

from core import free_port, wait_ready  # noqa: E402

RESULTS = HERE / "stream" / "results.json"
SIMULATION = HERE / "simulation" / "stream" / "results.json"
DOC = ROOT / "docs" / "streams.md"
BUDGETS = (0.05, 0.1, 0.3)
SEEDS = (0, 1, 2)
DISCOUNTS = (1.0, 3.0, 8.0)


def utility_stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [n, 3] of a drifting model (spells of 500 items, each with its own
    sharpness) and their least-confidence utilities."""
    from labelwise_server.strategies.stream import least_confidence_utilities

    rng = np.random.default_rng(1000 + seed)
    sharpness = np.repeat(rng.uniform(0.2, 5.0, size=n // 500 + 1), 500)[:n]
    probabilities = rng.gamma(sharpness[:, None], size=(n, 3))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return probabilities, least_confidence_utilities(probabilities)


def run_strategy(name: str, probabilities: np.ndarray, budget: float, seed: int) -> np.ndarray:
    from labelwise_server.strategies.registry import STREAM_STRATEGIES
    from labelwise_server.strategies.stream import (
        UTILITY_FUNCTIONS,
        StreamState,
        WindowCap,
        pal_utilities,
    )

    strategy = STREAM_STRATEGIES[name]
    params: dict[str, Any] = {k: p.default for k, p in strategy.params.items()}
    if "classes" in params:
        params["classes"] = probabilities.shape[1]
    if strategy.needs_frequencies:  # kernel frequencies: 10 labeled neighbours' worth
        utilities = pal_utilities(10.0 * probabilities, float(params["prior"]), 2)
    elif strategy.reads_items:
        utilities = UTILITY_FUNCTIONS[strategy.utility_name(params)](probabilities)
    else:
        utilities = np.zeros(len(probabilities))
    theta = float(params["theta"]) if strategy.initial_theta else 0.0
    state = StreamState(seed=seed, theta=theta)
    labels = [
        strategy.decide(utilities[i : i + 100], state, budget, WindowCap(), params).label
        for i in range(0, len(utilities), 100)
    ]
    return np.concatenate(labels)


def rates(items: int) -> dict[str, Any]:
    from river.active import EntropySampler

    from labelwise_server.strategies.registry import STREAM_STRATEGIES
    from labelwise_server.strategies.stream import (
        StreamState,
        WindowCap,
        normalized_entropy_utilities,
    )

    rows = []
    for name, strategy in STREAM_STRATEGIES.items():
        if not strategy.budgeted:
            continue
        for budget in BUDGETS:
            realised = []
            for seed in SEEDS:
                probabilities, _ = utility_stream(items, seed)
                realised.append(float(run_strategy(name, probabilities, budget, seed).mean()))
            rows.append({"strategy": name, "budget": budget, "items": items, "rates": realised})
            print(f"  {name} b={budget}: {realised}", file=sys.stderr)
    river = []
    for discount in DISCOUNTS:
        for seed in SEEDS:
            probabilities, _ = utility_stream(items, seed)
            sampler = EntropySampler(classifier=None, discount_factor=discount, seed=seed)
            theirs = float(
                np.mean([sampler._ask_for_label(None, dict(enumerate(r))) for r in probabilities])
            )
            utilities = normalized_entropy_utilities(probabilities)
            state = StreamState(seed=seed)
            ours = float(
                STREAM_STRATEGIES["entropy_sampler"]
                .decide(utilities, state, 1.0, WindowCap(), {"discount_factor": discount})
                .label.mean()
            )
            river.append({"discount_factor": discount, "seed": seed, "items": items,
                          "river": theirs, "labelwise": ours})  # fmt: skip
    return {"rates": rows, "river": river}


def _serve() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(
        os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", "0", "--workers", "1", "--log-level", "ERROR"],
        env=env,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    wait_ready(address)
    return process, address


def throughput(calls: int) -> dict[str, Any]:
    import grpc

    from labelwise.stream import decide_request
    from labelwise.v1 import stream_selection_pb2 as spb
    from labelwise.v1 import stream_selection_pb2_grpc as spb_grpc

    load_before = os.getloadavg()[0]
    process, address = _serve()
    rows = []
    try:
        channel = grpc.insecure_channel(address)
        stub = spb_grpc.StreamSelectionServiceStub(channel)  # type: ignore[no-untyped-call]
        rng = np.random.default_rng(0)
        for strategy in ("variable_uncertainty", "quantile_filter"):
            for size in (1, 100):
                batches = [rng.dirichlet(np.ones(10), size=size) for _ in range(64)]
                count = calls if size == 1 else max(200, calls // 4)
                # Unary: each call sends the previous answer's token.
                token, latencies = b"", []
                for i in range(count + 50):
                    request = decide_request(strategy, budget=0.1, token=token,
                                             items={"probabilities": batches[i % 64]})  # fmt: skip
                    started = time.perf_counter()
                    token = stub.Decide(request, timeout=10).token
                    if i >= 50:  # warm-up
                        latencies.append(time.perf_counter() - started)
                rows.append(_row(strategy, "Decide (unary)", size, latencies))
                # DecideStream: one call, one message at a time (send, wait for its answer).
                latencies = []
                requests: queue.Queue[spb.DecideStreamRequest | None] = queue.Queue()
                answers = stub.DecideStream(iter(requests.get, None), timeout=600)
                for i in range(count + 50):
                    request = decide_request(strategy, budget=0.1,
                                             items={"probabilities": batches[i % 64]})  # fmt: skip
                    started = time.perf_counter()
                    requests.put(spb.DecideStreamRequest(request=request))
                    next(answers)
                    if i >= 50:
                        latencies.append(time.perf_counter() - started)
                requests.put(None)
                list(answers)
                rows.append(_row(strategy, "DecideStream", size, latencies))
                print(f"  {rows[-2]}\n  {rows[-1]}", file=sys.stderr)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "throughput": rows,
        "cores": os.cpu_count(),
        "load_average": [load_before, os.getloadavg()[0]],
    }


def _row(strategy: str, call: str, size: int, latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "strategy": strategy,
        "call": call,
        "items_per_call": size,
        "calls": len(latencies),
        "items_per_second": size * len(latencies) / sum(latencies),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def render(results: dict[str, Any]) -> dict[str, str]:
    """The Markdown tables of docs/streams.md, by marker name."""
    tables = {}
    if "rates" in results:
        lines = ["| strategy | target | realised rate (3 seeds) | worst gap (points) |",
                 "|---|---|---|---|"]  # fmt: skip
        for row in results["rates"]:
            r = row["rates"]
            gap = max(abs(x - row["budget"]) for x in r) * 100
            cells = ", ".join(f"{x:.4f}" for x in r)
            lines.append(f"| {row['strategy']} | {row['budget']:g} | {cells} | {gap:.2f} |")
        tables["RATES"] = "\n".join(lines)
        lines = ["| discount factor | seed | river EntropySampler | labelwise entropy_sampler "
                 "| gap (points) |", "|---|---|---|---|---|"]  # fmt: skip
        for row in results["river"]:
            gap = abs(row["river"] - row["labelwise"]) * 100
            lines.append(f"| {row['discount_factor']:g} | {row['seed']} | {row['river']:.4f} "
                         f"| {row['labelwise']:.4f} | {gap:.2f} |")  # fmt: skip
        tables["RIVER"] = "\n".join(lines)
    if "throughput" in results:
        lines = ["| strategy | call | items per call | items/s | p50 ms | p99 ms |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for row in results["throughput"]:
            lines.append(f"| {row['strategy']} | {row['call']} | {row['items_per_call']} | "
                         f"{row['items_per_second']:,.0f} | {row['p50_ms']:.2f} | "
                         f"{row['p99_ms']:.2f} |")  # fmt: skip
        if "load_average" in results:
            before, after = results["load_average"]
            lines.append(f"\n{results['cores']} cores; 1-minute load average {before:.1f} before "
                         f"the run, {after:.1f} after it.")  # fmt: skip
        tables["THROUGHPUT"] = "\n".join(lines)
    return tables


def render_docs(results: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the text between <!-- NAME:begin --> and <!-- NAME:end --> in doc (and the
    SIMULATION table from labelwise-simulate --stream's committed results)."""
    tables = render(results)
    if SIMULATION.exists():
        sys.path.insert(0, str(ROOT / "tools" / "simulate"))
        from labelwise_simulate.stream import table

        tables["SIMULATION"] = table(json.loads(SIMULATION.read_text())["runs"])
    text = doc.read_text()
    for name, table_text in tables.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{begin}\n{table_text}\n{end}{tail}"
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="rates,throughput")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--render-docs", action="store_true", help="Only render docs tables.")
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.render_docs:
        parts = args.parts.split(",")
        if "rates" in parts:
            results.update(rates(args.items))
        if "throughput" in parts:
            results.update(throughput(args.calls))
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    for table in render(results).values():
        print(table + "\n")
    if DOC.exists():
        render_docs(results)


if __name__ == "__main__":
    main()
