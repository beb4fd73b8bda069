"""Sandbox Braintree GraphQL (charge, refund, transaction search)."""
