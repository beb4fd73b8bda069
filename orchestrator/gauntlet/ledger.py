"""Money moved, from the sandbox ledgers, and the contract's money invariant checked against it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

import httpx

from orchestrator.config import DEFAULT_PROVIDERS_FILE, ProviderTable, load_provider_table


async def request_again(client: httpx.AsyncClient, method: str, url: str, *, tries: int = 3,
                        **kwargs) -> httpx.Response:
    """An idempotent request (a read, a fault PUT, a reset), sent again when the connection fails, e.g. a
    kept-alive connection the server closed at the moment it was reused."""
    for attempt in range(tries):
        try:
            return await client.request(method, url, **kwargs)
        except httpx.TransportError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


async def fetch_ledgers(client: httpx.AsyncClient, sandbox_urls: dict[str, str]) -> dict[str, list[dict]]:
    """Every charge that moved money, by its reference (our payment id), tagged with its provider."""
    by_reference: dict[str, list[dict]] = defaultdict(list)
    for provider, url in sandbox_urls.items():
        response = await request_again(client, "GET", f"{url}/_sandbox/ledger", timeout=30)
        response.raise_for_status()
        for charge in response.json()["charges"]:
            by_reference[charge["reference"]].append({**charge, "provider": provider})
    return dict(by_reference)


@dataclass(frozen=True, slots=True)
class Reported:
    """What a router told its caller about one payment."""

    payment_id: str
    status: str  # succeeded, failed, processing, or error (no answer)
    provider: str | None
    amount: int


def invariant_violations(reported: Iterable[Reported], charges: dict[str, list[dict]]) -> list[str]:
    """The contract's money invariant: at most one charge per payment id across the ledgers, exactly
    one (at the reported provider, for the amount) when succeeded, none when failed."""
    problems: list[str] = []
    for payment in reported:
        found = charges.get(payment.payment_id, [])
        if len(found) > 1:
            problems.append(f"{payment.payment_id}: {len(found)} charges ({', '.join(c['provider'] for c in found)})")
        if payment.status == "succeeded":
            if not found:
                problems.append(f"{payment.payment_id}: reported succeeded, no charge")
            elif len(found) == 1 and (found[0]["provider"], found[0]["amount"]) != (payment.provider, payment.amount):
                problems.append(f"{payment.payment_id}: reported {payment.provider} {payment.amount}, charged "
                                f"{found[0]['provider']} {found[0]['amount']}")
        elif payment.status == "failed" and found:
            problems.append(f"{payment.payment_id}: reported failed, charged at {found[0]['provider']}")
    return problems


def provider_table() -> ProviderTable:
    """The default provider table (fees, compliance, endpoint paths); `serve` uses the same file."""
    return load_provider_table(DEFAULT_PROVIDERS_FILE)


def fee_minor(table: ProviderTable, provider: str, region: str, amount: int) -> float:
    """The provider table's fee for one charge, in minor units of the payment's currency."""
    return table.get(provider).fee_in(region).for_amount(amount)
