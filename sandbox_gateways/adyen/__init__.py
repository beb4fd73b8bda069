"""Sandbox Adyen Checkout (payments and refunds)."""
