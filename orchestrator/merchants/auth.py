"""Merchant authentication: `Authorization: Bearer <api_key>`, checked before anything else."""

from __future__ import annotations

import time

from fastapi import Request

from orchestrator.kit.errors import unauthorized
from orchestrator.kit.secrets_hash import hash_secret
from orchestrator.merchants.repository import MerchantRepository


class MerchantAuthenticator:
    """Finds the merchant for a key by its hash, with a short cache so a payment costs no auth query."""

    def __init__(self, sessionmaker, ttl_s: float) -> None:
        self._sessionmaker = sessionmaker
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[str, float]] = {}

    async def merchant_id(self, api_key: str) -> str | None:
        key_hash = hash_secret(api_key)
        now = time.monotonic()
        hit = self._cache.get(key_hash)
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self._sessionmaker() as session:
            merchant_id = await MerchantRepository(session).id_by_key_hash(key_hash)
        if merchant_id is not None and self._ttl_s > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (merchant_id, now + self._ttl_s)
        return merchant_id


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_merchant_id(request: Request) -> str:
    """FastAPI dependency: the authenticated merchant's id, or 401."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized()
    merchant_id = await request.app.state.merchant_auth.merchant_id(token)
    if merchant_id is None:
        raise unauthorized()
    return merchant_id
