"""The HTTP service: ``create_app()`` builds a FastAPI app over the mottling core (docs/design.md).

Run it with ``mottling serve``. The model is loaded once in the lifespan hook and warmed up; photo
inference and video analysis run in the threadpool; uploads are parsed in memory with a streaming
size cap (``serving.uploads``) and never touch the disk. Every response carries ``X-Request-ID``
and ``X-Model-Version``; every error is ``{"error", "request_id", "model_version"}`` JSON with the
status of the ``mottling.errors`` class that caused it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mottling import __version__
from mottling.errors import MottlingError, UnprocessableInputError
from mottling.results import IMAGE_QUALITY_MESSAGES, CrtResult, MottlingResult
from mottling.crt.roi import parse_roi
from mottling.scale import SITES, assess_hypoperfusion
from serving import fhir
from serving.analysis import Analyzer
from serving.metrics import RequestContextMiddleware, ServerMetrics
from serving.schemas import (ERROR_RESPONSES, AssessBody, CrtBody, ModelBody, MottlingBody,
                             StatusBody, multipart_body)
from serving.settings import ServerSettings
from serving.uploads import ParsedForm, ServerBusyError, UploadBudget, read_multipart

log = logging.getLogger(__name__)
# The page loads nothing from elsewhere (closed hospital networks) and runs no inline script.
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
STATIC_DIR = Path(str(resources.files("serving") / "static"))


class AuthError(MottlingError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.http_status = status


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


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "")


def _parse_site(value: str | None) -> str:
    if value is None or value == "":
        raise UnprocessableInputError("form field 'site' is required with a video: 'finger' or 'knee'")
    site = value.strip().lower()
    if site not in SITES:
        raise UnprocessableInputError(f"site must be 'finger' or 'knee', got {value[:40]!r}")
    return site


def _safe_filename(name: str | None) -> str | None:
    if not name:
        return None
    return os.path.basename(name.replace("\\", "/"))[:255] or None


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    analyzer = Analyzer(settings)
    metrics = ServerMetrics()
    uploads = {"active": 0}
    budget = UploadBudget(settings.max_buffered_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(analyzer.load)
        metrics.model_ready.set(1 if analyzer.ready else 0)
        yield

    app = FastAPI(title="Mottling", version=__version__, lifespan=lifespan,
                  description="Skin mottling score and capillary refill time from phone media. "
                              "Research use only, not a diagnosis.")
    app.state.settings = settings
    app.state.analyzer = analyzer
    app.state.metrics = metrics
    app.state.uploads = uploads
    app.state.upload_budget = budget

    # -- errors: one JSON shape everywhere --------------------------------------------------
    def error_response(request: Request, status: int, message: str, headers=None) -> SafeJSONResponse:
        return SafeJSONResponse(
            {"error": message, "request_id": _request_id(request), "model_version": analyzer.model_version},
            status_code=status, headers=headers)

    @app.exception_handler(MottlingError)
    async def mottling_error(request: Request, err: MottlingError):
        headers = {"Retry-After": "2"} if isinstance(err, ServerBusyError) else None
        if isinstance(err, AuthError) and err.http_status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
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
        log.exception("unhandled error on %s (request %s)", request.url.path, _request_id(request))
        return error_response(request, 500, "internal error; the request id identifies it in the log",
                              {"X-Request-ID": _request_id(request)})

    # -- helpers shared by the endpoints ----------------------------------------------------
    async def require_api_key(request: Request) -> None:
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

    @asynccontextmanager
    async def upload(request: Request, file_limits: dict[str, int]):
        """The parsed form, held (in memory only) until the answer is ready; counts and budget
        bound how many uploads and how many bytes this process holds at once."""
        if uploads["active"] >= settings.max_concurrent_uploads:
            raise ServerBusyError("the server is busy with other uploads; retry in a moment")
        uploads["active"] += 1
        form = None
        try:
            body_cap = sum(file_limits.values()) + 64 * 1024
            form = await read_multipart(request, file_limits, body_cap, budget)
            yield form
        finally:
            uploads["active"] -= 1
            if form is not None:
                budget.give(form.reserved_bytes)

    def envelope(request: Request, body: dict) -> dict:
        return {"request_id": _request_id(request), "model_version": analyzer.model_version, **body}

    async def score(form: ParsedForm, overlay: bool) -> tuple[dict, MottlingResult]:
        part = form.files["image"]
        if not part.data:
            raise UnprocessableInputError("the image upload is empty (0 bytes)")
        scored = await run_in_threadpool(analyzer.score_photo, part.data,
                                         _safe_filename(part.filename), overlay)
        out = scored.result.to_dict()
        # The page shows these; the flags stay in "quality" exactly as the CLI prints them.
        out["quality_messages"] = [IMAGE_QUALITY_MESSAGES.get(q, q) for q in scored.result.quality]
        if overlay:
            out["overlay_png"] = scored.overlay_png
        return out, scored.result

    async def measure(form: ParsedForm, curve: bool) -> tuple[dict, CrtResult]:
        part = form.files["video"]
        site = _parse_site(form.fields.get("site"))
        roi = parse_roi(form.fields.get("roi"))
        if not part.data:
            raise UnprocessableInputError("the video upload is empty (0 bytes)")
        result = await run_in_threadpool(analyzer.measure_video, part.data, site, roi,
                                         _safe_filename(part.filename))
        if result.status != "ok":
            metrics.crt_rejected.labels((result.reason or "unknown").split(":")[0][:40]).inc()
        return result.to_dict(include_curve=curve), result

    # -- the API ------------------------------------------------------------------------------
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], tags=["v1"])
    image_part = {"image": {"type": "string", "format": "binary", "description": "JPEG, PNG or HEIC photo"}}
    video_part = {"video": {"type": "string", "format": "binary", "description": "MP4 or MOV refill video"},
                  "site": {"type": "string", "enum": list(SITES)},
                  "roi": {"type": "string", "pattern": r"^\d+,\d+,[1-9]\d*,[1-9]\d*$",
                          "description": "X,Y,W,H of the pressed spot in upright-frame pixels"}}

    @v1.post("/mottling", response_class=SafeJSONResponse, responses={200: {"model": MottlingBody}, **ERROR_RESPONSES},
             openapi_extra=multipart_body(image_part, ["image"]), summary="Score a leg photo (0-5)")
    async def post_mottling(request: Request, overlay: bool = Query(False, description="add overlay_png")):
        async with upload(request, {"image": settings.max_image_bytes}) as form:
            if "image" not in form.files:
                raise UnprocessableInputError("the form needs an 'image' file part")
            body, _ = await score(form, overlay)
        return SafeJSONResponse(envelope(request, body))

    @v1.post("/crt", response_class=SafeJSONResponse, responses={200: {"model": CrtBody}, **ERROR_RESPONSES},
             openapi_extra=multipart_body(video_part, ["video", "site"]), summary="Measure CRT from a video")
    async def post_crt(request: Request, curve: bool = Query(False, description="add the recovery curve")):
        async with upload(request, {"video": settings.max_video_bytes}) as form:
            if "video" not in form.files:
                raise UnprocessableInputError("the form needs a 'video' file part")
            body, _ = await measure(form, curve)
        return SafeJSONResponse(envelope(request, body))

    @v1.post("/assess", response_class=SafeJSONResponse,
             responses={200: {"model": AssessBody, "content": {"application/fhir+json": {}}}, **ERROR_RESPONSES},
             openapi_extra=multipart_body({**image_part, **video_part}, []),
             summary="Photo and/or video, with the I-MICRO hypoperfusion flag")
    async def post_assess(request: Request, format: Literal["json", "fhir"] = Query("json"),
                          overlay: bool = Query(False), curve: bool = Query(False)):
        mottling_body = crt_body = mottling_result = crt_result = None
        limits = {"image": settings.max_image_bytes, "video": settings.max_video_bytes}
        async with upload(request, limits) as form:
            if "image" not in form.files and "video" not in form.files:
                raise UnprocessableInputError("send an 'image' file part, a 'video' file part, or both")
            # Photo and video are analysed side by side (both in the threadpool).
            jobs = []
            if "image" in form.files:
                jobs.append(score(form, overlay and format == "json"))
            if "video" in form.files:
                jobs.append(measure(form, curve and format == "json"))
            outcomes = await asyncio.gather(*jobs, return_exceptions=True)  # both finish first
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            for body, result in outcomes:
                if isinstance(result, MottlingResult):
                    mottling_body, mottling_result = body, result
                else:
                    crt_body, crt_result = body, result
        crt_ok = crt_result is not None and crt_result.status == "ok"
        flag = assess_hypoperfusion(
            mottling_score=None if mottling_result is None else mottling_result.usable_score,
            crt_s=crt_result.crt_s if crt_ok else None,
            site=crt_result.site if crt_ok else None,
            thresholds=settings.thresholds)
        if format == "fhir":
            bundle = fhir.assessment_bundle(mottling_result, crt_result, flag, analyzer.model_version,
                                            request_id=_request_id(request))
            return FhirJSONResponse(bundle)
        return SafeJSONResponse(envelope(request, {
            "mottling": mottling_body, "crt": crt_body, "hypoperfusion": flag.to_dict()}))

    @v1.get("/model", response_class=SafeJSONResponse, responses={200: {"model": ModelBody}, **ERROR_RESPONSES},
            summary="Model card, metadata and the server's limits")
    async def get_model(request: Request):
        info = analyzer.model_info()
        return SafeJSONResponse(envelope(request, {
            "model": info,
            "limits": {"max_image_bytes": settings.max_image_bytes, "max_video_bytes": settings.max_video_bytes,
                       "max_video_s": settings.max_video_s, "max_image_pixels": settings.max_image_pixels},
            "thresholds": {"finger_s": settings.crt_finger_s, "knee_s": settings.crt_knee_s},
        }))

    app.include_router(v1)

    # -- operations ---------------------------------------------------------------------------
    @app.get("/healthz", response_class=SafeJSONResponse, responses={200: {"model": StatusBody}}, tags=["ops"])
    async def healthz(request: Request):
        return SafeJSONResponse(envelope(request, {"status": "alive"}))

    @app.get("/readyz", response_class=SafeJSONResponse,
             responses={200: {"model": StatusBody}, 503: ERROR_RESPONSES[503]}, tags=["ops"])
    async def readyz(request: Request):
        if not analyzer.ready:
            return error_response(request, 503, f"not ready: {analyzer.model_error or 'loading the model'}")
        return SafeJSONResponse(envelope(request, {"status": "ready"}))

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def prometheus_metrics():
        metrics.model_ready.set(1 if analyzer.ready else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def bedside_page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP,
                                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "X-Model-Version"])
    # Added last, so it is the outermost: every answer, CORS preflights included, gets an id.
    app.add_middleware(RequestContextMiddleware, metrics=metrics, model_version=lambda: analyzer.model_version)
    return app
