"""Core benchmark: entropy top-100 over 1,000,000 × 10 float32 probabilities.

Side by side in one run, interleaved call by call:
  - end to end through labelwise on loopback (Python client -> server subprocess);
  - the transport floor: the same request bytes sent by plain grpcio to a
    do-nothing handler (bench/echo_server.py);
  - the same computation in process: plain NumPy, and labelwise's own select();
plus all ten score strategies in one request, a float16 pool, and the
server's peak memory. Each scenario runs twice: with glibc's default malloc,
and with freed memory kept in the process (MALLOC_MMAP_MAX_=0,
MALLOC_TRIM_THRESHOLD_ high) on both client and server.

Usage: python bench/core.py [--repeats 7]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
N, C, K = 1_000_000, 10, 100
TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 34)}
TEN = [
    "least_confidence", "margin", "ratio", "entropy", "vote_entropy",
    "consensus_entropy", "kl_to_consensus", "bald", "variation_ratio", "mean_std",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(address: str, timeout: float = 60.0) -> None:
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=timeout)
    channel.close()


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def phase(repeats: int) -> dict[str, Any]:
    """Run every scenario in this process's allocator setting; servers inherit it."""
    from labelwise import Client
    from labelwise.client import _encode, _Request
    from labelwise.v1 import query_selection_pb2 as pb
    from labelwise_server.selection import select
    from labelwise_server.tensors import parse_request
    from labelwise_server.validation import decode_request

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "service"), str(ROOT / "clients/python/src"), env.get("PYTHONPATH", "")]
    )
    port, echo_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "labelwise_server.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--metrics-port", "0", "--log-level", "WARNING",
         "--workers", "1"],  # one process, as the echo floor is; bench/load.py measures workers
        env=env,
    )  # fmt: skip
    echo = subprocess.Popen(
        [sys.executable, str(HERE / "echo_server.py"), "--port", str(echo_port)], env=env
    )
    try:
        wait_ready(f"127.0.0.1:{port}")
        wait_ready(f"127.0.0.1:{echo_port}")
        rng = np.random.default_rng(0)
        probabilities = rng.dirichlet(np.ones(C), N).astype(np.float32)
        half = probabilities.astype(np.float16)
        n_ten, m_ten = 200_000, 5
        ten_probabilities = probabilities[:n_ten]
        ten_committee = rng.dirichlet(np.ones(C), (m_ten, n_ten)).astype(np.float32)

        header = pb.SelectQueriesRequest(k=K, strategies=[pb.StrategySpec(name="entropy")])
        payload = _encode(_Request(header, {"probabilities": probabilities}))
        options = [("grpc.max_send_message_length", 1 << 28),
                   ("grpc.max_receive_message_length", 1 << 28)]  # fmt: skip
        echo_channel = grpc.insecure_channel(f"127.0.0.1:{echo_port}", options=options)
        nothing = echo_channel.unary_unary(
            "/bench.Echo/Nothing", request_serializer=None, response_deserializer=None
        )
        client = Client(f"127.0.0.1:{port}")

        def numpy_entropy_top_k() -> None:
            scores = -(probabilities * np.log(probabilities)).sum(axis=1)
            top = np.argpartition(scores, N - K)[N - K :]
            top[np.argsort(-scores[top], kind="stable")]

        def labelwise_in_process() -> None:
            select(decode_request(parse_request(payload), 1 << 30))

        ten_header = pb.SelectQueriesRequest(k=K, strategies=[pb.StrategySpec(name=s) for s in TEN])
        ten_payload = _encode(
            _Request(ten_header, {"probabilities": ten_probabilities, "committee": ten_committee})
        )

        def ten_in_process() -> None:
            select(decode_request(parse_request(ten_payload), 1 << 30))

        def ten_one_by_one() -> None:
            for name in TEN:
                header = pb.SelectQueriesRequest(k=K, strategies=[pb.StrategySpec(name=name)])
                one = _encode(
                    _Request(
                        header, {"probabilities": ten_probabilities, "committee": ten_committee}
                    )
                )
                select(decode_request(parse_request(one), 1 << 30))

        scenarios: dict[str, Callable[[], Any]] = {
            "floor": lambda: nothing(payload),
            "e2e_entropy": lambda: client.select(strategies=["entropy"], k=K, probabilities=probabilities),  # noqa: E501
            "numpy_entropy": numpy_entropy_top_k,
            "select_entropy": labelwise_in_process,
            "e2e_float16": lambda: client.select(strategies=["entropy"], k=K, probabilities=half),
            "e2e_ten": lambda: client.select(strategies=TEN, k=K, probabilities=ten_probabilities,
                                             committee=ten_committee),
            "select_ten": ten_in_process,
            "select_ten_separately": ten_one_by_one,
        }  # fmt: skip
        for fn in scenarios.values():  # warm up: imports, first-touch pages, connections
            fn()
        times: dict[str, list[float]] = {name: [] for name in scenarios}
        for _ in range(repeats):
            for name, fn in scenarios.items():
                times[name].append(timed(fn))

        # Peak server memory for one entropy call over the 40 MB pool.
        time.sleep(0.5)
        baseline = status_kib(server.pid, "VmRSS")
        reset_peak(server.pid)
        scenarios["e2e_entropy"]()
        peak = status_kib(server.pid, "VmHWM")
        client.close()
        echo_channel.close()
        return {
            "median": {name: statistics.median(ts) for name, ts in times.items()},
            "payload_bytes": len(payload),
            "server_rss_baseline_kib": baseline,
            "server_peak_kib": peak,
        }
    finally:
        for process in (server, echo):
            process.terminate()
            process.wait(timeout=30)


def run_phase_in_subprocess(tuned: bool, repeats: int) -> dict[str, Any]:
    env = dict(os.environ)
    if tuned:
        env.update(TUNED_MALLOC)
    out = subprocess.run(
        [sys.executable, __file__, "--phase", "--repeats", str(repeats)],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def report(default: dict[str, Any], tuned: dict[str, Any]) -> str:
    ms = lambda seconds: f"{seconds * 1e3:.1f}"  # noqa: E731
    rows = [
        ("End to end through labelwise (entropy, k=100, 1M×10 f32)", "e2e_entropy"),
        ("Transport floor: grpcio echo of the same bytes", "floor"),
        ("In process: plain NumPy entropy + top-100", "numpy_entropy"),
        ("In process: labelwise parse + validate + select", "select_entropy"),
        ("End to end, float16 pool (20 MB)", "e2e_float16"),
        ("End to end, all ten score strategies (200k×10 + 5×200k×10 f32)", "e2e_ten"),
        ("In process, all ten in one select (shared intermediates)", "select_ten"),
        ("In process, the ten as ten separate selects", "select_ten_separately"),
    ]
    lines = [
        "| scenario | default malloc (ms) | tuned malloc (ms) |",
        "|---|---:|---:|",
    ]
    for label, key in rows:
        lines.append(f"| {label} | {ms(default['median'][key])} | {ms(tuned['median'][key])} |")
    lines.append("")
    lines.append("| check | default malloc | tuned malloc |")
    lines.append("|---|---:|---:|")
    for label, fn in [
        (
            "e2e / (floor + NumPy) (target <= 1.5)",
            lambda r: (
                r["median"]["e2e_entropy"] / (r["median"]["floor"] + r["median"]["numpy_entropy"])
            ),
        ),
        (
            "e2e / floor (aim <= 1.2 tuned)",
            lambda r: r["median"]["e2e_entropy"] / r["median"]["floor"],
        ),
        (
            "server peak RSS growth / payload (target <= 3)",
            lambda r: (
                (r["server_peak_kib"] - r["server_rss_baseline_kib"]) * 1024 / r["payload_bytes"]
            ),
        ),
    ]:
        lines.append(f"| {label} | {fn(default):.2f} | {fn(tuned):.2f} |")

    def mib(r):
        return f"{r['server_rss_baseline_kib'] / 1024:.0f} → {r['server_peak_kib'] / 1024:.0f} MiB"

    lines.append(f"| server RSS, idle → peak during the call | {mib(default)} | {mib(tuned)} |")
    lines.append(f"\npayload: {default['payload_bytes'] / 1e6:.1f} MB per request; medians of the "
                 "interleaved repeats")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.repeats)))
        return
    default = run_phase_in_subprocess(False, args.repeats)
    tuned = run_phase_in_subprocess(True, args.repeats)
    print(report(default, tuned))


if __name__ == "__main__":
    main()
