from __future__ import annotations

import asyncio
import base64

import pytest

AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"public_key:private_key").decode(),
    "Braintree-Version": "2019-01-01",
}
CHARGE = (
    "mutation ChargePaymentMethod($input: ChargePaymentMethodInput!) { chargePaymentMethod(input: $input) "
    "{ transaction { id legacyId status orderId amount { value currencyCode } } } }"
)
REFUND = (
    "mutation RefundTransaction($input: RefundTransactionInput!) { refundTransaction(input: $input) "
    "{ refund { id status orderId amount { value currencyCode } } } }"
)
SEARCH = (
    "query Search($input: TransactionSearchInput!) { search { transactions(input: $input) "
    "{ edges { node { id status orderId amount { value currencyCode } } } } } }"
)


async def gql(client, query, variables, region="eu", headers=None, key=None):
    headers = dict(AUTH if headers is None else headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(f"/{region}/graphql", json={"query": query, "variables": variables}, headers=headers)


async def charge(client, amount="10.99", order_id="pay_1", token="pm_card_visa", region="eu", key=None, account=None):
    transaction = {"amount": amount, "orderId": order_id}
    if account is not None:
        transaction["merchantAccountId"] = account
    variables = {"input": {"paymentMethodId": token, "transaction": transaction}}
    return await gql(client, CHARGE, variables, region=region, key=key)


async def ledger(client):
    return (await client.get("/_sandbox/ledger")).json()["charges"]


async def test_charge_success(braintree):
    response = await charge(braintree, key="k1", order_id="pay_b")
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert body["extensions"]["requestId"]
    transaction = body["data"]["chargePaymentMethod"]["transaction"]
    assert transaction["status"] == "SUBMITTED_FOR_SETTLEMENT"
    assert transaction["orderId"] == "pay_b"
    assert transaction["amount"] == {"value": "10.99", "currencyCode": "EUR"}
    assert base64.b64decode(transaction["id"]).decode() == f"transaction_{transaction['legacyId']}"
    [entry] = await ledger(braintree)
    assert entry["id"] == transaction["id"]
    assert (entry["amount"], entry["currency"], entry["region"]) == (1099, "EUR", "eu")
    assert entry["reference"] == "pay_b" and entry["idempotency_key"] == "k1"


@pytest.mark.parametrize(
    ("account", "region", "amount", "minor", "currency"),
    [
        ("acme_JPY", "apac", "1000", 1000, "JPY"),
        ("acme_KWD", "eu", "1.234", 1234, "KWD"),
        ("acme_usd", "eu", "5", 500, "USD"),
        (None, "us", "0.50", 50, "USD"),
        (None, "apac", "12.00", 1200, "AUD"),
        ("acme-main", "eu", "1.5", 150, "EUR"),
    ],
)
async def test_currency_comes_from_the_merchant_account(braintree, account, region, amount, minor, currency):
    response = await charge(braintree, amount=amount, region=region, account=account)
    assert response.json()["data"]["chargePaymentMethod"]["transaction"]["amount"]["currencyCode"] == currency
    [entry] = await ledger(braintree)
    assert (entry["amount"], entry["currency"]) == (minor, currency)


@pytest.mark.parametrize(("amount", "account"), [("10.5", "acme_JPY"), ("1.999", None), ("abc", None), ("-1.00", None)])
async def test_invalid_amount_is_a_validation_error(braintree, amount, account):
    body = (await charge(braintree, amount=amount, account=account)).json()
    assert body["data"]["chargePaymentMethod"] is None
    assert body["errors"][0]["extensions"]["errorClass"] == "VALIDATION"
    assert await ledger(braintree) == []


@pytest.mark.parametrize(
    ("token", "code", "message"),
    [
        ("pm_card_declined", "2000", "Do Not Honor"),
        ("pm_card_insufficient_funds", "2001", "Insufficient Funds"),
        ("pm_card_processing_error", "3000", "Processor Network Unavailable - Try Again"),
    ],
)
async def test_processor_declines(braintree, token, code, message):
    response = await charge(braintree, token=token)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"chargePaymentMethod": None}
    [error] = body["errors"]
    assert error["message"] == message and error["path"] == ["chargePaymentMethod"]
    assert error["extensions"] == {"errorClass": "VALIDATION", "legacyCode": code}
    assert await ledger(braintree) == []


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"public_only:").decode(),
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic %%%",
        "Bearer something",
    ],
)
async def test_bad_credentials_are_401(braintree, authorization):
    headers = {"Braintree-Version": "2019-01-01"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await gql(braintree, CHARGE, {}, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["errorClass"] == "AUTHENTICATION"


async def test_braintree_version_header_is_required(braintree):
    headers = {"Authorization": AUTH["Authorization"]}
    response = await gql(braintree, "query { ping }", {}, headers=headers)
    assert response.status_code == 400
    assert "Braintree-Version" in response.json()["errors"][0]["message"]
    ok = await gql(braintree, "query { ping }", {})
    assert ok.json()["data"] == {"ping": "pong"}


async def test_idempotency_replay_and_mismatch(braintree):
    first = await charge(braintree, key="bk")
    second = await charge(braintree, key="bk")
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = await charge(braintree, key="bk", amount="11.00")
    body = other.json()
    assert body["data"] == {"chargePaymentMethod": None}
    assert body["errors"][0]["extensions"]["errorClass"] == "VALIDATION"
    assert body["errors"][0]["extensions"]["retryable"] is False
    assert len(await ledger(braintree)) == 1


async def refund(client, transaction_id, amount=None, key=None, region="eu"):
    refund_input = {"orderId": "re_1"}
    if amount is not None:
        refund_input["amount"] = amount
    variables = {"input": {"transactionId": transaction_id, "refund": refund_input}}
    return await gql(client, REFUND, variables, region=region, key=key)


async def test_refunds(braintree):
    transaction = (await charge(braintree, amount="10.00")).json()["data"]["chargePaymentMethod"]["transaction"]
    partial = (await refund(braintree, transaction["id"], "4.00")).json()
    node = partial["data"]["refundTransaction"]["refund"]
    assert node["amount"] == {"value": "4.00", "currencyCode": "EUR"} and node["orderId"] == "re_1"
    [entry] = await ledger(braintree)
    assert entry["status"] == "partially_refunded" and entry["refunded_amount"] == 400
    over = (await refund(braintree, transaction["id"], "6.01")).json()
    assert over["data"] == {"refundTransaction": None}
    assert over["errors"][0]["extensions"]["legacyCode"] == "91521"
    rest = (await refund(braintree, transaction["legacyId"])).json()  # legacy id, no amount: the rest
    assert rest["data"]["refundTransaction"]["refund"]["amount"]["value"] == "6.00"
    [entry] = await ledger(braintree)
    assert entry["status"] == "refunded" and entry["refunded_amount"] == 1000
    again = (await refund(braintree, transaction["id"], "0.01")).json()
    assert again["errors"][0]["extensions"]["legacyCode"] == "91512"
    missing = (await refund(braintree, "dHJhbnNhY3Rpb25fbm9wZQ==", "1.00")).json()
    assert missing["errors"][0]["extensions"]["errorClass"] == "NOT_FOUND"


async def test_refund_idempotency(braintree):
    transaction = (await charge(braintree, amount="10.00")).json()["data"]["chargePaymentMethod"]["transaction"]
    first = await refund(braintree, transaction["id"], "3.00", key="rk")
    second = await refund(braintree, transaction["id"], "3.00", key="rk")
    assert second.json() == first.json()
    assert (await ledger(braintree))[0]["refunded_amount"] == 300


async def test_search_by_order_id_finds_only_charges(braintree):
    transaction = (await charge(braintree, order_id="pay_s")).json()["data"]["chargePaymentMethod"]["transaction"]
    await charge(braintree, order_id="pay_declined", token="pm_card_declined")

    async def search(order_id, region="eu"):
        response = await gql(braintree, SEARCH, {"input": {"orderId": {"is": order_id}}}, region=region)
        return response.json()["data"]["search"]["transactions"]["edges"]

    [edge] = await search("pay_s")
    assert edge["node"]["id"] == transaction["id"] and edge["node"]["orderId"] == "pay_s"
    assert await search("pay_declined") == []
    assert await search("pay_s", region="us") == []


async def test_error_fault_is_http_503_unavailable(braintree):
    await braintree.put("/_sandbox/faults/eu", json={"error_rate": 1.0})
    response = await charge(braintree)
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["errorClass"] == "UNAVAILABLE"
    assert await ledger(braintree) == []


async def test_same_key_while_the_first_is_executing_is_a_retryable_validation_error(braintree):
    await braintree.put("/_sandbox/faults/eu", json={"latency_ms": 150})
    first, second = await asyncio.gather(charge(braintree, key="bf"), charge(braintree, key="bf"))
    bodies = [r.json() for r in (first, second)]
    conflicts = [b for b in bodies if "errors" in b]
    assert len(conflicts) == 1
    assert conflicts[0]["errors"][0]["extensions"] == {"errorClass": "VALIDATION", "retryable": True}
    assert len(await ledger(braintree)) == 1
