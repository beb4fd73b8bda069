import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """Random, URL-safe ids with a type prefix, Stripe style: pay_..., re_..., att_..."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
