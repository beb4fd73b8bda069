"""Which region a payment belongs to, from its country (ISO 3166-1 alpha-2).

EEA countries (the EU 27 plus Iceland, Liechtenstein and Norway), the United Kingdom and Switzerland
are `EU`; the United States is `US`; Australia, New Zealand, Japan, Singapore and Hong Kong are `APAC`.
Any other country has no region and is not served. EU payments go only to EU endpoints (data
residency), so this table is a compliance rule, not a preference.

Pure: a dictionary lookup, no I/O.
"""

from __future__ import annotations

from typing import Final, Literal

Region = Literal["EU", "US", "APAC"]

REGIONS: Final[tuple[Region, ...]] = ("EU", "US", "APAC")

EU27: Final[frozenset[str]] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
EEA: Final[frozenset[str]] = EU27 | {"IS", "LI", "NO"}
EU_REGION_COUNTRIES: Final[frozenset[str]] = EEA | {"GB", "CH"}
US_REGION_COUNTRIES: Final[frozenset[str]] = frozenset({"US"})
APAC_REGION_COUNTRIES: Final[frozenset[str]] = frozenset({"AU", "NZ", "JP", "SG", "HK"})

_REGION_BY_COUNTRY: Final[dict[str, Region]] = {
    **{country: "EU" for country in EU_REGION_COUNTRIES},
    **{country: "US" for country in US_REGION_COUNTRIES},
    **{country: "APAC" for country in APAC_REGION_COUNTRIES},
}

SUPPORTED_COUNTRIES: Final[frozenset[str]] = frozenset(_REGION_BY_COUNTRY)


def region_for_country(country: str | None) -> Region | None:
    """The region of an upper-case ISO 3166-1 alpha-2 country code, or None when it is not served.

    The code must already be upper case (the API validates and normalises input); `"de"` is None.
    """
    if country is None:
        return None
    return _REGION_BY_COUNTRY.get(country)
