"""Provider faults end to end, with the sandboxes' seeded fault control. Each test has its own stack."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.helpers import payment_body
from tests.fixtures.stack import dedicated_stack

pytestmark = pytest.mark.e2e

EU = {"country": "DE", "currency": "EUR"}


async def pay_many(client, count: int, concurrency: int = 8, **overrides) -> list[tuple[dict, float]]:
    """`count` payments, `concurrency` at a time; each with its client-side duration."""
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int):
        async with gate:
            started = time.perf_counter()
            response = await client.post("/v1/payments", json=payment_body(amount=1000 + n, **overrides))
            assert response.status_code == 201, response.text
            return response.json(), time.perf_counter() - started

    return await asyncio.gather(*(one(n) for n in range(count)))


async def test_a_regional_outage_of_the_primary_costs_no_payments_and_opens_its_breaker(tmp_path):
    with dedicated_stack(tmp_path, PROVIDER_READ_TIMEOUT_S="1.5") as stack:
        stack.fault("stripe", "eu", error_rate=1.0, error_status=503)
        async with stack.client() as client:
            results = await pay_many(client, 40, concurrency=1, **EU)
            us = (await client.post("/v1/payments", json=payment_body(country="US", currency="USD"))).json()

        payments = [p for p, _ in results]
        assert all(p["status"] == "succeeded" for p in payments)
        assert all(p["provider"] != "stripe" for p in payments)
        # Within the breaker's window (20 calls, verdict from 10) Stripe EU stops being called at all.
        def stripe_kept_out(p: dict) -> bool:  # by the router (excluded) or at call time (skipped)
            return (p["route"]["excluded"].get("stripe", "").startswith("breaker")
                    or {"provider": "stripe", "reason": "breaker_open"} in p["route"]["skipped"])

        first_skip = next((i for i, p in enumerate(payments) if stripe_kept_out(p)), len(payments))
        assert first_skip <= 20
        assert all(not any(a["provider"] == "stripe" for a in p["attempts"]) for p in payments[first_skip:])
        # Other regions of the same provider are not touched by the EU breaker: Stripe US stays a
        # candidate and is not passed over. (Which candidate is primary is a weighted draw.)
        assert us["status"] == "succeeded"
        assert "stripe" in us["route"]["candidates"] and "stripe" not in us["route"]["excluded"]
        assert not any(skip["provider"] == "stripe" for skip in us["route"]["skipped"])


async def test_a_thirty_percent_brownout_of_the_primary_keeps_success_above_999_per_mille(tmp_path):
    with dedicated_stack(tmp_path, seed=3, PROVIDER_READ_TIMEOUT_S="1.5") as stack:
        stack.fault("stripe", "eu", error_rate=0.3, error_status=503)
        async with stack.client() as client:
            results = await pay_many(client, 300, concurrency=10, **EU)

        succeeded = sum(p["status"] == "succeeded" for p, _ in results)
        assert succeeded >= 0.999 * len(results)
        retried = [p for p, _ in results if any(a["decision"] == "retry:transient" for a in p["attempts"])]
        assert retried, "transient errors should be retried at the same provider first"


async def test_connection_resets_are_resolved_without_double_charges(tmp_path):
    with dedicated_stack(tmp_path, seed=5, PROVIDER_READ_TIMEOUT_S="1.5", RECONCILE_INTERVAL_S="1") as stack:
        stack.fault("stripe", "eu", reset_rate=0.3)
        async with stack.client() as client:
            results = await pay_many(client, 100, concurrency=10, **EU)
            assert any(a["error_class"] == "ambiguous" for p, _ in results for a in p["attempts"])
            pending = [p["id"] for p, _ in results if p["status"] == "processing"]
            stack.clear_faults()
            await settle(client, pending)
        # Dedicated stack teardown checks: at most one charge per payment, exactly one when succeeded.


async def test_ambiguous_timeouts_are_never_charged_twice(tmp_path):
    with dedicated_stack(tmp_path, seed=9, timeout_hold_s=5.0, PROVIDER_READ_TIMEOUT_S="1.0",
                         RECONCILE_INTERVAL_S="1") as stack:
        stack.fault("stripe", "eu", timeout_rate=0.3)
        async with stack.client() as client:
            results = await pay_many(client, 60, concurrency=12, **EU)
            timed_out = [p for p, _ in results if any(a["error_class"] == "ambiguous" for a in p["attempts"])]
            assert timed_out
            for payment in timed_out:
                # An ambiguous attempt is only ever followed by replays at the same provider.
                after = payment["attempts"][[a["error_class"] for a in payment["attempts"]].index("ambiguous"):]
                assert {a["provider"] for a in after} == {"stripe"}
            pending = [p["id"] for p, _ in results if p["status"] == "processing"]
            stack.clear_faults()
            await settle(client, pending)
        charges = stack.charges()
        assert all(len(charges.get(p["id"], [])) == 1 for p, _ in results if p["status"] == "succeeded")


async def settle(client, payment_ids: list[str], timeout_s: float = 20) -> None:
    """Wait until reconciliation has settled every listed payment."""
    give_up = time.monotonic() + timeout_s
    left = set(payment_ids)
    while left and time.monotonic() < give_up:
        for payment_id in list(left):
            if (await client.get(f"/v1/payments/{payment_id}")).json()["status"] != "processing":
                left.discard(payment_id)
        await asyncio.sleep(0.5)
    assert not left, f"still processing: {left}"


async def test_a_region_with_every_provider_down_fails_fast_then_recovers_by_itself(tmp_path):
    # Default open wait (5 s): recovery must not wait for it to run out.
    with dedicated_stack(tmp_path, PROVIDER_READ_TIMEOUT_S="1.5") as stack:
        for provider in ("stripe", "adyen", "braintree"):
            stack.fault(provider, "apac", error_rate=1.0, error_status=503)
        async with stack.client() as client:
            apac = {"country": "AU", "currency": "AUD"}
            results = await pay_many(client, 30, concurrency=1, **apac)
            assert all(p["status"] == "failed" for p, _ in results)
            assert all(p["failure"]["code"] == "provider_unavailable" for p, _ in results)
            fast = [(p, d) for p, d in results if not p["attempts"]]
            assert fast, "once every breaker is open, payments must fail without calling anyone"
            assert all(d < 0.25 for _, d in fast)
            assert all(d < 10.5 for _, d in results)  # never past the deadline

            stack.clear_faults()
            cleared_at = time.monotonic()
            while time.monotonic() - cleared_at < 15:
                payment = (await client.post("/v1/payments", json=payment_body(**apac))).json()
                if payment["status"] == "succeeded":
                    break
                await asyncio.sleep(0.1)
            assert payment["status"] == "succeeded"
            # A last-resort probe (one per 0.25 s while every circuit is open) finds the recovery at once.
            assert time.monotonic() - cleared_at < 3
            assert (await client.post("/v1/payments", json=payment_body(**apac))).json()["status"] == "succeeded"


async def test_under_a_total_outage_retries_stay_within_the_budget_and_the_deadline(tmp_path):
    # The breaker (huge minimum) and the health table (no refresh after the first) are kept out of the
    # way, so that only the retry budget limits retries: every payment tries Stripe first.
    with dedicated_stack(tmp_path, PROVIDER_READ_TIMEOUT_S="1.5", BREAKER__MINIMUM_CALLS="1000",
                         BREAKER__WINDOW_SIZE="1000", OBSERVATION_INTERVAL_S="3600",
                         STATUS_POLL_INTERVAL_S="3600") as stack:
        stack.fault("stripe", "eu", error_rate=1.0, error_status=503)
        async with stack.client() as client:
            results = await pay_many(client, 100, concurrency=4, **EU)
        stripe_calls = [a for p, _ in results for a in p["attempts"] if a["provider"] == "stripe"]
        retries = [a for p, _ in results for i, a in enumerate(p["attempts"])
                   if i > 0 and p["attempts"][i - 1]["decision"] == "retry:transient" and a["provider"] == "stripe"]
        first_calls = len(stripe_calls) - len(retries)
        # Token bucket: 10 to start, 3 more per 10 s whatever happens, none earned (nothing succeeds).
        assert len(retries) <= 10 + 3 * 2
        assert first_calls >= 90  # Stripe is by far the cheapest in the EU: nearly every payment tries it first
        assert all(p["status"] == "succeeded" for p, _ in results)
        assert all(d < 10.5 for _, d in results)


async def test_a_latency_spike_shrinks_the_concurrency_limit_and_traffic_moves_on(tmp_path):
    with dedicated_stack(tmp_path, PROVIDER_READ_TIMEOUT_S="6", CONCURRENCY__INITIAL_LIMIT="4",
                         CONCURRENCY__MIN_LIMIT="2", CONCURRENCY__SLOW_LATENCY_S="1.0") as stack:
        stack.fault("stripe", "eu", latency_ms=1500)
        async with stack.client() as client:
            first_wave = await pay_many(client, 12, concurrency=12, **EU)
            second_wave = await pay_many(client, 12, concurrency=12, **EU)

        def on_stripe(wave):
            return sum(p["provider"] == "stripe" for p, _ in wave)

        assert all(p["status"] == "succeeded" for p, _ in first_wave + second_wave)
        moved = [p for p, d in first_wave
                 if {"provider": "stripe", "reason": "concurrency_limit"} in p["route"]["skipped"]]
        assert moved and all(p["provider"] != "stripe" for p in moved)
        assert on_stripe(first_wave) <= 4
        assert on_stripe(second_wave) < on_stripe(first_wave)  # the limit shrank after slow calls
