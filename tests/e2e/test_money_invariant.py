"""The contract's money invariant over every payment the suite made against the shared sandboxes."""

import pytest

from tests.fixtures.money import ledger_charges, money_invariant_violations, payments_in

pytestmark = [pytest.mark.e2e, pytest.mark.last]


def test_money_invariant_holds_across_the_three_ledgers(server, sandboxes, database_url):
    payments = payments_in(database_url)
    assert payments, "the suite made no payments"
    assert money_invariant_violations(payments, ledger_charges(sandboxes.urls)) == []
