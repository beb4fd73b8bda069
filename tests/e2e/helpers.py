from __future__ import annotations

import httpx

CARD = "pm_card_visa"


def payment_body(**overrides) -> dict:
    body = {"amount": 1099, "currency": "EUR", "country": "DE", "payment_method": CARD,
            "description": "order 42", "metadata": {"order_id": "42"}}
    body.update(overrides)
    return body


def set_fault(sandbox_url: str, region: str, **fault) -> None:
    response = httpx.put(f"{sandbox_url}/_sandbox/faults/{region}", json=fault, timeout=5)
    assert response.status_code in (200, 204), response.text


def charges_for(sandbox_urls: dict[str, str], payment_id: str) -> list[dict]:
    found = []
    for provider, url in sandbox_urls.items():
        for charge in httpx.get(f"{url}/_sandbox/ledger", timeout=5).json()["charges"]:
            if charge["reference"] == payment_id:
                found.append({**charge, "provider": provider})
    return found
