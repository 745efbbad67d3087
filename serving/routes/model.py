"""``GET /v1/model``: the model card, its metadata and the server's limits."""

from __future__ import annotations

from fastapi import Request

from serving.deps import AnalyzerDep, SettingsDep
from serving.responses import SafeJSONResponse, envelope
from serving.routes import v1_router
from serving.schemas import ERROR_RESPONSES, ModelBody

router = v1_router()


@router.get("/model", response_class=SafeJSONResponse, responses={200: {"model": ModelBody}, **ERROR_RESPONSES},
            summary="Model card, metadata and the server's limits")
async def get_model(request: Request, settings: SettingsDep, analyzer: AnalyzerDep):
    info = analyzer.model_info()
    return SafeJSONResponse(envelope(request, {
        "model": info,
        "limits": {"max_image_bytes": settings.max_image_bytes, "max_video_bytes": settings.max_video_bytes,
                   "max_video_s": settings.max_video_s, "max_image_pixels": settings.max_image_pixels},
        "thresholds": {"finger_s": settings.crt_finger_s, "knee_s": settings.crt_knee_s},
    }))
