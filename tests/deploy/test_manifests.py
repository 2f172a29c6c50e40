"""Invariants every rendered manifest set keeps (base, production overlay, Helm chart with
default and production values): shutdown grace covers the longest call, the NetworkPolicy
names its sources, the pieces point at each other, and the schemas accept them."""

import json
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from labelwise_server.config import Config, env_name, field_names
from tests.deploy.manifests import (
    CRDS,
    OVERLAY,
    SET_NAMES,
    by_kind,
    helm_template,
    kustomize,
    rendered,
)


@pytest.fixture(scope="module", params=SET_NAMES)
def documents(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return rendered(request.param)


def pod_and_settings(documents: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    kinds = by_kind(documents)
    return kinds["Deployment"]["spec"]["template"]["spec"], kinds["ConfigMap"]["data"]


def test_grace_covers_the_longest_call_and_the_drain(documents: list[dict[str, Any]]) -> None:
    pod, settings = pod_and_settings(documents)
    deadline = float(settings["LABELWISE_MAX_DEADLINE_SECONDS"])
    drain = float(settings["LABELWISE_DRAIN_SECONDS"])
    grace = float(settings["LABELWISE_GRACE_SECONDS"])
    assert deadline > 0  # a cap exists, so a grace can cover it
    assert grace >= deadline  # a call started just before SIGTERM may run to the cap
    # The kubelet's SIGKILL comes after drain + grace, with time to exit.
    assert drain + grace + 5 <= pod["terminationGracePeriodSeconds"] <= drain + grace + 15


def test_settings_are_the_servers(documents: list[dict[str, Any]]) -> None:
    _, settings = pod_and_settings(documents)
    for key, value in settings.items():
        name = key.removeprefix("LABELWISE_").lower()
        assert key == env_name(name) and name in field_names(), key
        kind = type(getattr(Config, name))
        assert kind is bool or kind(value) is not None
    assert settings["LABELWISE_METRICS_HOST"] == "[::]"


def test_the_network_policy_names_its_sources(documents: list[dict[str, Any]]) -> None:
    kinds = by_kind(documents)
    policy = kinds["NetworkPolicy"]["spec"]
    pod_labels = kinds["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in policy["podSelector"]["matchLabels"].items())
    ports = set()
    for rule in policy["ingress"]:
        assert rule["from"], rule  # no rule admits every source
        for peer in rule["from"]:
            assert set(peer) <= {"namespaceSelector", "podSelector"} and peer, peer
        ports |= {p["port"] for p in rule["ports"]}
    assert ports == {Config.port, Config.metrics_port}
    metrics_rule = next(
        r for r in policy["ingress"] if r["ports"][0]["port"] == Config.metrics_port
    )
    assert all("namespaceSelector" in peer for peer in metrics_rule["from"])  # Prometheus's


def test_the_pieces_point_at_each_other(documents: list[dict[str, Any]]) -> None:
    kinds = by_kind(documents)
    deployment = kinds["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    name = deployment["metadata"]["name"]
    for kind in ("Service", "PodDisruptionBudget", "ServiceMonitor"):
        spec = kinds[kind]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        target = pod_labels if kind != "ServiceMonitor" else kinds["Service"]["metadata"]["labels"]
        assert all(target.get(k) == v for k, v in selector.items()), kind
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == name and "replicas" not in deployment["spec"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    pdb = kinds["PodDisruptionBudget"]["spec"]
    assert pdb.get("maxUnavailable", 0) < hpa["minReplicas"]
    assert pdb.get("minAvailable", 0) < hpa["minReplicas"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    config_map = container["envFrom"][0]["configMapRef"]["name"]
    assert config_map == kinds["ConfigMap"]["metadata"]["name"]


def test_schemas_accept_every_set(documents: list[dict[str, Any]]) -> None:
    for document in documents:
        if (document["apiVersion"], document["kind"]) in CRDS:
            continue
        for version in ("1.29.0", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(document, version, strict=True)


def test_tls_sets_mount_the_secret_and_probe_by_exec() -> None:
    for documents in (kustomize(OVERLAY), rendered("chart-production")):
        pod, settings = pod_and_settings(documents)
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        cert = settings["LABELWISE_TLS_CERT"]
        tls_dir = cert.rsplit("/", 1)[0]
        assert "secret" in volumes[mounts[tls_dir]]
        assert settings["LABELWISE_TLS_KEY"].startswith(tls_dir + "/")
        assert "secret" in volumes[mounts[settings["LABELWISE_AUTH_TOKEN_FILE"].rsplit("/", 1)[0]]]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert "grpc" not in container[probe] and command[:2] == ["labelwise", "health"]
            assert command[command.index("--tls-ca") + 1].startswith(tls_dir + "/")
        # Pinned by digest, so the base's checkov skips for tags are gone.
        assert "@sha256:" in container["image"]
        annotations = by_kind(documents)["Deployment"]["metadata"].get("annotations", {})
        assert not any(k.startswith("checkov.io/skip") for k in annotations)


def test_production_sets_give_every_replica_the_stream_token_key_from_a_secret() -> None:
    for documents in (kustomize(OVERLAY), rendered("chart-production")):
        pod, settings = pod_and_settings(documents)
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        key_dir, key_name = settings["LABELWISE_STREAM_TOKEN_KEY_FILE"].rsplit("/", 1)
        assert mounts[key_dir]["readOnly"] and key_name == "key"  # --from-file=key=...
        # One Secret in the pod template, so every replica signs with the same key.
        secret = volumes[mounts[key_dir]["name"]]["secret"]
        assert secret["secretName"] == "labelwise-stream-token-key"


def test_the_key_itself_is_never_a_setting(documents: list[dict[str, Any]]) -> None:
    # The raw key would sit in a ConfigMap (readable by anyone who reads the namespace's
    # settings); without the file setting a set uses the development key, as the base does.
    pod, settings = pod_and_settings(documents)
    (container,) = pod["containers"]
    assert "LABELWISE_STREAM_TOKEN_KEY" not in settings
    assert all(e["name"] != "LABELWISE_STREAM_TOKEN_KEY" for e in container.get("env", []))


def test_the_overlay_renders_as_kubectl_kustomize_does() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; scripts/render-manifests stands in for it")
    out = subprocess.run([kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True,
                         timeout=60, check=True).stdout  # fmt: skip

    def key(d: dict[str, Any]) -> str:
        return json.dumps(d, sort_keys=True)

    assert sorted(map(key, yaml.safe_load_all(out))) == sorted(map(key, kustomize(OVERLAY)))


def test_the_chart_refuses_a_grace_below_the_deadline() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        helm_template("settings.LABELWISE_GRACE_SECONDS=20")
    assert "LABELWISE_GRACE_SECONDS" in failed.value.stderr
