"""Refunds go to the provider that charged, never elsewhere.

The amount is reserved on the payment by one conditional UPDATE before the provider is called, so
concurrent refunds can never add up to more than the charge; a refund the provider refuses gives
its reservation back. Retries reuse the refund's idempotency key, so a refund is made at most once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from sqlalchemy.exc import IntegrityError

from orchestrator.config import ProviderTable, Settings
from orchestrator.kit.clock import utcnow
from orchestrator.kit.errors import invalid, not_found
from orchestrator.kit.ids import new_id
from orchestrator.observability.telemetry import NOOP, Telemetry
from orchestrator.payments.idempotency import IdempotencyRequest, key_reused, wait_for_owner
from orchestrator.payments.models import IdempotencyRecord, Refund
from orchestrator.payments.repository import IdempotencyRepository, PaymentRepository
from orchestrator.payments.schemas import refund_to_dict
from orchestrator.payments.service import MIN_ATTEMPT_S, RETRY_PAUSES_S, PaymentResult
from orchestrator.providers.base import Outcome, RefundRequest, RefundResult



def refund_request_for(refund: Refund, provider_reference: str) -> RefundRequest:
    """The same request every time for one refund, under its own id as idempotency key."""
    return RefundRequest(refund_id=refund.id, payment_id=refund.payment_id, provider_reference=provider_reference,
                         idempotency_key=refund.idempotency_key, amount=refund.amount, currency=refund.currency)


def apply_refund_result(refund: Refund, result: RefundResult) -> bool:
    """Record a definitive answer on the refund; False when it is transient or ambiguous (retry later)."""
    if result.outcome is Outcome.SUCCEEDED:
        refund.status = "succeeded"
        refund.provider_reference = result.provider_reference
        return True
    if result.outcome in (Outcome.HARD_DECLINE, Outcome.SOFT_DECLINE, Outcome.CONFIG_ERROR):
        refund.status = "failed"
        refund.failure_code = (result.code or "refund_refused")[:64]
        refund.failure_message = (result.message or "The provider refused the refund.")[:500]
        return True
    return False


class RefundService:
    def __init__(self, sessionmaker, adapters, providers: ProviderTable, settings: Settings, *,
                 telemetry: Telemetry = NOOP) -> None:
        self.telemetry = telemetry
        self.sessionmaker = sessionmaker
        self.adapters = adapters
        self.providers = providers
        self.settings = settings

    async def create(
        self, merchant_id: str, payment_id: str, amount: int | None, idem: IdempotencyRequest | None
    ) -> PaymentResult:
        now = utcnow()
        async with self.sessionmaker() as session:
            repo = PaymentRepository(session)
            payment = await repo.get_for_merchant(merchant_id, payment_id)
            if payment is None:
                raise not_found("payment", payment_id)
            if idem is not None:
                existing = await IdempotencyRepository(session).find(merchant_id, idem.key)
                if existing is not None:
                    return await self._replay(merchant_id, idem)
            if payment.status != "succeeded":
                raise invalid("payment_not_refundable",
                              f"Payment {payment.id} is {payment.status}; only a succeeded payment can be refunded.")
            remaining = payment.amount - payment.amount_refunded
            amount = remaining if amount is None else amount
            if amount <= 0 and remaining > 0:
                raise invalid("parameter_invalid", "amount must be a positive integer.", "amount")
            if amount <= 0 or amount > remaining or not await repo.reserve_refund(payment.id, amount):
                raise invalid("refund_exceeds_remaining",
                              f"Refund of {amount} exceeds the {remaining} left to refund.", "amount")
            refund = Refund(
                id=new_id("re"), payment_id=payment.id, merchant_id=merchant_id, amount=amount,
                currency=payment.currency, provider=payment.provider, region=payment.region,
                idempotency_key="", status="pending", created_at=now, updated_at=now)
            refund.idempotency_key = refund.id
            session.add(refund)
            if idem is not None:
                session.add(IdempotencyRecord(
                    id=new_id("idk"), merchant_id=merchant_id, key=idem.key, request_hash=idem.request_hash,
                    resource_type="refund", resource_id=refund.id, completed=False, created_at=now))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if idem is None:
                    raise
                return await self._replay(merchant_id, idem)
            provider_reference = payment.provider_reference or ""

        await self._execute(refund, provider_reference)
        async with self.sessionmaker() as session:
            refund.updated_at = utcnow()
            session.add(refund)
            if refund.status == "failed":
                await PaymentRepository(session).release_refund(refund.payment_id, refund.amount)
            if idem is not None:
                await IdempotencyRepository(session).mark_completed(merchant_id, idem.key)
            await session.commit()
        self.telemetry.refund_finished(refund)
        return PaymentResult(refund_to_dict(refund), replayed=False)

    async def _execute(self, refund: Refund, provider_reference: str) -> None:
        config = self.providers.get(refund.provider)
        adapter = self.adapters[config.adapter]
        endpoint = config.endpoint(refund.region)
        request = refund_request_for(refund, provider_reference)
        deadline = time.monotonic() + self.settings.payment_deadline_s
        tries = 0
        while True:
            timeouts = self.settings.provider_timeouts(deadline - time.monotonic())
            result = await adapter.refund(endpoint, request, timeout=timeouts)
            if apply_refund_result(refund, result):
                return
            # Transient or ambiguous: the same key again, at the same provider, while time allows.
            pause = RETRY_PAUSES_S[min(tries, len(RETRY_PAUSES_S) - 1)]
            tries += 1
            if deadline - time.monotonic() < pause + MIN_ATTEMPT_S:
                return  # stays pending; the provider's idempotency makes a later retry safe
            await asyncio.sleep(pause)

    async def _replay(self, merchant_id: str, idem: IdempotencyRequest) -> PaymentResult:
        record = await wait_for_owner(self.sessionmaker, merchant_id, idem, wait_s=self.settings.idempotency_wait_s,
                                      stale_after=timedelta(seconds=self.settings.payment_deadline_s + 5))
        if record.resource_type != "refund":
            raise key_reused()
        async with self.sessionmaker() as session:
            refund = await PaymentRepository(session).get_refund(record.resource_id)
        if refund is None:
            raise not_found("refund", record.resource_id)
        self.telemetry.idempotent_replay("refund", refund.id)
        return PaymentResult(refund_to_dict(refund), replayed=True)
