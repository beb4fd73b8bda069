"""The incident of the brief, end to end, with the default (randomised, health-weighted) routing."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.helpers import payment_body
from tests.fixtures.stack import dedicated_stack

pytestmark = pytest.mark.e2e

EU = {"country": "DE", "currency": "EUR"}
US = {"country": "US", "currency": "USD"}


async def batch(client, n: int, region: dict, concurrency: int = 5) -> list[dict]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> dict:
        async with gate:
            response = await client.post("/v1/payments", json=payment_body(amount=2000 + i, **region))
            assert response.status_code == 201
            return response.json()

    return await asyncio.gather(*(one(i) for i in range(n)))


def share(payments: list[dict], provider: str) -> float:
    return sum(p["provider"] == provider for p in payments) / len(payments)


async def test_stripe_eu_fails_with_a_lying_status_page_and_traffic_moves_then_returns(tmp_path):
    with dedicated_stack(tmp_path, seed=21, PROVIDER_READ_TIMEOUT_S="1.5", STATUS_POLL_INTERVAL_S="1",
                         OBSERVATION_WINDOW_S="8", BREAKER__WAIT_IN_OPEN_S="1", BREAKER__MAX_WAIT_IN_OPEN_S="2",
                         ROUTING__RECOVERY_S="5", ROUTING__MIN_CALLS="10") as stack:
        async with stack.client() as client:
            # Stripe is the cheapest everywhere, so it takes nearly all traffic.
            assert share(await batch(client, 40, EU), "stripe") >= 0.9
            assert share(await batch(client, 20, US), "stripe") >= 0.8

            stack.fault("stripe", "eu", error_rate=1.0, error_status=503, status_page="operational")
            during_eu = []
            for _ in range(6):
                during_eu += await batch(client, 10, EU)
                await asyncio.sleep(0.2)
            during_us = await batch(client, 20, US)
            assert all(p["status"] == "succeeded" for p in during_eu)
            assert all(p["provider"] in ("adyen", "braintree") for p in during_eu)
            # Once its breaker has opened, Stripe EU sees only the half-open probes that test its recovery.
            late_stripe = [a for p in during_eu[-30:] for a in p["attempts"] if a["provider"] == "stripe"]
            assert all(a["breaker_state"] == "half_open" for a in late_stripe), late_stripe
            assert len(late_stripe) <= 6
            assert share(during_us, "stripe") >= 0.8

            stack.clear_faults()
            cleared_at = time.monotonic()
            after = []
            while time.monotonic() - cleared_at < 40:
                after += await batch(client, 10, EU)
                if len(after) >= 20 and share(after[-20:], "stripe") >= 0.8:
                    break
                await asyncio.sleep(0.3)
            assert share(after[-20:], "stripe") >= 0.8, [p["provider"] for p in after]
            assert share(after[:10], "stripe") <= 0.5  # it comes back gradually, not all at once
            assert all(p["status"] == "succeeded" for p in after)
