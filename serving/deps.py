"""FastAPI dependencies: what a route needs from the app (settings, analyser, metrics, upload
slots) and the API-key check, each declared once and injected (as in the FastAPI full-stack
template's ``api/deps.py``), so a route is a plain function that a test can call on its own app."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from serving.analysis import Analyzer
from serving.errors import AuthError
from serving.metrics import ServerMetrics
from serving.settings import ServerSettings
from serving.uploads import UploadSlots


def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


def get_analyzer(request: Request) -> Analyzer:
    return request.app.state.analyzer


def get_metrics(request: Request) -> ServerMetrics:
    return request.app.state.metrics


def get_upload_slots(request: Request) -> UploadSlots:
    return request.app.state.uploads


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
AnalyzerDep = Annotated[Analyzer, Depends(get_analyzer)]
MetricsDep = Annotated[ServerMetrics, Depends(get_metrics)]
UploadsDep = Annotated[UploadSlots, Depends(get_upload_slots)]


async def require_api_key(request: Request, settings: SettingsDep) -> None:
    """With ``MOTTLING_API_KEY`` set, every /v1 request carries it in ``X-API-Key`` or as a bearer
    token; compared in constant time."""
    if settings.api_key is None:
        return
    supplied = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if supplied is None and auth.lower().startswith("bearer "):
        supplied = auth[7:].strip()
    if not supplied:
        raise AuthError("an API key is required (X-API-Key header)", 401)
    if not hmac.compare_digest(supplied.encode(), settings.api_key.get_secret_value().encode()):
        raise AuthError("the API key is not valid", 403)
