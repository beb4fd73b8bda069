"""API load shedding gate."""

from __future__ import annotations

import pytest

from orchestrator.resilience.shedding import InflightGate


def test_gate_sheds_past_the_limit_and_reopens():
    gate = InflightGate(3, retry_after_s=2)
    assert [gate.try_enter() for _ in range(5)] == [True, True, True, False, False]
    assert gate.in_flight == 3 and gate.shed == 2
    assert gate.retry_after_s == 2
    gate.leave()
    assert gate.try_enter() is True
    assert gate.try_enter() is False
    assert gate.shed == 3


def test_leave_never_goes_negative():
    gate = InflightGate(1)
    gate.leave()
    assert gate.in_flight == 0
    assert gate.try_enter() and not gate.try_enter()


def test_default_retry_after_and_validation():
    assert InflightGate(10).retry_after_s == 1
    with pytest.raises(ValueError):
        InflightGate(0)
    with pytest.raises(ValueError):
        InflightGate(5, retry_after_s=-1)
