"""Load test on loopback: labelwise against its transport ceiling, 1 worker and all workers.

A load generator sends labelwise's own SelectQueries requests (entropy, k=10, float32
probabilities) of two sizes, 1,000 x 10 (40 kB) and 100,000 x 10 (4 MB), at several
concurrency levels, each client its own connection (so SO_REUSEPORT can spread them over
workers), for a fixed time each:

  - to `labelwise serve --workers W`, and
  - to bench/echo_server.py --workers W: plain grpcio with the same version and options,
    whose handler answers an empty response without parsing, i.e. the ceiling of what
    grpcio on this machine can carry with these payloads,

for W = 1 and W = all available cores. The table gives throughput, p50/p99 latency, errors,
labelwise as a ratio of the ceiling, all-workers throughput over one worker's, the CPU the
servers and the load generator used, and the servers' RSS (the process tree, sampled every
0.2 s) before, at the peak of and after each run. Results go to bench/load/results.{md,json};
the RSS time series to results.json.

The load generator runs on the same cores as the servers and takes its share of them, so
the less CPU it spends per call, the closer the numbers come to what a dedicated client
would see. --client picks it:

  - lwload (default): bench/load/driver, our own Go client (grpc-go), built with `go build`
    into .tools/bin. It sends the request pre-encoded and does not decode the answers.
  - ghz (bojand/ghz, installed with `go install` into .tools/bin when missing), which
    builds every message through protobuf reflection and costs about 2.5 times more CPU per
    call (0.70 vs 0.27 ms at 16 clients, 1k x 10), visible in the client-CPU column.

Each row is the median of --repeats runs, taken in turn against every server (all four
are up at once), so that background load on a shared machine falls on all of them alike;
each run is preceded by a warm-up of 4 calls per client and lasts --seconds (lwload: no
new call starts after it, those in flight finish and count; ghz: -n calls, sized from the
warm-up's rate), so no call is cut off at the end of a timed run.

Usage: python bench/load.py [--seconds 3] [--repeats 3] [--concurrency 1,4,16] [--workers N]
                            [--client lwload|ghz]
"""

import argparse
import json
import os
import resource
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


def lwload_binary() -> str:
    """Build bench/load/driver (grpc-go from the module proxy; quick once cached)."""
    target = ROOT / ".tools/bin/lwload"
    subprocess.run(["go", "build", "-o", str(target), "."], cwd=HERE / "load/driver", check=True)
    return str(target)


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
        if kind.startswith("labelwise"):
            port_file = tmp / f"port-{kind}-{workers}"
            port_file.unlink(missing_ok=True)
            command = [sys.executable, "-m", "labelwise_server.cli", "serve",
                       "--host", "127.0.0.1", "--port", str(self.port), "--metrics-port", "0",
                       "--workers", str(workers), "--max-concurrent-rpcs", "1024",
                       "--port-file", str(port_file), "--log-level", "WARNING"]  # fmt: skip
            if kind == "labelwise-threads":
                command.append("--no-sandbox")
        else:
            command = [sys.executable, str(HERE / "echo_server.py"), "--port", str(self.port),
                       "--workers", str(workers)]  # fmt: skip
        self.process = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 120
        if kind.startswith("labelwise"):
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


class LoadClient:
    """One of the two load generators, run to completion per call; reports ghz's JSON."""

    def __init__(self, kind: str, protoset: Path) -> None:
        self.kind, self.protoset = kind, protoset
        self.binary = lwload_binary() if kind == "lwload" else ghz_binary()

    def warm_up(self, port: int, data: Path, concurrency: int) -> float:
        """4 calls per client; returns their rate, calls/s."""
        began = time.monotonic()
        self._call(port, data, concurrency, calls=4 * concurrency)
        return 4 * concurrency / (time.monotonic() - began)

    def run(self, port: int, data: Path, concurrency: int, seconds: float,
            rate: float) -> dict[str, Any]:  # fmt: skip
        """About `seconds` of load (ghz: as many calls as `rate` gives in that time)."""
        if self.kind == "lwload":
            return self._call(port, data, concurrency, seconds=seconds)
        calls = max(4 * concurrency, round(rate * seconds))
        return self._call(port, data, concurrency, calls=calls)

    def _call(self, port: int, data: Path, concurrency: int, calls: int = 0,
              seconds: float = 0.0) -> dict[str, Any]:  # fmt: skip
        if self.kind == "lwload":
            command = [self.binary, "-addr", f"127.0.0.1:{port}", "-data", str(data),
                       "-c", str(concurrency), "-timeout", "60s"]  # fmt: skip
            command += ["-n", str(calls)] if calls else ["-z", f"{seconds}s"]
        else:
            command = [self.binary, "--insecure", "--protoset", str(self.protoset), "--call",
                       CALL, "-B", str(data), "-c", str(concurrency), "--connections",
                       str(concurrency), "--timeout", "60s", "-O", "json", "-n", str(calls),
                       f"127.0.0.1:{port}"]  # fmt: skip
        began, cpu = time.monotonic(), children_cpu_seconds()
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        report: dict[str, Any] = json.loads(result.stdout)
        # The client's own CPU over its whole life (ghz does not report it; lwload's excludes
        # connection set-up): from the children's rusage, the same for both.
        report["client_cpu_cores"] = (children_cpu_seconds() - cpu) / (time.monotonic() - began)
        return report


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
        "client_cpu_cores": report["client_cpu_cores"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="about this long per run (default 3)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per row, median kept")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--workers", type=int, default=available_cores(), help="all workers")
    parser.add_argument("--client", choices=("lwload", "ghz"), default="lwload",
                        help="load generator (default lwload, bench/load/driver)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "load")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    results: list[dict[str, Any]] = []
    rss_series: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        protoset = tmp / "labelwise.protoset"
        subprocess.run(["buf", "build", "--as-file-descriptor-set", "-o", str(protoset)],
                       cwd=ROOT, check=True)  # fmt: skip
        payloads = {name: payload(rows, tmp) for name, rows in SIZES.items()}
        client = LoadClient(args.client, protoset)
        # Every server up at once (idle ones cost nothing), each row run against each in
        # turn, --repeats times, the median kept: background load falls on all alike.
        modes = sorted({1, args.workers})
        kinds = ("echo", "labelwise", "labelwise-threads")
        servers = {(kind, w): Server(kind, w, tmp) for w in modes for kind in kinds}
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
                            rate = client.warm_up(server.port, data, concurrency)
                            before = tree_rss_mib(server.process.pid)
                            mark = len(sampler.series)
                            cpu, wall = tree_cpu_seconds(server.process.pid), time.monotonic()
                            report = summarize(
                                client.run(server.port, data, concurrency, args.seconds, rate)
                            )
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
    table = render(results, args.workers, args.seconds, args.repeats, args.client)
    (args.out / "results.md").write_text(table)
    (args.out / "results.json").write_text(json.dumps(
        {"results": results, "rss_series_mib": rss_series, "cores": available_cores(),
         "seconds_per_run": args.seconds, "repeats": args.repeats, "client": args.client},
        indent=1))  # fmt: skip
    print(table)


def render(results: list[dict[str, Any]], all_workers: int, seconds: float, repeats: int,
           client: str) -> str:  # fmt: skip
    def find(kind: str, workers: int, size: str, c: int) -> dict[str, Any]:
        wanted = (kind, workers, size, c)
        return next(
            r for r in results if (r["server"], r["workers"], r["size"], r["concurrency"]) == wanted
        )

    modes = sorted({1, all_workers})
    lines = [
        f"{client} on loopback, median of {repeats} runs of about {seconds:g} s per row, one "
        "connection per concurrent client; "
        f"{available_cores()} cores shared by {client} and the server. Ratio: labelwise req/s over "
        "the echo ceiling's (plain grpcio, same payload, same workers). RSS: the server's "
        "process tree before → peak → after the row, MiB. CPU: the cores labelwise's processes "
        f"and {client} used during the row (load average at the end: {os.getloadavg()[0]:.1f}). "
        "Threads: the same server with --no-sandbox (work on in-process threads, as before "
        "work processes); work processes / threads: the cost of running every call in a "
        "killable work process.",
        "",
        "| request | conc. | workers | echo req/s | labelwise req/s | ratio | p50 ms | p99 ms "
        "| errors | server CPU | client CPU | RSS MiB | vs 1 worker | threads req/s "
        "| work processes / threads |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for size in SIZES:
        levels = sorted({r["concurrency"] for r in results if r["size"] == size})
        for c in levels:
            for workers in modes:
                echo, lw = find("echo", workers, size, c), find("labelwise", workers, size, c)
                one = find("labelwise", 1, size, c)
                threads = find("labelwise-threads", workers, size, c)
                lines.append(
                    f"| {size} | {c} | {workers} | {echo['rps']:,.0f} | {lw['rps']:,.0f} "
                    f"| {lw['rps'] / echo['rps']:.2f} | {lw['p50_ms']:.2f} | {lw['p99_ms']:.2f} "
                    f"| {lw['errors']} | {lw['server_cpu_cores']:.2f} "
                    f"| {lw['client_cpu_cores']:.2f} "
                    f"| {lw['rss_before_mib']:.0f} → {lw['rss_peak_mib']:.0f} → "
                    f"{lw['rss_after_mib']:.0f} | {lw['rps'] / one['rps']:.2f}× "
                    f"| {threads['rps']:,.0f} | {lw['rps'] / threads['rps']:.2f}× |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
