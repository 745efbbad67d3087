"""One uploaded part into its JSON body: the photo part (``image``) and the video part (``video``
with its ``site`` and ``roi`` fields), shared by /v1/mottling, /v1/crt and /v1/assess."""

from __future__ import annotations

import os

from mottling.crt.roi import parse_roi
from mottling.errors import InputError, UnprocessableInputError
from mottling.results import IMAGE_QUALITY_MESSAGES, CrtResult, MottlingResult
from mottling.scale import SITES
from serving.analysis import Analyzer
from serving.metrics import ServerMetrics
from serving.uploads import ParsedForm


def parse_site(value: str | None) -> str:
    if value is None or value == "":
        raise UnprocessableInputError("form field 'site' is required with a video: 'finger' or 'knee'")
    site = value.strip().lower()
    if site not in SITES:
        raise UnprocessableInputError(f"site must be 'finger' or 'knee', got {value[:40]!r}")
    return site


def safe_filename(name: str | None) -> str | None:
    """The client's file name without any folder part: it is echoed as ``path``, never opened."""
    if not name:
        return None
    return os.path.basename(name.replace("\\", "/"))[:255] or None


async def score_photo_part(analyzer: Analyzer, form: ParsedForm,
                           overlay: bool) -> tuple[dict, MottlingResult]:
    part = form.files["image"]
    if not part.data:
        raise InputError("the image upload is empty (0 bytes)")
    scored = await analyzer.score_photo_async(part.data, safe_filename(part.filename), overlay)
    out = scored.result.to_dict()
    # The page shows these; the flags stay in "quality" exactly as the CLI prints them.
    out["quality_messages"] = [IMAGE_QUALITY_MESSAGES.get(q, q) for q in scored.result.quality]
    if overlay:
        out["overlay_png"] = scored.overlay_png
    return out, scored.result


async def measure_video_part(analyzer: Analyzer, metrics: ServerMetrics, form: ParsedForm,
                             curve: bool) -> tuple[dict, CrtResult]:
    part = form.files["video"]
    site = parse_site(form.fields.get("site"))
    roi = parse_roi(form.fields.get("roi"))
    if not part.data:
        raise InputError("the video upload is empty (0 bytes)")
    result = await analyzer.measure_video_async(part.data, site, roi, safe_filename(part.filename))
    if result.status != "ok":
        metrics.crt_rejected.labels((result.reason or "unknown").split(":")[0][:40]).inc()
    return result.to_dict(include_curve=curve), result
