"""The embedded default: SQLite, migrations run by `serve` itself, a payment and a refund end to end."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.money import ledger_charges, money_invariant_violations, payments_in
from tests.fixtures.processes import orchestrator_env, run_cli, start_server

pytestmark = pytest.mark.e2e


def test_sqlite_embedded_default_takes_and_refunds_payments(tmp_path):
    from sandbox_gateways.runner import start_sandboxes

    database_url = f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
    with start_sandboxes(host="127.0.0.1", base_port=None, seed=1) as gateways:
        env = orchestrator_env(database_url, gateways.urls)
        server = start_server(env, tmp_path, extra_args=())  # serve migrates the empty file itself
        try:
            merchant = run_cli(["merchant", "create", "Embedded"], env)
            with httpx.Client(base_url=server.base_url, timeout=30,
                              headers={"Authorization": f"Bearer {merchant['api_key']}"}) as client:
                paid = []
                for country, currency in (("DE", "EUR"), ("US", "USD"), ("NZ", "NZD")):
                    response = client.post("/v1/payments", json={
                        "amount": 1500, "currency": currency, "country": country, "payment_method": "pm_card_visa"},
                        headers={"Idempotency-Key": f"smoke-{country}"})
                    assert response.status_code == 201, response.text
                    assert response.json()["status"] == "succeeded"
                    paid.append(response.json()["id"])
                declined = client.post("/v1/payments", json={
                    "amount": 1500, "currency": "EUR", "country": "DE", "payment_method": "pm_card_declined"})
                assert declined.json()["status"] == "failed"
                refund = client.post(f"/v1/payments/{paid[0]}/refunds", json={"amount": 700})
                assert refund.status_code == 201 and refund.json()["status"] == "succeeded"
                assert client.get(f"/v1/payments/{paid[0]}").json()["amount_refunded"] == 700
                assert client.get("/readyz").status_code == 200
        finally:
            assert server.stop() == 0, server.log()
        assert money_invariant_violations(payments_in(database_url), ledger_charges(gateways.urls)) == []
