"""The payment path: write ahead, route, the attempt loop, settle.

Each attempt is committed as `pending` before its provider is called and its outcome is committed
after, so after a crash every charge that may exist is named by an attempt row with the idempotency
key the provider saw. Money safety rules of the loop:
- succeeded or hard decline: stop;
- transient (nothing was charged): the same provider again after a jittered backoff, while its retry
  budget, its breaker and the deadline allow; then the next candidate;
- soft decline or configuration error (nothing was charged): the next candidate;
- ambiguous (a charge may exist): only the same provider, by replaying the same idempotency key,
  until it answers definitively; unresolved at the deadline, the payment stays `processing` and the
  reconciler settles it later. It is never charged elsewhere meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified

from orchestrator.config import ProviderTable, Settings
from orchestrator.kit.clock import utcnow
from orchestrator.kit.errors import not_found
from orchestrator.kit.ids import new_id
from orchestrator.observability.telemetry import NOOP, Telemetry
from orchestrator.payments.idempotency import IdempotencyRequest, wait_for_owner
from orchestrator.payments.models import IdempotencyRecord, Payment, PaymentAttempt
from orchestrator.payments.repository import IdempotencyRepository, PaymentRepository
from orchestrator.payments.schemas import PaymentCreate, payment_to_dict
from orchestrator.providers.base import ChargeRequest, ChargeResult, Outcome, ProviderAdapter
from orchestrator.resilience.breaker import BreakerState
from orchestrator.resilience.guards import FAULT, IGNORED, OK, SAFE_FAULT, Guards, ProviderGuard
from orchestrator.routing.scoring import PaymentFacts
from orchestrator.routing.service import RoutingService

log = logging.getLogger(__name__)

# Below this much time left, a new provider call is not started.
MIN_ATTEMPT_S = 0.25
# Pauses between replays (or refund retries) under one key: short first, then up to a second.
RETRY_PAUSES_S = (0.05, 0.2, 0.5, 1.0)


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


_BREAKER_VERDICT = {
    Outcome.SUCCEEDED: OK,
    Outcome.HARD_DECLINE: IGNORED,
    Outcome.SOFT_DECLINE: IGNORED,
    Outcome.CONFIG_ERROR: IGNORED,
    Outcome.TRANSIENT: SAFE_FAULT,
    Outcome.AMBIGUOUS: FAULT,
}

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
        guards: Guards,
        routing: RoutingService,
        *,
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.telemetry = telemetry
        self.sessionmaker = sessionmaker
        self.adapters = adapters
        self.providers = providers
        self.settings = settings
        self.guards = guards
        self.routing = routing

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
        """Rank the candidates from the in-memory snapshot (no query); the reasons go on the payment."""
        with self.telemetry.route_span() as span:
            decision = self.routing.decide(PaymentFacts(
                amount=payment.amount, currency=payment.currency, country=payment.country, region=payment.region,
                merchant_id=payment.merchant_id))
            candidates = [c.provider for c in decision.candidates]
            payment.route = {
                "reason": decision.reason, "overrides": list(decision.overrides_applied), "candidates": candidates,
                "scores": {c.provider: round(c.score, 6) for c in decision.candidates},
                "excluded": dict(decision.excluded),
            }
            self.telemetry.routed(span, payment, decision)
        return candidates

    def _admit_next(self, payment: Payment, candidates: Iterator[str]) -> tuple[str, ProviderGuard] | None:
        """The next candidate whose breaker and concurrency limit let a call through; skips are noted."""
        open_breakers: list[tuple[str, ProviderGuard]] = []
        for provider in candidates:
            guard = self.guards.get(provider, payment.region)
            refused = guard.admit()
            if refused is None:
                return provider, guard
            payment.route.setdefault("skipped", []).append({"provider": provider, "reason": refused})
            self.telemetry.skipped(payment, provider, refused)
            if refused == "breaker_open":
                open_breakers.append((provider, guard))
        # No candidate admits a call and some circuits are open: the payment would fail, so an open
        # circuit lets a rate-limited probe through (a provider just back may still be at the short
        # concurrency limit the outage left it, and must not cost this payment).
        if open_breakers:
            for provider, guard in open_breakers:
                if guard.admit_last_resort():
                    payment.route["last_resort_probe"] = provider
                    return provider, guard
        return None

    async def create(
        self, merchant_id: str, body: PaymentCreate, region: str, idem: IdempotencyRequest | None
    ) -> PaymentResult:
        started = time.perf_counter()
        now = utcnow()
        payment = Payment(
            id=new_id("pay"), merchant_id=merchant_id, amount=body.amount, currency=body.currency,
            country=body.country, region=region, payment_method=body.payment_method,
            description=body.description, metadata_=dict(body.metadata), status="processing",
            amount_refunded=0, deadline_at=now + timedelta(seconds=self.settings.payment_deadline_s),
            created_at=now, updated_at=now,
        )
        candidates = self.route(payment)
        remaining = iter(candidates)
        admitted = self._admit_next(payment, remaining) if candidates else None
        first: PaymentAttempt | None = None
        if admitted is not None:
            provider, guard = admitted
            first = self._new_attempt(payment, provider, 1, "charge", attempt_key(payment.id, 1), guard)
        elif candidates:
            self._fail(payment, "provider_unavailable", "Every compliant provider is unavailable right now "
                       "(circuit open or at its concurrency limit); nothing was charged.", False)
        else:
            self._fail(payment, "no_route", f"No provider takes {payment.currency} in {payment.region}.", False)

        try:
            async with self.sessionmaker() as session:
                if idem is not None:
                    session.add(IdempotencyRecord(
                        id=new_id("idk"), merchant_id=merchant_id, key=idem.key, request_hash=idem.request_hash,
                        resource_type="payment", resource_id=payment.id, completed=first is None,
                        created_at=now))
                session.add(payment)
                if first is not None:
                    session.add(first)
                try:
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    if idem is None:
                        raise
                    if admitted is not None:
                        admitted[1].cancel()
                    return await self._replay(merchant_id, idem)
        except BaseException:
            if admitted is not None and first is not None and first.outcome == "pending":
                admitted[1].cancel()
            raise

        attempts: list[PaymentAttempt] = []
        if admitted is not None and first is not None:
            attempts = await self._run_attempts(payment, remaining, first, admitted[1], idem)
        self.telemetry.payment_finished(payment, len(attempts), time.perf_counter() - started)
        return PaymentResult(payment_to_dict(payment, attempts), replayed=False)

    async def _replay(self, merchant_id: str, idem: IdempotencyRequest) -> PaymentResult:
        stale_after = timedelta(seconds=self.settings.payment_deadline_s + 5)
        record = await wait_for_owner(self.sessionmaker, merchant_id, idem,
                                      wait_s=self.settings.idempotency_wait_s, stale_after=stale_after)
        self.telemetry.idempotent_replay("payment", record.resource_id)
        return PaymentResult(await self.get(merchant_id, record.resource_id), replayed=True)

    # ---- the attempt loop ----------------------------------------------------------------------

    def _new_attempt(self, payment: Payment, provider: str, number: int, kind: str, key: str,
                     guard: ProviderGuard | None) -> PaymentAttempt:
        return PaymentAttempt(
            id=new_id("att"), payment_id=payment.id, number=number, provider=provider, region=payment.region,
            idempotency_key=key, kind=kind, outcome="pending", started_at=utcnow(),
            breaker_state=guard.breaker.state.value if guard is not None else None)

    @staticmethod
    def _fail(payment: Payment, code: str, message: str, decline: bool) -> None:
        payment.status = "failed"
        payment.failure_code = code
        payment.failure_message = message[:500]
        payment.failure_decline = decline

    async def _call(self, payment: Payment, attempt: PaymentAttempt, remaining_s: float) -> tuple[ChargeResult, float]:
        config = self.providers.get(attempt.provider)
        adapter = self.adapters[config.adapter]
        endpoint = config.endpoint(attempt.region)
        request = charge_request_for(payment, attempt.idempotency_key)
        started = time.perf_counter()
        if attempt.kind == "replay":
            result = await adapter.replay_charge(endpoint, request, timeout=self.settings.provider_timeouts(remaining_s))
        else:
            result = await adapter.charge(endpoint, request, timeout=self.settings.provider_timeouts(remaining_s))
        return result, time.perf_counter() - started

    async def _run_attempts(
        self, payment: Payment, remaining_candidates: Iterator[str], attempt: PaymentAttempt,
        guard: ProviderGuard | None, idem: IdempotencyRequest | None,
    ) -> list[PaymentAttempt]:
        """Make `attempt` (already written as pending, its permits held) and whatever must follow it."""
        remaining_total = (payment.deadline_at - utcnow()).total_seconds()
        deadline = time.monotonic() + remaining_total
        attempts = [attempt]
        tries_here = 1  # attempts at the current provider, replays excluded
        replays = 0
        while True:
            traced = self.telemetry.attempt_started(payment, attempt)
            try:
                result, duration_s = await self._call(payment, attempt, deadline - time.monotonic())
            except BaseException as exc:
                self.telemetry.attempt_aborted(traced, exc)
                if guard is not None:
                    guard.cancel()
                raise
            if guard is not None:  # replays hold no permits and teach the breaker nothing
                guard.record(_BREAKER_VERDICT[result.outcome], duration_s,
                             last_resort=attempt.breaker_state == BreakerState.OPEN.value)
            self._note_result(attempt, result, duration_s)
            self.telemetry.attempt_called(traced)
            outcome = result.outcome
            if attempt.kind == "replay" and outcome is Outcome.TRANSIENT:
                # The replay itself was turned away; the first request's fate is still unknown.
                outcome = Outcome.AMBIGUOUS
            follow_up: PaymentAttempt | None = None
            next_guard: ProviderGuard | None = None
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
                    pause = RETRY_PAUSES_S[min(replays, len(RETRY_PAUSES_S) - 1)]
                    replays += 1
                    if attempt.kind == "replay" and remaining > pause + MIN_ATTEMPT_S:
                        await asyncio.sleep(pause)
                    follow_up = self._new_attempt(payment, attempt.provider, attempt.number + 1, "replay",
                                                  attempt.idempotency_key, None)
                else:
                    attempt.decision = "unresolved:processing"
                    payment.provider = attempt.provider  # the only place a charge may exist
            else:  # transient, soft decline, configuration error: certainly nothing charged here
                retry = self._retry_same_provider(outcome, result, guard, tries_here, remaining)
                if retry is not None:
                    wait_s, next_guard = retry
                    attempt.decision = f"retry:{attempt.error_class}"
                    await asyncio.sleep(wait_s)
                    tries_here += 1
                    follow_up = self._new_attempt(payment, attempt.provider, attempt.number + 1, "charge",
                                                  attempt_key(payment.id, attempt.number + 1), next_guard)
                else:
                    admitted = self._admit_next(payment, remaining_candidates) if remaining > MIN_ATTEMPT_S \
                        else None
                    if admitted is not None:
                        provider, next_guard = admitted
                        tries_here = 1
                        attempt.decision = f"failover:{attempt.error_class}"
                        follow_up = self._new_attempt(payment, provider, attempt.number + 1, "charge",
                                                      attempt_key(payment.id, attempt.number + 1), next_guard)
                    else:
                        attempt.decision = f"stop:{attempt.error_class}"
                        self._fail_after(payment, attempt, result, outcome, remaining)

            self.telemetry.attempt_finished(traced, payment, attempt, result.outcome, duration_s, follow_up)
            settled = follow_up is None
            try:
                await self._save(payment, attempt, follow_up, idem if settled else None, settled)
            except BaseException:
                if next_guard is not None:
                    next_guard.cancel()
                raise
            if settled:
                return attempts
            attempts.append(follow_up)
            attempt, guard = follow_up, next_guard

    def _retry_same_provider(self, outcome: Outcome, result: ChargeResult, guard: ProviderGuard | None,
                             tries_here: int, remaining_s: float) -> tuple[float, ProviderGuard] | None:
        """(wait, guard with permits taken) when a transient failure may be retried at the same provider."""
        if outcome is not Outcome.TRANSIENT or guard is None:
            return None
        wait_s = self.guards.backoff.next_wait(tries_here, remaining_deadline_s=remaining_s,
                                               retry_after_s=result.retry_after_s)
        if wait_s is None or not guard.budget.try_spend_retry("transient"):
            return None
        if guard.admit() is not None:
            return None
        return wait_s, guard

    def _fail_after(self, payment: Payment, attempt: PaymentAttempt, result: ChargeResult, outcome: Outcome,
                    remaining_s: float) -> None:
        skipped = payment.route.get("skipped", [])
        if outcome is Outcome.SOFT_DECLINE:
            self._fail(payment, "processing_error", result.message or "The card could not be processed.", True)
        elif remaining_s <= MIN_ATTEMPT_S:
            self._fail(payment, "deadline_exceeded", "The payment's deadline passed before a provider could take "
                       "it; nothing was charged.", False)
        else:
            unavailable = ", ".join(f"{s['provider']} ({s['reason']})" for s in skipped)
            self._fail(payment, "provider_unavailable",
                       f"No provider could take the payment (last: {attempt.provider}, {attempt.error_class}"
                       + (f"; unavailable: {unavailable}" if unavailable else "") + "); nothing was charged.",
                       False)

    @staticmethod
    def _note_result(attempt: PaymentAttempt, result: ChargeResult, duration_s: float) -> None:
        attempt.outcome, attempt.error_class = _ATTEMPT_OUTCOME[result.outcome]
        attempt.http_status = result.http_status
        attempt.code = result.code[:64] if result.code else None
        attempt.message = result.message[:500] if result.message else None
        attempt.provider_reference = result.provider_reference
        attempt.latency_ms = duration_s * 1000.0
        attempt.finished_at = utcnow()

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
                flag_modified(payment, "route")  # skips may have been added to it in place
                session.add(payment)
                if idem is not None:
                    await IdempotencyRepository(session).mark_completed(payment.merchant_id, idem.key)
            await session.commit()
