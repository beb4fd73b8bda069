"""The FastAPI application. The lifespan owns the engine, the shared HTTP client and the services."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from orchestrator.config import Settings
from orchestrator.admin.endpoints import router as admin_router
from orchestrator.health.leader import LeaderLease
from orchestrator.health.poller import HealthPoller
from orchestrator.health.reconciler import Reconciler
from orchestrator.overrides.service import OverrideService
from orchestrator.routing.service import RoutingService
from orchestrator.routing.state import RoutingState
from orchestrator.health.scheduler import build_scheduler
from orchestrator.kit.shedding import LoadSheddingMiddleware
from orchestrator.resilience.classification import load_error_map
from orchestrator.resilience.guards import Guards
from orchestrator.resilience.shedding import InflightGate
from orchestrator.kit.db import create_engine, create_sessionmaker
from orchestrator.kit.errors import install_error_handlers
from orchestrator.merchants.auth import MerchantAuthenticator
from orchestrator.observability import tracing
from orchestrator.observability.metrics import CONTENT_TYPE_LATEST, Metrics, StateCollector
from orchestrator.observability.telemetry import Telemetry, routes_of
from orchestrator.payments.endpoints import router as payments_router
from orchestrator.payments.refunds import RefundService
from orchestrator.payments.service import PaymentService
from orchestrator.providers.registry import build_adapters


def create_app(settings: Settings | None = None, *, run_scheduler: bool = True) -> FastAPI:
    settings = settings or Settings()
    providers = settings.providers  # read and validated now: a bad provider file fails at start
    error_map = load_error_map(settings.error_map_file)
    tracer_provider = tracing.tracer_provider_from_env()
    telemetry = Telemetry(Metrics(routes_of(providers)), tracer_provider)
    guards = Guards(settings.resilience_policy(), on_transition=telemetry.breaker_transition)
    gate = InflightGate(settings.max_inflight_payments)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = create_engine(settings.database_url)
        if tracer_provider is not None:
            tracing.instrument_engine(engine.sync_engine, tracer_provider)
        sessionmaker = create_sessionmaker(engine)
        limits = httpx.Limits(max_connections=settings.http_max_connections,
                              max_keepalive_connections=settings.http_max_connections)
        async with httpx.AsyncClient(limits=limits) as client:
            if tracer_provider is not None:
                tracing.instrument_httpx(client, tracer_provider)
            adapters = build_adapters(client, error_map)
            app.state.telemetry = telemetry
            app.state.settings = settings
            app.state.guards = guards
            app.state.engine = engine
            app.state.sessionmaker = sessionmaker
            app.state.merchant_auth = MerchantAuthenticator(sessionmaker, settings.auth_cache_ttl_s)
            routing_state = RoutingState(sessionmaker, providers, settings.database_url,
                                         poll_interval_s=settings.routing_refresh_interval_s)
            await routing_state.start()
            app.state.routing_state = routing_state
            app.state.routing = RoutingService(routing_state, guards, providers, settings.routing,
                                               observation_window_s=settings.observation_window_s)
            app.state.overrides = OverrideService(providers)
            app.state.payments = PaymentService(sessionmaker, adapters, providers, settings, guards, app.state.routing,
                                                telemetry=telemetry)
            app.state.refunds = RefundService(sessionmaker, adapters, providers, settings, telemetry=telemetry)
            app.state.reconciler = Reconciler(sessionmaker, adapters, providers, settings, telemetry=telemetry)
            app.state.lease = LeaderLease(settings.database_url)
            app.state.poller = HealthPoller(
                sessionmaker, adapters, providers, app.state.lease,
                observation_window_s=settings.observation_window_s,
                unhealthy_error_rate=settings.routing.unhealthy_error_rate, min_calls=settings.routing.min_calls,
                status_timeout_s=settings.status_timeout_s, status_interval_s=settings.status_poll_interval_s,
                on_change=routing_state.notify)
            scheduler = build_scheduler(app.state.reconciler, app.state.poller,
                                        reconcile_interval_s=settings.reconcile_interval_s,
                                        health_interval_s=min(settings.observation_interval_s,
                                                              settings.status_poll_interval_s))
            if run_scheduler:
                scheduler.start()
            # Objects made at start-up live as long as the process: keep them out of every collection,
            # and collect the young generation less often, which trims pauses from the latency tail.
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, 50, 100)
            try:
                yield
            finally:
                if scheduler.running:
                    scheduler.shutdown(wait=False)
                await routing_state.stop()
                await app.state.lease.release()
                await engine.dispose()
                tracing.shutdown(tracer_provider)

    app = FastAPI(
        title="Payment orchestrator",
        version="0.1.0",
        description="Routes payments to Stripe, Adyen or Braintree by health, fee and compliance, "
        "and keeps them alive through provider outages without ever charging twice.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(LoadSheddingMiddleware, gate=gate)
    telemetry.metrics.registry.register(StateCollector(lambda: app.state, lambda: routes_of(providers), gate))
    if tracer_provider is not None:
        tracing.instrument_app(app, tracer_provider)
    app.include_router(payments_router)
    app.include_router(admin_router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request):
        """Ready to take payments: the database answers and the routing table is fresh."""
        try:
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any database failure means not ready
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
        routing = request.app.state.routing_state.freshness(
            max_table_age_s=max(15.0, 3 * settings.status_poll_interval_s),
            max_snapshot_age_s=max(5.0, 4 * settings.routing_refresh_interval_s))
        if not routing["fresh"]:
            return JSONResponse({"status": "unavailable", "database": "ok", "routing": routing}, 503)
        return {"status": "ok", "database": "ok", "routing": routing}

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def metrics() -> Response:
        """Prometheus metrics of this replica (text format): payments, retries, failovers, breakers, latency."""
        return Response(telemetry.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
