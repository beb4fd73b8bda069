"""ISO 4217 currencies and their minor-unit exponents."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

import pycountry

_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
_DECIMAL_RE = re.compile(r"^\d+(\.\d+)?$")


@lru_cache(maxsize=1)
def _codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def is_currency(code: str) -> bool:
    return isinstance(code, str) and code.upper() == code and code in _codes()


def normalize(code: object) -> str | None:
    """Upper-case ISO 4217 code, or None when `code` is not one."""
    if not isinstance(code, str) or len(code) != 3:
        return None
    upper = code.upper()
    return upper if upper in _codes() else None


def exponent(currency: str) -> int:
    if currency in _ZERO_DECIMAL:
        return 0
    if currency in _THREE_DECIMAL:
        return 3
    return 2


def to_minor(value: str, currency: str) -> int | None:
    """A decimal string in major units -> integer minor units, or None when the string is not a
    plain positive-or-zero decimal with at most the currency's number of decimals."""
    if not isinstance(value, str) or not _DECIMAL_RE.match(value):
        return None
    exp = exponent(currency)
    decimals = len(value.split(".", 1)[1]) if "." in value else 0
    if decimals > exp:
        return None
    try:
        return int(Decimal(value).scaleb(exp))
    except InvalidOperation:  # pragma: no cover - guarded by the regex
        return None


def to_major(minor: int, currency: str) -> str:
    exp = exponent(currency)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"
