"""``POST /v1/crt``: capillary refill time from one press-and-release video."""

from __future__ import annotations

from fastapi import Query, Request

from mottling.errors import UnprocessableInputError
from serving.deps import AnalyzerDep, MetricsDep, SettingsDep, UploadsDep
from serving.parts import measure_video_part
from serving.responses import SafeJSONResponse, envelope
from serving.routes import v1_router
from serving.schemas import ERROR_RESPONSES, VIDEO_PART, CrtBody, multipart_body

router = v1_router()


@router.post("/crt", response_class=SafeJSONResponse, responses={200: {"model": CrtBody}, **ERROR_RESPONSES},
             openapi_extra=multipart_body(VIDEO_PART, ["video", "site"]), summary="Measure CRT from a video")
async def post_crt(request: Request, settings: SettingsDep, analyzer: AnalyzerDep, metrics: MetricsDep,
                   uploads: UploadsDep,
                   curve: bool = Query(False, description="add the recovery curve")):
    async with uploads.hold(request, {"video": settings.max_video_bytes}) as form:
        if "video" not in form.files:
            raise UnprocessableInputError("the form needs a 'video' file part")
        body, _ = await measure_video_part(analyzer, metrics, form, curve)
    return SafeJSONResponse(envelope(request, body))
