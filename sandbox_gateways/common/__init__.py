"""Pieces shared by the three sandbox gateways: faults, ledger, idempotency, status page."""
