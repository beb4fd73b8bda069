"""OpenTelemetry tracing from the standard `OTEL_*` variables.

Spans are recorded and exported only when an OTLP endpoint is configured
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`) and `OTEL_SDK_DISABLED` is not
true; otherwise nothing is instrumented and the payment path pays nothing for tracing.

- `OTEL_SERVICE_NAME` (default `payment-orchestrator`), `OTEL_RESOURCE_ATTRIBUTES`;
- `OTEL_EXPORTER_OTLP_PROTOCOL` / `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: `http/protobuf` (default) or
  `grpc` (needs the `opentelemetry-exporter-otlp-proto-grpc` package);
- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`);
- `OTEL_BSP_*` for the batch span processor, `OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT` as usual;
- `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`: `fastapi`, `httpx`, `sqlalchemy` (comma-separated) turn
  those span sources off, e.g. `sqlalchemy` to keep traces to the request, routing and attempts.

Instrumented, each by a small adapter here rather than the generic OpenTelemetry instrumentation
packages, which cost 100-150 µs per request or call on this path (the ASGI one matches every route a
second time to name its span; the httpx one normalises every header; the SQLAlchemy one re-parses
the engine URL on every statement). These cost a span each, and by construction record no header,
no query string and no statement parameter:
- the FastAPI app (`ServerSpans`): one SERVER span per request (not /healthz, /readyz, /metrics),
  continuing the caller's W3C trace context, named `METHOD /route/{template}`;
- the shared httpx client (`ClientSpans`): one CLIENT span per outbound call, whose W3C `traceparent`
  the provider receives;
- the SQLAlchemy engine (`StatementSpans`): one CLIENT span per transaction, with its statements'
  text (placeholders), or per statement outside a transaction; `SET` statements make none.
Client spans are made only inside a recorded trace: background polling starts no one-span traces,
and a request left out by the sampler costs no client spans (its context still goes to providers).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, Status, StatusCode

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "payment-orchestrator"
EXCLUDED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
INSTRUMENTATIONS = ("fastapi", "httpx", "sqlalchemy")


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def export_endpoint() -> str | None:
    """The OTLP endpoint traces go to, or None when tracing is off."""
    if (_env("OTEL_SDK_DISABLED") or "").lower() == "true":
        return None
    return _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def enabled_instrumentations() -> frozenset[str]:
    disabled = {name.strip().lower() for name in (_env("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS") or "").split(",")}
    return frozenset(name for name in INSTRUMENTATIONS if name not in disabled)


class NoOrphanClientSpans(Sampler):
    """The configured sampler, except that a CLIENT span (a query, an outbound call) never starts a trace."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                      trace_state=None) -> SamplingResult:
        if kind is SpanKind.CLIENT and not trace.get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"NoOrphanClientSpans{{{self.delegate.get_description()}}}"


def _configured_sampler() -> Sampler:
    from opentelemetry.sdk.trace import sampling

    return sampling._get_from_env_or_default()  # reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG


class _ProcessResource(Resource):
    """The resource of this process: fixed once made, so its hash (the exporter groups every span by
    it; the SDK's computes a JSON dump each time) is computed once."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(dict(resource.attributes), resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or super().__eq__(other)


def _resource(service_version: str) -> Resource:
    detected = Resource.create({SERVICE_VERSION: service_version,
                                SERVICE_INSTANCE_ID: f"{socket.gethostname()}:{os.getpid()}"})
    if _env("OTEL_SERVICE_NAME") is None and \
            str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return _ProcessResource(detected)


def _exporter() -> SpanExporter | None:
    protocol = (_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").lower()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError:
            log.error("OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the opentelemetry-exporter-otlp-proto-grpc package; "
                      "traces are not exported")
            return None
        return GrpcExporter()
    if protocol != "http/protobuf":
        log.error("OTLP protocol %r is not supported (use http/protobuf or grpc); traces are not exported", protocol)
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer_provider_from_env(service_version: str = "0.1.0") -> TracerProvider | None:
    """A provider exporting by OTLP in batches, or None when no endpoint is configured."""
    if export_endpoint() is None:
        return None
    exporter = _exporter()
    if exporter is None:
        return None
    provider = TracerProvider(resource=_resource(service_version), sampler=NoOrphanClientSpans(_configured_sampler()))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    log.info("traces exported by OTLP to %s", export_endpoint())
    return provider


def shutdown(provider: TracerProvider | None, timeout_s: float = 5.0) -> None:
    if provider is None:
        return
    try:
        provider.force_flush(int(timeout_s * 1000))
    finally:
        provider.shutdown()


# ---- the FastAPI app ---------------------------------------------------------------------------------


class ServerSpans:
    """ASGI middleware: a SERVER span around each HTTP request, in the caller's trace when it sent one."""

    def __init__(self, app: Any, tracer_provider: TracerProvider, excluded_paths: frozenset[str] = EXCLUDED_PATHS):
        self.app = app
        self.tracer = tracer_provider.get_tracer("orchestrator.http.server")
        self.excluded = excluded_paths
        self.propagator = propagate.get_global_textmap()
        self.fields = {name.encode() for name in self.propagator.fields}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded:
            await self.app(scope, receive, send)
            return
        carrier = {name.decode(): value.decode("latin-1") for name, value in scope["headers"] if name in self.fields}
        parent = self.propagator.extract(carrier) if carrier else None
        method = scope["method"]
        attributes = {"http.request.method": method, "url.path": scope["path"]}
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status = 500

        async def send_with_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            otel_context.detach(token)
            span.end()


def instrument_app(app: Any, provider: TracerProvider) -> None:
    """Outermost middleware, so the span covers load shedding, authentication and error handling."""
    if "fastapi" in enabled_instrumentations():
        app.add_middleware(ServerSpans, tracer_provider=provider)


# ---- the outbound HTTP client ------------------------------------------------------------------------


class ClientSpans(httpx.AsyncBaseTransport):
    """Wraps an httpx transport: a CLIENT span per call made inside a trace, its context sent on in
    `traceparent`. The URL goes on the span without its query string; headers never do."""

    def __init__(self, inner: httpx.AsyncBaseTransport, tracer_provider: TracerProvider) -> None:
        self.inner = inner
        self.tracer = tracer_provider.get_tracer("orchestrator.http.client")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        parent = otel_context.get_current()
        parent_span = trace.get_current_span(parent).get_span_context()
        if not parent_span.is_valid:
            return await self.inner.handle_async_request(request)
        if not parent_span.trace_flags.sampled:  # a trace not recorded here: pass it on, make no span
            propagate.inject(request.headers, context=parent)
            return await self.inner.handle_async_request(request)
        url = request.url
        span = self.tracer.start_span(request.method, context=parent, kind=SpanKind.CLIENT, attributes={
            "http.request.method": request.method, "url.full": f"{url.scheme}://{url.netloc.decode()}{url.path}",
            "server.address": url.host})
        propagate.inject(request.headers, context=trace.set_span_in_context(span, parent))
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def instrument_httpx(client: httpx.AsyncClient, provider: TracerProvider) -> None:
    if "httpx" not in enabled_instrumentations():
        return
    client._transport = ClientSpans(client._transport, provider)
    client._mounts = {pattern: ClientSpans(transport, provider) if transport is not None else None
                      for pattern, transport in client._mounts.items()}


# ---- the database -----------------------------------------------------------------------------------


class StatementSpans:
    """CLIENT spans for the SQL of one engine (SQLAlchemy events), only inside a recorded trace.

    One span per transaction, from its first statement to its commit or rollback, carrying every
    statement's text (placeholders, never parameters) in order: a payment's two short transactions
    make two spans rather than one per statement (four or five), and read better in Jaeger. A
    statement outside any transaction gets a span of its own.
    """

    def __init__(self, engine: Any, provider: TracerProvider) -> None:
        from sqlalchemy import event

        self.tracer = provider.get_tracer("orchestrator.db")
        self.database = engine.url.database or ""
        self.attributes = {"db.system": {"postgresql": "postgresql"}.get(engine.dialect.name, engine.dialect.name),
                           "db.name": self.database}
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)
        event.listen(engine, "handle_error", self.failed)
        event.listen(engine, "begin", self.began)
        event.listen(engine, "commit", self.committed)
        event.listen(engine, "rollback", self.rolled_back)

    def before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if context is None:
            return
        words = statement.split(None, 1)
        operation = words[0].upper() if words else "SQL"
        if operation == "SET":
            return  # session settings (e.g. the settling write's synchronous_commit) are not data access
        if conn.in_transaction():
            open_tx = conn.info.get("_otel_tx")
            if open_tx is None:
                if not trace.get_current_span().get_span_context().trace_flags.sampled:
                    return  # outside any trace, or in one that is not recorded
                span = self.tracer.start_span(f"TRANSACTION {self.database}", kind=SpanKind.CLIENT,
                                              attributes={**self.attributes, "db.operation": "TRANSACTION"})
                open_tx = conn.info["_otel_tx"] = (span, [])
            open_tx[1].append(statement)
            return
        if not trace.get_current_span().get_span_context().trace_flags.sampled:
            return
        context._otel_span = self.tracer.start_span(
            f"{operation} {self.database}", kind=SpanKind.CLIENT,
            attributes={**self.attributes, "db.operation": operation, "db.statement": statement})

    @staticmethod
    def after(conn, cursor, statement, parameters, context, executemany) -> None:
        span = getattr(context, "_otel_span", None)
        if span is not None:
            context._otel_span = None
            span.end()

    @staticmethod
    def _end_transaction(conn, outcome: str, error: str | None = None) -> None:
        open_tx = conn.info.pop("_otel_tx", None)
        if open_tx is None:
            return
        span, statements = open_tx
        span.set_attribute("db.statement", ";\n".join(statements))
        span.set_attribute("db.statement_count", len(statements))
        span.set_attribute("db.transaction.outcome", outcome)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    def began(self, conn) -> None:
        self._end_transaction(conn, "abandoned")  # one left open by a connection that was lost

    def committed(self, conn) -> None:
        self._end_transaction(conn, "commit")

    def rolled_back(self, conn) -> None:
        self._end_transaction(conn, "rollback")

    def failed(self, exception_context) -> None:
        error = type(exception_context.original_exception).__name__
        context = exception_context.execution_context
        span = getattr(context, "_otel_span", None) if context is not None else None
        if span is not None:
            context._otel_span = None
            span.set_status(Status(StatusCode.ERROR, error))
            span.end()
        connection = exception_context.connection
        if connection is not None and "_otel_tx" in connection.info:
            connection.info["_otel_tx"][0].set_status(Status(StatusCode.ERROR, error))


def instrument_engine(engine: Any, provider: TracerProvider) -> StatementSpans | None:
    """Statement spans for one engine (the async engine's `sync_engine`)."""
    if "sqlalchemy" not in enabled_instrumentations():
        return None
    return StatementSpans(engine, provider)
