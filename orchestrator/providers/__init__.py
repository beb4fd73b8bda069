"""Provider adapters: one module per provider, a shared transport, and the registry."""
