"""The server's settings: one frozen dataclass, each field a flag and an environment variable."""

import os
from dataclasses import dataclass, fields


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, which cgroup cpusets restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Config:
    host: str = "[::]"
    port: int = 50051
    metrics_port: int = 9090
    max_message_bytes: int = 256 * 1024 * 1024
    max_pool_elements: int = 1 << 28
    max_concurrent_rpcs: int = 64
    compute_threads: int = 0  # 0: one per available core
    grace_seconds: float = 20.0
    drain_seconds: float = 0.0
    reflection: bool = True
    max_connection_age_seconds: float = 0.0  # 0: connections live as long as clients keep them
    log_level: str = "INFO"
    port_file: str = ""  # "": write none

    @property
    def threads(self) -> int:
        return self.compute_threads or available_cores()


HELP = {
    "host": "Address to listen on for gRPC.",
    "port": "gRPC port (0 picks a free one).",
    "metrics_port": "Port of the Prometheus /metrics HTTP endpoint (0 disables it).",
    "max_message_bytes": "Largest gRPC message accepted or sent, in bytes; bigger pools use "
    "the streaming call.",
    "max_pool_elements": "Largest number of elements one request's tensor (or reassembled "
    "stream) may hold.",
    "max_concurrent_rpcs": "RPCs served at once; more are refused with RESOURCE_EXHAUSTED.",
    "compute_threads": "Threads that run strategies (0: one per available core).",
    "grace_seconds": "On SIGTERM, how long in-flight calls may take to finish.",
    "drain_seconds": "On SIGTERM, how long to report NOT_SERVING before refusing new calls, "
    "so load balancers stop routing here first.",
    "reflection": "Serve gRPC server reflection (grpcurl, grpcui).",
    "max_connection_age_seconds": "Close client connections after this age so clients "
    "re-resolve and spread over new replicas (0: never).",
    "log_level": "Logging level: DEBUG, INFO, WARNING or ERROR.",
    "port_file": "Once serving, write the bound gRPC port to this file (for --port 0 under a "
    "test harness or a sidecar; empty: none).",
}


def env_name(name: str) -> str:
    return f"LABELWISE_{name.upper()}"


def field_names() -> list[str]:
    return [f.name for f in fields(Config)]
