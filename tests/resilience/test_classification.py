"""The error map: the packaged table loads, documented codes land where intended, bad files fail clearly."""

from __future__ import annotations

import pytest

from orchestrator.providers.base import Outcome
from orchestrator.resilience.classification import (
    FACTS,
    OUTCOMES,
    ErrorMapError,
    default_error_map,
    load_error_map,
    normalize_facts,
    parse_error_map,
)


@pytest.fixture(scope="module")
def table():
    return load_error_map()


def test_packaged_table_loads_once(table):
    assert table is default_error_map() and len(table) > 100
    assert table.providers == {"stripe", "adyen", "braintree"}


def test_outcomes_are_the_provider_outcomes():
    assert OUTCOMES == {o.value for o in Outcome}


def test_every_rule_outcome_converts(table):
    assert {Outcome(rule.outcome) for rule in table.rules} == set(Outcome)


def test_load_from_a_path(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("rules:\n  - {provider: stripe, match: {http_status: 402}, outcome: soft_decline}\n")
    custom = load_error_map(path)
    assert custom.classify("stripe", "charge", {"http_status": 402}) == "soft_decline"
    assert custom.classify("stripe", "charge", {"http_status": 401}) == "ambiguous"  # unmapped -> default
    assert custom.classify("stripe", "charge", {"http_status": 401}, default="config_error") == "config_error"


HARD, SOFT, OK = "hard_decline", "soft_decline", "succeeded"
TRANSIENT, AMBIGUOUS, CONFIG = "transient", "ambiguous", "config_error"


@pytest.mark.parametrize(
    "provider, flow, facts, outcome",
    [
        # Stripe decline codes
        *[("stripe", "charge", {"http_status": 402, "type": "card_error", "code": "card_declined", "decline_code": d}, HARD)
          for d in ("generic_decline", "insufficient_funds", "lost_card", "stolen_card", "do_not_honor", "fraudulent",
                    "expired_card", "incorrect_cvc")],
        *[("stripe", "charge", {"http_status": 402, "type": "card_error", "code": "card_declined", "decline_code": d}, SOFT)
          for d in ("processing_error", "issuer_not_available", "try_again_later", "reenter_transaction")],
        ("stripe", "charge", {"http_status": 402, "type": "card_error", "code": "card_declined", "decline_code": "duplicate_transaction"}, AMBIGUOUS),
        ("stripe", "charge", {"http_status": 402, "type": "card_error", "code": "processing_error"}, SOFT),
        ("stripe", "charge", {"http_status": 402, "type": "card_error", "code": "expired_card"}, HARD),
        ("stripe", "charge", {"http_status": 402, "type": "card_error"}, HARD),
        # Stripe HTTP and API errors
        ("stripe", "charge", {"http_status": 401, "type": "invalid_request_error"}, CONFIG),
        ("stripe", "charge", {"http_status": 403, "type": "invalid_request_error"}, CONFIG),
        ("stripe", "charge", {"http_status": 400, "type": "invalid_request_error", "code": "parameter_missing"}, CONFIG),
        ("stripe", "charge", {"http_status": 404, "type": "invalid_request_error", "code": "resource_missing"}, CONFIG),
        ("stripe", "charge", {"http_status": 409, "type": "invalid_request_error", "code": "idempotency_key_in_use"}, AMBIGUOUS),
        ("stripe", "charge", {"http_status": 400, "type": "idempotency_error"}, AMBIGUOUS),
        ("stripe", "charge", {"http_status": 429, "type": "invalid_request_error", "code": "rate_limit"}, TRANSIENT),
        ("stripe", "charge", {"http_status": 429, "type": "rate_limit_error", "code": "rate_limit"}, TRANSIENT),
        ("stripe", "charge", {"http_status": 500, "type": "api_error"}, AMBIGUOUS),
        ("stripe", "charge", {"http_status": 502}, AMBIGUOUS),
        ("stripe", "charge", {"http_status": 503, "type": "api_error"}, TRANSIENT),
        ("stripe", "charge", {"http_status": 504}, AMBIGUOUS),
        ("stripe", "charge", {"http_status": 200, "status": "succeeded"}, OK),
        ("stripe", "charge", {"http_status": 200, "status": "processing"}, AMBIGUOUS),
        ("stripe", "charge", {"http_status": 200, "status": "requires_payment_method"}, HARD),
        ("stripe", "charge", {"http_status": 200, "status": "something_new"}, AMBIGUOUS),
        ("stripe", "refund", {"http_status": 200, "status": "succeeded"}, OK),
        ("stripe", "refund", {"http_status": 200, "status": "pending"}, OK),
        ("stripe", "refund", {"http_status": 400, "type": "invalid_request_error", "code": "amount_too_large"}, HARD),
        ("stripe", "charge", {"http_status": 400, "type": "invalid_request_error", "code": "amount_too_large"}, CONFIG),
        ("stripe", "refund", {"http_status": 400, "type": "invalid_request_error", "code": "charge_already_refunded"}, HARD),
        # Adyen
        ("adyen", "charge", {"http_status": 200, "result_code": "Authorised"}, OK),
        *[("adyen", "charge", {"http_status": 200, "result_code": "Refused", "refusal_reason_code": c}, HARD)
          for c in ("2", "5", "6", "12", "24")],
        *[("adyen", "charge", {"http_status": 200, "result_code": "Refused", "refusal_reason_code": c}, SOFT)
          for c in ("4", "9")],
        ("adyen", "charge", {"http_status": 200, "result_code": "Refused", "refusal_reason_code": "777"}, HARD),
        ("adyen", "charge", {"http_status": 200, "result_code": "Error"}, SOFT),
        ("adyen", "charge", {"http_status": 200, "result_code": "Received"}, AMBIGUOUS),
        ("adyen", "charge", {"http_status": 200, "result_code": "Pending"}, AMBIGUOUS),
        ("adyen", "charge", {"http_status": 401, "code": "000", "type": "security"}, CONFIG),
        ("adyen", "charge", {"http_status": 403, "code": "010", "type": "security"}, CONFIG),
        ("adyen", "charge", {"http_status": 422, "code": "130", "type": "validation"}, CONFIG),
        ("adyen", "charge", {"http_status": 422, "code": "704", "type": "validation"}, AMBIGUOUS),
        ("adyen", "refund", {"http_status": 422, "code": "704", "type": "validation"}, AMBIGUOUS),
        ("adyen", "refund", {"http_status": 422, "code": "137", "type": "validation"}, HARD),
        ("adyen", "charge", {"http_status": 429, "code": "000"}, TRANSIENT),
        ("adyen", "charge", {"http_status": 500, "code": "000", "type": "internal"}, AMBIGUOUS),
        ("adyen", "charge", {"http_status": 503, "code": "000", "type": "internal"}, TRANSIENT),
        ("adyen", "refund", {"http_status": 201, "status": "received"}, OK),
        # Braintree
        *[("braintree", "charge", {"http_status": 200, "error_class": "VALIDATION", "legacy_code": c}, HARD)
          for c in ("2000", "2001", "2004", "2038", "2046", "2099", "2999")],
        ("braintree", "charge", {"http_status": 200, "error_class": "VALIDATION", "legacy_code": "3000"}, SOFT),
        ("braintree", "charge", {"http_status": 200, "error_class": "VALIDATION", "legacy_code": "3100"}, SOFT),
        ("braintree", "charge", {"http_status": 200, "error_class": "VALIDATION", "legacy_code": "2016"}, AMBIGUOUS),
        ("braintree", "charge", {"http_status": 200, "error_class": "VALIDATION", "legacy_code": "2026"}, CONFIG),
        ("braintree", "charge", {"http_status": 200, "error_class": "VALIDATION", "legacy_code": "81503"}, CONFIG),
        ("braintree", "refund", {"http_status": 200, "error_class": "VALIDATION", "legacy_code": "91521"}, HARD),
        ("braintree", "charge", {"http_status": 200, "error_class": "VALIDATION"}, AMBIGUOUS),
        ("braintree", "charge", {"http_status": 400, "error_class": "VALIDATION"}, CONFIG),
        ("braintree", "charge", {"http_status": 200, "error_class": "AUTHENTICATION"}, CONFIG),
        ("braintree", "charge", {"http_status": 401, "error_class": "AUTHENTICATION"}, CONFIG),
        ("braintree", "charge", {"http_status": 200, "error_class": "AUTHORIZATION"}, CONFIG),
        ("braintree", "charge", {"http_status": 200, "error_class": "INTERNAL"}, AMBIGUOUS),
        ("braintree", "charge", {"http_status": 200, "error_class": "SERVICE_AVAILABILITY"}, TRANSIENT),
        ("braintree", "charge", {"http_status": 503, "error_class": "UNAVAILABLE"}, TRANSIENT),
        ("braintree", "charge", {"http_status": 200, "error_class": "RESOURCE_LIMIT"}, TRANSIENT),
        ("braintree", "charge", {"http_status": 500}, AMBIGUOUS),
        ("braintree", "charge", {"http_status": 503}, TRANSIENT),
        ("braintree", "charge", {"http_status": 200, "status": "SUBMITTED_FOR_SETTLEMENT"}, OK),
        ("braintree", "charge", {"http_status": 200, "status": "PROCESSOR_DECLINED"}, HARD),
        ("braintree", "charge", {"http_status": 200, "status": "FAILED"}, SOFT),
        ("braintree", "refund", {"http_status": 200, "status": "SUBMITTED_FOR_SETTLEMENT"}, OK),
        # Unknown provider: only the generic HTTP rules apply
        ("newpay", "charge", {"http_status": 503}, TRANSIENT),
        ("newpay", "charge", {"http_status": 418}, CONFIG),
        ("newpay", "charge", {"http_status": 500}, AMBIGUOUS),
        ("newpay", "charge", {}, AMBIGUOUS),
    ],
)
def test_documented_codes(table, provider, flow, facts, outcome):
    assert table.classify(provider, flow, facts) == outcome


def test_matching_ignores_case_and_types(table):
    assert table.classify("Stripe", "CHARGE", {"http_status": "402", "decline_code": "Insufficient_Funds"}) == HARD
    assert table.classify("adyen", "charge", {"http_status": 200, "result_code": "refused", "refusal_reason_code": 4}) == SOFT


def test_lookup_names_the_rule_that_decided(table):
    rule = table.lookup("adyen", "charge", {"http_status": 422, "code": "704"})
    assert rule is not None and rule.provider == "adyen" and rule.match == {"code": "704"}
    assert "idempotency" in rule.note


def test_normalize_facts_derives_the_status_class():
    assert normalize_facts({"http_status": 503, "code": None, "type": "", "x": False}) == {
        "http_status": "503",
        "status_class": "5xx",
    }


def test_precedence_most_specific_fact_then_provider_then_flow():
    table = parse_error_map(
        """
rules:
  - {provider: any, match: {http_status: 402}, outcome: config_error}
  - {provider: p, match: {http_status: 402}, outcome: transient}
  - {provider: p, flow: refund, match: {http_status: 402}, outcome: succeeded}
  - {provider: p, match: {code: x}, outcome: soft_decline}
  - {provider: any, match: {decline_code: y}, outcome: hard_decline}
  - {provider: p, match: {code: x, http_status: 402}, outcome: ambiguous}
  - {provider: p, match: {legacy_code: {range: [10, 19]}}, outcome: soft_decline}
  - {provider: p, match: {legacy_code: 15}, outcome: hard_decline}
"""
    )
    assert table.classify("q", "charge", {"http_status": 402}) == CONFIG  # only the any-provider rule
    assert table.classify("p", "charge", {"http_status": 402}) == TRANSIENT  # provider beats any
    assert table.classify("p", "refund", {"http_status": 402}) == OK  # flow beats any flow
    assert table.classify("p", "charge", {"http_status": 500, "code": "x"}) == SOFT  # code beats status
    assert table.classify("p", "charge", {"http_status": 402, "code": "x"}) == AMBIGUOUS  # code + status beats code
    assert table.classify("p", "charge", {"code": "x", "decline_code": "y"}) == HARD  # decline_code beats all
    assert table.classify("p", "charge", {"legacy_code": "12"}) == SOFT  # range
    assert table.classify("p", "charge", {"legacy_code": "15"}) == HARD  # exact beats range
    assert table.classify("p", "charge", {"legacy_code": "20"}) == AMBIGUOUS  # outside: default
    assert table.classify("p", "charge", {"legacy_code": "abc"}) == AMBIGUOUS  # not a number


def test_facts_are_ordered_as_documented():
    assert FACTS[0] == "decline_code" and FACTS[-1] == "status_class"


@pytest.mark.parametrize(
    "text, message",
    [
        ("rules: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping with a 'rules' list"),
        ("rules: []\n", "'rules' is empty"),
        ("rules:\n  - just a string\n", "rule 0: expected a mapping"),
        ("rules:\n  - {provider: stripe, outcome: declined}\n", "'outcome' must be one of"),
        ("rules:\n  - {provider: stripe, flow: capture, outcome: succeeded}\n", "'flow' must be one of"),
        ("rules:\n  - {outcome: succeeded}\n", "'provider' must be a non-empty string"),
        ("rules:\n  - {provider: stripe, match: {colour: red}, outcome: succeeded}\n", "unknown fact 'colour'"),
        ("rules:\n  - {provider: stripe, match: {http_status: 999}, outcome: succeeded}\n", "http_status must be an integer 100..599"),
        ("rules:\n  - {provider: stripe, match: {status_class: 6xx}, outcome: succeeded}\n", "status_class must be one of"),
        ("rules:\n  - {provider: stripe, match: {legacy_code: {range: [5, 1]}}, outcome: succeeded}\n", "range must be [low, high]"),
        ("rules:\n  - {provider: stripe, match: {code: [a, b]}, outcome: succeeded}\n", "must be a string, an integer"),
        ("rules:\n  - {provider: stripe, match: {}, outcome: succeeded, retry: true}\n", "unknown keys ['retry']"),
        (
            "rules:\n  - {provider: stripe, match: {code: A}, outcome: succeeded}\n"
            "  - {provider: Stripe, match: {code: a}, outcome: transient}\n",
            "rule 1 duplicates rule 0",
        ),
    ],
)
def test_bad_tables_fail_clearly(text, message):
    with pytest.raises(ErrorMapError) as caught:
        parse_error_map(text, "custom.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("custom.yaml")


def test_missing_file_fails_clearly(tmp_path):
    with pytest.raises(ErrorMapError, match="cannot read error map .*nope.yaml"):
        load_error_map(tmp_path / "nope.yaml")


def test_module_is_pure():
    import ast
    import inspect

    import orchestrator.resilience.classification as module

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "functools", "importlib", "dataclasses", "pathlib", "typing", "yaml"}
