"""``POST /v1/mottling``: score one leg photo."""

from __future__ import annotations

from fastapi import Query, Request

from mottling.errors import UnprocessableInputError
from serving.deps import AnalyzerDep, SettingsDep, UploadsDep
from serving.parts import score_photo_part
from serving.responses import SafeJSONResponse, envelope
from serving.routes import v1_router
from serving.schemas import ERROR_RESPONSES, IMAGE_PART, MottlingBody, multipart_body

router = v1_router()


@router.post("/mottling", response_class=SafeJSONResponse,
             responses={200: {"model": MottlingBody}, **ERROR_RESPONSES},
             openapi_extra=multipart_body(IMAGE_PART, ["image"]), summary="Score a leg photo (0-5)")
async def post_mottling(request: Request, settings: SettingsDep, analyzer: AnalyzerDep,
                        uploads: UploadsDep,
                        overlay: bool = Query(False, description="add overlay_png")):
    async with uploads.hold(request, {"image": settings.max_image_bytes}) as form:
        if "image" not in form.files:
            raise UnprocessableInputError("the form needs an 'image' file part")
        body, _ = await score_photo_part(analyzer, form, overlay)
    return SafeJSONResponse(envelope(request, body))
