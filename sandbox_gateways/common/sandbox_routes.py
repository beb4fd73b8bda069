"""Routes every gateway serves at its root: the status page and the sandbox-only controls."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox_gateways.common.faults import REGIONS, FaultValidationError, validate_fault_update
from sandbox_gateways.common.gateway import Gateway, json_response
from sandbox_gateways.common.statuspage import build_summary


def _invalid(message: str, errors: list[dict[str, str]]) -> Response:
    return json_response(
        422, {"error": {"type": "invalid_request", "message": message, "errors": errors}}
    )


def sandbox_routes(gateway: Gateway) -> list[Route]:
    async def summary(request: Request) -> Response:
        body = build_summary(
            gateway.provider, gateway.display_name, gateway.faults.configs, gateway.started_at
        )
        body["page"]["url"] = str(request.base_url).rstrip("/")
        return json_response(200, body)

    async def put_faults(request: Request) -> Response:
        region = request.path_params["region"]
        if region not in REGIONS and region != "all":
            return _invalid(
                "unknown region",
                [{"field": "region", "message": "must be one of eu, us, apac, all"}],
            )
        raw = await request.body()
        try:
            payload = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return _invalid("body is not valid JSON", [{"field": "body", "message": "invalid JSON"}])
        try:
            update = validate_fault_update(payload)
        except FaultValidationError as exc:
            return _invalid("invalid fault configuration", exc.errors)
        gateway.faults.update(region, update)
        return json_response(200, {"faults": gateway.faults.to_dict()})

    async def get_faults(request: Request) -> Response:
        return json_response(200, {"faults": gateway.faults.to_dict()})

    async def clear_faults(request: Request) -> Response:
        gateway.faults.clear()
        return json_response(200, {"faults": gateway.faults.to_dict()})

    async def reset(request: Request) -> Response:
        gateway.reset()
        return json_response(200, {"reset": True})

    async def ledger(request: Request) -> Response:
        return json_response(200, gateway.ledger.to_dict())

    return [
        Route("/api/v2/summary.json", summary, methods=["GET"]),
        Route("/_sandbox/faults/{region}", put_faults, methods=["PUT"]),
        Route("/_sandbox/faults", get_faults, methods=["GET"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/ledger", ledger, methods=["GET"]),
    ]
