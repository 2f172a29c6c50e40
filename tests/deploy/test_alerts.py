"""The alerts: deploy/prometheus/labelwise-rules.yaml, a plain rules file, is the chart's
PrometheusRule too; promtool (Debian's `prometheus` package) checks it and runs the unit
tests of labelwise-rules.test.yaml on fixtures (every alert firing, and none on health)."""

import subprocess

import yaml

from tests.deploy.manifests import CHART, ROOT, by_kind, helm_template, tool

RULES = ROOT / "deploy" / "prometheus" / "labelwise-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "labelwise-rules.test.yaml"
CHART_RULES = CHART / "files" / "labelwise-rules.yaml"


def promtool(*args: str) -> str:
    result = subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_checks_the_rules() -> None:
    out = promtool("check", "rules", str(RULES), str(CHART_RULES))
    assert "SUCCESS: 6 rules found" in out


def test_promtool_rule_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(RULE_TESTS))


def test_the_chart_carries_the_same_rules() -> None:
    assert CHART_RULES.read_text() == RULES.read_text()
    rule = by_kind(helm_template())["PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(RULES.read_text())


def test_every_alert_has_a_test_and_names_metrics_the_server_exports() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {r["alert"]: r["expr"] for g in groups for r in g["rules"]}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert fired == set(alerts)
    source = (ROOT / "service" / "labelwise_server" / "metrics.py").read_text()
    for name in ("grpc_server_handled_total", "grpc_server_handling_seconds",
                 "labelwise_requests_shed"):  # fmt: skip
        assert f'"{name.removesuffix("_total")}' in source, name
