"""Sandbox Stripe (PaymentIntents and Refunds)."""
