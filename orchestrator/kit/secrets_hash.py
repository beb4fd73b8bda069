"""Secrets (API keys, admin tokens) are stored only as hashes.

They are long random strings, so one SHA-256 is enough (no password stretching needed) and lets a
presented key be found by its hash in one indexed lookup.
"""

import hashlib
import hmac
import secrets


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
