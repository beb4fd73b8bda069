"""Bad input gets a clear error in the contract's shape, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import payment_body

pytestmark = pytest.mark.e2e


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    if code is not None:
        assert error["code"] == code
    return error


async def test_authentication_is_checked_before_the_body(server):
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for headers in ({}, {"Authorization": "Bearer sk_orch_wrong"}, {"Authorization": "Basic abc"}):
            response = await client.post("/v1/payments", content=b"not json", headers=headers)
            assert_error_shape(response, 401)
        assert_error_shape(await client.get("/v1/payments"), 401)


@pytest.mark.parametrize("body, status, code, param", [
    ({**payment_body(), "amount": 0}, 422, "amount_too_small", "amount"),
    ({**payment_body(), "amount": 100_000_000}, 422, "amount_too_large", "amount"),
    ({**payment_body(), "amount": "1099"}, 422, "parameter_invalid", "amount"),
    ({**payment_body(), "amount": 10.5}, 422, "parameter_invalid", "amount"),
    ({k: v for k, v in payment_body().items() if k != "currency"}, 422, "parameter_missing", "currency"),
    ({**payment_body(), "country": "BR"}, 422, "unsupported_country", "country"),
    ({**payment_body(), "country": "BR", "currency": "XYZ"}, 422, "unsupported_country", "country"),
    ({**payment_body(), "currency": "XYZ"}, 422, "invalid_currency", "currency"),
    ({**payment_body(), "currency": "eur"}, 422, "invalid_currency", "currency"),
    ({**payment_body(), "surprise": 1}, 422, "parameter_unknown", "surprise"),
    ({**payment_body(), "metadata": {"a": 1}}, 422, "parameter_invalid", None),
    ([1, 2], 422, "parameter_invalid", None),
])
async def test_invalid_payments_are_refused_with_a_clear_code(api, body, status, code, param):
    error = assert_error_shape(await api.post("/v1/payments", json=body), status, code)
    if param is not None:
        assert error["param"] == param


async def test_malformed_json_and_bad_query_parameters(api):
    assert_error_shape(await api.post("/v1/payments", content=b"{nope"), 422, "invalid_json")
    assert_error_shape(await api.post("/v1/payments", content=b""), 422, "parameter_missing")
    assert_error_shape(await api.get("/v1/payments", params={"limit": 0}), 422)
    assert_error_shape(await api.get("/v1/payments", params={"limit": "x"}), 422)
    assert_error_shape(await api.get("/v1/payments/pay_missing"), 404, "resource_missing")
    assert_error_shape(await api.post("/v1/payments/pay_missing/refunds", json={}), 404)
    assert_error_shape(await api.post("/v1/payments", json=payment_body(),
                                      headers={"Idempotency-Key": "k" * 256}), 422, "idempotency_key_invalid")
    assert_error_shape(await api.get("/v1/nothing-here"), 404)
