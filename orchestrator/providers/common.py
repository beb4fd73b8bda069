"""Small pure helpers shared by the adapters: header parsing, status pages, result shortcuts."""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any, Mapping

from orchestrator.providers.base import ChargeResult, ComponentStatus, Outcome, RefundResult
from orchestrator.providers.transport import HttpRequest, HttpResponse, TransportFailure

REGIONS: tuple[str, ...] = ("EU", "US", "APAC")


class RequestBuildError(ValueError):
    """The request cannot be built from what we were given (missing credential, a key too long).

    Nothing is sent; the adapter answers CONFIG_ERROR with this code and message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: either delta-seconds ("120") or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def dig(data: Any, *path: str | int) -> Any:
    """data["a"]["b"][0] without KeyErrors: None as soon as a step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return None
        elif not isinstance(data, Mapping):
            return None
        data = data[step] if isinstance(step, int) else data.get(step)
        if data is None:
            return None
    return data


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def charge_failure(failure: TransportFailure) -> ChargeResult:
    return ChargeResult(outcome=failure.outcome, code=failure.reason, message=failure.message)


def refund_failure(failure: TransportFailure) -> RefundResult:
    return RefundResult(outcome=failure.outcome, code=failure.reason, message=failure.message)


def charge_build_error(error: RequestBuildError) -> ChargeResult:
    return ChargeResult(outcome=Outcome.CONFIG_ERROR, code=error.code, message=error.message)


def refund_build_error(error: RequestBuildError) -> RefundResult:
    return RefundResult(outcome=Outcome.CONFIG_ERROR, code=error.code, message=error.message)


# ------------------------------------------------------------------ Atlassian Statuspage v2

_COMPONENT_STATES = {s.value: s for s in ComponentStatus if s is not ComponentStatus.UNKNOWN}


def unknown_status() -> dict[str, ComponentStatus]:
    return {region: ComponentStatus.UNKNOWN for region in REGIONS}


def parse_statuspage_summary(status: int, body: Any) -> dict[str, ComponentStatus]:
    """`GET /api/v2/summary.json` -> {"EU": ..., "US": ..., "APAC": ...}.

    Components are named by region code. A region the page does not list, a state we do not know,
    or any malformed answer reads as UNKNOWN, never as operational.
    """
    result = unknown_status()
    if status != 200 or not isinstance(body, Mapping):
        return result
    components = body.get("components")
    if not isinstance(components, list):
        return result
    for component in components:
        if not isinstance(component, Mapping) or component.get("group") is True:
            continue
        name = text_or_none(component.get("name"))
        state = text_or_none(component.get("status"))
        if name is None:
            continue
        result[name.upper()] = _COMPONENT_STATES.get((state or "").lower(), ComponentStatus.UNKNOWN)
    return result


def build_status_request(status_url: str) -> HttpRequest:
    """The status page is read the same way at every provider (Atlassian Statuspage v2 summary)."""
    return HttpRequest(method="GET", url=status_url, headers={"Accept": "application/json"})


def status_from_response(answer: HttpResponse | TransportFailure) -> dict[str, ComponentStatus]:
    if isinstance(answer, TransportFailure):
        return unknown_status()
    return parse_statuspage_summary(answer.status, answer.body)
