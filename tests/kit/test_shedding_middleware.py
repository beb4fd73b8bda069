"""Past the in-flight limit, payments are refused at once with 503 and Retry-After, not queued."""

import asyncio

import httpx

from orchestrator.kit.shedding import LoadSheddingMiddleware
from orchestrator.resilience.shedding import InflightGate


async def test_requests_beyond_the_limit_get_503_at_once_and_the_rest_are_served():
    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    gate = InflightGate(2, retry_after_s=1)
    app = LoadSheddingMiddleware(slow_app, gate=gate)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        first = [asyncio.create_task(client.post("/v1/payments", json={})) for _ in range(2)]
        await asyncio.sleep(0.05)
        shed = await asyncio.wait_for(client.post("/v1/payments", json={}), timeout=1)
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert shed.json()["error"]["code"] == "overloaded"
        # Reads are never shed.
        release.set()
        assert [r.status_code for r in await asyncio.gather(*first)] == [201, 201]
        assert (await client.get("/v1/payments")).status_code == 201
        assert gate.in_flight == 0
        assert (await client.post("/v1/payments", json={})).status_code == 201
