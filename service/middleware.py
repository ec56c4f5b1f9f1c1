"""Plain ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): request body
limit and Prometheus metrics."""

from __future__ import annotations

import asyncio
import functools
import time

from prometheus_client import Counter, Histogram

from archscore.contract.settings import get_settings
from archscore.service.errors import BodyTooLarge, UploadTimeout, error_response

REQUESTS = Counter("archscore_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("archscore_http_request_seconds", "HTTP request latency", ["method", "route"])


class LimitsAndMetrics:
    """Refuses bodies over max_body_bytes, by Content-Length or by the bytes actually received (a
    chunked body has no Content-Length), and bodies not received whole within upload_timeout_seconds
    (408), and counts requests and their latency per route."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = get_settings()
        limit = settings.max_model_bytes if scope["path"] == "/v1/models" else settings.max_body_bytes  # an upload
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            response = error_response(
                413, "request body too large", [("body", f"{int(length)} bytes, at most {limit}")]
            )
            return await response(scope, receive, send)
        received = 0
        status = 500
        deadline = asyncio.get_running_loop().time() + settings.upload_timeout_seconds
        body_complete = False

        async def counted_receive():
            nonlocal received, body_complete
            if body_complete:  # later receives wait for the client to disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise UploadTimeout(settings.upload_timeout_seconds) from None
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_with_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, counted_receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            requests, latency = _series(scope["method"], route, status)
            requests.inc()
            latency.observe(time.perf_counter() - started)


@functools.lru_cache(maxsize=1024)  # labels() validates and locks on every call: a share of a cached answer
def _series(method: str, route: str, status: int):
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)
