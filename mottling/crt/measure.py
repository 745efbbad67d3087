"""``measure_crt``: video in, ``CrtResult`` out (definitions and JSON keys: docs/design.md)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from mottling.crt import gates as g
from mottling.crt.refill import LN10, detect_press, fit_recovery
from mottling.crt.roi import auto_roi, baseline_count, coarse_stack, spot_geometry, track_shifts
from mottling.crt.signal import DEFAULT_SIGNAL, colour_signal, relative_colour, spot_series
from mottling.crt.video import DecodedVideo, VideoLimits, VideoSource, decode_video
from mottling.errors import InputError, UnprocessableInputError
from mottling.results import CrtResult, RecoveryCurve
from mottling.scale import DEFAULT_THRESHOLDS, SITES, CrtThresholds, is_crt_prolonged

log = logging.getLogger(__name__)

MAX_FIT_S = 25.0
SETTLE_S = 0.4   # after the lift, the hand needs this long to leave the picture


def measure_crt(source: VideoSource, site: str, roi: tuple[int, int, int, int] | None = None,
                path: str | None = None, thresholds: CrtThresholds = DEFAULT_THRESHOLDS,
                *, limits: VideoLimits = VideoLimits(), gates: g.QualityGates = g.DEFAULT_GATES,
                colour: str = DEFAULT_SIGNAL) -> CrtResult:
    """Capillary refill time of the press-and-release in ``source``.

    ``roi`` (x, y, w, h in upright source pixels) marks the pressed spot; without it the spot is
    found automatically. Raises an ``InputError`` subclass for a video that cannot be read; a
    readable video that cannot be trusted comes back with ``status == "rejected"`` and a reason.
    """
    if site not in SITES:
        raise InputError(f"site must be 'finger' or 'knee', got {site!r}")
    if path is None and isinstance(source, (str, Path)):
        path = str(source)
    video = decode_video(source, limits)
    return analyse(video, site, roi, path, thresholds, gates, colour)


def analyse(video: DecodedVideo, site: str, roi, path, thresholds, gates, colour) -> CrtResult:
    threshold_s = thresholds.for_site(site)
    t = video.t_s
    n = len(t)
    fps = video.fps
    frames = video.frames
    h, w = frames.shape[1:3]

    def rejected(reason: str, **kw) -> CrtResult:
        return CrtResult(path=path, site=site, status="rejected", reason=reason, crt_s=None,
                         crt_ci95=None, tau_s=None, release_s=kw.get("release_s"),
                         threshold_s=threshold_s, prolonged=None,
                         fps=fps if math.isfinite(fps) else None, frames=n,
                         roi=kw.get("roi"), curve=kw.get("curve"))

    n_base = baseline_count(t)
    if t[min(n_base, n - 1)] < gates.min_baseline_s or n < 3 * n_base:
        return rejected("no press found: the video is too short to hold a baseline, a press and "
                        "a refill")
    coarse = coarse_stack(frames)
    if roi is not None:
        roi_a = _to_analysis(roi, video)
        roi_out = tuple(int(v) for v in roi)
    else:
        roi_a = auto_roi(coarse, t)
        if roi_a is None:
            return rejected("no press found: no blanched spot was found in the video")
        roi_out = _to_source(roi_a, video)
    geom = spot_geometry((h, w), roi_a)
    series = spot_series(frames, coarse, geom, n_base)
    base_idx = np.arange(n_base)

    spot_log = np.log(np.maximum(series.roi_rgb, 0.5) / np.maximum(series.ring_rgb, 0.5))
    ring_sum = series.ring_rgb.sum(axis=1, keepdims=True)
    ring_log = np.concatenate([np.log(np.maximum(series.ring_rgb, 0.5) / np.maximum(ring_sum, 1.0)),
                               np.log(np.maximum(series.ring_rgb.mean(axis=1, keepdims=True), 0.5)
                                      / np.maximum(series.far_rgb.mean(axis=1, keepdims=True), 0.5))],
                              axis=1)
    raw_log = (np.log(np.maximum(series.roi_rgb, 0.5))
               - np.log(np.maximum(series.far_rgb.mean(axis=1, keepdims=True), 0.5)))
    timing, reason = detect_press(t, spot_log, ring_log, n_base, raw_log)
    if timing is None:
        return rejected(reason, roi=roi_out)
    release_s = timing.release_s
    post = np.arange(timing.clear_idx, n)
    post = post[t[post] - release_s <= MAX_FIT_S]
    if len(post) < gates.min_post_frames:
        return rejected("too few frames after release", release_s=release_s, roi=roi_out)

    usable = np.concatenate([base_idx, post])
    reason = g.dark_or_saturated(series.frame_luma, series.roi_sat, usable, gates)
    # Light and motion are judged on the unpressed ring and on frames well after the lift, when
    # the examiner's hand has left the picture; both are compared with the pre-press baseline too,
    # so a change that happened earlier in the refill is still caught.
    settled = post[t[post] >= t[timing.clear_idx] + SETTLE_S]
    ring_light = np.log(np.maximum(series.ring_rgb.mean(axis=1), 1e-3))
    if reason is None and len(settled) >= 4:
        # A switched lamp leaves the skin brighter or darker than before the press; a step test
        # inside the refill also fired on the examiner's hand leaving, so the comparison with the
        # baseline is the gate.
        reason = g.lighting_shift(ring_light[settled], ring_light[base_idx], gates)
    if reason is None and len(settled) >= 4:
        shifts = track_shifts(coarse[np.concatenate([base_idx, settled])],
                              t[np.concatenate([base_idx, settled])])
        reason = g.camera_motion(shifts, min(h, w), gates)
    if reason is not None:
        return rejected(reason, release_s=release_s, roi=roi_out)

    rel = relative_colour(series, base_idx)
    noise_sd = np.maximum(np.std(rel[base_idx], axis=0), 1e-5)
    head = post[:max(3, min(6, len(post) // 8))]
    direction = np.median(rel[head], axis=0)
    y = colour_signal(rel, series.roi_rgb[base_idx].mean(axis=0), colour, direction, noise_sd)
    y_noise = float(np.std(y[base_idx]) or 1e-6)
    # Timing uncertainty of the release: where inside one frame interval the lift began.
    dt = float(np.median(np.diff(t[max(timing.release_idx - 3, 0):timing.release_idx + 3])))
    fit = fit_recovery(t[post] - release_s, y[post], release_sd_s=dt / math.sqrt(12))
    snr = abs(fit.amplitude) / y_noise if fit is not None else 0.0

    curve = None
    if fit is not None:
        amp = fit.amplitude
        t_fit = np.linspace(0.0, float(t[post[-1]] - release_s), 200)
        curve = RecoveryCurve(
            t_s=tuple(float(v) for v in t), signal=tuple(float(v) for v in (y - fit.offset) / amp),
            fit_t_s=tuple(float(v + release_s) for v in t_fit),
            fit=tuple(float(v) for v in fit.predict(t_fit)))
    reason = g.fit_quality(fit, snr, float(t[-1] - release_s), gates)
    if reason is not None:
        return rejected(reason, release_s=release_s, roi=roi_out, curve=curve)
    return CrtResult(
        path=path, site=site, status="ok", reason=None, crt_s=fit.crt_s, crt_ci95=fit.crt_ci95,
        tau_s=fit.tau_s, release_s=release_s, threshold_s=threshold_s,
        prolonged=is_crt_prolonged(fit.crt_s, site, thresholds), fps=fps, frames=n,
        tau_ci95=fit.tau_ci95, roi=roi_out, curve=curve)


def _to_analysis(roi, video: DecodedVideo) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in roi)
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > video.width or y + h > video.height:
        raise UnprocessableInputError(f"the ROI {x},{y},{w},{h} does not lie inside the "
                         f"{video.width}x{video.height} frame")
    s = video.scale
    return (int(round(x * s)), int(round(y * s)), max(1, int(round(w * s))),
            max(1, int(round(h * s))))


def _to_source(roi_a, video: DecodedVideo) -> tuple[int, int, int, int]:
    s = video.scale
    x, y, w, h = (int(round(v / s)) for v in roi_a)
    x, y = max(0, x), max(0, y)
    return x, y, min(w, video.width - x), min(h, video.height - y)


__all__ = ["measure_crt", "LN10"]
