"""JSON responses that never fail on NaN, and the one error body every failure uses."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


def _finite(obj: Any) -> Any:
    """NaN and infinities are not JSON; they become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8")


class FhirJSONResponse(SafeJSONResponse):
    media_type = "application/fhir+json"


def request_id(request: Request) -> str:
    """Set by ``RequestContextMiddleware`` on every request."""
    return getattr(request.state, "request_id", "")


def model_version(request: Request) -> str | None:
    return request.app.state.analyzer.model_version


def envelope(request: Request, body: dict) -> dict:
    """Every JSON answer repeats the request id and model version of its headers."""
    return {"request_id": request_id(request), "model_version": model_version(request), **body}


def error_response(request: Request, status: int, message: str,
                   headers: dict[str, str] | None = None) -> SafeJSONResponse:
    return SafeJSONResponse(
        {"error": message, "request_id": request_id(request), "model_version": model_version(request)},
        status_code=status, headers=headers)
