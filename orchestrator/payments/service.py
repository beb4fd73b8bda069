"""The payment path: write ahead, route, the attempt loop, settle.

Each attempt is committed as `pending` before its provider is called and its outcome is committed
after, so after a crash every charge that may exist is named by an attempt row with the idempotency
key the provider saw. Money safety rules of the loop:
- succeeded or hard decline: stop;
- transient, soft decline or configuration error (nothing was charged): the next candidate;
- ambiguous (a charge may exist): only the same provider, by replaying the same idempotency key,
  until it answers definitively; unresolved at the deadline, the payment stays `processing` and the
  reconciler settles it later. It is never charged elsewhere meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from orchestrator.config import ProviderTable, Settings
from orchestrator.kit.clock import utcnow
from orchestrator.kit.errors import not_found
from orchestrator.kit.ids import new_id
from orchestrator.payments.idempotency import IdempotencyRequest, wait_for_owner
from orchestrator.payments.models import IdempotencyRecord, Payment, PaymentAttempt
from orchestrator.payments.repository import IdempotencyRepository, PaymentRepository
from orchestrator.payments.schemas import PaymentCreate, payment_to_dict
from orchestrator.providers.base import ChargeRequest, ChargeResult, Outcome, ProviderAdapter, Timeouts

log = logging.getLogger(__name__)

# Below this much time left, a new provider call is not started.
MIN_ATTEMPT_S = 0.25
_REPLAY_PAUSE_S = (0.05, 0.2, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class PaymentResult:
    body: dict[str, Any]
    replayed: bool


def attempt_key(payment_id: str, number: int) -> str:
    """The idempotency key a provider sees for one attempt: derived from the payment, so replayable."""
    return f"{payment_id}_a{number}"


def charge_request_for(payment: Payment, idempotency_key: str) -> ChargeRequest:
    """Rebuilt identically from the stored payment, so a replay sends the very same request."""
    return ChargeRequest(
        payment_id=payment.id,
        idempotency_key=idempotency_key,
        amount=payment.amount,
        currency=payment.currency,
        country=payment.country,
        payment_method=payment.payment_method,
        description=payment.description,
        merchant_id=payment.merchant_id,
        metadata=dict(payment.metadata_ or {}),
    )


_ATTEMPT_OUTCOME = {
    Outcome.SUCCEEDED: ("succeeded", None),
    Outcome.HARD_DECLINE: ("declined", "hard_decline"),
    Outcome.SOFT_DECLINE: ("declined", "soft_decline"),
    Outcome.TRANSIENT: ("error", "transient"),
    Outcome.AMBIGUOUS: ("ambiguous", "ambiguous"),
    Outcome.CONFIG_ERROR: ("error", "config_error"),
}

# Our failure codes, the same whichever provider declined.
_INSUFFICIENT = ("insufficient", "not enough balance", "2001", "51")


def unified_decline_code(result: ChargeResult) -> str:
    text = " ".join(filter(None, (result.code, result.message, result.raw_status))).lower()
    if result.outcome is Outcome.SOFT_DECLINE:
        return "processing_error"
    if any(marker in text for marker in _INSUFFICIENT):
        return "insufficient_funds"
    return "card_declined"


class PaymentService:
    def __init__(
        self,
        sessionmaker,
        adapters: Mapping[str, ProviderAdapter],
        providers: ProviderTable,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.adapters = adapters
        self.providers = providers
        self.settings = settings

    # ---- reading -------------------------------------------------------------------------------

    async def get(self, merchant_id: str, payment_id: str) -> dict[str, Any]:
        async with self.sessionmaker() as session:
            repo = PaymentRepository(session)
            payment = await repo.get_for_merchant(merchant_id, payment_id)
            if payment is None:
                raise not_found("payment", payment_id)
            return payment_to_dict(payment, await repo.attempts(payment.id))

    async def list(self, merchant_id: str, limit: int, starting_after: str | None) -> tuple[list[dict], bool]:
        async with self.sessionmaker() as session:
            repo = PaymentRepository(session)
            cursor = None
            if starting_after is not None:
                cursor = await repo.get_for_merchant(merchant_id, starting_after)
                if cursor is None:
                    raise not_found("payment", starting_after, "starting_after")
            payments, has_more = await repo.list_for_merchant(merchant_id, limit, cursor)
            attempts = await repo.attempts_for([p.id for p in payments])
            return [payment_to_dict(p, attempts.get(p.id, [])) for p in payments], has_more

    # ---- creating ------------------------------------------------------------------------------

    def route(self, payment: Payment) -> list[str]:
        """Compliant providers for the payment's region and currency, in the provider file's order."""
        return [p.name for p in self.providers.compliant(payment.region, payment.currency)]

    async def create(
        self, merchant_id: str, body: PaymentCreate, region: str, idem: IdempotencyRequest | None
    ) -> PaymentResult:
        now = utcnow()
        payment = Payment(
            id=new_id("pay"), merchant_id=merchant_id, amount=body.amount, currency=body.currency,
            country=body.country, region=region, payment_method=body.payment_method,
            description=body.description, metadata_=dict(body.metadata), status="processing",
            amount_refunded=0, deadline_at=now + timedelta(seconds=self.settings.payment_deadline_s),
            created_at=now, updated_at=now,
        )
        candidates = self.route(payment)
        payment.route = {"reason": "priority", "overrides": [], "candidates": candidates}
        first: PaymentAttempt | None = None
        if candidates:
            first = self._new_attempt(payment, candidates[0], 1, "charge", attempt_key(payment.id, 1))
        else:
            self._fail(payment, "no_route", f"No provider takes {payment.currency} in {payment.region}.", False)

        async with self.sessionmaker() as session:
            if idem is not None:
                session.add(IdempotencyRecord(
                    id=new_id("idk"), merchant_id=merchant_id, key=idem.key, request_hash=idem.request_hash,
                    resource_type="payment", resource_id=payment.id, completed=first is None, created_at=now))
            session.add(payment)
            if first is not None:
                session.add(first)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                if idem is None:
                    raise
                return await self._replay(merchant_id, idem)

        attempts = [first] if first is not None else []
        if first is not None:
            attempts = await self._run_attempts(payment, candidates, first, idem)
        return PaymentResult(payment_to_dict(payment, attempts), replayed=False)

    async def _replay(self, merchant_id: str, idem: IdempotencyRequest) -> PaymentResult:
        stale_after = timedelta(seconds=self.settings.payment_deadline_s + 5)
        record = await wait_for_owner(self.sessionmaker, merchant_id, idem,
                                      wait_s=self.settings.idempotency_wait_s, stale_after=stale_after)
        return PaymentResult(await self.get(merchant_id, record.resource_id), replayed=True)

    # ---- the attempt loop ----------------------------------------------------------------------

    def _new_attempt(self, payment: Payment, provider: str, number: int, kind: str, key: str) -> PaymentAttempt:
        return PaymentAttempt(
            id=new_id("att"), payment_id=payment.id, number=number, provider=provider, region=payment.region,
            idempotency_key=key, kind=kind, outcome="pending", started_at=utcnow())

    @staticmethod
    def _fail(payment: Payment, code: str, message: str, decline: bool) -> None:
        payment.status = "failed"
        payment.failure_code = code
        payment.failure_message = message[:500]
        payment.failure_decline = decline

    def _timeouts(self, remaining_s: float) -> Timeouts:
        return Timeouts(connect_s=min(self.settings.provider_connect_timeout_s, remaining_s),
                        read_s=min(self.settings.provider_read_timeout_s, remaining_s))

    async def _call(self, payment: Payment, attempt: PaymentAttempt, remaining_s: float) -> tuple[ChargeResult, float]:
        adapter = self.adapters[self.providers.get(attempt.provider).adapter]
        endpoint = self.providers.get(attempt.provider).endpoint(attempt.region)
        request = charge_request_for(payment, attempt.idempotency_key)
        started = time.perf_counter()
        if attempt.kind == "replay":
            result = await adapter.replay_charge(endpoint, request, timeout=self._timeouts(remaining_s))
        else:
            result = await adapter.charge(endpoint, request, timeout=self._timeouts(remaining_s))
        return result, (time.perf_counter() - started) * 1000.0

    async def _run_attempts(
        self, payment: Payment, candidates: list[str], attempt: PaymentAttempt, idem: IdempotencyRequest | None
    ) -> list[PaymentAttempt]:
        remaining_total = (payment.deadline_at - utcnow()).total_seconds()
        deadline = time.monotonic() + remaining_total
        attempts = [attempt]
        next_candidates = iter(candidates[1:])
        replays = 0
        while True:
            result, latency_ms = await self._call(payment, attempt, deadline - time.monotonic())
            attempt.outcome, attempt.error_class = _ATTEMPT_OUTCOME[result.outcome]
            attempt.http_status = result.http_status
            attempt.code = (result.code or None) and result.code[:64]
            attempt.message = (result.message or None) and result.message[:500]
            attempt.provider_reference = result.provider_reference
            attempt.latency_ms = latency_ms
            attempt.finished_at = utcnow()
            outcome = result.outcome
            if attempt.kind == "replay" and outcome is Outcome.TRANSIENT:
                # The replay itself was turned away; the first request's fate is still unknown.
                outcome = Outcome.AMBIGUOUS
            follow_up: PaymentAttempt | None = None
            remaining = deadline - time.monotonic()

            if outcome is Outcome.SUCCEEDED:
                attempt.decision = "done"
                payment.status = "succeeded"
                payment.provider = attempt.provider
                payment.provider_reference = result.provider_reference
            elif outcome is Outcome.HARD_DECLINE:
                attempt.decision = "stop:hard_decline"
                payment.provider = attempt.provider
                self._fail(payment, unified_decline_code(result), result.message or "The card was declined.", True)
            elif outcome is Outcome.AMBIGUOUS:
                if remaining > MIN_ATTEMPT_S:
                    attempt.decision = "resolve:replay"
                    pause = _REPLAY_PAUSE_S[min(replays, len(_REPLAY_PAUSE_S) - 1)]
                    replays += 1
                    if attempt.kind == "replay" and remaining > pause + MIN_ATTEMPT_S:
                        await asyncio.sleep(pause)
                    follow_up = self._new_attempt(payment, attempt.provider, attempt.number + 1, "replay",
                                                  attempt.idempotency_key)
                else:
                    attempt.decision = "unresolved:processing"
                    payment.provider = attempt.provider  # the only place a charge may exist
            else:  # transient, soft decline, configuration error: certainly nothing charged here
                provider = next(next_candidates, None)
                if provider is not None and remaining > MIN_ATTEMPT_S:
                    attempt.decision = f"failover:{attempt.error_class}"
                    follow_up = self._new_attempt(payment, provider, attempt.number + 1, "charge",
                                                  attempt_key(payment.id, attempt.number + 1))
                else:
                    attempt.decision = f"stop:{attempt.error_class}"
                    if outcome is Outcome.SOFT_DECLINE:
                        self._fail(payment, "processing_error",
                                   result.message or "The card could not be processed.", True)
                    elif provider is not None:
                        self._fail(payment, "deadline_exceeded", "The payment's deadline passed before a provider "
                                   "could take it; nothing was charged.", False)
                    else:
                        self._fail(payment, "provider_unavailable",
                                   f"No provider could take the payment (last: {attempt.provider}, "
                                   f"{attempt.error_class}); nothing was charged.", False)

            settled = follow_up is None
            await self._save(payment, attempt, follow_up, idem if settled else None, settled)
            if settled:
                return attempts
            attempts.append(follow_up)
            attempt = follow_up

    async def _save(self, payment: Payment, finished: PaymentAttempt, started: PaymentAttempt | None,
                    idem: IdempotencyRequest | None, settled: bool) -> None:
        """One transaction: the outcome just seen, and the next attempt before it is made (write ahead).

        The settling write may be committed asynchronously on Postgres: if a crash loses it, the attempt
        rows already committed name the provider and key, and reconciliation finds the same outcome
        there. Every write that precedes a provider call stays synchronous.
        """
        async with self.sessionmaker() as session:
            if settled and started is None and session.bind.dialect.name == "postgresql":
                await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            session.add(finished)
            if started is not None:
                session.add(started)
            if settled:
                payment.updated_at = utcnow()
                session.add(payment)
                if idem is not None:
                    await IdempotencyRepository(session).mark_completed(payment.merchant_id, idem.key)
            await session.commit()
