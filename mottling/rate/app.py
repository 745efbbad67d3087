"""The HTTP layer of the rater workstation: a router under ``/rate`` and a small app around it.

``mottling rate`` runs ``create_app`` under uvicorn on 127.0.0.1. ``mottling serve`` includes the
same router when ``MOTTLING_RATER_ARCHIVE`` is set (``include_rater``), with the ratings written to
``MOTTLING_RATER_OUT``; there the rater types a name on the page instead of passing ``--rater``.

Every item is addressed by its opaque id; no response carries a file name, a path, another rater's
answer or a model output. Photos and frames are sent as freshly encoded JPEGs without metadata.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

from mottling.errors import InputError, MottlingError
from mottling.rate.answers import UNUSABLE_REASONS
from mottling.rate.service import RateConfig, RateService
from mottling.scale import SCORE_LEVELS, DEFAULT_THRESHOLDS

log = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("mottling.rate") / "static"))
STATIC_FILES = {"rate.js": "text/javascript", "rate.css": "text/css"}
PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP,
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# A photo or frame is private to its rater's session and never changes under its id.
MEDIA_HEADERS = {"Cache-Control": "private, max-age=86400, immutable",
                 "X-Content-Type-Options": "nosniff"}


class RaterSettings(BaseSettings):
    """``MOTTLING_RATER_ARCHIVE`` (folders or zips, separated by ``os.pathsep``) turns the rater
    page on inside ``mottling serve``; answers go to ``MOTTLING_RATER_OUT``."""

    model_config = SettingsConfigDict(env_prefix="MOTTLING_RATER_", frozen=True, extra="ignore")

    archive: str | None = None
    out: Path = Path("ratings")


def _error(err: MottlingError) -> JSONResponse:
    return JSONResponse({"error": str(err)}, status_code=err.http_status)


async def _call(fn: Callable, *args) -> Any:
    """Run blocking work (decoding, fsync) off the event loop; errors become JSON answers."""
    try:
        return await run_in_threadpool(fn, *args)
    except MottlingError as err:
        return _error(err)


def build_router(service: RateService) -> APIRouter:
    router = APIRouter(prefix="/rate", include_in_schema=False)
    config = {"fixed_rater": service.config.rater,
              "score_table": [{"score": s.score, "name": s.name, "extent": s.extent}
                              for s in SCORE_LEVELS],
              "unusable_reasons": list(UNUSABLE_REASONS),
              "thresholds_s": {"finger": DEFAULT_THRESHOLDS.finger_s,
                               "knee": DEFAULT_THRESHOLDS.knee_s}}

    @router.get("/")
    async def page():
        return Response((STATIC_DIR / "rate.html").read_bytes(), media_type="text/html",
                        headers=PAGE_HEADERS)

    @router.get("/static/{name}")
    async def static(name: str):
        if name not in STATIC_FILES:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response((STATIC_DIR / name).read_bytes(), media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @router.get("/api/config")
    async def get_config():
        return config

    @router.get("/api/session")
    async def get_session(rater: str | None = None):
        result = await _call(service.session_view, rater)
        return result

    @router.get("/api/photo/{item_id}")
    async def get_photo(item_id: str, rater: str | None = None):
        result = await _call(service.photo, rater, item_id)
        if isinstance(result, Response):
            return result
        return Response(result, media_type="image/jpeg", headers=MEDIA_HEADERS)

    @router.get("/api/video/{item_id}")
    async def get_video(item_id: str, rater: str | None = None):
        return await _call(service.video, rater, item_id)

    @router.get("/api/video/{item_id}/frame/{index}")
    async def get_frame(item_id: str, index: int, rater: str | None = None):
        result = await _call(service.video_frame, rater, item_id, index)
        if isinstance(result, Response):
            return result
        return Response(result, media_type="image/jpeg", headers=MEDIA_HEADERS)

    @router.post("/api/answer")
    async def post_answer(request: Request, rater: str | None = None):
        body = await request.body()
        if len(body) > 16_384:
            return _error(InputError("an answer is a small JSON object"))
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            return _error(InputError("the answer must be a JSON object"))
        return await _call(service.answer, rater, payload)

    return router


def create_app(service: RateService) -> FastAPI:
    """The stand-alone app of ``mottling rate``: the router, ``/`` sending to it, ``/healthz``."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="Mottling rater", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.include_router(build_router(service))

    @app.get("/")
    async def root():
        return RedirectResponse("/rate/")

    @app.get("/healthz")
    async def healthz():
        return {"status": "alive", "photos": len(service.archive.photos),
                "videos": len(service.archive.videos)}

    return app


def include_rater(app: FastAPI) -> None:
    """Add the rater page to ``mottling serve`` when ``MOTTLING_RATER_ARCHIVE`` is set."""
    settings = RaterSettings()
    if not settings.archive:
        return
    archives = tuple(a for a in settings.archive.split(os.pathsep) if a)
    service = RateService(RateConfig(archives=archives, out_dir=settings.out))
    app.include_router(build_router(service))
    log.info("rater page at /rate/: %d photos, %d videos", len(service.archive.photos),
             len(service.archive.videos))
