"""Every manifest set deploy/ ships, rendered: the kustomize base and production overlay
(scripts/render-manifests, what `kubectl kustomize` gives) and the Helm chart with its
default values and with production-like ones (helm template)."""

import os
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "base"
OVERLAY = ROOT / "deploy" / "overlays" / "production"
CHART = ROOT / "deploy" / "helm" / "labelwise"
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
# The chart with what a production install sets (as the overlay does for the base).
PRODUCTION_VALUES = [
    "image.repository=registry.example.com/ml/labelwise",
    "image.digest=sha256:" + "0123456789abcdef" * 4,
    "tls.enabled=true",
    "auth.existingSecret=labelwise-tokens",
    "streamTokenKey.existingSecret=labelwise-stream-token-key",
    "autoscaling.minReplicas=3",
    "autoscaling.maxReplicas=20",
    "autoscaling.inFlightMetric=labelwise_requests_in_flight",
]

Documents = list[dict[str, Any]]


def tool(name: str) -> str:
    """A tool scripts/bootstrap --dev installs (.tools/bin or PATH); in CI its absence fails."""
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".tools" / "bin"))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: scripts/bootstrap --dev installs it")
        pytest.skip(f"{name} is not installed (scripts/bootstrap --dev installs it)")
    return found


def kustomize(directory: Path) -> Documents:
    render = runpy.run_path(str(ROOT / "scripts" / "render-manifests"))["render"]
    documents: Documents = render(directory)
    return documents


def helm_template(*values: str, namespace: str = "labelwise") -> Documents:
    command = [tool("helm"), "template", "labelwise", str(CHART), "--namespace", namespace]
    command += ["--kube-version", "1.29.0"]  # a go-installed helm assumes 1.20
    for value in values:
        command += ["--set", value]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def manifest_sets() -> dict[str, Documents]:
    return {
        "base": kustomize(BASE),
        "overlay": kustomize(OVERLAY),
        "chart": helm_template(),
        "chart-production": helm_template(*PRODUCTION_VALUES),
    }


SET_NAMES = ["base", "overlay", "chart", "chart-production"]


def rendered(name: str) -> Documents:
    if name == "base":
        return kustomize(BASE)
    if name == "overlay":
        return kustomize(OVERLAY)
    if name == "chart":
        return helm_template()
    return helm_template(*PRODUCTION_VALUES)


def by_kind(documents: Documents) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in documents}
