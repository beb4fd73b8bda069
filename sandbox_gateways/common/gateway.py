"""What every sandbox gateway shares: its state, the fault pipeline and the response helpers.

Request pipeline of a faulted route (payments, refunds and lookups under /eu, /us, /apac):

1. draw the region's faults (four numbers from the seeded RNG);
2. `reset` drops the TCP connection, nothing else happens; `error` answers the configured status
   in the provider's error format, nothing is charged or saved;
3. authentication and request validation (their errors are not saved under the idempotency key);
4. for payment-taking POSTs with an idempotency key: mismatch / in-flight / saved response, or the
   key is marked in flight;
5. the latency (`latency_ms` +/- `latency_jitter_ms`) is slept;
6. a saved response is replayed at once; otherwise the request is processed and its response saved;
7. `timeout` (payment-taking POSTs only): the response is held for `timeout_hold_s` or until the
   client disconnects.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox_gateways.common.clock import utc_now_iso
from sandbox_gateways.common.faults import Draw, FaultState
from sandbox_gateways.common.idempotency import Begin, IdempotencyStore, SavedResponse
from sandbox_gateways.common.ledger import Ledger

RAW_SEND_KEY = "sandbox_gateways.raw_send"
DEFAULT_TIMEOUT_HOLD_S = 30.0
_NOT_REPLAYED_HEADERS = frozenset({"content-length"})


class Gateway:
    """In-memory state of one provider's sandbox (all three regions)."""

    def __init__(
        self,
        provider: str,
        display_name: str,
        seed: int | None,
        timeout_hold_s: float = DEFAULT_TIMEOUT_HOLD_S,
    ):
        self.provider = provider
        self.display_name = display_name
        self.seed = seed
        self.timeout_hold_s = timeout_hold_s
        self.started_at = utc_now_iso()
        self.faults = FaultState(seed, provider)
        self.ledger = Ledger()
        self.idempotency = IdempotencyStore()
        self._reset_hooks: list[Callable[[], None]] = []

    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self) -> None:
        """Clear faults, ledger and idempotency keys; restart the seeded fault sequence."""
        self.faults.clear()
        self.faults.reseed()
        self.ledger.clear()
        self.idempotency.clear()
        for hook in self._reset_hooks:
            hook()


class CaptureRawSend:
    """Outermost ASGI layer: keeps the server's own `send` in the scope so that a reset fault can
    reach the connection beneath the framework's wrappers."""

    def __init__(self, app: ASGIApp, gateway: Gateway):
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await self.app(scope, receive, send)


class _NoResponse(Response):
    """Sends nothing: the connection is already gone."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


async def abort_connection(request: Request) -> Response:
    """Drop the client's TCP connection without an HTTP response.

    Under uvicorn the server's `send` is a bound method of the request-response cycle, whose
    `transport` is aborted (RST when possible). Without a transport (an in-process ASGI client)
    the reset surfaces as `ConnectionResetError` raised into the caller.
    """
    send = request.scope.get(RAW_SEND_KEY)
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionResetError("sandbox fault: connection reset before processing")
    transport.abort()
    # Let the server notice the loss so it does not try to answer on the dead connection.
    for _ in range(20):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)
    return _NoResponse()


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(obj), status_code=status, headers=headers, media_type="application/json")


def saved_from(response: Response) -> SavedResponse:
    headers = {k: v for k, v in response.headers.items() if k not in _NOT_REPLAYED_HEADERS}
    return SavedResponse(response.status_code, headers, bytes(response.body))


def replay_response(saved: SavedResponse, extra_headers: dict[str, str] | None = None) -> Response:
    headers = dict(saved.headers)
    headers["Idempotent-Replayed"] = "true"
    if extra_headers:
        headers.update(extra_headers)
    return Response(saved.body, status_code=saved.status, headers=headers)


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def hold(request: Request, seconds: float) -> None:
    """Hold the response for `seconds`, or until the client goes away."""
    if seconds <= 0:
        return
    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    watcher = asyncio.ensure_future(_wait_disconnect(request.receive))
    try:
        await asyncio.wait({sleeper, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        watcher.cancel()


async def pre_faults(
    gateway: Gateway,
    request: Request,
    region: str,
    error_response: Callable[[int], Response],
) -> tuple[Draw, Response | None]:
    """Steps 1-2 of the pipeline: returns the draw, and a response when a fault already decided
    the outcome."""
    draw = gateway.faults.draw(region)
    if draw.reset:
        return draw, await abort_connection(request)
    if draw.error:
        return draw, error_response(draw.error_status)
    return draw, None


async def after_delay(draw: Draw, response: Response) -> Response:
    if draw.delay_s > 0:
        await asyncio.sleep(draw.delay_s)
    return response


@dataclass(slots=True)
class Conflicts:
    """How a provider answers an idempotency conflict."""

    mismatch: Callable[[], Response]
    in_flight: Callable[[], Response]


async def run_payment(
    gateway: Gateway,
    request: Request,
    region: str,
    draw: Draw,
    key: str | None,
    fp: str,
    execute: Callable[[], Response] | Callable[[], Awaitable[Response]],
    conflicts: Conflicts,
    replay_headers: dict[str, str] | None = None,
) -> Response:
    """Steps 4-7 of the pipeline for a payment-taking POST."""
    store = gateway.idempotency
    if key is not None:
        state, saved = store.begin(region, key, fp)
        if state is Begin.MISMATCH:
            return await after_delay(draw, conflicts.mismatch())
        if state is Begin.IN_FLIGHT:
            return await after_delay(draw, conflicts.in_flight())
        if state is Begin.REPLAY:
            assert saved is not None
            return await after_delay(draw, replay_response(saved, replay_headers))
    try:
        if draw.delay_s > 0:
            await asyncio.sleep(draw.delay_s)
        response = execute()
        if asyncio.iscoroutine(response):
            response = await response
    except BaseException:
        if key is not None:
            store.abandon(region, key)
        raise
    if key is not None:
        store.complete(region, key, saved_from(response))
    if draw.timeout:
        await hold(request, gateway.timeout_hold_s)
    return response
