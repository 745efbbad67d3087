"""A cap on the body of every request that is not an upload.

The upload routes (/v1/mottling, /v1/crt, /v1/assess) read their bodies themselves, with per-part
caps and timeouts (``serving.uploads``). Any other route that reads a body (a JSON answer on the
rater page, say) would otherwise take as many bytes as a client cares to send: ``request.body()``
has no limit. This pure ASGI middleware counts the body as it passes and, as soon as it goes past
``max_bytes``, raises ``InputTooLargeError`` inside the route's read, which the app's error handler
turns into the usual 413 JSON; a declared Content-Length over the cap is refused before any read.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mottling.errors import InputTooLargeError

SMALL_BODY_BYTES = 64 * 1024


class BodyCapMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = SMALL_BODY_BYTES,
                 exempt_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, scope)
            return
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise InputTooLargeError(self._message())
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except InputTooLargeError:
            if started:         # outside the app's error handlers (a mounted app): nothing to add
                raise
            await self._refuse(send, scope)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _refuse(self, send: Send, scope: Scope | None = None) -> None:
        request_id = ((scope or {}).get("state") or {}).get("request_id", "")
        body = json.dumps({"error": self._message(), "request_id": request_id,
                           "model_version": None}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
