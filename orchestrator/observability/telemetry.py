"""What the deciding code reports, and where it goes: spans, metrics and log lines in one call each.

The payment path calls these hooks at the points where it decides (routing, each attempt, the choice
to retry, fail over or resolve, the final status), so traces, metrics and logs say what the code did,
never a reconstruction. Without a tracer provider every span hook is a cheap no-op; without metrics
(a service built bare, e.g. in a unit test) the metric hooks are too.

Spans (see docs/operations.md): `payment.route`, `provider.attempt`, `reconcile.payment`; events
`retry`, `failover`, `resolve`, `candidate.skipped`, `circuit_breaker.transition`, `idempotent.replay`,
`override.changed`. Nothing here ever puts a request body, a header, a payment method or a card number
on a span: only ids, provider names, amounts, classified outcomes and decisions.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode

from orchestrator.observability.metrics import Metrics

log = logging.getLogger("orchestrator.events")

_FAULTS = frozenset({"transient", "ambiguous", "config_error"})
_NO_SPAN: Span = NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)


class AttemptTrace:
    """One provider attempt's span while it is in flight."""

    __slots__ = ("span", "token", "ended_ns")

    def __init__(self, span: Span, token: object) -> None:
        self.span = span
        self.token = token
        self.ended_ns: int | None = None


class Telemetry:
    def __init__(self, metrics: Metrics | None = None, tracer_provider: Any = None) -> None:
        self.metrics = metrics
        self.tracer_provider = tracer_provider
        self.tracing = tracer_provider is not None
        self.tracer = tracer_provider.get_tracer("orchestrator", "0.1.0") if self.tracing else trace.NoOpTracer()

    # ---- routing -------------------------------------------------------------------------------------

    @contextmanager
    def route_span(self) -> Iterator[Span]:
        if not self.tracing:
            yield _NO_SPAN
            return
        span = self.tracer.start_span("payment.route")
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        finally:
            otel_context.detach(token)
            span.end()

    def routed(self, span: Span, payment: Any, decision: Any) -> None:
        if not span.is_recording():
            return
        candidates = decision.candidates
        span.set_attributes({
            "payment.region": payment.region, "payment.currency": payment.currency, "payment.amount": payment.amount,
            "route.reason": decision.reason,
            "route.candidates": [c.provider for c in candidates],
            "route.scores": [round(c.score, 6) for c in candidates],
            "route.shares": [round(c.share, 6) for c in candidates],
            "route.overrides_applied": list(decision.overrides_applied),
            "route.excluded": [f"{p}: {why}" for p, why in decision.excluded.items()],
        })

    def skipped(self, payment: Any, provider: str, reason: str) -> None:
        """A candidate passed over at admission (breaker open, concurrency limit)."""
        if self.metrics is not None:
            self.metrics.skip(provider, payment.region, reason)
        if self.tracing:
            trace.get_current_span().add_event("candidate.skipped", {"provider": provider, "reason": reason})
        log.info("skipped %s in %s for %s: %s", provider, payment.region, payment.id, reason,
                 extra={"event": "candidate_skipped", "payment_id": payment.id, "provider": provider,
                        "region": payment.region, "reason": reason})

    # ---- attempts ------------------------------------------------------------------------------------

    def attempt_started(self, payment: Any, attempt: Any) -> AttemptTrace | None:
        """Open the attempt's span and make it current, so the outbound HTTP span and breaker events nest in it."""
        if not self.tracing:
            return None
        span = self.tracer.start_span("provider.attempt", kind=SpanKind.INTERNAL, attributes={
            "provider.name": attempt.provider, "provider.region": attempt.region, "attempt.number": attempt.number,
            "attempt.kind": attempt.kind, "circuit.state": attempt.breaker_state or "bypassed",
        })
        return AttemptTrace(span, otel_context.attach(trace.set_span_in_context(span)))

    def attempt_called(self, traced: AttemptTrace | None) -> None:
        """The call has returned and its result is recorded: the span stops being current."""
        if traced is not None and traced.token is not None:
            otel_context.detach(traced.token)
            traced.token = None
            traced.ended_ns = time.time_ns()

    def attempt_aborted(self, traced: AttemptTrace | None, exc: BaseException) -> None:
        if traced is None:
            return
        self.attempt_called(traced)
        traced.span.set_attribute("attempt.outcome", "aborted")
        traced.span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        traced.span.end()

    def attempt_finished(self, traced: AttemptTrace | None, payment: Any, attempt: Any, outcome: Any,
                         duration_s: float, follow_up: Any) -> None:
        """The attempt's result and what was decided from it: metrics, events, logs; the span ends."""
        decision = attempt.decision or ""
        action = decision.partition(":")[0]
        provider, region = attempt.provider, attempt.region
        metrics = self.metrics
        if metrics is not None:
            bound = metrics.route(provider, region)
            bound.request_duration[outcome.value].observe(duration_s)
            if action == "retry":
                bound.retries.inc()
            elif action == "resolve":
                bound.replays.inc()
            elif action == "failover":
                metrics.failover(provider, region, attempt.error_class or "unknown")
        if action in ("retry", "failover", "resolve", "unresolved"):
            self._log_decision(action, payment, attempt, follow_up)
        if traced is None:
            return
        span = traced.span
        if span.is_recording():
            attributes = {"attempt.outcome": attempt.outcome, "attempt.decision": decision}
            if attempt.error_class:
                attributes["attempt.error_class"] = attempt.error_class
            if attempt.http_status is not None:
                attributes["provider.http_status"] = attempt.http_status
            if attempt.code:
                attributes["provider.code"] = attempt.code
            span.set_attributes(attributes)
            if attempt.error_class in _FAULTS:
                span.set_status(Status(StatusCode.ERROR, attempt.error_class))
            if follow_up is not None:
                span.add_event(action, {"next.provider": follow_up.provider, "next.attempt": follow_up.number,
                                        "next.kind": follow_up.kind, "reason": attempt.error_class or ""})
        span.end(end_time=traced.ended_ns)

    def _log_decision(self, action: str, payment: Any, attempt: Any, follow_up: Any) -> None:
        fields = {"event": action, "payment_id": payment.id, "provider": attempt.provider, "region": attempt.region,
                  "attempt": attempt.number, "reason": attempt.error_class, "http_status": attempt.http_status,
                  "code": attempt.code}
        if action == "failover":
            fields["to_provider"] = follow_up.provider
            log.info("failover %s -> %s in %s for %s after %s", attempt.provider, follow_up.provider,
                     attempt.region, payment.id, attempt.error_class, extra=fields)
        elif action == "retry":
            log.info("retry at %s in %s for %s after %s (attempt %d)", attempt.provider, attempt.region,
                     payment.id, attempt.error_class, attempt.number, extra=fields)
        elif action == "resolve":
            log.info("replaying %s at %s in %s: outcome ambiguous, resolving at the same provider", payment.id,
                     attempt.provider, attempt.region, extra=fields)
        else:
            log.warning("%s left processing at %s in %s: ambiguous at the deadline, reconciliation settles it",
                        payment.id, attempt.provider, attempt.region, extra=fields)

    # ---- payments and refunds ------------------------------------------------------------------------

    def payment_finished(self, payment: Any, attempts: int, duration_s: float) -> None:
        if self.metrics is not None:
            self.metrics.payment(payment.provider, payment.region, payment.status, duration_s)
        if self.tracing:
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attributes({"payment.id": payment.id, "payment.status": payment.status,
                                     "payment.provider": payment.provider or "", "payment.attempts": attempts})
                if payment.failure_code:
                    span.set_attribute("payment.failure_code", payment.failure_code)

    def idempotent_replay(self, resource: str, resource_id: str) -> None:
        if self.metrics is not None:
            self.metrics.idempotent_replays.labels(resource).inc()
        if self.tracing:
            span = trace.get_current_span()
            span.set_attribute(f"{resource}.id", resource_id)
            span.add_event("idempotent.replay", {"resource": resource, "id": resource_id})

    def refund_finished(self, refund: Any) -> None:
        if self.metrics is not None:
            self.metrics.refund(refund.provider, refund.region, refund.status)
        if self.tracing:
            trace.get_current_span().set_attributes({"refund.id": refund.id, "refund.status": refund.status,
                                                     "payment.id": refund.payment_id})

    # ---- breakers, overrides, reconciliation -----------------------------------------------------------

    def breaker_transition(self, provider: str, region: str, old: Any, new: Any, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.breaker_transitions.labels(provider, region, old.value, new.value).inc()
        if self.tracing:
            trace.get_current_span().add_event("circuit_breaker.transition", {
                "provider": provider, "region": region, "from": old.value, "to": new.value, "reason": reason})
        log.warning("circuit %s/%s: %s -> %s (%s)", provider, region, old.value, new.value, reason,
                    extra={"event": "circuit_breaker_transition", "provider": provider, "region": region,
                           "from_state": old.value, "to_state": new.value, "reason": reason})

    @contextmanager
    def reconcile_span(self, payment: Any) -> Iterator[Span]:
        if not self.tracing:
            yield _NO_SPAN
            return
        with self.tracer.start_as_current_span("reconcile.payment", attributes={
                "payment.id": payment.id, "payment.region": payment.region,
                "payment.provider": payment.provider or ""}) as span:
            yield span

    def reconciled(self, span: Span, payment: Any, result: str) -> None:
        if self.metrics is not None:
            self.metrics.reconciliations.labels(result).inc()
        if span.is_recording():
            span.set_attribute("reconcile.result", result)


def override_changed(action: str, target: str, actor: str, reason: str | None, before: Any, after: Any) -> None:
    """An admin changed routing: logged with its reason, and noted on the request's span."""
    trace.get_current_span().add_event("override.changed", {"action": action, "override.id": target,
                                                            "actor": actor, "reason": reason or ""})
    log.info("%s %s by %s: %s", action, target, actor, reason or "(no reason given)",
             extra={"event": action, "override_id": target, "actor": actor, "reason": reason,
                    "before": before, "after": after})


NOOP = Telemetry()


def routes_of(providers: Any) -> Iterable[tuple[str, str]]:
    return [(p.name, region) for p in providers.providers for region in p.regions]
