"""How every failure becomes ``{"error", "request_id", "model_version"}`` JSON with an honest status.

The status of a ``MottlingError`` is its class's ``http_status``; docs/errors.md lists them all
and tests/test_hostile_error_codes.py holds the code to that table.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mottling.errors import MottlingError
from serving.responses import error_response, request_id
from serving.uploads import ServerBusyError

log = logging.getLogger(__name__)


class AuthError(MottlingError):
    """A missing (401) or wrong (403) API key."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.http_status = status


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MottlingError)
    async def mottling_error(request: Request, err: MottlingError):
        headers = {"Retry-After": "2"} if isinstance(err, ServerBusyError) else None
        if isinstance(err, AuthError) and err.http_status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        if err.http_status == 408:
            headers = {"Connection": "close"}   # the rest of a stalled body is not awaited
        return error_response(request, err.http_status, str(err), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        return error_response(request, err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError):
        details = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                            for e in err.errors())
        return error_response(request, 422, f"invalid request: {details}")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, err: Exception):
        # Runs outside the request-id middleware (Starlette's outermost layer), so add the header here.
        log.exception("unhandled error on %s (request %s)", request.url.path, request_id(request))
        return error_response(request, 500, "internal error; the request id identifies it in the log",
                              {"X-Request-ID": request_id(request)})
