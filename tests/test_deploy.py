"""The container and the Kubernetes manifests: what they name exists, works and agrees.

scripts/check-deploy (run by scripts/test) lints the same files with hadolint, validates
the rendered manifests against the Kubernetes schemas and scans them with checkov; here
the commands the Dockerfile names are run, and the manifests are checked against each
other and against the server's settings.
"""

import copy
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from labelwise_server.config import Config, env_name, field_names
from labelwise_server.grpc.server import SERVICE_NAME
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "deploy" / "base"
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))  # fmt: skip
    pairs = []
    for line in text.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, rest in dockerfile():
        if instruction == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                env[key] = value
    return env


def exec_form(instruction: str) -> list[str]:
    (rest,) = [r for i, r in dockerfile() if i == instruction]
    if instruction == "HEALTHCHECK":
        rest = rest.split(" CMD ", 1)[1]
    value = json.loads(rest)
    assert isinstance(value, list)
    return [str(v) for v in value]


def test_dockerfile_stages_user_ports_and_commands() -> None:
    froms = [rest.split()[0] for i, rest in dockerfile() if i == "FROM"]
    assert len(froms) == 2 and froms[0] == froms[1]  # multi-stage, one base
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", froms[0])  # pinned, slim
    (user,) = [rest for i, rest in dockerfile() if i == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    assert uid >= 10000 and gid >= 10000  # numeric, so runAsNonRoot can verify it
    env = docker_env()
    (exposed,) = [rest for i, rest in dockerfile() if i == "EXPOSE"]
    ports = {int(env["LABELWISE_PORT"]), int(env["LABELWISE_METRICS_PORT"])}
    assert {int(p) for p in exposed.split()} == ports == {Config.port, Config.metrics_port}
    assert exec_form("ENTRYPOINT") == ["labelwise", "serve"]
    assert exec_form("HEALTHCHECK")[:2] == ["labelwise", "health"]
    for key in env:
        if key.startswith("LABELWISE_"):
            assert key.removeprefix("LABELWISE_").lower() in field_names(), key


def test_the_image_gets_what_it_copies_and_nothing_else() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") - 1].startswith("#") or ignore[0].startswith("#")
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for instruction, rest in dockerfile():
        if instruction == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, source
    # The pyproject's runtime dependencies need nothing outside the copied tree.
    assert (ROOT / "clients/python/pyproject.toml").exists()


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_entrypoint_serves_and_the_health_check_follows_it(tmp_path: Path) -> None:
    """ENTRYPOINT and HEALTHCHECK as the Dockerfile names them, with its environment."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "labelwise").exists()  # the console script the image puts on PATH
    env = dict(os.environ, **docker_env())
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    port, metrics_port = free_port(), free_port()
    env.update(  # what `docker run -p` would map; loopback only here
        LABELWISE_HOST="127.0.0.1", LABELWISE_METRICS_HOST="127.0.0.1", LABELWISE_PORT=str(port),
        LABELWISE_METRICS_PORT=str(metrics_port), LABELWISE_WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), LABELWISE_DRAIN_SECONDS="0",
    )  # fmt: skip

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run(exec_form("HEALTHCHECK"), env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    log = tmp_path / "log"
    with log.open("wb") as out:
        server = subprocess.Popen(exec_form("ENTRYPOINT"), env=env, stdout=out,
                                  stderr=subprocess.STDOUT, cwd=tmp_path)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while (checked := health()).returncode != 0:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert "SERVING" in checked.stdout
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        # Health answers once the first worker serves; the supervisor opens /metrics once
        # every worker does, a moment later on a loaded machine.
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    assert b"grpc_server_handled_total" in reply.read()
                break
            except urllib.error.URLError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, log.read_text()
        stopped = health()
        assert stopped.returncode == 1 and "UNAVAILABLE" in stopped.stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)


# -- Kubernetes ------------------------------------------------------------------------


def rendered() -> list[dict[str, Any]]:
    render = runpy.run_path(str(ROOT / "scripts/render-manifests"))["render"]
    documents: list[dict[str, Any]] = render(BASE)
    return documents


def by_kind() -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in rendered()}


def test_the_renderer_matches_kubectl_kustomize() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; scripts/render-manifests stands in for it")
    out = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip

    def key(d: dict[str, Any]) -> str:
        return json.dumps(d, sort_keys=True)

    assert sorted(map(key, yaml.safe_load_all(out))) == sorted(map(key, rendered()))


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    kinds = set()
    for document in rendered():
        if (document["apiVersion"], document["kind"]) in CRDS:
            continue  # no schema in kubernetes-validate; checked below instead
        for version in ("1.29.0", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(document, version, strict=True)
        kinds.add(document["kind"])
    expected = {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                "PodDisruptionBudget", "NetworkPolicy"}  # fmt: skip
    assert kinds == expected
    broken = copy.deepcopy(by_kind()["Deployment"])  # the validator does reject mistakes
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.29.0", strict=True)
    broken = copy.deepcopy(by_kind()["Service"])
    broken["spec"]["headless"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.29.0", strict=True)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_deployment_fits_the_server_and_the_image() -> None:
    kinds = by_kind()
    deployment, config_map = kinds["Deployment"], kinds["ConfigMap"]["data"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": Config.port, "metrics": Config.metrics_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"]
    assert container["readinessProbe"]["grpc"]["service"] == SERVICE_NAME
    assert "service" not in container["livenessProbe"]["grpc"]  # the whole server
    for key, value in config_map.items():
        name = key.removeprefix("LABELWISE_").lower()
        assert key == env_name(name) and name in field_names(), key
        kind = type(getattr(Config, name))
        assert kind is bool or kind(value) is not None
    grace = float(config_map["LABELWISE_DRAIN_SECONDS"]) + float(
        config_map["LABELWISE_GRACE_SECONDS"]
    )
    assert grace < pod["spec"]["terminationGracePeriodSeconds"] <= grace + 10
    # Security: non-root as the image's user, nothing writable but the emptyDir.
    uid = int(next(r for i, r in dockerfile() if i == "USER").split(":")[0])
    context, pod_context = container["securityContext"], pod["spec"]["securityContext"]
    assert context["runAsUser"] == pod_context["runAsUser"] == uid
    assert context["runAsNonRoot"] and pod_context["runAsNonRoot"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod_context["seccompProfile"]["type"] == "RuntimeDefault"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    for name in ("PROMETHEUS_MULTIPROC_DIR", "MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX"):
        assert env[name] == docker_env()[name], name
    # Memory: the requests that may be in flight fit twice in the limit.
    limits = container["resources"]["limits"]
    workers = int(config_map["LABELWISE_WORKERS"]) or int(limits["cpu"])
    in_flight = (
        workers
        * int(config_map["LABELWISE_MAX_CONCURRENT_RPCS"])
        * int(config_map["LABELWISE_MAX_MESSAGE_BYTES"])
    )
    assert limits["memory"].endswith("Gi")
    assert 2 * in_flight <= int(limits["memory"][:-2]) * 1024**3


def test_service_autoscaler_budget_and_monitor_point_at_the_pods() -> None:
    kinds = by_kind()
    deployment = kinds["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == pod_labels
    assert "replicas" not in deployment["spec"]  # the autoscaler's to set
    service = kinds["Service"]
    assert service["spec"]["clusterIP"] == "None"  # headless: client-side round robin
    assert matches(service["spec"]["selector"], pod_labels)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container_ports = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} == container_ports
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["minReplicas"] >= 2
    pdb = kinds["PodDisruptionBudget"]["spec"]
    assert matches(pdb["selector"]["matchLabels"], pod_labels)
    assert pdb["maxUnavailable"] < hpa["minReplicas"]
    monitor = kinds["ServiceMonitor"]
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports and endpoint["path"] == "/metrics"
    policy = kinds["NetworkPolicy"]["spec"]
    assert matches(policy["podSelector"]["matchLabels"], pod_labels)
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {
        Config.port, Config.metrics_port}  # fmt: skip


def test_checkov_skips_carry_reasons() -> None:
    for document in rendered():
        for key, value in document["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_\d+", check) and len(reason) > 20, value


def test_metrics_are_loopback_by_default_and_open_where_prometheus_scrapes() -> None:
    # /metrics has no TLS and no token: the server opens it only on loopback unless told;
    # the image and the ConfigMap open it on every address, for the ServiceMonitor.
    assert Config.metrics_host == "127.0.0.1"
    config_map = by_kind()["ConfigMap"]["data"]
    assert config_map["LABELWISE_METRICS_HOST"] == docker_env()["LABELWISE_METRICS_HOST"] == "[::]"
