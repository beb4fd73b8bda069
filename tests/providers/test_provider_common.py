"""Status pages, Retry-After, and the registry."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from orchestrator.providers import common
from orchestrator.providers.adyen import AdyenAdapter
from orchestrator.providers.base import ComponentStatus, ProviderAdapter
from orchestrator.providers.braintree import BraintreeAdapter
from orchestrator.providers.registry import build_adapters
from orchestrator.providers.stripe import StripeAdapter
from orchestrator.resilience.classification import parse_error_map
from tests.providers.provider_recordings import FAST, recorded

C = ComponentStatus


def test_statuspage_one_component_per_region():
    assert common.parse_statuspage_summary(*recorded("statuspage", "mixed")[::2]) == {
        "EU": C.OPERATIONAL,
        "US": C.DEGRADED_PERFORMANCE,
        "APAC": C.MAJOR_OUTAGE,
    }


def test_statuspage_groups_skipped_unknown_states_and_missing_regions_are_unknown():
    status, _, body = recorded("statuspage", "partial_with_group_and_unknown_state")
    assert common.parse_statuspage_summary(status, body) == {
        "EU": C.PARTIAL_OUTAGE,  # named "eu": region codes are matched case-insensitively
        "US": C.UNKNOWN,  # "under_maintenance" is not a state we route on
        "APAC": C.UNKNOWN,  # not listed
    }


@pytest.mark.parametrize("status, body", [(500, None), (200, None), (200, {"components": "x"}), (200, [1, 2]), (404, {})])
def test_statuspage_failures_are_unknown(status, body):
    assert common.parse_statuspage_summary(status, body) == {r: C.UNKNOWN for r in ("EU", "US", "APAC")}


@pytest.mark.parametrize("adapter_type", [StripeAdapter, AdyenAdapter, BraintreeAdapter])
async def test_fetch_status(adapter_type):
    seen: list[httpx.Request] = []
    status, headers, body = recorded("statuspage", "mixed")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers=headers, json=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        states = await adapter_type(client).fetch_status("http://127.0.0.1:8101/api/v2/summary.json", timeout=FAST)
    assert states == {"EU": C.OPERATIONAL, "US": C.DEGRADED_PERFORMANCE, "APAC": C.MAJOR_OUTAGE}
    assert seen[0].method == "GET" and seen[0].url.path == "/api/v2/summary.json"
    assert "authorization" not in seen[0].headers


@pytest.mark.parametrize("adapter_type", [StripeAdapter, AdyenAdapter, BraintreeAdapter])
async def test_fetch_status_unreachable_is_unknown(adapter_type):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        states = await adapter_type(client).fetch_status("http://status.test/api/v2/summary.json", timeout=FAST)
    assert states == {"EU": C.UNKNOWN, "US": C.UNKNOWN, "APAC": C.UNKNOWN}


def test_retry_after_forms():
    now = 1_700_000_000.0
    assert common.parse_retry_after("120", now) == 120.0
    assert common.parse_retry_after("1.5", now) == 1.5
    assert common.parse_retry_after("-3", now) == 0.0
    assert common.parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0)
    assert common.parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    for junk in (None, "", "soon", "nan", "inf"):
        assert common.parse_retry_after(junk, now) is None


def test_dig():
    data = {"a": {"b": [{"c": 1}]}}
    assert common.dig(data, "a", "b", 0, "c") == 1
    assert common.dig(data, "a", "x", 0) is None
    assert common.dig(data, "a", "b", 5) is None
    assert common.dig(None, "a") is None
    assert common.dig({"a": "text"}, "a", "b") is None


async def test_registry_builds_all_three_with_one_client_and_map():
    rules = parse_error_map("rules:\n  - {provider: any, match: {}, outcome: transient}\n")
    async with httpx.AsyncClient() as client:
        adapters = build_adapters(client, rules)
        assert set(adapters) == {"stripe", "adyen", "braintree"}
        for name, adapter in adapters.items():
            assert isinstance(adapter, ProviderAdapter)
            assert adapter.name == name
            assert adapter._client is client and adapter._error_map is rules
        defaults = build_adapters(client)
        assert defaults["stripe"]._error_map is defaults["braintree"]._error_map


def test_a_custom_error_map_changes_the_classification():
    status, headers, body = recorded("stripe", "card_declined_generic")
    custom = parse_error_map("rules:\n  - {provider: stripe, match: {decline_code: generic_decline}, outcome: soft_decline}\n")
    from orchestrator.providers import stripe

    assert stripe.parse_charge_response(status, headers, body).outcome.value == "hard_decline"
    assert stripe.parse_charge_response(status, headers, body, custom).outcome.value == "soft_decline"
