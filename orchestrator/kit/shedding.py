"""Load shedding at the door: past a limit of payments in flight, answer 503 at once."""

from __future__ import annotations

import json

from orchestrator.resilience.shedding import InflightGate

_BODY = json.dumps({"error": {"type": "api_error", "code": "overloaded",
                              "message": "Too many payments in flight; retry after the indicated delay.",
                              "param": None}}).encode()


class LoadSheddingMiddleware:
    """Counts POSTs under /v1/ in flight; beyond the gate's limit they are refused, not queued."""

    def __init__(self, app, gate: InflightGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if not self.gate.try_enter():
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"), (b"retry-after", str(self.gate.retry_after_s).encode()),
                (b"content-length", str(len(_BODY)).encode())]})
            await send({"type": "http.response.body", "body": _BODY})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.leave()
