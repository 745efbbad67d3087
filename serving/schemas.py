"""Pydantic models of the HTTP bodies, for the OpenAPI schema (docs, clients, schemathesis).

The endpoints return the core's ``to_dict()`` output directly; these models only describe it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mottling.scale import SITES


class ErrorBody(BaseModel):
    error: str
    request_id: str
    model_version: str | None = None


class _Envelope(BaseModel):
    request_id: str
    model_version: str | None = None


class MottlingBody(_Envelope):
    path: str | None = None
    score: int
    probabilities: list[float]
    expected_score: float
    confidence: float
    quality: list[str]
    quality_messages: list[str] = []
    model_sha256: str
    overlay_png: str | None = None


class CrtBody(_Envelope):
    path: str | None = None
    site: str
    status: str
    reason: str | None = None
    crt_s: float | None = None
    crt_ci95: list[float] | None = None
    tau_s: float | None = None
    release_s: float | None = None
    threshold_s: float
    prolonged: bool | None = None
    fps: float | None = None
    frames: int
    tau_ci95: list[float] | None = None
    roi: list[int] | None = None
    curve: dict[str, list[float]] | None = None


class HypoperfusionBody(BaseModel):
    hypoperfusion: bool
    criteria: list[str]
    evaluated: list[str]


class AssessBody(_Envelope):
    # A part that could not be analysed is {"status": "error", "error", "http_status"}.
    mottling: dict[str, Any] | None = None
    crt: dict[str, Any] | None = None
    hypoperfusion: HypoperfusionBody
    partial: bool = False   # true when a part sent could not be analysed


class ModelBody(_Envelope):
    model: dict[str, Any]
    limits: dict[str, float]
    thresholds: dict[str, float]


class StatusBody(_Envelope):
    status: str


_ERRORS = {
    400: "Bad input: empty, corrupt, truncated or malformed upload",
    401: "API key missing",
    403: "API key not valid",
    413: "Upload over a size, pixel or duration limit",
    408: "The upload stalled or arrived too slowly",
    415: "Not a format the server reads, or not multipart/form-data",
    422: "Well-formed but cannot be analysed (missing part, bad field, single frame...)",
    503: "Model not loaded, or the server is busy",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _ERRORS.items()}


IMAGE_PART = {"image": {"type": "string", "format": "binary", "description": "JPEG, PNG, WebP or HEIC photo"}}
VIDEO_PART = {"video": {"type": "string", "format": "binary", "description": "MP4, MOV or WebM refill video"},
              "site": {"type": "string", "enum": list(SITES)},
              "roi": {"type": "string", "pattern": r"^\d+,\d+,[1-9]\d*,[1-9]\d*$",
                      "description": "X,Y,W,H of the pressed spot in upright-frame pixels"}}


def multipart_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An ``openapi_extra`` request body: the endpoints parse multipart themselves (never to disk)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
