"""``measure_crt``: video in, ``CrtResult`` out (definitions and JSON keys: docs/design.md)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from mottling.crt import gates as g
from mottling.crt.refill import LN10, fit_recovery, reported_interval
from mottling.crt.timing import detect_press
from mottling.crt.motion import block_means, track_camera
from mottling.crt.roi import (
    MIN_REDNESS,
    auto_roi,
    baseline_count,
    spot_geometry,
    whole_frame_exit,
)
from mottling.crt.signal import (
    CHANNELS,
    DEFAULT_SIGNAL,
    colour_signal,
    relative_colour,
    spot_series,
    usable_channels,
)
from mottling.crt.video import DecodedVideo, VideoLimits, VideoSource, decode_video
from mottling.errors import InputError, UnprocessableInputError
from mottling.results import CrtResult, RecoveryCurve
from mottling.scale import DEFAULT_THRESHOLDS, SITES, CrtThresholds, is_crt_prolonged

log = logging.getLogger(__name__)

MAX_FIT_S = 25.0
SETTLE_S = 0.4   # after the lift, the hand needs this long to leave the picture
EXIT_LEAD_S = 1.0   # the release precedes the hand leaving the picture by at most about this
HEAD_S = 0.2       # the blanching's colour direction is read over this long after the hand left
# The skin level with the spot is the fit's reference where it holds the unpressed spot at most
# this share as unsteady as the whole ring does (``_steadier_reference``): a clear win only. The
# standard deviation over the half-second baseline (15 frames at 30 fps) is itself uncertain by
# about a fifth, so two references that are alike differ by up to about a third by chance, and
# where they are alike the ring, with more pixels and no row thinned, is kept. Chosen on own
# 11000000 (H.264 at the drawn CRF and at 0.26 bpp) and independent 11100000 among 0.5, 0.7 and 1
# (docs/crt.md, "Session 29").
STEADIER_SHARE = 0.5
NOISE_BIN_S = 1 / 30   # the baseline noise the blanching is compared with: of 1/30 s means


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
    yuv = video.yuv
    h, w = yuv.shape[1:3]
    extra: dict = {}

    def rejected(reason: str, **kw) -> CrtResult:
        # Whatever else failed, a camera that carried the patient's skin out of the picture is
        # the reason (a dark frame aside: it is named first, as the light failed).
        if g.reason_category(reason) not in ("dark", "motion"):
            reason = skin_left(yuv, video.matrix, t, n_base, video.scale, gates) or reason
        return CrtResult(path=path, site=site, status="rejected", reason=reason, crt_s=None,
                         crt_ci95=None, tau_s=None, release_s=kw.get("release_s"),
                         threshold_s=threshold_s, prolonged=None,
                         fps=fps if math.isfinite(fps) else None, frames=n,
                         roi=kw.get("roi"), curve=kw.get("curve"),
                         reason_category=g.reason_category(reason), **extra)

    n_base = baseline_count(t)
    if t[min(n_base, n - 1)] < gates.min_baseline_s or n < 3 * n_base:
        return rejected("no press found: the video is too short to hold a baseline, a press and "
                        "a refill")
    track = track_camera(yuv[..., 0], t, n_base)
    lost = ~(track.mismatch <= gates.max_mismatch)
    if roi is not None:
        roi_a = _to_analysis(roi, video)
        roi_out = tuple(int(v) for v in roi)
        exit_s = None
        # The whole frame says when the hand left whatever the ROI: a colour step in a given
        # spot a second or more before that is a transient inside the press (the hand shifting
        # on it), not the release. The earliest of the exits the frame offers bounds it, so a
        # drop inside the press can only loosen the bound, never move the release late. The
        # same pass says whether the hand never left (``covered``, which names rejections).
        bound_s, covered = whole_frame_exit(yuv, t, track.shifts, n_base, lost)
    else:
        found: dict = {}
        roi_a = auto_roi(yuv, video.matrix, t, track.shifts, n_base, debug=found, lost=lost)
        covered = bool(found.get("covered"))
        exit_s = bound_s = found.get("drop_s")
        if roi_a is None:
            # No spot recovers, perhaps because the camera turned away from it: the view after
            # the hand's exit is not the one before the press. That is motion (the same gate a
            # given ROI meets), with what the track followed of the move.
            after = _after_exit(t, exit_s)
            reason = g.camera_motion(track, np.concatenate([np.arange(n_base), after]),
                                     (0, 0, w, h), (h, w), video.scale, gates, check="lost")
            # ...unless the picture kept its structure and only its brightness stepped: a light
            # switched (it loses the track's frames as a move does; and where the track held, a
            # light switched over the whole picture buries the spot's recovery in its own step).
            if reason is None or _same_view(lost, after, yuv, track.shifts, n_base, video.matrix):
                reason = _frame_light(yuv, video.matrix, t, n_base, after, gates) or reason
            return rejected(reason or "no press found: no blanched spot was found in the video")
        roi_out = _to_source(roi_a, video)

    geom = spot_geometry((h, w), roi_a)
    series = spot_series(yuv, video.matrix, geom, n_base, track.shifts,
                         readout_axis=1 if video.rotation in (90, 270) else 0)
    ring_rgb = _fill_gaps(series.ring_rgb)
    far_rgb = _fill_gaps(series.far_rgb)
    base_idx = np.arange(n_base)
    # The light is read on the channels the spot did not clip before the press: a channel already
    # at the top of the scale cannot show a light switched brighter (pale skin under a bright
    # light: its red sits at 255 before and after, and the mean of the three understates the step).
    lit = usable_channels(series.roi_sat, base_idx, gates.max_saturated_share) or [0, 1, 2]

    spot_log = np.log(np.maximum(series.roi_rgb, 0.5) / np.maximum(ring_rgb, 0.5))
    ring_sum = ring_rgb.sum(axis=1, keepdims=True)
    ring_log = np.concatenate([np.log(np.maximum(ring_rgb, 0.5) / np.maximum(ring_sum, 1.0)),
                               np.log(np.maximum(ring_rgb.mean(axis=1, keepdims=True), 0.5)
                                      / np.maximum(far_rgb.mean(axis=1, keepdims=True), 0.5))],
                              axis=1)
    raw_log = (np.log(np.maximum(series.roi_rgb, 0.5))
               - np.log(np.maximum(far_rgb.mean(axis=1, keepdims=True), 0.5)))
    # The whole frame has said when the hand left (``bound_s``); the release cannot be more than
    # ``EXIT_LEAD_S`` before that (a slow lift and a rolling thumb included). Only the automatic
    # ROI's exit (``exit_s``, the one its spot confirmed) also tells the ring when the hand has
    # gone: with a given ROI the earliest candidate may be a drop inside the press, and a ring
    # allowed to clear there read own 11000000 (HEVC) video 31's release 1.3 s early.
    earliest = None if bound_s is None else bound_s - EXIT_LEAD_S
    timing, reason = detect_press(t, spot_log, ring_log, n_base, raw_log,
                                  earliest_release_s=earliest, hand_left_s=exit_s,
                                  key_frames=None if video.key is None
                                  else np.flatnonzero(video.key))
    if timing is None:
        # A light switched on or off after the lift keeps the spot looking pressed to the end;
        # when the ring, the far field and the whole frame all changed alike, the light is the
        # reason, not a press that never ended (a hand still in place darkens the ring alone).
        ring_light = _light_level(ring_rgb, lit)
        late = np.nonzero(t >= t[-1] - 0.5)[0]
        light = g.lighting_shift(ring_light[late], ring_light[base_idx], gates)
        if light is not None and _same_view(lost, late, yuv, track.shifts, n_base,
                                            video.matrix) and g.light_is_global(
                _light_shifts(late, base_idx, ring_light, series.far_rgb, series.frame_luma,
                              lit)):
            reason = light
        # A press still on at the end (the whole frame says so) is the reason the search failed.
        if g.reason_category(reason) != "lighting" and covered:
            reason = NO_RELEASE
        elif g.reason_category(reason) in ("no press", "no release") and not _same_view(
                lost, late, yuv, track.shifts, n_base, video.matrix):
            # No press, or a press that never ends, on a spot the camera no longer sees while the
            # whole frame does not say the hand stayed: the camera turned away (the same gate as
            # when no spot is found at all).
            reason = g.camera_motion(
                track, np.concatenate([base_idx, _after_exit(t, exit_s)]), (0, 0, w, h),
                (h, w), video.scale, gates, check="lost") or reason
        # A dark frame breaks the press and release search too; it is the reason then.
        reason = g.dark_frames(series.frame_luma, np.arange(n), gates, t) or reason
        return rejected(reason, roi=roi_out)
    release_s = timing.release_s
    post = np.arange(timing.clear_idx, n)
    post = post[t[post] - release_s <= MAX_FIT_S]
    usable = np.concatenate([base_idx, post])
    extra["motion_px"] = track.displacement(usable) / video.scale
    extra["motion_pct"] = 100 * track.displacement(usable) / min(h, w)

    # Order matters: a dark frame also loses the camera track, a spot that left the picture also
    # changes the light read around it, and a light switched on or off also breaks the track's
    # match against the reference frames. So: dark frames; the spot out of the picture; a light
    # change seen alike over the whole picture; a track that lost its frames; any other change of
    # the light around the spot. Dark frames are looked for over the whole video, the press
    # included: a frame that goes dark while the fit skips it still says the light (or the camera)
    # failed, and one that went dark after the true release can make the timing take a later
    # change for the release (the frames before it are then "the press"). The examiner's hand
    # does not darken the whole frame so far: over ten cached check sets (592 clean videos, own
    # and independent, and 20 switched lights) every frame keeps >= 0.87 of the median of the
    # frames within a second of it, against the gate's 0.4 (the whole video's median flagged a
    # clean one); the 26 broken videos' dark frames fall to 0.03-0.05 (docs/crt.md, lead s21).
    reason = g.dark_frames(series.frame_luma, np.arange(n), gates, t)
    # A dark frame can also cut the refill short; it is named before the shortness it causes.
    if reason is None and len(post) < gates.min_post_frames:
        return rejected(NO_RELEASE if covered else "too few frames after release",
                        release_s=release_s, roi=roi_out)
    # Motion and light are judged on frames well after the lift, when the examiner's hand has
    # left the picture, against the pre-press baseline.
    settled = post[t[post] >= t[timing.clear_idx] + SETTLE_S]
    judged = np.concatenate([base_idx, settled])
    if reason is None:
        reason = g.camera_motion(track, judged, geom.inner_box, (h, w), video.scale, gates,
                                 check="left")
    ring_light = _light_level(ring_rgb, lit)
    light = None
    if len(settled) >= 4:
        light = g.lighting_shift(ring_light[settled], ring_light[base_idx], gates)
    # (A light switched keeps the view: the track still matches the reference frames there,
    # brightness divided out; a camera turned to a brighter view does not.)
    if reason is None and light is not None and _same_view(
            lost, settled[-max(3, len(settled) // 4):], yuv, track.shifts, n_base,
            video.matrix) \
            and g.light_is_global(_light_shifts(settled, base_idx, ring_light, series.far_rgb,
                                                series.frame_luma, lit)):
        reason = light
    if reason is None:
        reason = g.camera_motion(track, judged, geom.inner_box, (h, w), video.scale, gates,
                                 check="lost")
    if reason is None:
        reason = light
    if g.reason_category(reason) == "motion" and covered:
        # Frames "lost" after a release the whole frame contradicts are the hand's, still there:
        # the press never ended (a hand of the skin's own tone drags the track and the spot's
        # read with it, and the search takes that for a release).
        reason = NO_RELEASE
    channels = usable_channels(series.roi_sat, usable, gates.max_saturated_share)
    extra["dropped_channels"] = tuple(CHANNELS[c] for c in range(3) if c not in channels)
    if reason is None:
        reason = g.no_channel_left(channels)
    if reason is not None:
        return rejected(reason, release_s=release_s, roi=roi_out)
    channel = channels[0]
    extra["channel"] = CHANNELS[channel]

    rel = _steadier_reference(series.roi_rgb, ring_rgb, series.band_rgb, base_idx, channel)
    noise_sd = np.maximum(np.std(rel[base_idx], axis=0), 1e-5)
    # The same stretch of time at every frame rate (it was 3-6 frames: 25 ms of noise at 240 fps).
    head = post[t[post] < t[post[0]] + HEAD_S]
    head = head if len(head) >= 3 else post[:3]
    direction = np.median(rel[head], axis=0)
    y = colour_signal(rel, series.roi_rgb[base_idx].mean(axis=0), colour, direction, noise_sd,
                      channel=channel)
    # Noise as a 30 fps video would show it: the fit uses every frame, so a 240 fps video's
    # per-frame noise overstates what its curve is up against by up to sqrt(8).
    y_noise = _binned_sd(y, t, base_idx, NOISE_BIN_S) or 1e-6
    # Timing uncertainty of the release: where inside one frame interval the lift began.
    dt = float(np.median(np.diff(t[max(timing.release_idx - 3, 0):timing.release_idx + 3])))
    fit = fit_recovery(t[post] - release_s, y[post], release_sd_s=dt / math.sqrt(12))
    snr = abs(fit.amplitude) / y_noise if fit is not None else 0.0

    curve = None
    if fit is not None:
        amp = fit.amplitude
        t_fit = np.linspace(0.0, float(t[post[-1]] - release_s), 200)
        curve = RecoveryCurve(
            t_s=tuple(float(v) for v in t), signal=tuple(float(v) for v in y / amp),
            fit_t_s=tuple(float(v + release_s) for v in t_fit),
            fit=tuple(float(v) for v in fit.predict(t_fit)))
    end_share = None
    if fit is not None and fit.amplitude != 0:
        tail = post[t[post] >= t[post[-1]] - 0.5]
        end_share = float(np.median(y[tail])) / fit.amplitude
    reason = g.fit_quality(fit, snr, float(t[-1] - release_s), gates,
                           blanch_sign=-1.0 if colour == "a_star" else 1.0, end_share=end_share,
                           threshold_s=threshold_s)
    if reason is not None and covered:
        # The fit failed on a "release" the whole frame contradicts: the hand never left.
        reason = NO_RELEASE
    if reason is not None:
        return rejected(reason, release_s=release_s, roi=roi_out, curve=curve)
    return CrtResult(
        path=path, site=site, status="ok", reason=None, crt_s=fit.crt_s,
        crt_ci95=reported_interval(fit.crt_s, fit.crt_sd_s),
        tau_s=fit.tau_s, release_s=release_s, threshold_s=threshold_s,
        prolonged=is_crt_prolonged(fit.crt_s, site, thresholds), fps=fps, frames=n,
        tau_ci95=reported_interval(fit.tau_s, fit.tau_sd_s), roi=roi_out, curve=curve, **extra)


NO_RELEASE = "no release found: the press is still on at the end of the video"

SKIN_KEPT = 0.5    # the end must show at least this share of the skin seen before the press
MIN_SKIN = 0.05    # ...when skin covered at least this share of the pre-press picture


def skin_left(yuv: np.ndarray, matrix, t: np.ndarray, n_base: int, scale: float,
              gates: g.QualityGates = g.DEFAULT_GATES) -> str | None:
    """``motion`` when the skin seen before the press has left the picture by the video's end.

    On 4x4 block means, skin is reddish (log red/green >= ``roi.MIN_REDNESS``, not dark), as
    ``auto_roi`` reads it; the examiner's hand is skin too and a glass slide shows the skin under
    it, so a press held to the end keeps it, and a switched light scales red and green alike. A
    camera that turned away shows another view: sheet, table, background. The camera's move is
    read from the skin itself (the shift that best carries the pre-press skin blocks onto the
    end's), which holds where the camera track cannot follow (a view without texture: the track's
    mismatch stays low on a plain sheet). None when the end still shows at least ``SKIN_KEPT`` of
    the skin, or the picture held too little skin to say (under ``MIN_SKIN`` of its blocks).
    """
    n = len(t)
    if n_base < 1 or n_base >= n or min(yuv.shape[1:3]) < 4:
        return None     # no baseline before the end (a video too short to say), or no blocks
    late = np.nonzero(t >= t[-1] - 0.5)[0]
    luma = yuv[late, ::4, ::4, 0].reshape(len(late), -1).mean(axis=1, dtype=np.float64)
    ref = float(np.median(luma))
    late = late[(luma >= gates.dark_luma) & (luma >= gates.dark_drop * ref)]
    if len(late) < 2:
        return None
    base, _ = _skin_blocks(yuv, matrix, _spread_idx(np.arange(n_base), 8))
    end, blind = _skin_blocks(yuv, matrix, _spread_idx(late, 8))
    if base.mean() < MIN_SKIN:
        return None
    # Blocks the end shows clipped to white (a light switched brighter) cannot say whether skin
    # is there: the skin is counted only where the end can see it.
    seen = base & ~blind
    if seen.sum() < SKIN_KEPT * base.sum() or (end & ~blind).sum() >= SKIN_KEPT * seen.sum():
        return None
    from scipy.signal import correlate2d

    b, e = base.astype(np.int64), end.astype(np.int64)
    overlap = correlate2d(e, b, mode="full")              # [dy + hb - 1, dx + wb - 1]
    kept = correlate2d(np.ones_like(e), b, mode="full")   # base blocks still in the picture
    cost = int(e.sum()) + kept - 2 * overlap
    hb, wb = base.shape
    dy, dx = np.mgrid[-(hb - 1):hb, -(wb - 1):wb]
    dist = np.hypot(dy, dx)
    best = cost == cost.min()
    i = np.unravel_index(int(np.argmin(np.where(best, dist, np.inf))), dist.shape)
    moved_a = 4.0 * float(dist[i])
    h, w = yuv.shape[1:3]
    least = "at least " if not end.any() else "about "
    kept_pct = 100 * end.sum() / base.sum()
    return (f"motion: the skin left the picture (the camera moved {least}{moved_a / scale:.0f} "
            f"px, {100 * moved_a / min(h, w):.0f}% of the frame; {kept_pct:.0f}% of the skin is "
            "still in view); hold the phone still")


def _skin_blocks(yuv: np.ndarray, matrix, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h/4, w/4) bool: 4x4 blocks whose median colour over the frames ``idx`` is skin, and the
    blocks clipped to white (red and green both at 250+: their ratio says nothing)."""
    planes = np.stack([np.median(block_means(yuv[idx, ..., c]), axis=0) for c in range(3)],
                      axis=-1).astype(np.float64)
    rgb = matrix.to_rgb(planes)
    red = np.log(np.maximum(rgb[..., 0], 1.0) / np.maximum(rgb[..., 1], 1.0))
    blind = np.minimum(rgb[..., 0], rgb[..., 1]) >= 250.0
    return (red >= MIN_REDNESS) & (rgb.mean(axis=2) >= 14.0) & ~blind, blind


def _binned_sd(y: np.ndarray, t: np.ndarray, idx: np.ndarray, width_s: float) -> float:
    """Standard deviation of the means of ``y[idx]`` over bins ``width_s`` long (the plain
    standard deviation when the frames are that far apart already, or there are few bins)."""
    bins = np.floor((t[idx] - t[idx[0]]) / width_s).astype(np.int64)
    _, start = np.unique(bins, return_index=True)
    if len(start) < 8:
        return float(np.std(y[idx]))
    means = np.add.reduceat(y[idx], start) / np.diff(np.append(start, len(idx)))
    return float(np.std(means))


def _after_exit(t: np.ndarray, exit_s: float | None) -> np.ndarray:
    """Frames well after the hand's exit (from ``SETTLE_S`` after it; the last second when no
    exit was found)."""
    start = (t[-1] - 1.0) if exit_s is None else exit_s + SETTLE_S
    return np.nonzero(t >= min(start, t[-1]))[0]


CLIP_CODES = 2.0   # a luma block mean this close to the top of the code range is clipped
MIN_BLOCKS = 8     # ...and a picture with fewer unclipped blocks cannot say its view changed


def _same_view(lost: np.ndarray, idx: np.ndarray, yuv: np.ndarray | None = None,
               shifts: np.ndarray | None = None, n_base: int = 0, matrix=None) -> bool:
    """The camera still sees the pre-press view on the frames ``idx``: the track follows most of
    them (the test ``roi`` uses for "the camera still follows the view"), or the picture keeps
    its pre-press structure (block-mean luma correlated >= 0.9 with the baseline's, brightness
    and contrast aside; a picture without structure cannot say it changed). A switched light can
    lose some or all of the track's frames (its tint and the codes' black level are not a pure
    gain) but keeps the picture's structure; a camera turned away loses both. Measured on the
    development sets' broken videos: switched lights lose 0-0.07 of the last frames, correlation
    0.78-1.0; cameras turned away lose 0.97-1 and correlate at most 0.78.

    Blocks at the top of the code range (within ``CLIP_CODES`` of 235, or of 255 for full-range
    video) in either picture are left out: a light switched brighter over pale skin clips most of
    the picture to white, which has no structure left to compare (own 9090000 video 67: 0.78 over
    all blocks, 0.98 over the unclipped quarter). Fewer than ``MIN_BLOCKS`` left cannot say."""
    if len(idx) == 0 or float(lost[idx].mean()) <= 0.5:
        return True
    if yuv is None or shifts is None or n_base < 1:
        return False
    base = np.median(block_means(yuv[:n_base, ..., 0]), axis=0).astype(np.float64)
    late = _spread_idx(idx, 8)
    now = np.median(np.stack([np.roll(b, tuple(-int(round(v / 4.0)) for v in shifts[i]),
                                      axis=(0, 1))
                              for b, i in zip(block_means(yuv[late, ..., 0]), late)]),
                    axis=0).astype(np.float64)
    top = 255.0 if matrix is not None and matrix.full_range else 235.0
    keep = (base < top - CLIP_CODES) & (now < top - CLIP_CODES)
    if int(keep.sum()) < MIN_BLOCKS:
        return True
    base, now = base[keep], now[keep]
    a, b = base - base.mean(), now - now.mean()
    den = float(np.sqrt((a * a).sum(dtype=np.float64) * (b * b).sum(dtype=np.float64)))
    if den <= 1e-9:
        return True
    return float((a * b).sum(dtype=np.float64)) / den >= 0.9


def _frame_light(yuv: np.ndarray, matrix, t: np.ndarray, n_base: int, idx: np.ndarray,
                 gates: g.QualityGates) -> str | None:
    """``gates.lighting_shift`` on the whole picture: the log of the mean luma of the blocks not
    clipped before the press (a block already white cannot brighten), on up to 16 of the frames
    ``idx`` against up to 8 of the baseline's."""
    if n_base < 1 or len(idx) == 0:
        return None
    top = 255.0 if matrix.full_range else 235.0
    base = block_means(yuv[_spread_idx(np.arange(n_base), 8), ..., 0]).astype(np.float64)
    keep = np.median(base, axis=0) < top - CLIP_CODES
    if int(keep.sum()) < MIN_BLOCKS:
        return None
    now = block_means(yuv[_spread_idx(idx, 16), ..., 0]).astype(np.float64)
    level = [np.log(np.maximum(matrix.luma(b[:, keep].mean(axis=1)), 1e-3)) for b in (now, base)]
    return g.lighting_shift(level[0], level[1], gates)


def _spread_idx(idx: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` of the frame indices ``idx``, evenly spread."""
    if len(idx) <= k:
        return np.asarray(idx)
    return np.asarray(idx)[np.linspace(0, len(idx) - 1, k).round().astype(int)]


def _light_level(rgb: np.ndarray, channels) -> np.ndarray:
    """(N,) log-brightness of (N, 3) RGB means: the mean of the ``channels`` given."""
    return np.log(np.maximum(rgb[:, sorted(channels)].mean(axis=1), 1e-3))


def _light_shifts(settled, base_idx, ring_light, far_rgb, frame_luma,
                  channels=(0, 1, 2)) -> tuple[float, ...]:
    """Log-brightness after the refill against before the press: ring, far field, whole frame
    (the same late frames ``gates.lighting_shift`` reads; NaN where the far field was not seen;
    the ring and far field on ``channels``)."""
    late = settled[-max(3, len(settled) // 4):]
    far = _light_level(far_rgb, channels)
    luma = np.log(np.maximum(frame_luma, 1e-3))
    out = []
    for x in (ring_light, far, luma):
        a, b = x[late], x[base_idx]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        out.append(float(np.median(a) - np.median(b)) if len(a) and len(b) else float("nan"))
    return tuple(out)


def _steadier_reference(roi_rgb: np.ndarray, ring_rgb: np.ndarray, band_rgb: np.ndarray | None,
                        base_idx: np.ndarray, channel: int) -> np.ndarray:
    """The spot's colour change (``relative_colour``) against the whole ring, or against the skin
    level with the spot (``signal.row_matched``) where that holds it clearly steadier before the
    press, in the fitted channel (``STEADIER_SHARE``). A rolling shutter's flicker bands cancel
    only against the level skin, which holds fewer pixels than the ring; without bands the ring's
    mean is the quieter. The untouched spot before the press shows which the video needs (the
    unpressed spot changes by nothing but the light and the noise)."""
    rel = relative_colour(roi_rgb, ring_rgb, base_idx)
    if band_rgb is None:
        return rel
    level = relative_colour(roi_rgb, _fill_gaps(band_rgb), base_idx)
    return level if (np.std(level[base_idx, channel])
                     < STEADIER_SHARE * np.std(rel[base_idx, channel])) else rel


def _fill_gaps(rgb: np.ndarray) -> np.ndarray:
    """Rows that could not be read (the ring out of the picture) take the nearest earlier row."""
    bad = ~np.isfinite(rgb).all(axis=1)
    if not bad.any():
        return rgb
    good = np.nonzero(~bad)[0]
    if len(good) == 0:
        return np.ones_like(rgb)
    src = good[np.clip(np.searchsorted(good, np.arange(len(rgb)), side="right") - 1, 0, None)]
    return rgb[src]


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
