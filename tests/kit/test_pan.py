import pytest

from orchestrator.kit.pan import contains_pan, luhn_valid


@pytest.mark.parametrize("text", ["4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242",
                                  "card 5555555555554444 exp", "378282246310005", "6011111111111117",
                                  "4000056655665556122"])
def test_card_numbers_are_found(text):
    assert contains_pan(text)


@pytest.mark.parametrize("text", ["pm_card_visa", "4242424242424241", "order 1234567890", "12345678901234567890123",
                                  "2026-12-04T12:00:00Z", "", "pay_4242424242424242abc".replace("4242", "42x2")])
def test_other_values_are_not(text):
    assert not contains_pan(text)


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
