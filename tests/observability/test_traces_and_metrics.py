"""Traces and metrics of a real `serve` process: spans arrive at a real OTLP/HTTP receiver, /metrics
is checked by promtool, and a scripted outage shows in the breaker, retry and failover series."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess

import httpx
import pytest

from orchestrator.kit.pan import contains_pan
from tests.e2e.helpers import payment_body
from tests.fixtures.stack import dedicated_stack
from tests.observability.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

PAN = "4242 4242 4242 4242"
ADMIN_TOKEN = "adm_observability_test_token"
SANDBOX_SECRETS = ("sk_test_sandbox", "sandbox_adyen_api_key", "sandbox_private_key")


@pytest.fixture(scope="module")
def receiver():
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def stack(receiver, tmp_path_factory):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_SERVICE_NAME": "orchestrator-under-test",
           # An operator asking for headers on spans must not get the Authorization header there.
           "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "Authorization,X-API-Key",
           "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "Authorization"}
    # Strict cost order: Stripe is tried first in the EU, so a fault there forces a failover.
    with dedicated_stack(tmp_path_factory.mktemp("obs"), env=env, PROVIDER_READ_TIMEOUT_S="1.5",
                         ROUTING__FRESHNESS_SHARE="0", ROUTING__TEMPERATURE="0.00001",
                         ADMIN_TOKEN=ADMIN_TOKEN) as running:
        yield running


def _trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.trace_id == trace_id]


def _flat_strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _flat_strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_flat_strings(v))]
    return [str(value)]


async def test_a_payment_with_a_failover_is_one_trace_with_its_routing_and_attempts(stack, receiver):
    stack.fault("stripe", "eu", error_rate=1.0, error_status=503)
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    async with stack.client() as client:
        response = await client.post("/v1/payments", json=payment_body(), headers={
            "traceparent": f"00-{trace_id}-{caller_span}-01", "Idempotency-Key": f"obs-{trace_id}"})
        refused = await client.post("/v1/payments", json=payment_body(payment_method=PAN))
    stack.clear_faults()
    assert response.status_code == 201, response.text
    assert refused.status_code == 422
    payment = response.json()
    attempts = payment["attempts"]
    assert payment["status"] == "succeeded" and payment["provider"] != "stripe"
    assert attempts[0]["provider"] == "stripe" and attempts[0]["http_status"] == 503

    def complete(spans):
        ours = _trace(spans, trace_id)
        return (any(s.kind == "SERVER" for s in ours)
                and sum(s.name == "provider.attempt" for s in ours) == len(attempts))

    spans = _trace(receiver.wait_for(complete), trace_id)
    by_id = {s.span_id: s for s in spans}

    # The caller's trace is continued: one trace, the request span a child of the caller's span.
    [server] = [s for s in spans if s.kind == "SERVER"]
    assert server.parent_span_id == caller_span
    assert server.name == "POST /v1/payments"
    assert server.attributes["payment.id"] == payment["id"]
    assert server.attributes["payment.status"] == "succeeded"
    assert server.resource["service.name"] == "orchestrator-under-test"

    # The routing decision, under the request span.
    [route] = [s for s in spans if s.name == "payment.route"]
    assert route.parent_span_id == server.span_id
    assert route.attributes["route.candidates"] == payment["route"]["candidates"]
    assert route.attributes["route.candidates"][0] == "stripe"
    assert len(route.attributes["route.scores"]) == len(payment["route"]["candidates"])
    assert route.attributes["route.reason"] == payment["route"]["reason"]
    assert "route.overrides_applied" in route.attributes

    # One span per attempt, under the request span, in order, each with its outcome and decision.
    attempt_spans = sorted((s for s in spans if s.name == "provider.attempt"),
                           key=lambda s: s.attributes["attempt.number"])
    assert all(s.parent_span_id == server.span_id for s in attempt_spans)
    for span, attempt in zip(attempt_spans, attempts):
        assert span.attributes["provider.name"] == attempt["provider"]
        assert span.attributes["provider.region"] == "EU"
        assert span.attributes["attempt.outcome"] == attempt["outcome"]
        assert span.attributes.get("attempt.error_class") == attempt["error_class"]
        assert span.attributes["attempt.decision"] == attempt["decision"]
        assert span.attributes["circuit.state"] == "closed"
        assert span.attributes["attempt.kind"] == "charge"
    assert attempt_spans[0].attributes["provider.http_status"] == 503
    assert attempt_spans[-1].attributes["attempt.decision"] == "done"
    failed_over = [s for s in attempt_spans if s.attributes["attempt.decision"].startswith("failover:")]
    assert len(failed_over) == 1 and failed_over[0].attributes["provider.name"] == "stripe"
    [event] = [attrs for name, attrs in failed_over[0].events if name == "failover"]
    assert event["next.provider"] == payment["provider"] and event["reason"] == "transient"
    retried = [s for s in attempt_spans if s.attributes["attempt.decision"].startswith("retry:")]
    assert all(any(name == "retry" for name, _ in s.events) for s in retried)

    # Each attempt's outbound HTTP call is a client span inside it, at that provider's EU endpoint.
    http_spans = [s for s in spans if s.kind == "CLIENT" and "url.full" in s.attributes]
    for span in attempt_spans:
        [call] = [h for h in http_spans if h.parent_span_id == span.span_id]
        assert call.attributes["url.full"].startswith(stack.sandbox_urls[span.attributes["provider.name"]] + "/eu/")
        assert call.attributes["http.response.status_code"] == span.attributes["provider.http_status"]
    # The database calls of the request are in the same trace.
    # One span per transaction: the write-ahead (payment and first attempt) and each outcome's write
    # (plus the API key's lookup on a cold cache).
    db_spans = [s for s in spans if s.kind == "CLIENT" and s.attributes.get("db.system") == "postgresql"]
    transactions = [s for s in db_spans if s.attributes.get("db.operation") == "TRANSACTION"]
    writes = [s for s in transactions if not s.attributes["db.statement"].startswith("SELECT")]
    assert len(writes) == len(attempts) + 1
    [write_ahead] = [s for s in writes if "INSERT INTO payments " in s.attributes["db.statement"]]
    statements = write_ahead.attributes["db.statement"].split(";\n")
    assert write_ahead.attributes["db.statement_count"] == len(statements) >= 2
    assert any(st.startswith("INSERT INTO payment_attempts") for st in statements)
    assert all(s.attributes["db.transaction.outcome"] == "commit" for s in writes)
    assert all(s.parent_span_id in by_id for s in db_spans + http_spans)

    # No card number and no secret anywhere, on any span of any trace: attributes, events, resource.
    all_spans = receiver.snapshot()
    secrets_ = (stack.api_key, ADMIN_TOKEN, *SANDBOX_SECRETS, "Bearer ")
    for span in all_spans:
        for text in _flat_strings([span.name, span.attributes, span.events, span.resource]):
            assert not contains_pan(text), (span.name, text)
            assert not any(secret in text for secret in secrets_), (span.name, text)
        assert not any("header" in key for key in span.attributes), (span.name, span.attributes)
    raw = b"".join(receiver.raw)
    assert PAN.replace(" ", "").encode() not in raw and PAN.encode() not in raw

    # The failover is logged as a JSON line carrying the same trace id.
    lines = [json.loads(line) for line in stack.server.log().splitlines() if line.startswith("{")]
    [logged] = [line for line in lines if line.get("event") == "failover" and line.get("payment_id") == payment["id"]]
    assert logged["trace_id"] == trace_id and logged["to_provider"] == payment["provider"]
    assert logged["reason"] == "transient"


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels`."""
    total = 0.0
    for series, value in samples.items():
        series_name, _, rest = series.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if series_name == name and all(found.get(k) == v for k, v in labels.items()):
            total += value
    return total


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
async def test_metrics_pass_promtool_and_show_an_outage(stack):
    async with stack.client() as client:
        before = _samples((await client.get("/metrics")).text)
        stack.fault("stripe", "eu", error_rate=1.0, error_status=503)
        for n in range(30):
            response = await client.post("/v1/payments", json=payment_body(amount=2000 + n))
            assert response.json()["status"] == "succeeded"
        scrape = await client.get("/metrics")
    stack.clear_faults()
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    checked = subprocess.run(["promtool", "check", "metrics"], input=scrape.text, capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0 and checked.stdout.strip() == "" and checked.stderr.strip() == "", \
        checked.stdout + checked.stderr

    after = _samples(scrape.text)
    stripe_eu = {"provider": "stripe", "region": "EU"}
    assert _value(after, "orchestrator_circuit_breaker_state", state="open", **stripe_eu) == 1
    assert _value(after, "orchestrator_circuit_breaker_state", state="closed", **stripe_eu) == 0
    assert _value(after, "orchestrator_circuit_breaker_state", state="closed", provider="adyen", region="EU") == 1
    assert _value(after, "orchestrator_circuit_breaker_transitions_total", from_state="closed", to_state="open",
                  **stripe_eu) >= 1
    assert _value(after, "orchestrator_retry_attempts_total", **stripe_eu) > \
        _value(before, "orchestrator_retry_attempts_total", **stripe_eu)
    assert _value(after, "orchestrator_failover_invocations_total", from_provider="stripe", region="EU",
                  reason="transient") > _value(before, "orchestrator_failover_invocations_total", from_provider="stripe")
    assert _value(after, "orchestrator_provider_request_duration_seconds_count", outcome="transient", **stripe_eu) > 0
    succeeded_elsewhere = sum(_value(after, "orchestrator_payments_total", provider=p, region="EU", status="succeeded")
                              for p in ("adyen", "braintree"))
    assert succeeded_elsewhere >= 30
    assert _value(after, "orchestrator_payment_duration_seconds_count", region="EU", status="succeeded") >= 30
    for name in ("orchestrator_routing_table_age_seconds", "orchestrator_overrides_active",
                 "orchestrator_load_shed_total", "orchestrator_concurrency_limit"):
        assert any(series.split("{")[0] == name for series in after), name
    assert _value(after, "orchestrator_concurrency_limit", provider="adyen", region="EU") > 0


async def test_health_and_metrics_requests_make_no_spans(stack, receiver):
    async with httpx.AsyncClient(base_url=stack.server.base_url) as client:
        for path in ("/healthz", "/readyz", "/metrics"):
            await client.get(path)
        await client.get("/v1/payments", headers={"Authorization": f"Bearer {stack.api_key}"})

    spans = receiver.wait_for(lambda spans: any(s.name == "GET /v1/payments" for s in spans))
    assert not [s for s in spans if s.kind == "SERVER" and s.name.split(" ")[-1] in ("/healthz", "/readyz", "/metrics")]


async def test_an_override_change_is_logged_with_its_reason_and_counted(stack):
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=stack.server.base_url, headers=admin, timeout=30) as client:
        created = await client.post("/admin/overrides", json={
            "action": "weight", "provider": "braintree", "scope": {"region": "APAC"}, "weight": 2.0,
            "reason": "APAC test of weights #42"})
        assert created.status_code == 201, created.text
        active = _value(_samples((await client.get("/metrics")).text), "orchestrator_overrides_active")
        deleted = await client.delete(f"/admin/overrides/{created.json()['id']}", params={"reason": "test over"})
        assert deleted.status_code == 200
        after = _value(_samples((await client.get("/metrics")).text), "orchestrator_overrides_active")
    assert (active, after) == (1, 0)
    lines = [json.loads(line) for line in stack.server.log().splitlines() if line.startswith("{")]
    [create] = [line for line in lines if line.get("event") == "override.create"]
    [delete] = [line for line in lines if line.get("event") == "override.delete"]
    assert create["reason"] == "APAC test of weights #42" and create["actor"] == "bootstrap"
    assert create["override_id"] == created.json()["id"] and len(create["trace_id"]) == 32
    assert delete["reason"] == "test over"
