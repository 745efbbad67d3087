"""The HTTP service: ``create_app(settings)`` wires the routes to one analyser (docs/serving.md).

Run it with ``mottling serve``. The model is loaded once in the lifespan hook and warmed up; photos
and videos are analysed off the event loop, each kind in its own pool (``serving.analysis``);
uploads are parsed in memory with size caps and read timeouts (``serving.uploads``) and never
touch the disk. The routes live in ``serving.routes`` and reach the app's state only through the
dependencies of ``serving.deps``. Every response carries ``X-Request-ID`` and ``X-Model-Version``;
every error is ``{"error", "request_id", "model_version"}`` JSON (``serving.errors``).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from mottling import __version__
from mottling.rate.app import include_rater
from serving.analysis import Analyzer
from serving.errors import install_error_handlers
from serving.limits import BodyCapMiddleware
from serving.metrics import RequestContextMiddleware, ServerMetrics
from serving.routes import assess, crt, model, mottling, ops, page
from serving.settings import ServerSettings
from serving.uploads import UploadBudget, UploadSlots, UploadTimeouts


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    analyzer = Analyzer(settings)
    metrics = ServerMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(analyzer.load)
        metrics.model_ready.set(1 if analyzer.ready else 0)
        try:
            yield
        finally:
            analyzer.close()

    app = FastAPI(title="Mottling", version=__version__, lifespan=lifespan,
                  description="Skin mottling score and capillary refill time from phone media. "
                              "Research use only, not a diagnosis.")
    app.state.settings = settings
    app.state.analyzer = analyzer
    app.state.metrics = metrics
    app.state.uploads = UploadSlots(
        settings.max_concurrent_uploads, UploadBudget(settings.max_buffered_bytes),
        UploadTimeouts(idle_s=settings.upload_idle_timeout_s,
                       min_rate_bytes_s=settings.upload_min_rate_bytes_s,
                       grace_s=settings.upload_rate_grace_s))
    install_error_handlers(app)

    for routes in (mottling, crt, assess, model, ops):
        app.include_router(routes.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    include_rater(app)  # the rater page at /rate/ when MOTTLING_RATER_ARCHIVE is set

    # Bodies of every other route (the rater's answers, anything added later) stay small.
    upload_paths = frozenset(r.path for m in (mottling, crt, assess) for r in m.router.routes)
    app.add_middleware(BodyCapMiddleware, exempt_paths=upload_paths)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "X-Model-Version"])
    # Added last, so it is the outermost: every answer, CORS preflights included, gets an id.
    app.add_middleware(RequestContextMiddleware, metrics=metrics, model_version=lambda: analyzer.model_version)
    return app
