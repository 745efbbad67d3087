"""Prometheus metrics and the request-id middleware that feeds them.

One registry per app (not the global one) so tests can build several apps in one process. With
``--workers N`` each worker process keeps its own counters; a scrape sees the worker that answered.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mottling_http_requests", "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "mottling_http_request_duration_seconds", "Time to answer a request, by route.",
            ["route"], registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
        self.in_flight = Gauge(
            "mottling_http_requests_in_flight", "Requests being handled right now.",
            registry=self.registry)
        self.rejections = Counter(
            "mottling_rejections", "Requests refused with an error, by route and status "
            "(413 too large, 415 unsupported, 422 unprocessable, 503 not ready or busy...).",
            ["route", "status"], registry=self.registry)
        self.crt_rejected = Counter(
            "mottling_crt_rejected", "CRT measurements returned as rejected, by reason.",
            ["reason"], registry=self.registry)
        self.uploads_active = Gauge(
            "mottling_uploads_active", "Uploads being received or analysed right now.",
            registry=self.registry)
        self.model_ready = Gauge(
            "mottling_model_ready", "1 when the model is loaded and warmed up.",
            registry=self.registry)


def new_request_id(incoming: str | None) -> str:
    """Keep a caller's request id when it is safe to echo, otherwise make one."""
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Gives every request an id and the model version in its response headers, and counts it.

    Pure ASGI (not BaseHTTPMiddleware), so bodies stream through untouched.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics,
                 model_version: Callable[[], str | None]) -> None:
        self.app = app
        self.metrics = metrics
        self.model_version = model_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = new_request_id(headers.get("x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = {"status": 500}
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                extra = [(REQUEST_ID_HEADER.lower().encode(), request_id.encode())]
                version = self.model_version()
                if version:
                    extra.append((b"x-model-version", version.encode("latin-1", "replace")))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            route_label = getattr(route, "path", None) or "unmatched"
            status = status_holder["status"]
            method = scope.get("method", "")
            self.metrics.requests.labels(route_label, method, str(status)).inc()
            self.metrics.latency.labels(route_label).observe(time.perf_counter() - started)
            if status >= 400:
                self.metrics.rejections.labels(route_label, str(status)).inc()
