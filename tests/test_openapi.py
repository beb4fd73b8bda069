import json
from pathlib import Path

from orchestrator.openapi import schema

DOCS_COPY = Path(__file__).resolve().parents[1] / "docs" / "openapi.json"


def test_the_documented_openapi_schema_matches_the_code():
    assert json.loads(DOCS_COPY.read_text()) == json.loads(json.dumps(schema())), \
        "regenerate with: python -m orchestrator.openapi > docs/openapi.json"


def test_the_schema_describes_the_merchant_api():
    paths = schema()["paths"]
    assert {"/v1/payments", "/v1/payments/{payment_id}", "/v1/payments/{payment_id}/refunds"} <= set(paths)
    body = paths["/v1/payments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"amount", "currency", "country", "payment_method"} <= set(body["required"])
