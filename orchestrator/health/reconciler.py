"""Settles payments left `processing` and refunds left `pending`, from the providers' own records.

A payment is `processing` when its last attempt's outcome was ambiguous at the deadline (or the process
died mid-attempt). Only that attempt's provider may hold a charge, under that attempt's idempotency key,
so resolution happens there and nowhere else: first a search by our payment id where the provider has
one (a hit settles it as succeeded), else a replay of the very same request under the same key, which
the provider answers with the first request's outcome (or, if the first never arrived, processes it
once). A payment is never charged at another provider here.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from orchestrator.config import ProviderTable, Settings
from orchestrator.kit.clock import utcnow
from orchestrator.kit.ids import new_id
from orchestrator.observability.telemetry import NOOP, Telemetry
from orchestrator.payments.models import Payment, PaymentAttempt
from orchestrator.payments.refunds import apply_refund_result, refund_request_for
from orchestrator.payments.repository import PaymentRepository
from orchestrator.payments.service import charge_request_for, unified_decline_code
from orchestrator.providers.base import LookupState, Outcome

log = logging.getLogger(__name__)

# A payment's own request may still be finishing just after its deadline; leave it that long.
GRACE = timedelta(seconds=2)


class Reconciler:
    def __init__(self, sessionmaker, adapters, providers: ProviderTable, settings: Settings, *,
                 telemetry: Telemetry = NOOP) -> None:
        self.telemetry = telemetry
        self.sessionmaker = sessionmaker
        self.adapters = adapters
        self.providers = providers
        self.settings = settings
        self.timeouts = settings.provider_timeouts()

    async def run_once(self, limit: int = 100) -> dict[str, int]:
        counts = {"succeeded": 0, "failed": 0, "unresolved": 0, "refunds_settled": 0}
        async with self.sessionmaker() as session:
            repo = PaymentRepository(session)
            stuck = await repo.processing_older_than(utcnow() - GRACE, limit)
            refunds = await repo.pending_refunds_older_than(utcnow() - GRACE - timedelta(
                seconds=self.settings.payment_deadline_s), limit)
        for payment in stuck:
            with self.telemetry.reconcile_span(payment) as span:
                result = await self._settle_payment(payment)
                self.telemetry.reconciled(span, payment, result)
            counts[result] += 1
        for refund in refunds:
            counts["refunds_settled"] += await self._settle_refund(refund)
        if stuck or refunds:
            log.info("reconciliation: %s", counts)
        return counts

    async def _settle_payment(self, payment: Payment) -> str:
        async with self.sessionmaker() as session:
            attempts = await PaymentRepository(session).attempts(payment.id)
        if not attempts:
            return "unresolved"
        last = attempts[-1]
        config = self.providers.get(last.provider)
        adapter = self.adapters[config.adapter]
        endpoint = config.endpoint(last.region)
        attempt = PaymentAttempt(id=new_id("att"), payment_id=payment.id, number=last.number + 1,
                                 provider=last.provider, region=last.region, idempotency_key=last.idempotency_key,
                                 kind="replay", outcome="pending", started_at=utcnow())

        lookup = await adapter.find_charge(endpoint, payment.id, timeout=self.timeouts)
        if lookup.state is LookupState.CHARGED:
            attempt.outcome, attempt.provider_reference = "succeeded", lookup.provider_reference
            attempt.kind, attempt.decision = "lookup", "reconcile:found"
            return await self._apply(payment, attempt, "succeeded", lookup.provider_reference, None)

        result = await adapter.replay_charge(endpoint, charge_request_for(payment, last.idempotency_key),
                                             timeout=self.timeouts)
        attempt.http_status, attempt.code = result.http_status, (result.code or None)
        attempt.provider_reference = result.provider_reference
        if result.outcome is Outcome.SUCCEEDED:
            attempt.outcome, attempt.decision = "succeeded", "reconcile:replayed"
            return await self._apply(payment, attempt, "succeeded", result.provider_reference, None)
        if result.outcome in (Outcome.HARD_DECLINE, Outcome.SOFT_DECLINE):
            attempt.outcome, attempt.error_class = "declined", result.outcome.value
            attempt.decision = "reconcile:declined"
            code = unified_decline_code(result)
            return await self._apply(payment, attempt, "failed", None,
                                     (code, result.message or "The card was declined.", True))
        log.warning("payment %s still unresolved at %s: %s", payment.id, last.provider, result.outcome.value)
        return "unresolved"

    async def _apply(self, payment: Payment, attempt: PaymentAttempt, status: str, reference: str | None,
                     failure: tuple[str, str, bool] | None) -> str:
        attempt.finished_at = utcnow()
        async with self.sessionmaker() as session:
            current = await session.get(Payment, payment.id, with_for_update=True)
            if current is None or current.status != "processing":
                return "unresolved"  # settled meanwhile (by another replica)
            current.status = status
            current.provider = attempt.provider
            current.provider_reference = reference
            if failure is not None:
                current.failure_code, current.failure_message, current.failure_decline = failure
            current.updated_at = utcnow()
            session.add(attempt)
            await session.commit()
        log.info("payment %s settled as %s at %s (%s)", payment.id, status, attempt.provider, attempt.decision,
                 extra={"event": "reconciled", "payment_id": payment.id, "status": status,
                        "provider": attempt.provider, "reason": attempt.decision})
        return status

    async def _settle_refund(self, refund) -> int:
        async with self.sessionmaker() as session:
            payment = await session.get(Payment, refund.payment_id)
        config = self.providers.get(refund.provider)
        result = await self.adapters[config.adapter].refund(
            config.endpoint(refund.region), refund_request_for(refund, payment.provider_reference or ""),
            timeout=self.timeouts)
        if result.outcome in (Outcome.TRANSIENT, Outcome.AMBIGUOUS):
            return 0
        async with self.sessionmaker() as session:
            refund = await PaymentRepository(session).get_refund(refund.id)
            if refund is None or refund.status != "pending":
                return 0
            apply_refund_result(refund, result)
            if refund.status == "failed":
                await PaymentRepository(session).release_refund(refund.payment_id, refund.amount)
            refund.updated_at = utcnow()
            await session.commit()
        return 1
