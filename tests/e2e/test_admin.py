"""The admin API: authentication, overrides obeyed by the next payment, expiry, preview, audit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.e2e.helpers import payment_body

pytestmark = pytest.mark.e2e


@pytest.fixture
async def overrides_cleanup(admin_api):
    """Overrides made by a test are removed after it, so other tests route by score again."""
    made: list[str] = []
    yield made
    for override_id in made:
        await admin_api.delete(f"/admin/overrides/{override_id}", params={"reason": "test cleanup"})


async def create_override(admin_api, made: list[str], **body) -> dict:
    response = await admin_api.post("/admin/overrides", json=body)
    assert response.status_code == 201, response.text
    made.append(response.json()["id"])
    return response.json()


async def test_admin_routes_refuse_missing_wrong_and_merchant_tokens(server, merchant):
    routes = [("GET", "/admin/routing-table"), ("GET", "/admin/overrides"), ("POST", "/admin/overrides"),
              ("PATCH", "/admin/overrides/ovr_x"), ("DELETE", "/admin/overrides/ovr_x"),
              ("POST", "/admin/routing/preview"), ("GET", "/admin/audit")]
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for headers in ({}, {"Authorization": "Bearer adm_wrong"}, {"Authorization": f"Bearer {merchant['api_key']}"}):
            for method, path in routes:
                response = await client.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"]["type"] == "authentication_error"


async def test_an_admin_token_from_the_cli_works_and_names_the_actor(server, admin_api, overrides_cleanup):
    from tests.fixtures.processes import run_cli

    token = run_cli(["admin-token", "create", "alice-oncall"], server.env)["token"]
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
        response = await client.post("/admin/overrides", json={
            "action": "weight", "provider": "braintree", "weight": 1.5, "scope": {"region": "US"},
            "reason": "more Braintree in the US for a test"})
        assert response.status_code == 201
        overrides_cleanup.append(response.json()["id"])
    audit = (await admin_api.get("/admin/audit")).json()["data"]
    assert audit[0]["actor"] == "alice-oncall" and audit[0]["target_id"] == response.json()["id"]


async def test_the_routing_table_has_a_row_per_provider_and_region(admin_api):
    body = (await admin_api.get("/admin/routing-table")).json()
    rows = {(r["provider"], r["region"]): r for r in body["data"]}
    assert set(rows) == {(p, r) for p in ("stripe", "adyen", "braintree") for r in ("EU", "US", "APAC")}
    stripe_eu = rows[("stripe", "EU")]
    assert {"status_page", "error_rate", "p99_latency_ms", "fee", "compliance", "circuit_state", "weight", "score",
            "updated_at"} <= set(stripe_eu)
    assert stripe_eu["circuit_state"] in ("closed", "open", "half_open")
    assert stripe_eu["fee"] == {"percent": 1.4, "fixed": 20}
    assert body["poller"]["leader"] is True


async def test_a_forced_route_is_obeyed_by_the_next_payment_and_audited(api, admin_api, overrides_cleanup):
    before = (await api.post("/v1/payments", json=payment_body())).json()
    assert before["provider"] == "stripe"  # the cheapest in the EU

    forced = await create_override(admin_api, overrides_cleanup, action="force", provider="adyen",
                                   scope={"region": "EU"}, reason="Stripe EU incident #123")
    assert forced["active"] is True and forced["created_by"] == "bootstrap"
    during = (await api.post("/v1/payments", json=payment_body())).json()
    assert during["provider"] == "adyen" and during["route"]["reason"] == "forced"
    assert during["route"]["overrides"] == [forced["id"]]
    assert during["route"]["candidates"][0] == "adyen" and len(during["route"]["candidates"]) == 3
    us = (await api.post("/v1/payments", json=payment_body(country="US", currency="USD"))).json()
    assert us["provider"] == "stripe"  # out of scope

    alone = await admin_api.patch(f"/admin/overrides/{forced['id']}", json={"fallback": False,
                                                                           "reason": "adyen only"})
    assert alone.status_code == 200 and alone.json()["fallback"] is False
    only = (await api.post("/v1/payments", json=payment_body())).json()
    assert only["route"]["candidates"] == ["adyen"]

    disabled = await admin_api.patch(f"/admin/overrides/{forced['id']}", json={"enabled": False})
    assert disabled.json()["active"] is False
    after = (await api.post("/v1/payments", json=payment_body())).json()
    assert after["provider"] == "stripe" and after["route"]["overrides"] == []

    deleted = await admin_api.delete(f"/admin/overrides/{forced['id']}", params={"reason": "incident over"})
    assert deleted.status_code == 200
    overrides_cleanup.remove(forced["id"])
    audit = [e for e in (await admin_api.get("/admin/audit", params={"limit": 100})).json()["data"]
             if e["target_id"] == forced["id"]]
    assert [e["action"] for e in audit] == ["override.delete", "override.update", "override.update",
                                            "override.create"]
    create, delete = audit[-1], audit[0]
    assert create["before"] is None and create["after"]["provider"] == "adyen"
    assert create["reason"] == "Stripe EU incident #123"
    assert delete["after"] is None and delete["before"]["enabled"] is False and delete["reason"] == "incident over"
    assert all(e["actor"] == "bootstrap" and e["at"] for e in audit)


async def test_a_disabled_provider_never_appears(api, admin_api, overrides_cleanup):
    await create_override(admin_api, overrides_cleanup, action="disable", provider="stripe",
                          scope={"country": "FR"}, reason="Stripe FR acquirer trouble")
    fr = (await api.post("/v1/payments", json=payment_body(country="FR"))).json()
    de = (await api.post("/v1/payments", json=payment_body(country="DE"))).json()
    assert "stripe" not in fr["route"]["candidates"] and fr["route"]["excluded"]["stripe"] == "disabled_override"
    assert fr["status"] == "succeeded"
    assert de["provider"] == "stripe"


async def test_an_override_stops_applying_when_it_expires(api, admin_api, overrides_cleanup):
    expires = datetime.now(timezone.utc) + timedelta(seconds=2)
    await create_override(admin_api, overrides_cleanup, action="force", provider="braintree",
                          scope={"region": "EU", "currency": "EUR"}, expires_at=expires.isoformat(),
                          reason="short test window")
    assert (await api.post("/v1/payments", json=payment_body())).json()["provider"] == "braintree"
    await asyncio.sleep((expires - datetime.now(timezone.utc)).total_seconds() + 0.2)
    later = (await api.post("/v1/payments", json=payment_body())).json()
    assert later["provider"] == "stripe" and later["route"]["overrides"] == []
    listed = {o["id"]: o for o in (await admin_api.get("/admin/overrides")).json()["data"]}
    assert listed[overrides_cleanup[-1]]["active"] is False


async def test_the_preview_matches_what_payments_then_get(api, admin_api, overrides_cleanup):
    hypothetical = {"action": "force", "provider": "adyen", "scope": {"region": "US"}, "fallback": True,
                    "reason": "try before applying"}
    payment = {"amount": 5000, "currency": "USD", "country": "US"}
    preview = await admin_api.post("/admin/routing/preview", json={"payment": payment, "overrides": [hypothetical]})
    assert preview.status_code == 200, preview.text
    predicted = preview.json()
    assert predicted["reason"] == "forced" and predicted["candidates"][0]["provider"] == "adyen"
    assert all({"provider", "score", "share", "reasons"} <= set(c) for c in predicted["candidates"])

    # Nothing changed by the preview.
    assert (await api.post("/v1/payments", json=payment_body(amount=5000, country="US", currency="USD"))
            ).json()["provider"] == "stripe"
    await create_override(admin_api, overrides_cleanup, **hypothetical)
    real = (await api.post("/v1/payments", json=payment_body(amount=5000, country="US", currency="USD"))).json()
    assert real["route"]["candidates"] == [c["provider"] for c in predicted["candidates"]]
    assert real["provider"] == "adyen"


@pytest.mark.parametrize("body, code, param", [
    ({"action": "force", "provider": "adyen"}, "parameter_missing", "reason"),
    ({"action": "force", "provider": "paypal", "reason": "x"}, "unknown_provider", "provider"),
    ({"action": "weight", "provider": "adyen", "reason": "x"}, "parameter_missing", "weight"),
    ({"action": "boost", "provider": "adyen", "reason": "x"}, "parameter_invalid", "action"),
    ({"action": "force", "provider": "adyen", "scope": {"country": "BR"}, "reason": "x"}, "unsupported_country",
     "scope.country"),
    ({"action": "force", "provider": "adyen", "scope": {"region": "US", "country": "DE"}, "reason": "x"},
     "parameter_invalid", "scope.country"),
    ({"action": "force", "provider": "adyen", "expires_at": "2030-01-01T00:00:00", "reason": "x"},
     "parameter_invalid", "expires_at"),
])
async def test_bad_overrides_are_refused_clearly(admin_api, body, code, param):
    response = await admin_api.post("/admin/overrides", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == param


async def test_unknown_override_ids_are_404(admin_api):
    assert (await admin_api.patch("/admin/overrides/ovr_nope", json={"enabled": False})).status_code == 404
    assert (await admin_api.delete("/admin/overrides/ovr_nope")).status_code == 404
