"""One error shape for every failure: {"error": {"type", "code", "message", "param"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}


def invalid(code: str, message: str, param: str | None = None) -> ApiError:
    return ApiError(422, "invalid_request_error", code, message, param)


def not_found(what: str, ident: str, param: str = "id") -> ApiError:
    return ApiError(404, "invalid_request_error", "resource_missing", f"No such {what}: '{ident}'", param)


def unauthorized(message: str = "Invalid or missing API key.") -> ApiError:
    return ApiError(401, "authentication_error", "unauthorized", message, None, {"WWW-Authenticate": "Bearer"})


def error_body(type_: str, code: str, message: str, param: str | None = None) -> dict:
    return {"error": {"type": type_, "code": code, "message": message, "param": param}}


def error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.type, exc.code, exc.message, exc.param), exc.status, headers=exc.headers)


_STATUS_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
                 405: "invalid_request_error", 409: "idempotency_error", 429: "rate_limit_error"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the input back: it may hold card data.
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
        param = ".".join(loc) or None
        kind = first.get("type", "")
        code = "parameter_missing" if kind == "missing" else "parameter_invalid"
        message = first.get("msg", "Invalid request.")
        if param:
            message = f"{param}: {message}"
        return JSONResponse(error_body("invalid_request_error", code, message, param), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "resource_missing", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(_STATUS_TYPES.get(exc.status_code, "api_error"), code, str(exc.detail)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("api_error", "internal_error", "An internal error occurred."), 500)

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        # The database went away (restart, failover, network): retryable. The payment's Idempotency-Key
        # makes the retry safe whatever step was interrupted.
        if exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError)):
            log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
            return JSONResponse(error_body("api_error", "database_unavailable",
                                           "The database is unavailable right now; retry the request with the "
                                           "same Idempotency-Key."), 503, headers={"Retry-After": "1"})
        return await _unexpected(_request, exc)
