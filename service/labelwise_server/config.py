"""The server's settings: one frozen dataclass, each field a flag and an environment variable."""

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self")) -> float:
    """The CPU quota of this process's cgroup in cores (v2 cpu.max or v1 cfs_quota_us / period);
    math.inf when there is none."""
    candidates: list[Path] = []
    try:
        for line in (proc / "cgroup").read_text().splitlines():
            hierarchy, controllers, path = line.split(":", 2)
            if hierarchy == "0" and controllers == "":  # v2 unified
                candidates.append(root / path.lstrip("/") / "cpu.max")
            elif "cpu" in controllers.split(","):  # v1
                candidates.append(root / controllers / path.lstrip("/"))
    except (OSError, ValueError):
        pass
    # Inside a container the cgroup namespace shows the pod's own cgroup at the root.
    candidates += [root / "cpu.max", root / "cpu", root / "cpu,cpuacct"]
    for candidate in candidates:
        try:
            if candidate.name == "cpu.max":
                quota, period = candidate.read_text().split()[:2]
                if quota != "max":
                    return int(quota) / int(period)
                return math.inf
            quota_us = int((candidate / "cpu.cfs_quota_us").read_text())
            period_us = int((candidate / "cpu.cfs_period_us").read_text())
            return quota_us / period_us if quota_us > 0 else math.inf
        except (OSError, ValueError, ZeroDivisionError):
            continue
    return math.inf


def available_cores() -> int:
    """CPUs this process may use: its affinity mask (which cgroup cpusets restrict), capped by
    the cgroup CPU quota (a Kubernetes CPU limit), rounded up; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit < cores:
        cores = math.ceil(limit)
    return max(1, cores)


def memory_limit(root: Path = Path("/sys/fs/cgroup")) -> int:
    """Bytes of memory this process may use: the cgroup's limit (v2 memory.max, v1
    memory.limit_in_bytes) when lower than the machine's memory, else the machine's."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    for candidate in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = candidate.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            return int(text)
    return total


@dataclass(frozen=True)
class Config:
    host: str = "[::]"
    port: int = 50051
    metrics_port: int = 9090
    metrics_host: str = "127.0.0.1"
    max_message_bytes: int = 256 * 1024 * 1024
    max_pool_elements: int = 1 << 28
    max_concurrent_rpcs: int = 64
    max_watch_streams: int = 16
    max_streams_per_connection: int = 32
    stream_idle_seconds: float = 10.0
    max_stream_chunks: int = 65536
    max_stream_elements: int = 1 << 36
    compute_threads: int = 0  # 0: one per available core
    grace_seconds: float = 20.0
    drain_seconds: float = 0.0
    reflection: bool = True
    reflection_auth: bool = False
    max_connection_age_seconds: float = 0.0  # 0: connections live as long as clients keep them
    log_level: str = "INFO"
    port_file: str = ""  # "": write none
    workers: int = 0  # 0: one per available core
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    auth_tokens: str = ""
    auth_token_file: str = ""
    max_deadline_seconds: float = 300.0  # 0: no cap
    stream_token_key_file: str = ""  # "": LABELWISE_STREAM_TOKEN_KEY, else the development key

    @property
    def worker_count(self) -> int:
        return self.workers or available_cores()

    sandbox: bool = True
    work_processes: int = 0  # 0: max(2, compute threads)
    work_memory_bytes: int = 0  # 0: a share of the machine's or the cgroup's memory
    work_stop_grace_seconds: float = 0.25
    max_model_bytes: int = 64 * 1024 * 1024
    model_cache_bytes: int = 512 * 1024 * 1024
    model_threads: int = 0  # 0: one per available core

    @property
    def work_process_count(self) -> int:
        """Work processes of one server process (each worker has its own)."""
        return self.work_processes or max(2, self.threads)

    def work_memory_limit(self, processes_in_all: int) -> int:
        """RLIMIT_DATA of each work process: the flag, or 80% of the memory this container may
        use (cgroup limit, else the machine's) shared among every work process, at least
        512 MiB."""
        if self.work_memory_bytes:
            return self.work_memory_bytes
        return max(512 << 20, int(memory_limit() * 0.8) // max(1, processes_in_all))

    @property
    def inference_threads(self) -> int:
        return self.model_threads or available_cores()

    @property
    def threads(self) -> int:
        """Compute threads of this one server process."""
        return self.compute_threads or available_cores()

    @property
    def worker_threads(self) -> int:
        """Compute threads of each worker process: by default the cores shared among them."""
        return self.compute_threads or max(1, available_cores() // self.worker_count)


HELP = {
    "host": "Address to listen on for gRPC.",
    "port": "gRPC port (0 picks a free one).",
    "metrics_port": "Port of the Prometheus /metrics HTTP endpoint (0 disables it).",
    "metrics_host": "Address of the /metrics endpoint. Loopback by default: the endpoint has "
    "no TLS and no token, so it is opened to the network only on purpose (the image and the "
    "Kubernetes manifests set [::] so Prometheus can scrape the pod).",
    "max_message_bytes": "Largest gRPC message accepted or sent, in bytes; bigger pools use "
    "the streaming call.",
    "max_pool_elements": "Largest number of elements one request's tensor (or reassembled "
    "stream) may hold; for a stream scored as it arrives (docs/scale.md), the most elements "
    "of one tensor held at once.",
    "max_stream_elements": "Most elements of one tensor a SelectQueriesStream scored as it "
    "arrives (row-wise strategies, docs/scale.md) may send in all; more end it with "
    "INVALID_ARGUMENT (reason TOO_MANY_ELEMENTS). Its memory is bounded by "
    "--max-pool-elements, not by this.",
    "max_concurrent_rpcs": "QuerySelectionService calls served at once per worker; more are "
    "refused with RESOURCE_EXHAUSTED (reason TOO_MANY_REQUESTS). Health and reflection do not "
    "count: they have --max-watch-streams.",
    "max_watch_streams": "Streaming health (Health.Watch) and reflection calls open at once per "
    "worker; more are refused with RESOURCE_EXHAUSTED. Health.Check is always answered.",
    "max_streams_per_connection": "HTTP/2 streams (calls) one client connection may have open "
    "at once (SETTINGS_MAX_CONCURRENT_STREAMS); a client queues the rest, so one connection "
    "cannot take every --max-concurrent-rpcs slot.",
    "stream_idle_seconds": "A SelectQueriesStream that sends no chunk for this long (from its "
    "start or its previous chunk) ends with DEADLINE_EXCEEDED (reason STREAM_IDLE); so does a "
    "DecideStream that sends no message for this long.",
    "max_stream_chunks": "Most chunks one SelectQueriesStream may send; more end it with "
    "INVALID_ARGUMENT (reason TOO_MANY_CHUNKS).",
    "compute_threads": "Threads that run strategies (0: one per available core).",
    "grace_seconds": "On SIGTERM, how long in-flight calls may take to finish.",
    "drain_seconds": "On SIGTERM, how long to report NOT_SERVING before refusing new calls, "
    "so load balancers stop routing here first.",
    "reflection": "Serve gRPC server reflection (grpcurl, grpcui).",
    "reflection_auth": "With bearer tokens configured, reflection too needs `authorization: "
    "Bearer TOKEN` (health never does: probes carry no token).",
    "max_connection_age_seconds": "Close client connections after this age so clients "
    "re-resolve and spread over new replicas (0: never).",
    "log_level": "Logging level: DEBUG, INFO, WARNING or ERROR.",
    "sandbox": "Run each request's work (decoding, models, strategies) in a work process that "
    "is killed when the call's deadline passes or it is cancelled, under a memory limit. "
    "--no-sandbox runs work on in-process threads: only for trusted callers and debugging.",
    "work_processes": "Work processes per server process (0: two, or one per compute thread "
    "if more); a call waits for a free one.",
    "work_memory_bytes": "Memory one work process may map (RLIMIT_DATA, the interpreter "
    "included); a request that needs more fails alone with RESOURCE_EXHAUSTED "
    "(WORK_MEMORY_EXCEEDED). 0: 80%% of the container's (cgroup) or machine's memory shared "
    "among every work process of the server, at least 512 MiB.",
    "work_stop_grace_seconds": "After a call's deadline or cancellation, how long its work "
    "process may take to stop by itself before it is killed and replaced.",
    "max_model_bytes": "Largest ONNX model a request may carry, in bytes (model mode); bigger "
    "ones are refused before parsing.",
    "model_cache_bytes": "Bytes of models kept by SHA-256 for requests that send only the hash "
    "(least recently used out first; 0: cache nothing, clients always send bytes).",
    "model_threads": "Intra-op threads of each ONNX Runtime session (0: one per available core).",
    "port_file": "Once serving, write the bound gRPC port to this file (for --port 0 under a "
    "test harness or a sidecar; empty: none).",
    "workers": "Server processes sharing the gRPC port through SO_REUSEPORT, under one "
    "supervisor that serves the summed metrics and restarts a worker that dies (0: one per "
    "available core, respecting the cgroup CPU limit).",
    "tls_cert": "PEM certificate chain of the server: serve TLS instead of plaintext (with "
    "--tls-key).",
    "tls_key": "PEM private key of --tls-cert.",
    "tls_client_ca": "PEM CA bundle: require and verify client certificates (mutual TLS).",
    "auth_tokens": "Comma-separated bearer tokens; when any is set (here or in "
    "--auth-token-file) every call but health and reflection needs `authorization: Bearer "
    "TOKEN`. Prefer the variable or the file: flags show in the process list.",
    "auth_token_file": "File of bearer tokens, one per line ('#' comments); read at start.",
    "max_deadline_seconds": "Longest a call may run: calls with no deadline or a later one "
    "end with DEADLINE_EXCEEDED at this cap (0: no cap).",
    "stream_token_key_file": "File holding the secret that signs stream tokens "
    "(StreamSelectionService; HMAC-SHA256, at least 32 bytes). Every replica behind one load "
    "balancer must have the same, or each refuses the others' tokens. Unset: the environment "
    "variable LABELWISE_STREAM_TOKEN_KEY, else a built-in development key that anyone can use "
    "to forge tokens (logged as a warning).",
}


def env_name(name: str) -> str:
    return f"LABELWISE_{name.upper()}"


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]
