"""The health job's observations, aggregated by the database itself, on Postgres and on SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.kit.clock import utcnow
from orchestrator.kit.db import create_engine, create_sessionmaker
from orchestrator.kit.ids import new_id
from orchestrator.kit.migrate import upgrade
from orchestrator.merchants.service import create_merchant
from orchestrator.payments.models import Payment, PaymentAttempt
from orchestrator.routing.repository import RoutingRepository
from tests.fixtures.database import fresh_postgres_database
from tests.fixtures.sync import in_own_thread


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'observations.db'}"
        in_own_thread(upgrade, url)
        yield url
    else:
        with fresh_postgres_database("orch_obs") as url:
            in_own_thread(upgrade, url)
            yield url


def attempt(payment: Payment, number: int, provider: str, outcome: str, error_class: str | None,
            latency_ms: float | None, *, age_s: float = 1.0, kind: str = "charge") -> PaymentAttempt:
    return PaymentAttempt(id=new_id("att"), payment_id=payment.id, number=number, provider=provider, region="EU",
                          idempotency_key=f"{payment.id}_a{number}", kind=kind, outcome=outcome,
                          error_class=error_class, latency_ms=latency_ms,
                          started_at=utcnow() - timedelta(seconds=age_s))


async def test_observations_count_only_provider_faults_and_take_the_discrete_p99(database_url):
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session:
            merchant, _ = await create_merchant(session, "Observed")
            now = utcnow()
            payments = [Payment(id=new_id("pay"), merchant_id=merchant.id, amount=1000, currency="EUR", country="DE",
                                region="EU", payment_method="pm_card_visa", metadata_={}, status="succeeded",
                                amount_refunded=0, route={}, deadline_at=now, created_at=now, updated_at=now)
                        for _ in range(120)]
            session.add_all(payments)
            rows = []
            # Stripe: 100 calls with latencies 1..100 ms; 2 transient and 1 ambiguous; 3 declines.
            for i, payment in enumerate(payments[:100]):
                outcome, error_class = "succeeded", None
                if i in (10, 20):
                    outcome, error_class = "error", "transient"
                elif i == 30:
                    outcome, error_class = "ambiguous", "ambiguous"
                elif i in (40, 41, 42):
                    outcome, error_class = "declined", "hard_decline"
                rows.append(attempt(payment, 1, "stripe", outcome, error_class, float(i + 1)))
            # Adyen: our own configuration error is not the provider's fault; a call without latency.
            rows.append(attempt(payments[100], 1, "adyen", "error", "config_error", 5.0))
            rows.append(attempt(payments[101], 1, "adyen", "succeeded", None, None))
            # Not counted: too old, still pending, replays.
            rows.append(attempt(payments[102], 1, "adyen", "error", "transient", 9.0, age_s=120))
            rows.append(attempt(payments[103], 1, "adyen", "pending", None, None))
            rows.append(attempt(payments[104], 1, "adyen", "error", "transient", 9.0, kind="replay"))
            session.add_all(rows)
            await session.commit()

        async with sessionmaker() as session:
            observed = await RoutingRepository(session).observations(utcnow() - timedelta(seconds=60))
        assert observed[("stripe", "EU")] == (100, pytest.approx(0.03), 99.0)
        assert observed[("adyen", "EU")] == (2, 0.0, 5.0)
        assert set(observed) == {("stripe", "EU"), ("adyen", "EU")}
    finally:
        await engine.dispose()
