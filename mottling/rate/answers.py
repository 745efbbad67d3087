"""What a rater's answer is, checked before it is stored, and the CRT computed from frame marks.

The page sends frame *indices*; the times come from the server's own list of presentation
timestamps for that video, so a CRT in a rater file is always ``t[refill] - t[release]`` on the
video's clock, whatever the browser did.
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Sequence

from mottling.errors import UnprocessableInputError
from mottling.scale import SITES

UNUSABLE_REASONS = ("camera moved", "light changed", "no press visible", "no release visible",
                    "colour never came back", "out of focus or too dark", "other")
MAX_REASON = 200

# The tidy file's columns: ``mottling agreement`` reads path, rater, score, crt_s, site;
# the training manifest reads path and score; the rest keeps the marks and their provenance.
CSV_COLUMNS = ("path", "rater", "kind", "score", "unreadable", "site", "crt_s", "release_s",
               "press_s", "refill_s", "press_frame", "release_frame", "refill_frame", "frames",
               "unusable", "reason", "order", "seed", "given_utc", "rating_ms", "revisions")


def _bad(message: str) -> UnprocessableInputError:
    return UnprocessableInputError(message)


def answer_id_of(payload: dict[str, Any]) -> str:
    """The client's id for this answer (a resend of the same answer carries the same id)."""
    raw = str(payload.get("answer_id") or "")
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise _bad("answer_id must be a UUID made by the page for this answer") from None


def _rating_ms(payload: dict[str, Any]) -> int | None:
    v = payload.get("rating_ms")
    if isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v < 86_400_000:
        return int(v)
    return None


def photo_record(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"score": 0-5}`` or ``{"unreadable": true}``."""
    if payload.get("unreadable") is True:
        return {"score": None, "unreadable": 1, "rating_ms": _rating_ms(payload)}
    score = payload.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 5:
        raise _bad("a photo answer is a score 0-5 or unreadable")
    return {"score": score, "unreadable": 0, "rating_ms": _rating_ms(payload)}


def _frame(payload: dict[str, Any], key: str, n: int, required: bool) -> int | None:
    v = payload.get(key)
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
        raise _bad(f"{key} must be a frame index 0-{n - 1}")
    return v


def video_record(payload: dict[str, Any], t_s: Sequence[float]) -> dict[str, Any]:
    """Frame marks -> times and CRT, or ``unusable`` with a reason (marks so far are kept)."""
    n = len(t_s)
    base = {"frames": n, "rating_ms": _rating_ms(payload)}
    site = payload.get("site")
    if site is not None and site not in SITES:
        raise _bad("site must be 'finger' or 'knee'")
    if payload.get("unusable") is True:
        reason = str(payload.get("reason") or "").strip()
        if not reason:
            raise _bad("say why the video is unusable")
        marks = {k: (payload.get(k) if isinstance(payload.get(k), int)
                     and not isinstance(payload.get(k), bool) and 0 <= payload.get(k) < n else None)
                 for k in ("press_frame", "release_frame", "refill_frame")}
        return {**base, **marks, "site": site, "unusable": 1, "reason": reason[:MAX_REASON],
                "crt_s": None, "press_s": None, "release_s": None, "refill_s": None}
    if site is None:
        raise _bad("choose the site of this video: finger or knee")
    press = _frame(payload, "press_frame", n, required=False)
    release = _frame(payload, "release_frame", n, required=True)
    refill = _frame(payload, "refill_frame", n, required=True)
    if press is not None and press >= release:
        raise _bad("the press must come before the release")
    if refill <= release:
        raise _bad("the colour comes back after the release")
    return {**base, "site": site, "unusable": 0, "reason": "",
            "press_frame": press, "release_frame": release, "refill_frame": refill,
            "press_s": None if press is None else t_s[press], "release_s": t_s[release],
            "refill_s": t_s[refill], "crt_s": round(t_s[refill] - t_s[release], 6)}
