"""Reconciliation after a crash: payments left `processing` are settled at the provider that may hold
the charge, by lookup or by replaying the very same request, never by charging elsewhere."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from orchestrator.config import Settings
from orchestrator.kit.clock import utcnow
from orchestrator.kit.db import create_engine, create_sessionmaker
from orchestrator.kit.ids import new_id
from orchestrator.kit.migrate import upgrade
from orchestrator.health.reconciler import Reconciler
from orchestrator.merchants.service import create_merchant
from orchestrator.payments.models import Payment, PaymentAttempt
from orchestrator.payments.service import attempt_key
from orchestrator.providers.registry import build_adapters
from tests.fixtures.money import ledger_charges
from tests.fixtures.sync import in_own_thread


@pytest.fixture
def gateways():
    from sandbox_gateways.runner import start_sandboxes

    with start_sandboxes(host="127.0.0.1", base_port=None, seed=2) as running:
        yield running


def stuck_payment(merchant_id: str, provider: str, token: str = "pm_card_visa") -> tuple[Payment, PaymentAttempt]:
    """A payment whose process died after writing its attempt, before learning the outcome."""
    created = utcnow() - timedelta(minutes=1)
    payment = Payment(id=new_id("pay"), merchant_id=merchant_id, amount=2500, currency="EUR", country="DE",
                      region="EU", payment_method=token, description=None, metadata_={}, status="processing",
                      amount_refunded=0, route={"reason": "priority", "overrides": [], "candidates": [provider]},
                      deadline_at=created + timedelta(seconds=10), created_at=created, updated_at=created)
    attempt = PaymentAttempt(id=new_id("att"), payment_id=payment.id, number=1, provider=provider, region="EU",
                             idempotency_key=attempt_key(payment.id, 1), kind="charge", outcome="pending",
                             started_at=created)
    return payment, attempt


async def test_stuck_payments_are_settled_where_they_may_have_been_charged(tmp_path, gateways, monkeypatch):
    for name, url in gateways.urls.items():
        monkeypatch.setenv(f"ORCH_SANDBOX_{name.upper()}_URL", url)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'reconcile.db'}"
    in_own_thread(upgrade, database_url)
    settings = Settings(database_url=database_url)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        merchant, _key = await create_merchant(session, "Crashy")
        charged_at_stripe = stuck_payment(merchant.id, "stripe")
        never_sent_to_adyen = stuck_payment(merchant.id, "adyen")
        declined_at_braintree = stuck_payment(merchant.id, "braintree", "pm_card_declined")
        for payment, attempt in (charged_at_stripe, never_sent_to_adyen, declined_at_braintree):
            session.add(payment)
            session.add(attempt)
        await session.commit()

    # The charge the crashed process made at Stripe: it reached Stripe, its answer was lost.
    payment, attempt = charged_at_stripe
    response = httpx.post(f"{gateways.urls['stripe']}/eu/v1/payment_intents", data={
        "amount": "2500", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true",
        "payment_method_types[]": "card", "metadata[payment_id]": payment.id},
        headers={"Authorization": "Bearer sk_test_x", "Idempotency-Key": attempt.idempotency_key})
    assert response.status_code == 200

    async with httpx.AsyncClient() as client:
        reconciler = Reconciler(sessionmaker, build_adapters(client), settings.providers, settings)
        counts = await reconciler.run_once()
        assert counts["succeeded"] == 2 and counts["failed"] == 1
        assert (await reconciler.run_once())["succeeded"] == 0  # nothing left to do

    async with sessionmaker() as session:
        settled = {p.id: await session.get(Payment, p.id) for p, _ in
                   (charged_at_stripe, never_sent_to_adyen, declined_at_braintree)}
    await engine.dispose()
    assert settled[charged_at_stripe[0].id].status == "succeeded"
    assert settled[charged_at_stripe[0].id].provider_reference == response.json()["id"]
    assert settled[never_sent_to_adyen[0].id].status == "succeeded"
    assert settled[declined_at_braintree[0].id].status == "failed"
    assert settled[declined_at_braintree[0].id].failure_code == "card_declined"

    charges = ledger_charges(gateways.urls)
    assert [c["provider"] for c in charges[charged_at_stripe[0].id]] == ["stripe"]
    assert [c["provider"] for c in charges[never_sent_to_adyen[0].id]] == ["adyen"]
    assert declined_at_braintree[0].id not in charges
