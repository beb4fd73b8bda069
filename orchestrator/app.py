"""The FastAPI application. The lifespan owns the engine, the shared HTTP client and the services."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from orchestrator.config import Settings
from orchestrator.kit.db import create_engine, create_sessionmaker
from orchestrator.kit.errors import install_error_handlers
from orchestrator.merchants.auth import MerchantAuthenticator
from orchestrator.payments.endpoints import router as payments_router
from orchestrator.payments.refunds import RefundService
from orchestrator.payments.service import PaymentService
from orchestrator.providers.registry import build_adapters


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    providers = settings.providers  # read and validated now: a bad provider file fails at start

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = create_engine(settings.database_url)
        sessionmaker = create_sessionmaker(engine)
        limits = httpx.Limits(max_connections=settings.http_max_connections,
                              max_keepalive_connections=settings.http_max_connections)
        async with httpx.AsyncClient(limits=limits) as client:
            adapters = build_adapters(client)
            app.state.settings = settings
            app.state.engine = engine
            app.state.sessionmaker = sessionmaker
            app.state.merchant_auth = MerchantAuthenticator(sessionmaker, settings.auth_cache_ttl_s)
            app.state.payments = PaymentService(sessionmaker, adapters, providers, settings)
            app.state.refunds = RefundService(sessionmaker, adapters, providers, settings)
            try:
                yield
            finally:
                await engine.dispose()

    app = FastAPI(
        title="Payment orchestrator",
        version="0.1.0",
        description="Routes payments to Stripe, Adyen or Braintree by health, fee and compliance, "
        "and keeps them alive through provider outages without ever charging twice.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(payments_router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request):
        """Ready to take payments: the database answers."""
        try:
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any database failure means not ready
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        return {"status": "ok", "database": "ok"}

    return app
