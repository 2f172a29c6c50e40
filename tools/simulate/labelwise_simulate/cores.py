"""How many loops to run at once by default: the cores this process may use.

The same rule as the server's `--workers 0` (labelwise_server.config.available_cores), kept
here because the tool depends on the client only; tests/simulation/test_service.py checks the
code is the same.
"""

import math
import os
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
