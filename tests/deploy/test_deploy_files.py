"""The deploy/ files are valid and agree with each other and with the code: the Prometheus config and
alerts pass promtool, the Grafana dashboard parses, queries only metrics the orchestrator exports and
its queries are valid PromQL, compose and Kubernetes manifests carry the probes and the topology."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.observability.metrics import Metrics, StateCollector

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "payment-orchestrator.json"
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool not installed (Debian package prometheus)")


def exported_series_names() -> set[str]:
    """Every series name a replica's /metrics can carry."""
    metrics = Metrics([("stripe", "EU")])
    metrics.failover("stripe", "EU", "transient")
    metrics.skip("stripe", "EU", "breaker_open")
    metrics.refund("stripe", "EU", "succeeded")
    metrics.payment("stripe", "EU", "succeeded", 0.05)
    metrics.breaker_transitions.labels("stripe", "EU", "closed", "open").inc()
    metrics.idempotent_replays.labels("payment").inc()
    metrics.reconciliations.labels("succeeded").inc()
    names = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    for family in StateCollector(lambda: None, lambda: [], None).describe():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def as_plain_promql(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$region", ".*")


def test_the_dashboard_shows_what_an_operator_needs_and_uses_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    titles = " | ".join(p["title"].lower() for p in panels)
    for topic in ("success rate by provider and region", "circuit breaker", "retries", "failovers", "p99",
                  "traffic share"):
        assert topic in titles, topic
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    datasources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text())
    prometheus_uid = next(d["uid"] for d in datasources["datasources"] if d["type"] == "prometheus")
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == prometheus_uid
        assert all(t["datasource"]["uid"] == prometheus_uid for t in panel["targets"])
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts


def test_the_dashboard_queries_only_metrics_the_orchestrator_exports():
    exported = exported_series_names() | {"up"}
    for expr in dashboard_queries():
        for name in re.findall(r"\b(orchestrator_[a-z0-9_]+|up)\b", expr):
            assert name in exported, f"{name} in {expr!r} is not exported"
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for name in re.findall(r"\b(orchestrator_[a-z0-9_]+)\b", alerts):
        assert name in exported, name


@needs_promtool
def test_the_dashboard_queries_are_valid_promql(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": as_plain_promql(expr)} for i, expr in enumerate(dashboard_queries())]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_the_prometheus_config_and_alerts_pass_promtool():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "orchestrator"]
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    replicas = {name for name in compose["services"] if name.startswith("orchestrator-")}
    assert targets == {f"{name}:8000" for name in replicas} and len(replicas) == 2
    checked = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=DEPLOY / "prometheus",
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_has_the_whole_topology():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "sandbox", "orchestrator-1", "orchestrator-2", "lb", "jaeger", "prometheus",
            "grafana"} <= set(services)
    for replica in ("orchestrator-1", "orchestrator-2"):
        environment = services[replica]["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert environment["ORCH_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert services[replica]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    haproxy = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    assert "orchestrator-1:8000" in haproxy and "orchestrator-2:8000" in haproxy and "GET /readyz" in haproxy


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed (Debian package haproxy)")
def test_the_haproxy_config_is_valid():
    checked = subprocess.run(["haproxy", "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg")], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_image_runs_unprivileged_with_a_healthcheck():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.M)


def test_kubernetes_manifests_have_probes_and_agree_with_each_other():
    documents = [doc for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
                 for doc in yaml.safe_load_all(path.read_text()) if doc]
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in documents if doc["kind"] != "Kustomization"}
    assert {("Deployment", "orchestrator"), ("Service", "orchestrator"), ("ConfigMap", "orchestrator-config")} <= kinds
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in (DEPLOY / "kubernetes").glob("*.yaml")
                                                        if p.name != "kustomization.yaml")
    deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "orchestrator")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    referenced = {ref["configMapRef"]["name"] for ref in container["envFrom"] if "configMapRef" in ref}
    assert referenced == {"orchestrator-config"}
    service = next(d for d in documents if d["kind"] == "Service" and d["metadata"]["name"] == "orchestrator")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
