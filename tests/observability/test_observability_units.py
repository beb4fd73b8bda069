"""The observability pieces on their own, in process: log lines, tracing set-up, HTTP client spans,
the Prometheus exposition of breaker states."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from types import SimpleNamespace

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from orchestrator.observability import tracing
from orchestrator.observability.logging import JsonFormatter
from orchestrator.observability.metrics import Metrics, StateCollector
from orchestrator.observability.telemetry import Telemetry
from orchestrator.resilience.breaker import BreakerState
from orchestrator.resilience.guards import FAULT, Guards
from orchestrator.resilience.shedding import InflightGate


def in_memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing.NoOrphanClientSpans(tracing._configured_sampler()))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("orchestrator.events", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_log_lines_are_json_with_the_current_trace_and_span():
    provider, _ = in_memory_provider()
    formatter = JsonFormatter()
    outside = json.loads(formatter.format(_record("no span")))
    assert "trace_id" not in outside and outside["message"] == "no span" and outside["level"] == "INFO"
    with provider.get_tracer("t").start_as_current_span("work") as span:
        inside = json.loads(formatter.format(_record("failover", event="failover", provider="stripe")))
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["event"] == "failover" and inside["provider"] == "stripe"
    assert inside["ts"].endswith("Z")


def test_tracing_is_off_without_an_endpoint_and_named_by_default_with_one(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME",
                 "OTEL_SDK_DISABLED", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.tracer_provider_from_env() is None

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = tracing.tracer_provider_from_env()
    try:
        assert provider.resource.attributes["service.name"] == "payment-orchestrator"
        assert hash(provider.resource) == hash(provider.resource.merge(tracing.Resource({})))
    finally:
        provider.shutdown()

    monkeypatch.setenv("OTEL_SERVICE_NAME", "orchestrator-eu")
    provider = tracing.tracer_provider_from_env()
    try:
        assert provider.resource.attributes["service.name"] == "orchestrator-eu"
    finally:
        provider.shutdown()

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    assert tracing.tracer_provider_from_env() is None  # unsupported: said in the log, nothing exported
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert tracing.tracer_provider_from_env() is None


def test_queries_and_calls_outside_any_trace_start_no_trace():
    provider, exporter = in_memory_provider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("orphan", kind=SpanKind.CLIENT):
        pass
    with tracer.start_as_current_span("reconcile.payment"):
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT):
            pass
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["SELECT", "reconcile.payment"]


async def test_outbound_calls_carry_traceparent_and_no_header_or_query_on_their_span():
    provider, exporter = in_memory_provider()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        tracing.instrument_httpx(client, provider)
        with provider.get_tracer("t").start_as_current_span("provider.attempt") as parent:
            await client.get("http://127.0.0.1:1/eu/v1/payment_intents/search",
                             params={"query": "metadata['payment_id']:'pay_1'"},
                             headers={"Authorization": "Bearer sk_test_secret_value", "X-API-Key": "k"})
    [request] = seen
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert request.headers["traceparent"].split("-")[1] == trace_id
    [client_span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert client_span.parent.span_id == parent.get_span_context().span_id
    assert request.headers["traceparent"].split("-")[2] == format(client_span.context.span_id, "016x")
    attributes = dict(client_span.attributes)
    assert not any("header" in key for key in attributes)
    assert "sk_test_secret_value" not in repr(attributes)
    assert attributes["url.full"] == "http://127.0.0.1:1/eu/v1/payment_intents/search"
    assert attributes["http.response.status_code"] == 200


async def test_calls_outside_a_trace_carry_no_traceparent_and_make_no_span():
    provider, exporter = in_memory_provider()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        tracing.instrument_httpx(client, provider)
        await client.get("http://127.0.0.1:1/api/v2/summary.json")
        with provider.get_tracer("t").start_as_current_span("reconcile.payment"):
            await client.get("http://127.0.0.1:1/api/v2/summary.json")
    assert "traceparent" not in seen[0].headers and "traceparent" in seen[1].headers
    [client_span] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert client_span.status.status_code.name == "ERROR"


async def test_server_spans_continue_the_callers_trace_and_are_named_by_route():
    from fastapi import FastAPI

    provider, exporter = in_memory_provider()
    app = FastAPI()

    @app.get("/v1/payments/{payment_id}")
    async def get_payment(payment_id: str):
        return {"id": payment_id}

    @app.get("/healthz")
    async def healthz():
        return {}

    tracing.instrument_app(app, provider)
    trace_id, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.get("/v1/payments/pay_1?expand=attempts", headers={"traceparent": f"00-{trace_id}-{caller}-01"})
        await client.get("/healthz")
        await client.get("/nowhere")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /v1/payments/{payment_id}", "GET"}
    served = spans["GET /v1/payments/{payment_id}"]
    assert format(served.context.trace_id, "032x") == trace_id
    assert format(served.parent.span_id, "016x") == caller and served.parent.is_remote
    assert served.attributes["http.route"] == "/v1/payments/{payment_id}"
    assert served.attributes["http.response.status_code"] == 200
    assert "expand" not in repr(dict(served.attributes))
    assert spans["GET"].attributes["http.response.status_code"] == 404


def test_breaker_transitions_become_span_events_metrics_and_log_lines(caplog):
    provider, exporter = in_memory_provider()
    metrics = Metrics([("stripe", "EU")])
    telemetry = Telemetry(metrics, provider)
    caplog.set_level(logging.WARNING, logger="orchestrator.events")
    with provider.get_tracer("t").start_as_current_span("provider.attempt"):
        telemetry.breaker_transition("stripe", "EU", BreakerState.CLOSED, BreakerState.OPEN, "failure rate 100%")
    [span] = exporter.get_finished_spans()
    [(name, attributes)] = [(e.name, dict(e.attributes)) for e in span.events]
    assert name == "circuit_breaker.transition"
    assert attributes == {"provider": "stripe", "region": "EU", "from": "closed", "to": "open",
                          "reason": "failure rate 100%"}
    [record] = caplog.records
    assert record.event == "circuit_breaker_transition" and record.reason == "failure rate 100%"
    assert b'orchestrator_circuit_breaker_transitions_total{from_state="closed",provider="stripe",region="EU",' \
           b'to_state="open"} 1.0' in metrics.exposition()


def _open_breaker(guards: Guards, provider: str, region: str) -> None:
    guard = guards.get(provider, region)
    for _ in range(guards.policy.breaker.window_size):
        if guard.admit() is None:
            guard.record(FAULT, 0.01)


def test_breaker_states_are_one_hot_and_the_exposition_passes_promtool():
    routes = [("stripe", "EU"), ("adyen", "EU"), ("stripe", "US")]
    guards = Guards()
    _open_breaker(guards, "stripe", "EU")
    assert guards.get("stripe", "EU").breaker.state is BreakerState.OPEN
    gate = InflightGate(4)
    gate.try_enter()
    metrics = Metrics(routes)
    metrics.registry.register(StateCollector(lambda: SimpleNamespace(guards=guards), lambda: routes, gate))
    metrics.route("stripe", "EU").retries.inc()
    metrics.failover("stripe", "EU", "transient")
    metrics.payment("adyen", "EU", "succeeded", 0.05)
    metrics.payment(None, "EU", "failed", 0.001)
    text = metrics.exposition().decode()

    def value(series: str) -> float:
        [line] = [line for line in text.splitlines() if line.startswith(series + " ")]
        return float(line.rsplit(" ", 1)[1])

    for state in ("closed", "open", "half_open", "forced_open", "disabled"):
        assert value(f'orchestrator_circuit_breaker_state{{provider="stripe",region="EU",state="{state}"}}') == \
            (1.0 if state == "open" else 0.0)
    assert value('orchestrator_circuit_breaker_state{provider="stripe",region="US",state="closed"}') == 1.0
    assert value('orchestrator_payments_total{provider="none",region="EU",status="failed"}') == 1.0
    assert value("orchestrator_payments_in_flight") == 1.0
    assert value("orchestrator_load_shed_total") == 0.0
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_telemetry_without_a_tracer_provider_makes_no_spans():
    telemetry = Telemetry(Metrics())
    with telemetry.route_span() as span:
        assert not span.is_recording()
    assert telemetry.attempt_started(SimpleNamespace(id="pay_1"), SimpleNamespace()) is None
    assert trace.get_current_span().get_span_context().is_valid is False


def test_a_reconciliation_is_a_trace_of_its_own_with_its_result():
    provider, exporter = in_memory_provider()
    metrics = Metrics()
    telemetry = Telemetry(metrics, provider)
    payment = SimpleNamespace(id="pay_1", region="EU", provider="stripe")
    with telemetry.reconcile_span(payment) as span:
        telemetry.reconciled(span, payment, "succeeded")
    [recorded] = exporter.get_finished_spans()
    assert recorded.name == "reconcile.payment" and recorded.parent is None
    assert dict(recorded.attributes) == {"payment.id": "pay_1", "payment.region": "EU", "payment.provider": "stripe",
                                         "reconcile.result": "succeeded"}
    assert b'orchestrator_reconciliations_total{result="succeeded"} 1.0' in metrics.exposition()


def test_sql_makes_one_span_per_transaction_with_its_statements_and_none_outside_a_trace(tmp_path):
    from sqlalchemy import create_engine, text

    provider, exporter = in_memory_provider()
    engine = create_engine(f"sqlite:///{tmp_path / 'spans.db'}")
    tracing.StatementSpans(engine, provider)
    tracer = provider.get_tracer("test")
    with engine.begin() as connection:  # outside any trace: nothing
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    with tracer.start_as_current_span("request"):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": 4111111111111111})
            connection.execute(text("UPDATE t SET x = :x"), {"x": 2})
        try:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t (x) VALUES (1)"))
                connection.execute(text("INSERT INTO missing (x) VALUES (1)"))
        except Exception:
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    transactions = [s for s in exporter.get_finished_spans() if s.attributes.get("db.operation") == "TRANSACTION"]
    assert len(transactions) == 2 and set(spans) == {"request", transactions[0].name}
    committed, failed = sorted(transactions, key=lambda s: s.start_time)
    assert committed.attributes["db.statement"] == "INSERT INTO t (x) VALUES (?);\nUPDATE t SET x = ?"
    assert committed.attributes["db.statement_count"] == 2
    assert committed.attributes["db.transaction.outcome"] == "commit"
    assert committed.parent.span_id == spans["request"].context.span_id
    assert "4111111111111111" not in str(committed.attributes)  # parameters never reach a span
    assert failed.attributes["db.transaction.outcome"] == "rollback"
    assert not failed.status.is_ok
