"""Fixtures for the provider tests: endpoints and requests as the payment service would pass them."""

from __future__ import annotations

import pytest

from orchestrator.providers.base import ChargeRequest, Credentials, Endpoint, RefundRequest
from tests.providers.provider_recordings import ADYEN_SECRET, BRAINTREE_PRIVATE, BRAINTREE_PUBLIC, STRIPE_SECRET


@pytest.fixture
def stripe_endpoint() -> Endpoint:
    return Endpoint("stripe", "EU", "http://127.0.0.1:8101/eu", Credentials({"secret_key": STRIPE_SECRET}))


@pytest.fixture
def adyen_endpoint() -> Endpoint:
    return Endpoint(
        "adyen", "EU", "http://127.0.0.1:8102/eu", Credentials({"api_key": ADYEN_SECRET}), "SandboxMerchantEU"
    )


@pytest.fixture
def braintree_endpoint() -> Endpoint:
    return Endpoint(
        "braintree",
        "EU",
        "http://127.0.0.1:8103/eu",
        Credentials({"public_key": BRAINTREE_PUBLIC, "private_key": BRAINTREE_PRIVATE}),
        "sandbox_eu",
    )


@pytest.fixture
def charge_request() -> ChargeRequest:
    return ChargeRequest(
        payment_id="pay_123",
        idempotency_key="att_42",
        amount=1099,
        currency="EUR",
        country="DE",
        payment_method="pm_card_visa",
        description="order 42",
        merchant_id="mer_7",
        metadata={"order_id": "42"},
    )


@pytest.fixture
def refund_request() -> RefundRequest:
    return RefundRequest(
        refund_id="re_ours_1",
        payment_id="pay_123",
        provider_reference="pi_3MtwBwLkdIwHu7ix28a3tqPa",
        idempotency_key="rfa_1",
        amount=500,
        currency="EUR",
    )
