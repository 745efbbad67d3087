"""``/healthz`` (alive), ``/readyz`` (able to take an upload now) and ``/metrics``.

Readiness is more than "the model loaded": when every upload slot or the whole upload byte budget
is in use, new uploads get a 503, so /readyz says so too and an orchestrator or load balancer can
route elsewhere instead of seeing a healthy server that refuses all work.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serving.deps import AnalyzerDep, MetricsDep, UploadsDep
from serving.responses import SafeJSONResponse, envelope, error_response
from serving.schemas import ERROR_RESPONSES, StatusBody

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_class=SafeJSONResponse, responses={200: {"model": StatusBody}})
async def healthz(request: Request):
    return SafeJSONResponse(envelope(request, {"status": "alive"}))


@router.get("/readyz", response_class=SafeJSONResponse,
            responses={200: {"model": StatusBody}, 503: ERROR_RESPONSES[503]})
async def readyz(request: Request, analyzer: AnalyzerDep, uploads: UploadsDep):
    if not analyzer.ready:
        return error_response(request, 503, f"not ready: {analyzer.model_error or 'loading the model'}",
                              {"Retry-After": "5"})
    if uploads.exhausted:
        return error_response(
            request, 503, f"not ready: busy ({uploads.active} of {uploads.max_uploads} upload slots, "
                          f"{uploads.budget.in_use / 1e6:.0f} of {uploads.budget.max_bytes / 1e6:.0f} MB "
                          "of upload memory in use)", {"Retry-After": "2"})
    return SafeJSONResponse(envelope(request, {"status": "ready"}))


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def prometheus_metrics(analyzer: AnalyzerDep, metrics: MetricsDep, uploads: UploadsDep):
    metrics.model_ready.set(1 if analyzer.ready else 0)
    metrics.uploads_active.set(uploads.active)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
