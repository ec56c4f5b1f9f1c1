"""Errors in one JSON shape: {"error": {"status", "message", "details": [{"field", "reason"}]}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemory
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from archscore.service.schemas import ErrorResponse

# the error answers every /v1 route documents
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "the body could not be decoded (not UTF-8 JSON, or nested too deeply)",
    },
    401: {"model": ErrorResponse, "description": "missing or invalid API key"},
    404: {"model": ErrorResponse, "description": "not found"},
    408: {"model": ErrorResponse, "description": "the request body did not arrive within the upload timeout"},
    409: {"model": ErrorResponse, "description": "conflicts with an existing checkpoint or job"},
    413: {"model": ErrorResponse, "description": "request body too large"},
    422: {"model": ErrorResponse, "description": "invalid request; details name each offending field"},
    429: {
        "model": ErrorResponse,
        "description": "the key's rate limit or its quota of unfinished jobs is reached; "
        "retry after the Retry-After header's seconds",
    },
    503: {
        "model": ErrorResponse,
        "description": "Redis (the score store and broker) is unavailable; retry after "
        "the Retry-After header's seconds",
    },
    507: {
        "model": ErrorResponse,
        "description": "no room: a bound on stored data (named in details) is reached, or Redis is out of memory",
    },
}

log = logging.getLogger("archscore.api")
RETRY_AFTER_SECONDS = 2  # the Redis client reconnects on the next command once Redis is back


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        details: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = headers or {}


class UploadTimeout(StarletteHTTPException):
    """Raised when a request body has not arrived whole within upload_timeout_seconds (a slow or
    stalled client would otherwise hold its connection and its share of the server indefinitely)."""

    def __init__(self, seconds: float):
        super().__init__(408, "request body not received in time")
        self.seconds = seconds


class BodyTooLarge(StarletteHTTPException):
    """Raised while a body without Content-Length is read past the limit (an HTTPException, so FastAPI's
    body reader lets it through to the handler instead of turning it into a 400)."""

    def __init__(self, limit: int):
        super().__init__(413, "request body too large")
        self.limit = limit


def error_response(status: int, message: str, details: list[tuple[str, str]] | None = None) -> JSONResponse:
    body = {"status": status, "message": message, "details": [{"field": f, "reason": r} for f, r in details or []]}
    return JSONResponse({"error": body}, status_code=status)


def _field(loc: tuple) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text or ".".join(map(str, loc))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.status, exc.message, exc.details)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid request", [(_field(e["loc"]), e["msg"]) for e in exc.errors()])

    @app.exception_handler(UploadTimeout)
    async def _upload_timeout(request: Request, exc: UploadTimeout) -> JSONResponse:
        response = error_response(408, exc.detail, [("body", f"not received within {exc.seconds:g} s")])
        response.headers["Connection"] = "close"
        return response

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, exc.detail, [("body", f"more than {exc.limit} bytes, at most {exc.limit}")])

    async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Redis unavailable on %s %s: %s", request.method, request.url.path, exc)
        response = error_response(
            503, "the score store is unavailable", [("redis", f"{type(exc).__name__}; retry in a few seconds")]
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    for kind in (RedisConnectionError, RedisTimeoutError, BrokerError):
        app.add_exception_handler(kind, _store_unavailable)

    @app.exception_handler(RedisOutOfMemory)
    async def _store_full(request: Request, exc: RedisOutOfMemory) -> JSONResponse:
        log.warning("Redis out of memory on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            507,
            "the score store is full",
            [
                (
                    "redis",
                    "Redis reached its maxmemory with nothing it may evict; free room (delete uploaded tables, "
                    "let jobs expire) or give Redis more memory",
                )
            ],
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        details = []
        if exc.status_code == 400:  # FastAPI's body reader: bytes that are not JSON, or nested too deeply
            details = [("body", "the body could not be decoded: not UTF-8 JSON, or nested too deeply")]
        response = error_response(exc.status_code, str(exc.detail), details)
        response.headers.update(exc.headers or {})  # e.g. the Allow of a 405
        return response
