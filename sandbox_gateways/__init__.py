"""Sandbox gateways: stand-alone fake Stripe, Adyen Checkout and Braintree GraphQL servers.

They speak a faithful subset of each provider's wire format, keep a ledger of the money they moved,
and take faults (errors, latency, timeouts, connection resets, status-page states) per region.
This package never imports the orchestrator.
"""

PROVIDERS: tuple[str, ...] = ("stripe", "adyen", "braintree")
