"""Every Prometheus metric, defined once on an injected registry.

The grpc_server_* names and labels are those of go-grpc-middleware's
Prometheus provider, so dashboards built for Go services work unchanged.

One metric set whatever the worker count: prometheus_client's multiprocess collector (several
workers) has no `_created` series, so they are off in every process; no series is labelled
by pid, and labelwise_worker_rpcs_total is labelled by worker slot (LABELWISE_WORKER, set by
labelwise_server.workers; "0" for a lone process), which a restarted worker keeps.
"""

import os
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from labelwise_server import __version__

disable_created_metrics()  # type: ignore[no-untyped-call]

WORKER_ENV = "LABELWISE_WORKER"
_SIZE_BUCKETS = tuple(float(4**i) for i in range(1, 16))  # 4 .. 4**15 (~1e9)
_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                    60, 120, 300)  # fmt: skip


def seconds_buckets(max_seconds: float) -> tuple[float, ...]:
    """Latency buckets up to the longest a call may run (--max-deadline-seconds; 0: no cap,
    300 s the largest bucket)."""
    if max_seconds > _SECONDS_BUCKETS[-1]:
        return (*_SECONDS_BUCKETS, float(max_seconds))
    return _SECONDS_BUCKETS


GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
SHED_LIMITS = ("max_concurrent_rpcs", "max_watch_streams")


@dataclass(frozen=True)
class Metrics:
    started: Counter
    handled: Counter
    received: Counter
    sent: Counter
    handling_seconds: Histogram
    strategy_seconds: Histogram
    pool_rows: Histogram
    request_bytes: Histogram
    in_flight: Gauge
    worker_rpcs: Counter
    model_lookups: Counter
    model_cache_bytes: Gauge
    shed: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, max_seconds: float = 300.0) -> "Metrics":
        buckets = seconds_buckets(max_seconds)
        # multiprocess_mode tells how prometheus_client sums a gauge over worker processes
        # (PROMETHEUS_MULTIPROC_DIR, see labelwise_server.workers); one process ignores it.
        build = Gauge(
            "labelwise_build_info",
            "labelwise build information.",
            ["version"],
            registry=registry,
            multiprocess_mode="max",
        )
        build.labels(version=__version__).set(1)
        return cls(
            started=Counter(
                "grpc_server_started_total",
                "Total number of RPCs started on the server.",
                GRPC_LABELS,
                registry=registry,
            ),
            handled=Counter(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
                (*GRPC_LABELS, "grpc_code"),
                registry=registry,
            ),
            received=Counter(
                "grpc_server_msg_received_total",
                "Total number of RPC stream messages received on the server.",
                GRPC_LABELS,
                registry=registry,
            ),
            sent=Counter(
                "grpc_server_msg_sent_total",
                "Total number of gRPC stream messages sent by the server.",
                GRPC_LABELS,
                registry=registry,
            ),
            handling_seconds=Histogram(
                "grpc_server_handling_seconds",
                "Histogram of response latency (seconds) of gRPC that had been application-level "
                "handled by the server.",
                GRPC_LABELS,
                buckets=buckets,
                registry=registry,
            ),
            strategy_seconds=Histogram(
                "labelwise_strategy_duration_seconds",
                "Time one strategy spent scoring and ranking one request's pool.",
                ["strategy"],
                buckets=buckets,
                registry=registry,
            ),
            pool_rows=Histogram(
                "labelwise_pool_rows",
                "Pool size n of each selection request.",
                buckets=_SIZE_BUCKETS,
                registry=registry,
            ),
            request_bytes=Histogram(
                "labelwise_request_bytes",
                "Bytes received per selection request (all stream chunks together).",
                buckets=_SIZE_BUCKETS,
                registry=registry,
            ),
            in_flight=Gauge(
                "labelwise_requests_in_flight",
                "Selection requests being handled right now.",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            worker_rpcs=Counter(
                "labelwise_worker_rpcs",
                "RPCs started by each worker process (label worker: its slot, 0 .. --workers - 1, "
                "kept by a restarted worker), showing how connections spread over them.",
                ["worker"],
                registry=registry,
            ).labels(worker=os.environ.get(WORKER_ENV, "0")),
            model_lookups=Counter(
                "labelwise_model_lookups",
                "Models a request named, by how (source: bytes or sha256) and whether the cache "
                "held them (result: hit, or miss: bytes checked and loaded, a hash answered "
                "NOT_FOUND / MODEL_NOT_CACHED).",
                ["source", "result"],
                registry=registry,
            ),
            model_cache_bytes=Gauge(
                "labelwise_model_cache_bytes",
                "Model bytes held in the cache (summed over workers: each has its own).",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            shed=Counter(
                "labelwise_requests_shed",
                "Calls refused with RESOURCE_EXHAUSTED because a concurrency budget was full "
                "(limit: max_concurrent_rpcs for the service, max_watch_streams for health "
                "Watch and reflection streams).",
                ["limit"],
                registry=registry,
            ),
        )

    def initialize(self, service: str, methods: dict[str, str]) -> None:
        """Create the zero series of every method and status code, so rates exist at once."""
        for method, grpc_type in methods.items():
            labels = {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": method}
            self.started.labels(**labels)
            self.received.labels(**labels)
            self.sent.labels(**labels)
            self.handling_seconds.labels(**labels)
            for code in grpc.StatusCode:
                self.handled.labels(**labels, grpc_code=code.name)
        for source in ("bytes", "sha256"):
            for result in ("hit", "miss"):
                self.model_lookups.labels(source=source, result=result)
        for limit in SHED_LIMITS:
            self.shed.labels(limit=limit)
