"""Load test on loopback: labelwise against its transport ceiling, 1 worker and all workers.

ghz (bojand/ghz, installed with `go install` into .tools/bin when missing) sends
labelwise's own SelectQueries requests (entropy, k=10, float32 probabilities) of two sizes,
1,000 x 10 (40 kB) and 100,000 x 10 (4 MB), at several concurrency levels, each client
its own connection (so SO_REUSEPORT can spread them over workers), for a fixed time each:

  - to `labelwise serve --workers W`, and
  - to bench/echo_server.py --workers W: plain grpcio with the same version and options,
    whose handler answers an empty response without parsing, i.e. the ceiling of what
    grpcio on this machine can carry with these payloads,

for W = 1 and W = all available cores. The table gives throughput, p50/p99 latency, errors,
labelwise as a ratio of the ceiling, all-workers throughput over one worker's, and the
servers' RSS (the process tree, sampled every 0.2 s) before, at the peak of and after each
run. Results go to bench/load/results.{md,json}; the RSS time series to results.json.

ghz runs on the same cores as the servers, so it takes its share of them: the ratios
compare like with like, the absolute numbers are lower than a dedicated client would see.

Each row is the median of --repeats runs, taken in turn against every server (all four
are up at once), so that background load on a shared machine falls on all of them alike;
each run sends about --seconds worth of calls (-n sized from a warm-up at the same
concurrency), so no call is cut off at the end of a timed run.

Usage: python bench/load.py [--seconds 3] [--repeats 3] [--concurrency 1,4,16] [--workers N]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "clients/python/src")]

from labelwise.tensors import encode_tensor  # noqa: E402
from labelwise.v1 import query_selection_pb2 as pb  # noqa: E402
from labelwise_server.config import available_cores  # noqa: E402

GHZ_VERSION = "v0.121.0"
CALL = "labelwise.v1.QuerySelectionService.SelectQueries"
SIZES = {"1k x 10": 1_000, "100k x 10": 100_000}


def ghz_binary() -> str:
    found = shutil.which("ghz") or str(ROOT / ".tools/bin/ghz")
    if not Path(found).exists():
        print(f"installing ghz {GHZ_VERSION} with go install ...", file=sys.stderr)
        env = dict(os.environ, GOBIN=str(ROOT / ".tools/bin"))
        subprocess.run(["go", "install", f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}"],
                       env=env, check=True)  # fmt: skip
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_mib(root: int) -> float:
    """Resident memory of a process and all its descendants."""
    return sum(_tree(root, "VmRSS")) / 1024


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of a process and its live descendants."""
    total = 0.0
    for pid in _family(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _family(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    family, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return family


def _tree(root: int, key: str) -> list[int]:
    values = []
    for pid in _family(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    values.append(int(line.split()[1]))
        except OSError:
            continue
    return values


@dataclass
class Sampler:
    pid: int
    series: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.series.append((time.monotonic() - self._began, tree_rss_mib(self.pid)))
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Server:
    def __init__(self, kind: str, workers: int, tmp: Path) -> None:
        self.kind, self.workers, self.port = kind, workers, free_port()
        env = dict(
            os.environ, PYTHONPATH=f"{ROOT / 'service'}{os.pathsep}{ROOT / 'clients/python/src'}"
        )
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if kind == "labelwise":
            port_file = tmp / f"port-{workers}"
            port_file.unlink(missing_ok=True)
            command = [sys.executable, "-m", "labelwise_server.cli", "serve",
                       "--host", "127.0.0.1", "--port", str(self.port), "--metrics-port", "0",
                       "--workers", str(workers), "--max-concurrent-rpcs", "1024",
                       "--port-file", str(port_file), "--log-level", "WARNING"]  # fmt: skip
        else:
            command = [sys.executable, str(HERE / "echo_server.py"), "--port", str(self.port),
                       "--workers", str(workers)]  # fmt: skip
        self.process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 120
        if kind == "labelwise":
            while not port_file.exists():
                assert self.process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=120)
        time.sleep(1.0 if workers > 1 else 0.2)  # every worker listening

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def payload(rows: int, tmp: Path) -> Path:
    p = np.random.default_rng(0).dirichlet(np.ones(10), size=rows).astype(np.float32)
    request = pb.SelectQueriesRequest(
        strategies=[pb.StrategySpec(name="entropy")], k=10, probabilities=encode_tensor(p)
    )
    path = tmp / f"request-{rows}.bin"
    path.write_bytes(request.SerializeToString())
    return path


def ghz(binary: str, protoset: Path, port: int, data: Path, concurrency: int,
        total: int) -> dict[str, Any]:  # fmt: skip
    command = [binary, "--insecure", "--protoset", str(protoset), "--call", CALL,
               "-B", str(data), "-c", str(concurrency), "--connections", str(concurrency),
               "--timeout", "60s", "-O", "json", f"127.0.0.1:{port}"]  # fmt: skip
    command += ["-n", str(total)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    latencies = {
        d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []
    }
    codes = report.get("statusCodeDistribution") or {}
    return {
        "count": report["count"],
        "rps": report["rps"],
        "p50_ms": latencies.get(50, float("nan")),
        "p99_ms": latencies.get(99, float("nan")),
        "errors": sum(n for code, n in codes.items() if code != "OK"),
        "codes": codes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="about this long per run (default 3)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per row, median kept")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--workers", type=int, default=available_cores(), help="all workers")
    parser.add_argument("--out", type=Path, default=HERE / "load")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    binary = ghz_binary()
    results: list[dict[str, Any]] = []
    rss_series: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        protoset = tmp / "labelwise.protoset"
        subprocess.run(["buf", "build", "--as-file-descriptor-set", "-o", str(protoset)],
                       cwd=ROOT, check=True)  # fmt: skip
        payloads = {name: payload(rows, tmp) for name, rows in SIZES.items()}
        # Every server up at once (idle ones cost nothing), each row run against each in
        # turn, --repeats times, the median kept: background load falls on all alike.
        modes = sorted({1, args.workers})
        servers = {(kind, w): Server(kind, w, tmp) for w in modes for kind in ("echo", "labelwise")}
        samplers = {key: Sampler(server.process.pid) for key, server in servers.items()}
        try:
            for size, data in payloads.items():
                for concurrency in levels:
                    runs: dict[tuple[str, int], list[dict[str, Any]]] = {k: [] for k in servers}
                    for repeat in range(args.repeats):
                        order = list(servers)
                        order = order[repeat % len(order) :] + order[: repeat % len(order)]
                        for key in order:
                            server, sampler = servers[key], samplers[key]
                            # warm-up, and the rate that sizes the timed run
                            began = time.monotonic()
                            ghz(binary, protoset, server.port, data, concurrency, 4 * concurrency)
                            rate = 4 * concurrency / (time.monotonic() - began)
                            total = max(4 * concurrency, round(rate * args.seconds))
                            before = tree_rss_mib(server.process.pid)
                            mark = len(sampler.series)
                            cpu, wall = tree_cpu_seconds(server.process.pid), time.monotonic()
                            report = summarize(ghz(binary, protoset, server.port, data,
                                                   concurrency, total))  # fmt: skip
                            report["server_cpu_cores"] = (
                                tree_cpu_seconds(server.process.pid) - cpu
                            ) / (time.monotonic() - wall)
                            time.sleep(0.4)
                            during = [rss for _, rss in sampler.series[mark:]] or [before]
                            row = {"server": key[0], "workers": key[1], "size": size,
                                   "concurrency": concurrency, "repeat": repeat, **report,
                                   "rss_before_mib": before, "rss_peak_mib": max(during),
                                   "rss_after_mib": tree_rss_mib(server.process.pid)}  # fmt: skip
                            runs[key].append(row)
                            print(json.dumps(row), file=sys.stderr)
                    for rows in runs.values():
                        rows.sort(key=lambda r: r["rps"])
                        median = dict(rows[len(rows) // 2])
                        median["rps_runs"] = [round(r["rps"], 1) for r in rows]
                        median["errors"] = sum(r["errors"] for r in rows)
                        median["count"] = sum(r["count"] for r in rows)
                        results.append(median)
        finally:
            for key, server in servers.items():
                samplers[key].stop()
                server.stop()
                rss_series[f"{key[0]} {key[1]}w"] = samplers[key].series
    args.out.mkdir(parents=True, exist_ok=True)
    table = render(results, args.workers, args.seconds, args.repeats)
    (args.out / "results.md").write_text(table)
    (args.out / "results.json").write_text(json.dumps(
        {"results": results, "rss_series_mib": rss_series, "cores": available_cores(),
         "seconds_per_run": args.seconds, "repeats": args.repeats}, indent=1))  # fmt: skip
    print(table)


def render(results: list[dict[str, Any]], all_workers: int, seconds: float, repeats: int) -> str:
    def find(kind: str, workers: int, size: str, c: int) -> dict[str, Any]:
        wanted = (kind, workers, size, c)
        return next(
            r for r in results if (r["server"], r["workers"], r["size"], r["concurrency"]) == wanted
        )

    modes = sorted({1, all_workers})
    lines = [
        f"ghz on loopback, median of {repeats} runs of about {seconds:g} s per row, one "
        "connection per concurrent client; "
        f"{available_cores()} cores shared by ghz and the server. Ratio: labelwise req/s over "
        "the echo ceiling's (plain grpcio, same payload, same workers). RSS: the server's "
        "process tree before → peak → after the row, MiB. Server CPU: the cores labelwise's "
        f"processes used during the row (load average at the end: {os.getloadavg()[0]:.1f}).",
        "",
        "| request | conc. | workers | echo req/s | labelwise req/s | ratio | p50 ms | p99 ms "
        "| errors | server CPU (cores) | RSS MiB | vs 1 worker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for size in SIZES:
        levels = sorted({r["concurrency"] for r in results if r["size"] == size})
        for c in levels:
            for workers in modes:
                echo, lw = find("echo", workers, size, c), find("labelwise", workers, size, c)
                one = find("labelwise", 1, size, c)
                lines.append(
                    f"| {size} | {c} | {workers} | {echo['rps']:,.0f} | {lw['rps']:,.0f} "
                    f"| {lw['rps'] / echo['rps']:.2f} | {lw['p50_ms']:.2f} | {lw['p99_ms']:.2f} "
                    f"| {lw['errors']} | {lw['server_cpu_cores']:.2f} "
                    f"| {lw['rss_before_mib']:.0f} → {lw['rss_peak_mib']:.0f} → "
                    f"{lw['rss_after_mib']:.0f} | {lw['rps'] / one['rps']:.2f}× |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
