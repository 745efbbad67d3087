"""Find the pressed spot and lay out the unpressed skin around it.

All work happens on the shrunk analysis frames. Coordinates given to or returned by the public API
are in upright source pixels; ``DecodedVideo.scale`` converts between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from mottling.crt.motion import block_means
from mottling.crt.timing import _sustained
from mottling.errors import UnprocessableInputError

TRACK_HZ = 60.0   # the occluder's exit is found on frames at about this rate
LATE_MOVE_PX = 4.0  # the video's end is compared only if the camera is within this of the exit


@dataclass(frozen=True)
class SpotGeometry:
    """Analysis-pixel masks for one video, in the reference (pre-press) frame."""

    roi: tuple[int, int, int, int]    # x, y, w, h of the pressed spot (analysis pixels)
    inner_box: tuple[int, int, int, int]  # inner part of the ROI used for the signal
    roi_mask: np.ndarray              # (h, w) bool: the inner box as a mask
    ring_mask: np.ndarray             # (h, w) bool: unpressed skin just around the contact
    far_mask: np.ndarray              # (h, w) bool: the rest of the frame (global light reference)


def baseline_count(t_s: np.ndarray, seconds: float = 0.5) -> int:
    return int(max(3, min(np.searchsorted(t_s, seconds), len(t_s) // 4)))


def _aligned(img: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``img`` moved back by the camera shift, so pixel p shows the reference's p."""
    sy, sx = (int(round(v)) for v in shift)
    return np.roll(img, (-sy, -sx), axis=(0, 1))


def auto_roi(yuv: np.ndarray, matrix, t_s: np.ndarray, shifts: np.ndarray,
             n_base: int, debug: dict | None = None,
             lost: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """The spot that is still blanched once the slide or fingertip has gone, and then recovers.

    The occluder's exit is the largest drop of the frame's overall change from its pre-press
    look (on frames aligned by the camera track, so a wandering phone does not
    count as a change). Just after the true exit only the pressed skin still differs from
    baseline, in the blanching direction (green up against red as blood leaves), and it recovers:
    by the end of the video it is back, so it differs from the last frames too. Each pixel's
    difference is read against that pixel's own noise (its frame-to-frame spread before the press
    and at the end, and what a fraction of a pixel's misalignment does at a colour edge), so the
    edge of a dark finger against a bright sheet does not outshine faint blanching on dark skin.
    Where the picture at the end still looks like the press (the hand never left), the ROI is
    where the press still is, unless the camera track has lost the view there (``lost``, per
    frame, True where the track's mismatch says another view: a camera that moved away is for
    the motion gate). Returns analysis-pixel x, y, w, h or None. ``debug``, when given, receives
    the exit time (``drop_s``) and the final map (``score``) for diagnostics.
    """
    n = len(t_s)
    base_idx = _spread(0, n_base, 8)
    chroma = _Chroma(yuv, matrix, shifts)
    c_base = chroma.median(base_idx)
    base_rgb = matrix.to_rgb(np.median(yuv[:n_base], axis=0).astype(np.float32))
    # Blanching is blood leaving tissue: only reddish skin can show it (a sheet, white, blue,
    # green, grey or cream, cannot; an encoder's shift on a flat background is not a spot).
    redness = np.log(np.maximum(base_rgb[..., 0], 1) / np.maximum(base_rgb[..., 1], 1))
    dark = (base_rgb.mean(axis=2) < 14) | (redness < MIN_REDNESS)
    gy, gx = np.gradient(c_base)
    align_sd = ALIGN_PX * np.hypot(gy, gx)
    base_sd = chroma.spread(base_idx, c_base)
    # A code's rounding (SD 1/sqrt(12)) in log green and log red.
    quant = 0.29 * np.hypot(1 / (np.maximum(base_rgb[..., 1], 0) + 2),
                            1 / (np.maximum(base_rgb[..., 0], 0) + 2))
    base_log = np.log(np.maximum(base_rgb, 0) + 2.0)
    found: dict = {}
    exit_s, covered_at_end = _exit(yuv, t_s, shifts, n_base, lost, debug=found)
    cands = found.get("candidates") or ([] if exit_s is None else [exit_s])
    if debug is not None:
        debug["covered"] = covered_at_end
    if covered_at_end:
        # The hand never left (the end looks like the press, not like the skin before it): no
        # spot can recover, so the ROI goes where the press still is, and the timing then says
        # there was no release rather than that there was no press.
        late = _spread(int(np.searchsorted(t_s, t_s[-1] - 0.6)), n, 8)
        still = np.median(np.stack([chroma.change(i, base_log) for i in late]), axis=0)
        still = ndimage.uniform_filter(still, max(3, min(still.shape) // 40))
        if debug is not None:
            debug["drop_s"], debug["score"] = None, still
        return _blob_box(still, 0.5 + 0.5 * _centre_weight(still.shape))
    # Each exit candidate (the largest drop first) gives a map; the one whose spot recovers most
    # clearly wins, unless that spot is not the patient's skin just after the exit: a hand still
    # there (the examiner's fingertip, of another tone) changes the brightness far more than
    # blood leaving the skin does (blanching: a few to 17% on both generators), so a candidate
    # whose spot is more than ``COVER_LUMA`` in log brightness away from its pre-press look is
    # refuted.
    best, best_s, base_y = None, exit_s, None
    for k, cand in enumerate(cands if exit_s is not None else []):
        m = _recovery_map(chroma, t_s, shifts, cand, c_base, base_sd, align_sd, quant, dark)
        if m is None:
            continue
        covered = _press_weight(chroma, t_s, n_base, cand, base_log, m[1].shape)
        # (raw peak, for the MIN_Z test as before; the press-weighted map; its centre weight;
        # the press-weighted peak, which candidates are compared on)
        m = (m[0], m[1] * covered, m[2], float((m[1] * covered * m[2]).max()))
        if k > 0:
            if best is not None and m[3] <= best[3]:
                continue
            if base_y is None:
                base_y = np.median(yuv[:n_base, ..., 0], axis=0).astype(np.float32)
            if abs(_luma_change(yuv, t_s, shifts, cand, _blob_box(m[1], m[2]), base_y)) > COVER_LUMA:
                continue
        best, best_s = m, cand
    if debug is not None:
        debug["drop_s"] = best_s
        if best is not None:
            debug["score"] = best[1]
    if best is None or best[0] < MIN_Z:
        return None
    return _blob_box(best[1], best[2])


def _luma_change(yuv, t_s, shifts, exit_s, box, base_y) -> float:
    """Log brightness of ``box`` 0.35-0.8 s after ``exit_s`` against its pre-press look."""
    x, y, w, h = box
    i0 = int(np.searchsorted(t_s, exit_s + 0.35))
    i1 = max(i0 + 1, int(np.searchsorted(t_s, exit_s + 0.8)))
    frames = _spread(i0, min(i1, len(t_s)), 6)
    if not frames:
        return 0.0
    now = np.median([float(_aligned(yuv[i, ..., 0].astype(np.float32), shifts[i])
                           [y:y + h, x:x + w].mean(dtype=np.float64)) for i in frames])
    return float(np.log(max(now, 1.0) / max(float(base_y[y:y + h, x:x + w].mean(
        dtype=np.float64)), 1.0)))


ROI_SHARE = 0.45   # ROI half-side over the matched disc's radius
ALIGN_PX = 0.7     # misalignment a pixel's colour is allowed to show (track error + rounding)
MIN_Z = 0.5        # the spot's smoothed recovery must reach this many of its own noise SDs
EXIT_SHARE = 0.5   # other exit candidates: drops of at least this share of the largest...
MAX_EXITS = 4      # ...this many at most, EXIT_APART s apart
EXIT_APART = 1.0
COVER_LUMA = 0.3   # a spot this far (log brightness) from its pre-press look is not bare skin
# (blanched spots 0.35-0.8 s after the exit: up to 0.17 on both generators; the examiner's
# fingertip of another tone still on the skin: 0.63-0.67)
MIN_REDNESS = 0.08  # log(red / green) of skin (about 0.15-0.3); sheets stay under 0.04


def _spread(i0: int, i1: int, k: int) -> list[int]:
    """Up to ``k`` frame indices spread evenly over [i0, i1)."""
    if i1 <= i0:
        return []
    return sorted(set(np.linspace(i0, i1 - 1, min(k, i1 - i0)).round().astype(int).tolist()))


class _Chroma:
    """log(green) - log(red) of frames aligned on the camera track (cached per frame)."""

    def __init__(self, yuv, matrix, shifts):
        self.yuv, self.matrix, self.shifts, self.cache = yuv, matrix, shifts, {}

    def frame(self, i: int) -> np.ndarray:
        if i not in self.cache:
            rgb = self.matrix.to_rgb(self.yuv[i].astype(np.float32))
            c = np.log(np.maximum(rgb[..., 1], 0) + 2.0) - np.log(np.maximum(rgb[..., 0], 0) + 2.0)
            self.cache[i] = _aligned(c, self.shifts[i])
        return self.cache[i]

    def change(self, i: int, base_log: np.ndarray) -> np.ndarray:
        """Summed |log colour| change of aligned frame ``i`` from the baseline (not cached)."""
        rgb = self.matrix.to_rgb(self.yuv[i].astype(np.float32))
        lg = np.log(np.maximum(rgb, 0) + 2.0)
        return _aligned(np.abs(lg - base_log).sum(axis=2), self.shifts[i])

    def median(self, idx) -> np.ndarray:
        return np.median(np.stack([self.frame(i) for i in idx]), axis=0)

    def spread(self, idx, centre) -> np.ndarray:
        """Per-pixel frame-to-frame SD around ``centre`` (a robust one: 1.48 x median |dev|)."""
        dev = np.abs(np.stack([self.frame(i) for i in idx]) - centre[None])
        return 1.4826 * np.median(dev, axis=0)


def whole_frame_exit(yuv: np.ndarray, t_s: np.ndarray, shifts: np.ndarray, n_base: int,
                     lost: np.ndarray | None = None) -> tuple[float | None, bool]:
    """What the whole frame says of the hand, whatever the ROI: the earliest moment it offers for
    the hand leaving (the first of the exit candidates ``auto_roi`` weighs; None where it saw
    none), and whether the video ends with the press still on (the end differs from the pre-press
    look nearly as much as the press did, no exit came down from it, and the end is the press's
    picture or the camera still follows the view there). For a given ROI, which has no spot map
    to choose among the candidates with; ``auto_roi`` puts ``covered`` in its debug dict from the
    same test."""
    found: dict = {}
    covered = _exit(yuv, t_s, shifts, n_base, lost, debug=found)[1]
    cands = found.get("candidates")
    return (min(cands) if cands else None), covered


def _exit(yuv, t_s, shifts, n_base, lost=None, debug=None) -> tuple[float | None, bool]:
    """Time of the largest drop of whole-frame change from the pre-press look (the occluder
    leaving), and whether the video's end still looks like the press (the hand never left)."""
    n = len(t_s)
    fps = (n - 1) / max(float(t_s[-1] - t_s[0]), 1e-6)
    step = max(1, int(round(fps / TRACK_HZ)))
    idx = np.arange(0, n, step)
    # Change of luma and of both chroma planes, so a faint glass slide on dark skin (which hardly
    # changes the brightness) still shows where it leaves; on block means aligned to the track.
    # (block_means takes the uint8 codes as they are: its float32 sums are the same numbers.)
    energy = np.zeros(len(idx))
    # The same with each plane's exposure (gain and offset, fitted per frame against the
    # baseline) divided out: the exit candidates are read from it, so an auto-exposure step or
    # ramp is not taken for the hand leaving.
    shape_energy = np.zeros(len(idx))
    # The same with each frame's brightness divided out (a lamp switched on is not a hand).
    shape_change = np.zeros(len(idx))
    y_base = np.median(block_means(yuv[:n_base, ..., 0]), axis=0) + 1.0
    bshift = shifts[idx] / 4.0
    for c in range(3):
        plane = block_means(yuv[idx, ..., c])
        plane = np.stack([_aligned(p, s) for p, s in zip(plane, bshift)])
        base_c = np.median(block_means(yuv[:n_base, ..., c]), axis=0)
        energy += (np.abs(plane - base_c[None]) / y_base[None]).mean(axis=(1, 2), dtype=np.float64)
        shape_energy += _exposure_residual(plane, base_c, y_base)
        if c == 0:
            gain = np.median(plane.reshape(len(plane), -1), axis=1) / max(
                float(np.median(base_c)), 1e-3)
            luma = plane / np.maximum(gain, 1e-3)[:, None, None]
            shape_change = (np.abs(luma - base_c[None])
                            / y_base[None]).mean(axis=(1, 2), dtype=np.float64)
    t_i = t_s[idx]
    m = len(idx)
    rate = fps / step
    w = max(2, int(round(0.3 * rate)))
    gap = max(1, int(round(0.1 * rate)))
    nb = max(1, int(np.searchsorted(t_i, t_s[n_base - 1])))
    drops, best, drop = _drops(energy, t_i, nb, w, gap)
    # Other exits the hand may have made: the largest drops EXIT_APART apart, each at least
    # half the largest (an occluder that stays in the picture after it leaves the spot, or a
    # camera jolt, can make a later drop the largest); then the same from the change with each
    # plane's exposure divided out (an auto-exposure step or ramp can outweigh the hand's exit
    # in the plain change and push it out of the list), up to MAX_EXITS + 1 candidates in all.
    # Those are taken only when the picture just after them is quieter (less changed from the
    # baseline, exposure aside) than after the largest drop: the hand has left, where a drop
    # inside the press (the examiner's finger rolling) leaves the hand in view.
    cands: list[float] = []
    drops_x, best_x, _ = _drops(shape_energy, t_i, nb, w, gap)

    def quiet_after(c: float) -> float:
        sel = (t_i >= c + 0.35) & (t_i < c + 0.8)
        return float(np.mean(shape_energy[sel])) if sel.any() else np.inf

    for d, top, most in ((drops, best, MAX_EXITS), (drops_x, best_x, MAX_EXITS + 1)):
        for i in np.argsort(-d, kind="stable"):
            if not np.isfinite(d[i]) or d[i] < EXIT_SHARE * top or len(cands) >= most:
                break
            if all(abs(t_i[i] - c) >= EXIT_APART for c in cands) and (
                    d is drops or not cands
                    or quiet_after(float(t_i[i])) < quiet_after(cands[0])):
                cands.append(float(t_i[i]))
    if debug is not None:
        debug.update(candidates=cands, energy=energy, t_energy=t_i, drops_x=drops_x,
                     shape_change=shape_change, shape_energy=shape_energy)
    # Covered at the end: the last 0.6 s differ from the baseline nearly as much as the press
    # did (its typical change between the baseline and the end, or the level the exit came
    # down from).
    end = t_i >= t_i[-1] - 0.6
    mid = (np.arange(m) >= nb) & ~end
    # A camera that has moved away also changes the end (another view): that is motion, for
    # the motion gate, not a hand that stayed; so only while the camera is still followed
    # (``lost``: the track's aligned mismatch says the view is another one)...
    followed = lost is None or not bool(np.median(lost[idx[end]]) > 0.5) if end.any() else False
    # The level the exit came down from (the press itself) is the yardstick: after a real exit
    # the end keeps only the spot and some drift, far below it.
    # (No drop at all, e.g. a clip too short to hold one: no exit, nothing held.)
    held = ((t_i >= drop - 0.3) & (t_i < drop) if drop is not None
            else np.zeros(m, dtype=bool))
    level = float(np.percentile(shape_change[mid], 75)) if mid.any() else 0.0
    fell = 0.0
    like_press = False
    other_view = False
    press_pic = None    # the press's own picture, to judge the end against
    if held.any():
        level = max(level, float(np.mean(shape_change[held])))
        gone = (t_i >= drop + 0.1) & (t_i < drop + 0.4)
        if gone.any():
            fell = float(np.mean(shape_change[held]) - np.mean(shape_change[gone]))
        # ...or while the end still looks like the press itself: a hand that covers most of the
        # view also loses the track, but the picture it leaves is the press's (gain-normalised
        # luma within half the press's own change from the baseline), where a camera turned
        # away shows a view as far from the press as from the baseline.
        if end.any():
            press_pic = np.median(luma[held], axis=0)
    elif end.any():
        # No drop at all: nothing ever came down from the press (a press held to the end of a
        # short clip; own 11300000 video 38, 3.4 s, a hand covering most of the view from 1.4 s,
        # was named "motion"). The picture the press began with is then the yardstick, on the
        # same terms as the picture before a drop.
        press_pic = _press_picture(luma, shape_change, t_i, nb)
    if press_pic is not None:
        to_press = _end_from(luma[end], press_pic, y_base)
        press_base = _from_baseline(press_pic, y_base)
        like_press = to_press <= LIKE_PRESS * press_base
        # An end many times further from the press's picture than the press was from the
        # baseline is another view, even where the track still follows it: a camera turned
        # away 0.7 s after the hand left, its new view's change then the yardstick ``level``
        # below (own 10800000 video 51: 12 times; ends held by the hand: 0.07-0.28).
        other_view = to_press > UNLIKE_PRESS * press_base
        # The picture before the largest drop is the press's only if that drop ended it: a
        # camera turned away after the hand left makes the largest drop inside the other
        # view, whose picture the end then matches. A hand still there keeps the picture the
        # press began with too. On four sets' broken videos (own 9494000, 9595000, 10000000
        # and the all-broken 9898000), of the 8 presses held to the end whose view the track
        # had lost, 6 ended within 0.07-0.28 of that picture's own change from the baseline
        # (2 had no press onset found: the rule before holds); the camera turned away: 14.
        first = _press_picture(luma, shape_change, t_i, nb) if like_press and held.any() else None
        if first is not None:
            like_press = _end_from(luma[end], first, y_base) <= _from_baseline(first, y_base)
        if debug is not None:
            debug.update(end_press=to_press, press_base=press_base)
    # ...and no exit came down from it: the largest drop is a wobble of the press, not its end.
    covered = bool((followed or like_press) and not other_view and mid.any()
                   and fell < EXIT_FELL * level
                   and np.median(shape_change[end]) >= STILL_SHARE * level)
    if debug is not None:
        debug.update(end=float(np.median(shape_change[end])), level=level, fell=fell,
                     followed=followed, like_press=like_press)
    return drop, covered


def _end_from(frames: np.ndarray, pic: np.ndarray, y_base: np.ndarray) -> float:
    """Median over ``frames`` of their mean |block luma - ``pic``|, relative to the baseline."""
    return float(np.median((np.abs(frames - pic[None]) / y_base[None]).mean(
        axis=(1, 2), dtype=np.float64)))


def _from_baseline(pic: np.ndarray, y_base: np.ndarray) -> float:
    """Mean |``pic`` - the baseline's block luma|, relative to it (``y_base`` is it plus 1)."""
    return float((np.abs(pic - (y_base - 1.0)) / y_base).mean(dtype=np.float64))


def _press_picture(luma: np.ndarray, change: np.ndarray, t_i: np.ndarray, nb: int
                   ) -> np.ndarray | None:
    """Gain-normalised block luma 0.3-0.8 s after the press began: the first time the picture's
    change from the baseline holds above four times its largest before the press (at least 0.02)
    for 0.3 s. None when no such moment is found."""
    if nb < 1 or nb >= len(change):
        return None
    above = change > max(4.0 * float(np.max(change[:nb])), 0.02)
    dt = float(np.median(np.diff(t_i))) if len(t_i) > 1 else 1.0
    run = max(2, int(round(0.3 / max(dt, 1e-3))))
    start = _sustained(above, nb, run)
    if start is None:
        return None
    sel = (t_i >= t_i[start] + 0.3) & (t_i < t_i[start] + 0.8)
    return np.median(luma[sel], axis=0) if sel.any() else None


def _drops(energy: np.ndarray, t_i: np.ndarray, nb: int, w: int, gap: int
           ) -> tuple[np.ndarray, float, float | None]:
    """Per frame, the mean of ``energy`` over ``w`` frames before it less the mean over ``w``
    frames after a ``gap``; the largest such drop and its time (None: no drop)."""
    m = len(energy)
    csum = np.concatenate([[0.0], np.cumsum(energy)])
    best, drop = 0.0, None
    drops = np.full(m, -np.inf)
    for i in range(nb + w, m - gap - w):
        before = (csum[i] - csum[i - w]) / w
        after = (csum[i + gap + w] - csum[i + gap]) / w
        drops[i] = before - after
        if before - after > best:
            best, drop = before - after, float(t_i[i])
    return drops, best, drop


def _exposure_residual(plane: np.ndarray, base: np.ndarray, y_base: np.ndarray) -> np.ndarray:
    """Per frame, mean |plane - (a * base + b)| / ``y_base`` with the gain ``a`` and offset ``b``
    fitted to that frame (least squares, plain float64 sums: the same bits on every machine).
    An exposure change moves every block alike; a hand or a slide changes the picture's make."""
    x = base.astype(np.float64).ravel()
    p = plane.reshape(len(plane), -1).astype(np.float64)
    xm = x.mean()
    xc = x - xm
    var = float((xc * xc).sum())
    pm = p.mean(axis=1)
    gain = (p * xc[None]).sum(axis=1) / var if var > 1e-9 else np.zeros(len(p))
    fit = gain[:, None] * xc[None] + pm[:, None]
    return (np.abs(p - fit) / y_base.ravel()[None]).mean(axis=1)


STILL_SHARE = 0.8  # the end still shows this share of the press's change: the hand never left
EXIT_FELL = 0.2    # ...and the largest drop took off less than this share of it
LIKE_PRESS = 0.5   # the end within this share of the press's own change from the press picture
UNLIKE_PRESS = 2.0  # ...and never this many times it: another view, not a hand still there
# (measured on five own-generator sets: presses that never end, 0.08-0.49 where the track still
# sees the view or lost it under the hand; cameras turned away 1.1-8; clean videos 0.44-1.2, but
# their end is far below the press's change)
# (measured on the benchmark's and the development seed's broken and clean videos: clean ones
# end at 0.04-0.86 of the press's change and their exit takes off 0.36-0.91 of it; presses
# that never end stay at 0.89-1.02 and their largest drop takes off at most 0.07)


def _centre_weight(shape) -> np.ndarray:
    hh, ww = shape
    yy, xx = np.mgrid[0:hh, 0:ww]
    return np.exp(-(((yy - hh / 2) / (0.6 * hh)) ** 2 + ((xx - ww / 2) / (0.6 * ww)) ** 2))


def _recovery_map(chroma, t_s, shifts, exit_s, c_base, base_sd, align_sd, quant, dark):
    """(peak z, z map, centre weight) of the spot that is blanched 0.35-0.8 s after ``exit_s``
    and recovered by the video's end, in units of each pixel's own noise; None if no frames."""
    n = len(t_s)
    i0 = int(np.searchsorted(t_s, exit_s + 0.35))
    i1 = max(i0 + 2, int(np.searchsorted(t_s, exit_s + 0.8)))
    if i0 >= n - 1:
        return None
    window = _spread(i0, min(i1, n), 12)
    early = chroma.median(window) - c_base
    # The spot is what recovers: against the last frames (refilled skin) it must differ as much
    # as against the pre-press ones. Drift, a changed light or a misaligned edge differ from
    # the baseline but not from the end of the video, so they drop out.
    late0 = int(np.searchsorted(t_s, max(t_s[-1] - 0.6, t_s[min(i1, n - 1)])))
    late = _spread(late0, n, 8)
    # ...unless the camera has since moved well away (the end shows another view, and aligning
    # it would roll most of the frame out of the comparison).
    reach = float(np.abs(shifts[window]).max()) + LATE_MOVE_PX
    sd2 = base_sd ** 2 + align_sd ** 2
    used = list(window)
    if len(late) >= 3 and float(np.abs(shifts[late]).max()) <= reach:
        c_late = chroma.median(late)
        sd2 = 0.5 * (base_sd ** 2 + chroma.spread(late, c_late) ** 2) + align_sd ** 2
        diff = np.minimum(early, early - (c_late - c_base))
        used += late
    else:
        diff = early
    # Each pixel's noise: its spread before the press and at the end, what a fraction of a
    # pixel's misalignment does at a colour edge, and the rounding of a code on dark skin. The
    # difference and the noise are both pooled over a few pixels (the spot is tens of analysis
    # pixels wide; faint blanching on dark skin sits near the per-pixel noise), so a pixel whose
    # codes happen never to change does not count as noiseless.
    k = max(3, min(diff.shape) // 40)
    num = ndimage.uniform_filter(np.where(dark, 0.0, diff), k)
    z = num / np.sqrt(ndimage.uniform_filter(sd2 + quant ** 2, k))
    z[dark] = 0
    # Aligning rolls the frame: the band that wrapped round from the far edge is not the scene.
    edge = int(np.ceil(np.abs(shifts[used]).max())) + 2 + k // 2
    z[:edge] = z[-edge:] = 0
    z[:, :edge] = z[:, -edge:] = 0
    weight = 0.5 + 0.5 * _centre_weight(z.shape)
    peak = float((z * weight).max())
    if not np.isfinite(peak):
        return None
    return peak, z, weight


def _press_weight(chroma, t_s, n_base, exit_s, base_log, shape) -> np.ndarray:
    """0-1 per pixel: how clearly the pixel was covered or changed during the press (the last
    2.0-0.5 s before the occluder left), against the press's own strongest change. The pressed
    spot is under the slide or fingertip; skin the press never touched cannot be it."""
    i0 = max(n_base, int(np.searchsorted(t_s, exit_s - 2.0)))
    i1 = int(np.searchsorted(t_s, exit_s - 0.5))
    frames = _spread(i0, i1, 8)
    if len(frames) < 2:
        return np.ones(shape)
    p = np.median(np.stack([chroma.change(i, base_log) for i in frames]), axis=0)
    p = ndimage.uniform_filter(p, max(3, min(shape) // 40))
    top = float(np.percentile(p, 95))
    if top <= 0:
        return np.ones(shape)
    return np.clip(p / (PRESS_SHARE * top), 0.0, 1.0)


PRESS_SHARE = 0.25  # a pixel counts as fully pressed at this share of the press's strong change


def _blob_box(score: np.ndarray, centre: np.ndarray) -> tuple[int, int, int, int]:
    """The round patch that holds the most recovery: a disc matched filter over sizes.

    For each radius r, the map's mean over a disc less its mean over the ring just outside
    (r to 1.6 r), times r (the map is in noise units, so a disc of area ~r^2 gains r in
    significance): a faint but large patch beats a bright speck, and a line (an edge) fills
    neither a disc nor leaves its ring empty. ``centre`` (0.5-1) favours the middle of the
    frame, where a phone is aimed. The disc that holds the most takes in some of the fading rim,
    so the ROI half-side is 0.45 of its radius (the old blob rule's size: about one spot radius
    per side on both generators), on a coarse grid of radii refined around the best.
    """
    hh, ww = score.shape
    best = (-np.inf, hh / 2, ww / 2, 2.0)
    r_max = max(3.0, min(hh, ww) / 4)
    coarse = np.geomspace(2.0, r_max, 10)
    for r in coarse:
        best = max(best, _disc_held(score, centre, r))
    # ...then finer around the best size (the coarse grid is 30-40% a step).
    step = float(coarse[1] / coarse[0])
    for r in best[3] * step ** np.linspace(-0.5, 0.5, 7):
        best = max(best, _disc_held(score, centre, float(r)))
    _, cy, cx, radius = best
    half = max(1.5, ROI_SHARE * radius)
    cy, cx = cy + 0.5, cx + 0.5
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    side = max(2, int(round(2 * half)))
    return max(0, x0), max(0, y0), side, side


def _disc_held(score, centre, r: float) -> tuple[float, float, float, float]:
    """(value, y, x, r) of the best disc of radius ``r``: the mean inside less the mean of the
    ring out to 1.6 r, times r and the centre weight."""
    disc = _disc(r)
    ring = _disc(1.6 * r)
    pad = (ring.shape[0] - disc.shape[0]) // 2
    ring[pad:pad + disc.shape[0], pad:pad + disc.shape[1]] -= disc
    # Symmetric kernels: convolution is correlation; FFTs keep large discs cheap.
    inside = signal.fftconvolve(score, disc / disc.sum(), mode="same")
    around = signal.fftconvolve(score, ring / ring.sum(), mode="same")
    held = (inside - np.maximum(around, 0.0)) * r * centre
    i = int(np.argmax(held))
    iy, ix = np.unravel_index(i, held.shape)
    return float(held.flat[i]), float(iy), float(ix), float(r)


def _disc(r: float) -> np.ndarray:
    k = int(np.ceil(r))
    dy, dx = np.mgrid[-k:k + 1, -k:k + 1]
    return (np.hypot(dy, dx) <= r).astype(np.float64)


RING_INNER = 3.0   # the unpressed ring (and the skin level with the spot) starts this many ROI
                   # half-sides from the spot's centre, clear of the contact patch


def spot_geometry(shape: tuple[int, int], roi: tuple[int, int, int, int]) -> SpotGeometry:
    """Masks for the ROI interior, the unpressed ring around the contact and the far field.

    The contact patch reaches about 2.7 ROI half-sides from the centre (generator geometry: ROI corners
    at 0.6 r, full blanch to 0.8 r, fading out by 1.15 r), so the ring starts well beyond it.
    """
    h, w = shape
    x, y, rw, rh = roi
    cx, cy = x + rw / 2, y + rh / 2
    half = max(rw, rh) / 2
    iw, ih = max(1, int(round(0.8 * rw))), max(1, int(round(0.8 * rh)))
    ix = int(np.clip(round(cx - iw / 2), 0, max(0, w - iw)))
    iy = int(np.clip(round(cy - ih / 2), 0, max(0, h - ih)))
    inner = (ix, iy, min(iw, w), min(ih, h))
    roi_mask = np.zeros((h, w), dtype=bool)
    roi_mask[iy:iy + inner[3], ix:ix + inner[2]] = True
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
    ring_mask = (dist > RING_INNER * half) & (dist < 4.2 * half)
    far_mask = dist > 4.8 * half
    return SpotGeometry(roi=roi, inner_box=inner, roi_mask=roi_mask, ring_mask=ring_mask,
                        far_mask=far_mask)


def parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """``"X,Y,W,H"`` (pixels of the upright frame, as the CLI's ``--roi`` and the HTTP ``roi``
    field take it) -> a tuple; empty means none. Raises ``UnprocessableInputError`` otherwise: four
    integers, a corner inside the picture's quadrant (X, Y >= 0) and a positive width and height."""
    if text is None or not text.strip():
        return None
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or parts[0] < 0 or parts[1] < 0 or parts[2] <= 0 or parts[3] <= 0:
        raise UnprocessableInputError(
            f"roi must be X,Y,W,H integers with X, Y >= 0 and a positive width and height, "
            f"got {text[:60]!r}")
    return parts  # type: ignore[return-value]


def _blanch_map(yuv: np.ndarray, matrix, frames, shifts: np.ndarray,
                base_rgb: np.ndarray) -> np.ndarray:
    """Median over ``frames`` of green-over-red against the baseline, aligned on the track."""
    maps = []
    for i in frames:
        rgb = _aligned(matrix.to_rgb(yuv[i].astype(np.float32)), shifts[i]) / base_rgb
        maps.append(rgb[..., 1] - rgb[..., 0])                # green up against red
    return np.median(np.stack(maps), axis=0)

