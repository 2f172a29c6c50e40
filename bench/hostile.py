"""Issue 13's "Done when" measurements against a real `labelwise serve --workers 2`.

(a) A Loop bomb and a legal huge typiclust, each with a 2 s deadline: status, time to answer,
    time until the tree's CPU is idle (< 5 % of a core over 200 ms; measured alone), and 50
    small entropy calls sent meanwhile from 4 other clients (a second run): successes, p50/p99.
(b) The memory cases of tests/hostile: status and reason, peak RSS of the largest process and
    of the tree, the configured --work-memory-bytes.
(c) 64 idle streams plus 16 unauthenticated Health.Watch streams on a server with tokens:
    authenticated calls (success, p50/p99) and grpc-health-probe; then the same 64 idle
    streams with --max-concurrent-rpcs 16 so every service slot of both workers is busy.

Servers, flags and checks are those of tests/hostile (harness.py). Loopback only.
Results go to bench/results/hostile.json; the tables are printed.

Usage: python bench/hostile.py
"""

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "clients/python/src"), str(ROOT)]

from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from tests.hostile import harness as h  # noqa: E402
from tests.hostile.test_corpus import CASES, Case  # noqa: E402

TOKEN = "bench-hostile-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


def case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def latency_summary(outcomes: list[h.Outcome]) -> dict[str, Any]:
    ok = [o.seconds * 1000 for o in outcomes if o.code == grpc.StatusCode.OK]
    failed = sorted({o.pair for o in outcomes if o.code != grpc.StatusCode.OK}, key=str)
    return {
        "sent": len(outcomes),
        "ok": len(ok),
        "p50_ms": round(h.percentile(ok, 50), 1),
        "p99_ms": round(h.percentile(ok, 99), 1),
        "failures": [f"{code} {reason or ''}".strip() for code, reason in failed],
    }


def deadline_rows(server: h.Server) -> list[dict[str, Any]]:
    rows = []
    for name in ("loop_10e12_trips", "typiclust_100k_k20k"):
        bomb = case(name)
        h.seconds_until_idle(server.process.pid, time.monotonic(), limit=10)
        result = bomb.run(server)
        idle = h.seconds_until_idle(server.process.pid, time.monotonic(), limit=10)
        h.seconds_until_idle(server.process.pid, time.monotonic(), limit=10)
        with h.Background(server.address, count=50, threads=4, timeout=10) as background:
            meanwhile = bomb.run(server)
        rows.append(
            {
                "case": name,
                "status": f"{result.code.name} {result.reason or ''}".strip(),
                "answer_s": round(result.seconds, 2),
                "cpu_idle_after_s": round(idle, 2),
                "status_with_load": f"{meanwhile.code.name} {meanwhile.reason or ''}".strip(),
                "small_calls": latency_summary(background.outcomes),
            }
        )
    return rows


def memory_rows(server: h.Server) -> list[dict[str, Any]]:
    rows = []
    names = [c.name for c in CASES if c.memory] + [
        "initializer_128mib",
        "random_30k_strategies_k1000",
    ]
    for name in names:
        h.seconds_until_idle(server.process.pid, time.monotonic(), limit=10)
        before = h.tree_rss_bytes(server.process.pid)
        with h.RssSampler(server.process.pid) as sampler:
            result = case(name).run(server)
        peaks = sampler.peaks()
        _, peak, command = peaks.largest
        after = h.wait_rss_back(server.process.pid, before)
        kind = "work process" if "labelwise_server.sandbox" in command else "worker/supervisor"
        rows.append(
            {
                "case": name,
                "status": f"{result.code.name} {result.reason or ''}".strip(),
                "peak_process_mib": round(peak / h.MiB),
                "peak_process_kind": kind,
                "peak_tree_mib": round(peaks.tree / h.MiB),
                "tree_before_mib": round(before / h.MiB),
                "tree_after_mib": round(after / h.MiB),
                "limit_mib": round(server.work_memory_bytes / h.MiB)
                if server.work_memory_bytes
                else None,
            }
        )
    return rows


def slot_row(server: h.Server, label: str, watches: int) -> dict[str, Any]:
    stop = threading.Event()
    channels = [server.channel() for _ in range(8)]
    idle_outcomes: list[h.Outcome] = []

    def hold(channel: grpc.Channel) -> None:
        idle_outcomes.append(
            h.outcome(
                lambda: h.stub(channel).SelectQueriesStream(
                    h.idle_requests(stop), timeout=25, metadata=AUTH
                )
            )
        )

    threads = [
        threading.Thread(target=hold, args=(c,), daemon=True) for c in channels for _ in range(8)
    ]
    watch_channels = [server.channel() for _ in range(4)]
    watch_calls = []
    try:
        for thread in threads:
            thread.start()
        for i in range(watches):
            watch_calls.append(
                health_pb2_grpc.HealthStub(watch_channels[i % 4]).Watch(
                    health_pb2.HealthCheckRequest(service=""), timeout=25
                )
            )
        time.sleep(0.5)
        during = h.small_calls(server.address, 20, timeout=5.0, metadata=AUTH)
        probe = h.health_probe(server.address)
    finally:
        stop.set()
        for call in watch_calls:
            call.cancel()
        for thread in threads:
            thread.join(timeout=30)
        for channel in channels + watch_channels:
            channel.close()
    return {
        "setup": label,
        "authenticated_calls": latency_summary(during),
        "health_probe": probe if probe is not None else "not installed",
        "idle_stream_ends": sorted(
            {f"{o.code.name} {o.reason or ''}".strip() for o in idle_outcomes}
        ),
    }


def render(results: dict[str, Any]) -> str:
    lines = [
        "### (a) 2 s deadline: answer, CPU idle, 50 small calls from 4 clients meanwhile",
        "",
        "| case | status | answer (s) | CPU idle after (s) | small calls ok | p50 (ms) "
        "| p99 (ms) | failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["deadline"]:
        s = r["small_calls"]
        lines.append(
            f"| {r['case']} | {r['status']} | {r['answer_s']} | {r['cpu_idle_after_s']} "
            f"| {s['ok']}/{s['sent']} | {s['p50_ms']} | {s['p99_ms']} "
            f"| {', '.join(s['failures']) or '-'} |"
        )
    lines += [
        "",
        "### (b) memory cases",
        "",
        "| case | status | peak, one process (MiB) | which | peak, tree (MiB) "
        "| tree before → 5 s after (MiB) | limit (MiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["memory"]:
        lines.append(
            f"| {r['case']} | {r['status']} | {r['peak_process_mib']} "
            f"| {r['peak_process_kind']} | {r['peak_tree_mib']} "
            f"| {r['tree_before_mib']} → {r['tree_after_mib']} | {r['limit_mib']} |"
        )
    lines += [
        "",
        "### (c) idle streams and unauthenticated Watch streams",
        "",
        "| setup | authenticated calls ok | p50 (ms) | p99 (ms) | failures "
        "| grpc-health-probe | idle streams ended |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["slots"]:
        a = r["authenticated_calls"]
        lines.append(
            f"| {r['setup']} | {a['ok']}/{a['sent']} | {a['p50_ms']} | {a['p99_ms']} "
            f"| {', '.join(a['failures']) or '-'} | {r['health_probe']} "
            f"| {', '.join(r['idle_stream_ends'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    results: dict[str, Any] = {"command": h.serve_command(Path("PORT_FILE"))}
    with tempfile.TemporaryDirectory() as tmp:
        server = h.start_server(Path(tmp) / "main")
        try:
            results["deadline"] = deadline_rows(server)
            results["memory"] = memory_rows(server)
        finally:
            server.stop()
        slots = []
        server = h.start_server(Path(tmp) / "auth", ("--auth-tokens", TOKEN))
        try:
            slots.append(
                slot_row(server, "64 idle streams + 16 anonymous Watch, default slots", 16)
            )
        finally:
            server.stop()
        server = h.start_server(
            Path(tmp) / "busy",
            ("--auth-tokens", TOKEN, "--max-concurrent-rpcs", "16", "--stream-idle-seconds", "20"),
        )
        try:
            slots.append(slot_row(server, "64 idle streams, 16 slots per worker (all busy)", 0))
        finally:
            server.stop()
        results["slots"] = slots
    out = ROOT / "bench/results/hostile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))


if __name__ == "__main__":
    main()
