"""The one place where provider adapters do I/O.

An adapter builds a plain `HttpRequest` (pure), hands it to `send` with the shared
`httpx.AsyncClient` and the call's `Timeouts`, and parses what comes back (pure). `send` never
raises for a network fault: it returns either an `HttpResponse` (any HTTP status) or a
`TransportFailure` that says what the failure means for the money:

* TRANSIENT: the request certainly never reached the server (connection refused or unreachable,
  connect timeout, no pooled connection free in time). Nothing can have been charged.
* AMBIGUOUS: the request may have been sent (read timeout, read or write error, the server closed
  the connection without a complete response). The provider may have acted on it.
* CONFIG_ERROR: the request could not even be formed (bad URL or scheme). Nothing was sent.

Cancellation (the caller's deadline) is not a network fault and propagates; a caller that cancels
an in-flight charge must treat it as ambiguous.

Secrets travel only in `HttpRequest.headers`, which never reach a log line, a repr or a failure
message. Tracing hooks in here: `send` is the single span per provider call.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlencode

import httpx

from orchestrator.providers.base import Outcome, Timeouts

log = logging.getLogger(__name__)

# Header names whose values are secrets (compared lower-case).
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization", "cookie"})
_MAX_TEXT = 4096  # how much of a non-JSON body is kept for messages


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A plain description of one HTTP call. Exactly one of `form` and `json` may be set."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] | None = None  # query string
    form: tuple[tuple[str, str], ...] | None = None  # application/x-www-form-urlencoded, in order
    json: Any = None

    def __repr__(self) -> str:
        return (
            f"HttpRequest(method={self.method!r}, url={self.url!r}, "
            f"headers={redact_headers(self.headers)!r}, params={self.params!r}, "
            f"form={self.form!r}, json={self.json!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None when the body is empty or not JSON
    text: str  # the raw body (truncated), for messages when it is not JSON
    elapsed_s: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True, slots=True)
class TransportFailure:
    outcome: Outcome  # TRANSIENT, AMBIGUOUS or CONFIG_ERROR
    reason: str  # a short machine word: "connect_error", "read_timeout", ...
    elapsed_s: float

    @property
    def message(self) -> str:
        return f"network failure: {self.reason}"


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def http_timeout(timeouts: Timeouts) -> httpx.Timeout:
    """Explicit limits for every phase: connecting and waiting for a pooled connection are bounded
    by the connect limit, sending and each read by the read limit."""
    return httpx.Timeout(
        connect=timeouts.connect_s,
        read=timeouts.read_s,
        write=timeouts.read_s,
        pool=timeouts.connect_s,
    )


# Order matters: timeouts and connect errors are subclasses of broader httpx errors.
_FAILURES: tuple[tuple[type[BaseException], Outcome, str], ...] = (
    (httpx.ConnectTimeout, Outcome.TRANSIENT, "connect_timeout"),
    (httpx.PoolTimeout, Outcome.TRANSIENT, "pool_timeout"),
    (httpx.ConnectError, Outcome.TRANSIENT, "connect_error"),
    (httpx.ProxyError, Outcome.TRANSIENT, "proxy_error"),
    (httpx.ReadTimeout, Outcome.AMBIGUOUS, "read_timeout"),
    (httpx.WriteTimeout, Outcome.AMBIGUOUS, "write_timeout"),
    (httpx.ReadError, Outcome.AMBIGUOUS, "read_error"),
    (httpx.WriteError, Outcome.AMBIGUOUS, "write_error"),
    (httpx.RemoteProtocolError, Outcome.AMBIGUOUS, "remote_protocol_error"),
    (httpx.DecodingError, Outcome.AMBIGUOUS, "decoding_error"),
    (httpx.UnsupportedProtocol, Outcome.CONFIG_ERROR, "unsupported_protocol"),
    (httpx.LocalProtocolError, Outcome.CONFIG_ERROR, "local_protocol_error"),
    (httpx.InvalidURL, Outcome.CONFIG_ERROR, "invalid_url"),
    (httpx.TimeoutException, Outcome.AMBIGUOUS, "timeout"),
    (httpx.NetworkError, Outcome.AMBIGUOUS, "network_error"),
    (httpx.TransportError, Outcome.AMBIGUOUS, "transport_error"),
)


def classify_exception(exc: BaseException) -> tuple[Outcome, str]:
    """What a failed send means for the money. Unknown failures are ambiguous, never transient."""
    for kind, outcome, reason in _FAILURES:
        if isinstance(exc, kind):
            return outcome, reason
    return Outcome.AMBIGUOUS, "unexpected_error"


def _parse_body(content: bytes) -> tuple[Any, str]:
    if not content:
        return None, ""
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text), text[:_MAX_TEXT]
    except ValueError:
        return None, text[:_MAX_TEXT]


async def send(
    client: httpx.AsyncClient, request: HttpRequest, timeouts: Timeouts
) -> HttpResponse | TransportFailure:
    """Send one request and return the response or a classified failure; never raises for the
    network. Redirects are not followed: a provider API answers, it does not redirect."""
    headers = dict(request.headers)
    content: bytes | None = None
    if request.form is not None:
        content = urlencode(request.form).encode("ascii")
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    started = time.perf_counter()
    try:
        response = await client.request(
            request.method,
            request.url,
            headers=headers,
            params=dict(request.params) if request.params is not None else None,
            content=content,
            json=request.json if content is None else None,
            timeout=http_timeout(timeouts),
            follow_redirects=False,
        )
    except Exception as exc:  # noqa: BLE001 - every network fault becomes a value
        elapsed = time.perf_counter() - started
        outcome, reason = classify_exception(exc)
        # The exception text is left out on purpose: it is not needed and must never carry secrets.
        log.debug(
            "%s %s failed after %.1f ms: %s (%s)",
            request.method, request.url, elapsed * 1e3, reason, type(exc).__name__,
        )
        return TransportFailure(outcome=outcome, reason=reason, elapsed_s=elapsed)
    elapsed = time.perf_counter() - started
    body, text = _parse_body(response.content)
    log.debug("%s %s -> %d in %.1f ms", request.method, request.url, response.status_code, elapsed * 1e3)
    return HttpResponse(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        body=body,
        text=text,
        elapsed_s=elapsed,
    )
