"""ISO 4217 currency codes and exact conversion between minor units and major-unit strings.

Amounts travel as integers in minor units everywhere inside the orchestrator. Only a provider
that wants a decimal string (Braintree) converts, and it does so here, exactly, with `Decimal`.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pycountry

# Built once at import: these are called for every request.
_ISO4217: frozenset[str] = frozenset(c.alpha_3 for c in pycountry.currencies)

_EXPONENT_0 = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_EXPONENT_3 = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
_EXPONENT_4 = frozenset("CLF UYW".split())
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def is_iso4217(code: str) -> bool:
    """True for a current ISO 4217 alphabetic code, upper case (`"EUR"`, not `"eur"`)."""
    return isinstance(code, str) and code in _ISO4217


def exponent(code: str) -> int:
    """Number of decimal places of the currency's minor unit (JPY 0, EUR 2, KWD 3, CLF 4)."""
    if code in _EXPONENT_0:
        return 0
    if code in _EXPONENT_3:
        return 3
    if code in _EXPONENT_4:
        return 4
    return 2


def to_major_string(minor: int, currency: str) -> str:
    """1099 EUR -> "10.99"; 1099 JPY -> "1099"; -5 EUR -> "-0.05"."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, got {type(minor).__name__}")
    places = exponent(currency)
    if places == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def from_major_string(value: str, currency: str) -> int:
    """"10.99" EUR -> 1099, exactly. Rejects more decimals than the currency has ("10.999" EUR)."""
    if not isinstance(value, str):
        raise TypeError(f"amount must be a string, got {type(value).__name__}")
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a plain decimal amount: {value!r}")
    scaled = Decimal(text).scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value!r} has more decimal places than {currency} allows")
    return int(scaled)
