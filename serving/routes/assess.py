"""``POST /v1/assess``: photo and/or video, with the I-MICRO hypoperfusion flag.

A part that cannot be analysed does not throw away the other: a good photo with an unreadable video
answers 200 with the score, and the video part carries ``{"status": "error", "error",
"http_status"}`` (the answer /v1/crt would have given) and ``"partial": true`` at the top. The
flag then names only the criteria that were evaluated. Only when every part sent fails is the whole
request an error, with the status of the first failure.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import Query, Request

from mottling.errors import MottlingError, UnprocessableInputError
from mottling.results import CrtResult, MottlingResult
from mottling.scale import assess_hypoperfusion
from serving import fhir
from serving.deps import AnalyzerDep, MetricsDep, SettingsDep, UploadsDep
from serving.parts import measure_video_part, score_photo_part
from serving.responses import FhirJSONResponse, SafeJSONResponse, envelope, request_id
from serving.routes import v1_router
from serving.schemas import ERROR_RESPONSES, IMAGE_PART, VIDEO_PART, AssessBody, multipart_body

router = v1_router()


def part_error(err: MottlingError) -> dict:
    return {"status": "error", "error": str(err), "http_status": err.http_status}


@router.post("/assess", response_class=SafeJSONResponse,
             responses={200: {"model": AssessBody, "content": {"application/fhir+json": {}}}, **ERROR_RESPONSES},
             openapi_extra=multipart_body({**IMAGE_PART, **VIDEO_PART}, []),
             summary="Photo and/or video, with the I-MICRO hypoperfusion flag")
async def post_assess(request: Request, settings: SettingsDep, analyzer: AnalyzerDep, metrics: MetricsDep,
                      uploads: UploadsDep, format: Literal["json", "fhir"] = Query("json"),
                      overlay: bool = Query(False), curve: bool = Query(False)):
    limits = {"image": settings.max_image_bytes, "video": settings.max_video_bytes}
    async with uploads.hold(request, limits) as form:
        if "image" not in form.files and "video" not in form.files:
            raise UnprocessableInputError("send an 'image' file part, a 'video' file part, or both")
        jobs = {}
        # Photo and video are analysed side by side, each in its own pool.
        if "image" in form.files:
            jobs["mottling"] = score_photo_part(analyzer, form, overlay and format == "json")
        if "video" in form.files:
            jobs["crt"] = measure_video_part(analyzer, metrics, form, curve and format == "json")
        outcomes = dict(zip(jobs, await asyncio.gather(*jobs.values(), return_exceptions=True)))
    failures = [o for o in outcomes.values() if isinstance(o, BaseException)]
    for err in failures:
        if not isinstance(err, MottlingError):
            raise err                      # a fault of ours: 500, never dressed up as a part error
    if len(failures) == len(outcomes):
        raise failures[0]                 # nothing could be analysed

    bodies: dict[str, dict | None] = {"mottling": None, "crt": None}
    mottling_result: MottlingResult | None = None
    crt_result: CrtResult | None = None
    for name, outcome in outcomes.items():
        if isinstance(outcome, MottlingError):
            bodies[name] = part_error(outcome)
            continue
        body, result = outcome
        bodies[name] = body
        if name == "mottling":
            mottling_result = result
        else:
            crt_result = result
    crt_ok = crt_result is not None and crt_result.status == "ok"
    flag = assess_hypoperfusion(
        mottling_score=None if mottling_result is None else mottling_result.usable_score,
        crt_s=crt_result.crt_s if crt_ok else None,
        site=crt_result.site if crt_ok else None,
        thresholds=settings.thresholds)
    if format == "fhir":
        failed = {name: str(o) for name, o in outcomes.items() if isinstance(o, MottlingError)}
        bundle = fhir.assessment_bundle(mottling_result, crt_result, flag, analyzer.model_version,
                                        request_id=request_id(request), failures=failed)
        return FhirJSONResponse(bundle)
    return SafeJSONResponse(envelope(request, {**bodies, "hypoperfusion": flag.to_dict(),
                                               "partial": bool(failures)}))
