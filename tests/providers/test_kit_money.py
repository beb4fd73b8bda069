from decimal import Decimal

import pytest

from orchestrator.kit import money


@pytest.mark.parametrize("code", ["EUR", "USD", "JPY", "KWD", "CLF", "UYW", "GBP", "CHF"])
def test_real_codes_are_iso4217(code):
    assert money.is_iso4217(code)


@pytest.mark.parametrize("code", ["EURO", "eur", "ABC", "", "XYZ", "BTC", None, 978])
def test_other_values_are_not(code):
    assert not money.is_iso4217(code)


@pytest.mark.parametrize(
    "code, places",
    [("JPY", 0), ("KRW", 0), ("CLP", 0), ("ISK", 0), ("XOF", 0), ("UYI", 0), ("EUR", 2), ("USD", 2),
     ("GBP", 2), ("BHD", 3), ("KWD", 3), ("TND", 3), ("CLF", 4), ("UYW", 4)],
)
def test_exponent(code, places):
    assert money.exponent(code) == places


@pytest.mark.parametrize(
    "minor, currency, text",
    [(1099, "EUR", "10.99"), (5, "EUR", "0.05"), (100, "EUR", "1.00"), (0, "EUR", "0.00"), (-5, "EUR", "-0.05"),
     (1099, "JPY", "1099"), (1099, "KWD", "1.099"), (12345, "CLF", "1.2345"), (99_999_999, "USD", "999999.99")],
)
def test_round_trip(minor, currency, text):
    assert money.to_major_string(minor, currency) == text
    assert money.from_major_string(text, currency) == minor


def test_from_major_accepts_fewer_decimals_and_whitespace():
    assert money.from_major_string("10.9", "EUR") == 1090
    assert money.from_major_string(" 10 ", "EUR") == 1000
    assert money.from_major_string("10.000", "EUR") == 1000  # trailing zeros are not sub-unit precision


@pytest.mark.parametrize(
    "text, currency",
    [("10.999", "EUR"), ("10.5", "JPY"), ("1.0001", "KWD"), ("1e2", "EUR"), ("nan", "EUR"), ("inf", "EUR"),
     ("", "EUR"), ("10,99", "EUR"), ("ten", "EUR"), ("1.2.3", "EUR")],
)
def test_from_major_rejects(text, currency):
    with pytest.raises(ValueError):
        money.from_major_string(text, currency)


def test_from_major_is_exact_where_float_is_not():
    # 0.1 + 0.2 style drift must not exist: 1.15 EUR is exactly 115, whatever binary floats say.
    assert money.from_major_string("1.15", "EUR") == 115
    assert money.from_major_string("4.35", "EUR") == 435
    assert int(Decimal("4.35") * 100) == 435 and int(4.35 * 100) == 434


def test_to_major_rejects_non_integers():
    with pytest.raises(TypeError):
        money.to_major_string(10.99, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        money.to_major_string(True, "EUR")  # type: ignore[arg-type]
