"""The HTTP routes, one module per resource (as in the FastAPI full-stack template's
``api/routes/``). The /v1 routers carry their prefix and the API-key dependency themselves
(``v1_router``) and are included straight into the app, so each route's path, as the metrics
label it, is the full ``/v1/...`` path. The operations endpoints and the bedside page stay open."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from serving.deps import require_api_key


def v1_router() -> APIRouter:
    return APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], tags=["v1"])
