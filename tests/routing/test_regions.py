from __future__ import annotations

import pycountry
import pytest

from orchestrator.routing.regions import (
    APAC_REGION_COUNTRIES,
    EU27,
    EU_REGION_COUNTRIES,
    REGIONS,
    SUPPORTED_COUNTRIES,
    region_for_country,
)

EU_MEMBERS = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()


@pytest.mark.parametrize("country", EU_MEMBERS + ["IS", "LI", "NO", "GB", "CH"])
def test_eea_gb_and_ch_are_eu(country):
    assert region_for_country(country) == "EU"


def test_us():
    assert region_for_country("US") == "US"


@pytest.mark.parametrize("country", ["AU", "NZ", "JP", "SG", "HK"])
def test_apac(country):
    assert region_for_country(country) == "APAC"


@pytest.mark.parametrize(
    "country",
    "CA MX BR CN IN KR TR RU UA RS AD MC SM VA EL UK ZZ de USA".split() + [""],
)
def test_other_countries_have_no_region(country):
    # EL (Greece's EU abbreviation) and UK are not ISO 3166-1 codes; microstates outside the EEA are not EU.
    assert region_for_country(country) is None


def test_none_has_no_region():
    assert region_for_country(None) is None


def test_the_tables_are_exact():
    assert len(EU27) == 27 and set(EU27) == set(EU_MEMBERS)
    assert len(EU_REGION_COUNTRIES) == 32
    assert APAC_REGION_COUNTRIES == {"AU", "NZ", "JP", "SG", "HK"}
    assert len(SUPPORTED_COUNTRIES) == 32 + 1 + 5
    assert {region_for_country(c) for c in SUPPORTED_COUNTRIES} == set(REGIONS)


def test_every_served_country_is_a_real_iso_code():
    for country in SUPPORTED_COUNTRIES:
        assert pycountry.countries.get(alpha_2=country) is not None, country


def test_every_iso_country_has_at_most_one_region_and_only_listed_ones_have_one():
    served = {c.alpha_2 for c in pycountry.countries if region_for_country(c.alpha_2) is not None}
    assert served == SUPPORTED_COUNTRIES
