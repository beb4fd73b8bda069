"""The adapters against the sandbox gateways in-process: both sides follow docs/wire-formats.md, and
this is where a drift between them shows first."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.providers.base import (
    ChargeRequest,
    ComponentStatus,
    Credentials,
    Endpoint,
    LookupState,
    Outcome,
    RefundRequest,
    Timeouts,
)
from orchestrator.providers.registry import build_adapters

T = Timeouts(connect_s=1.0, read_s=2.0)
PROVIDERS = ("stripe", "adyen", "braintree")
ENDPOINTS = {
    "stripe": Endpoint("stripe", "EU", "http://sandbox.test/eu", Credentials({"secret_key": "sk_test_wire"})),
    "adyen": Endpoint("adyen", "EU", "http://sandbox.test/eu", Credentials({"api_key": "wire"}), "SandboxMerchantEU"),
    "braintree": Endpoint(
        "braintree", "EU", "http://sandbox.test/eu", Credentials({"public_key": "pub", "private_key": "priv"}), "sandbox_eu"
    ),
}


def sandbox_app(provider: str):
    module = pytest.importorskip(f"sandbox_gateways.{provider}.app")
    return module.create_app(seed=1)


def charge(payment_id: str, token: str, key: str | None = None, amount: int = 1099) -> ChargeRequest:
    return ChargeRequest(
        payment_id=payment_id,
        idempotency_key=key or f"att_{payment_id}",
        amount=amount,
        currency="EUR",
        country="DE",
        payment_method=token,
        description="wire check",
        merchant_id="mer_wire",
        metadata={"order_id": "1"},
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_adapter_speaks_the_sandbox_wire_format(provider):
    endpoint = ENDPOINTS[provider]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox_app(provider))) as client:
        adapter = build_adapters(client)[provider]

        ok = await adapter.charge(endpoint, charge("pay_ok", "pm_card_visa"), timeout=T)
        assert ok.outcome is Outcome.SUCCEEDED and ok.provider_reference
        again = await adapter.replay_charge(endpoint, charge("pay_ok", "pm_card_visa"), timeout=T)
        assert again.outcome is Outcome.SUCCEEDED and again.provider_reference == ok.provider_reference
        reused = await adapter.charge(endpoint, charge("pay_ok", "pm_card_visa", amount=2000), timeout=T)
        assert reused.outcome is Outcome.AMBIGUOUS  # same key, other body: the first may have charged

        declines = {
            "pm_card_declined": Outcome.HARD_DECLINE,
            "pm_card_insufficient_funds": Outcome.HARD_DECLINE,
            "pm_card_processing_error": Outcome.SOFT_DECLINE,
        }
        for token, outcome in declines.items():
            result = await adapter.charge(endpoint, charge(f"pay_{token}", token), timeout=T)
            assert result.outcome is outcome, (token, result)
            assert result.code and result.message

        refund = RefundRequest("re_wire_1", "pay_ok", ok.provider_reference, "rfa_wire_1", 500, "EUR")
        assert (await adapter.refund(endpoint, refund, timeout=T)).outcome is Outcome.SUCCEEDED
        too_much = RefundRequest("re_wire_2", "pay_ok", ok.provider_reference, "rfa_wire_2", 5000, "EUR")
        assert (await adapter.refund(endpoint, too_much, timeout=T)).outcome is Outcome.HARD_DECLINE

        found = await adapter.find_charge(endpoint, "pay_ok", timeout=T)
        missing = await adapter.find_charge(endpoint, "pay_pm_card_declined", timeout=T)
        if provider == "adyen":
            assert found.state is missing.state is LookupState.UNKNOWN
        else:
            assert (found.state, found.provider_reference, found.amount, found.currency) == (
                LookupState.CHARGED, ok.provider_reference, 1099, "EUR"
            )
            assert missing.state is LookupState.NOT_CHARGED

        states = await adapter.fetch_status("http://sandbox.test/api/v2/summary.json", timeout=T)
        assert states == {"EU": ComponentStatus.OPERATIONAL, "US": ComponentStatus.OPERATIONAL,
                          "APAC": ComponentStatus.OPERATIONAL}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_sandbox_error_faults_classify(provider):
    endpoint = ENDPOINTS[provider]
    expected = {503: Outcome.TRANSIENT, 429: Outcome.TRANSIENT, 500: Outcome.AMBIGUOUS}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox_app(provider))) as client:
        adapter = build_adapters(client)[provider]
        for status, outcome in expected.items():
            fault = {"error_rate": 1.0, "error_status": status}
            assert (await client.put("http://sandbox.test/_sandbox/faults/eu", json=fault)).status_code < 300
            result = await adapter.charge(endpoint, charge(f"pay_fault_{status}", "pm_card_visa"), timeout=T)
            assert (result.outcome, result.http_status) == (outcome, status)
            await client.delete("http://sandbox.test/_sandbox/faults")
            after = await adapter.replay_charge(endpoint, charge(f"pay_fault_{status}", "pm_card_visa"), timeout=T)
            assert after.outcome is Outcome.SUCCEEDED  # nothing was saved under the key by the fault
