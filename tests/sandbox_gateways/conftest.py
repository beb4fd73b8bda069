from __future__ import annotations

import httpx
import pytest

from sandbox_gateways.adyen.app import create_app as create_adyen
from sandbox_gateways.braintree.app import create_app as create_braintree
from sandbox_gateways.stripe.app import create_app as create_stripe

# A short hold keeps the in-process timeout tests fast.
HOLD_S = 0.3


@pytest.fixture
def stripe_app():
    return create_stripe(seed=0, timeout_hold_s=HOLD_S)


@pytest.fixture
def adyen_app():
    return create_adyen(seed=0, timeout_hold_s=HOLD_S)


@pytest.fixture
def braintree_app():
    return create_braintree(seed=0, timeout_hold_s=HOLD_S)


def _client(app, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}.sandbox")


@pytest.fixture
async def stripe(stripe_app):
    async with _client(stripe_app, "stripe") as client:
        yield client


@pytest.fixture
async def adyen(adyen_app):
    async with _client(adyen_app, "adyen") as client:
        yield client


@pytest.fixture
async def braintree(braintree_app):
    async with _client(braintree_app, "braintree") as client:
        yield client
