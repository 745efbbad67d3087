"""Press, release and hand-clear timing from the spot's colour and the ring around it.

The release is the end of the press plateau. Where the press covers the ring around the spot,
the ring is the hand's evidence: it comes back to its own baseline only when the slide or
fingertip lifts, so a colour step in the spot while the ring is still covered is not the release.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# The press plateau is read this long after the press starts (slide landing, blanching ramp).
PLATEAU_WINDOW_S = (0.9, 1.4)
# A release changes the spot colour by far more than this (log units); drift and shake less.
MIN_RELEASE_STEP = 0.04
RELEASE_SHARE = 0.35   # ...or this share of the press's own step, whichever is smaller
PRESS_SHARE = 0.3       # ...and by at least this share of the largest change in the video
MIN_PRESS_STEP = 0.012  # log units: the slide or fingertip changes the spot by more than this
MAX_LIFT_S = 0.6    # a slow lift of the slide or fingertip takes up to about 0.4 s, plus margin
MIN_LIFT_S = 0.2
RING_COVERED = 3.0          # ring deviation (in its own thresholds) that says the press covers it
RING_CLEAR_MARGIN_S = 0.4   # the ring may clear this long after the slowest lift
RING_CLEAR_SHARE = 0.35     # ...to below this share of how far the press had moved it
RING_LIFT_SHARE = 0.8       # the lift has begun once the ring is this far back from covered
RING_PRESS = 2 * RING_COVERED   # ring deviation, held RING_PRESS_S, that says a press began...
RING_PRESS_S = 1.0              # ...(longer than a hand passing over or a camera jolt)
RING_HELD_S = 3.0               # ring covered (RING_COVERED) this long: a press too
# A release candidate this long before / after the whole frame saw the hand leave may be read
# with the ring merely off its covered look (``detect_press``, ``hand_left_s``).
EXIT_WINDOW_S = (1.0, 0.5)
RING_OFF_S = 0.5
# An encoder's key frame codes the picture afresh: P-frames before it may have lagged a slowly
# changing scene (a flat skin texture drifting under the camera), and the picture snaps at the key
# frame. A departure that begins at a key frame, takes at least ``SNAP_SHARE`` of its step in that
# one frame, and goes less than ``SNAP_BACK`` of the way back to the pre-press look is that snap,
# not a release: the press plateau starts anew there (docs/crt.md, "Session 24 (lead)").
SNAP_SHARE = 0.4
SNAP_BACK = 0.5
SNAP_WINDOW_S = 0.3     # the levels before and after a key frame are medians over this long


class _ReleaseFeature:
    """One per-channel feature followed through the press, for the release test."""

    def __init__(self, feature: np.ndarray, k: int, n_base: int, w0: int, w1: int) -> None:
        # A centred running median removes single-frame flicker without delaying the edge.
        self.smooth = _running_median(feature, k)
        self.sd_frame = _robust_sd(self.smooth[w0:max(w1, w0 + 6)])
        self.base = np.median(self.smooth[:n_base], axis=0)
        # A faint press (dark skin, low blanching contrast) releases by less: the floor is a
        # share of how far the press itself moved the feature, capped at the usual step.
        press_step = np.abs(np.median(self.smooth[w0:w1], axis=0) - self.base)
        self.min_step = np.minimum(MIN_RELEASE_STEP, np.maximum(RELEASE_SHARE * press_step, 0.01))
        self._by_channel: np.ndarray | None = None   # smooth, channel by channel (window_stats)

    def departure(self, i: int, run: int, lo: int, hi: int) -> np.ndarray:
        """(run,) how far frames i.. have left the trailing plateau [lo, hi), in thresholds.

        The threshold covers the plateau's own swings over the last second or so (flicker, the
        pulse). Channels the press moved clearly count only a move back towards the pre-press
        look, which is what a release does.
        """
        hist = self.smooth[lo:hi]
        ref = np.median(hist, axis=0)
        swing = np.max(np.abs(hist - ref), axis=0)
        thr = np.maximum(1.5 * swing + 4 * self.sd_frame, self.min_step)
        toward = self.base - ref
        sign = np.where(np.abs(toward) > 2 * self.min_step, np.sign(toward), 0.0)
        dev = self.smooth[i:i + run] - ref
        dev = np.where(sign != 0, dev * sign, np.abs(dev))
        out = np.max(dev / thr, axis=1)
        return out if len(out) == run else np.zeros(run)

    def window_stats(self, lo: np.ndarray, hi: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(M, 3) reference, threshold and sign of the plateaus [lo[m], hi[m]), as ``departure``
        computes them for one window, bit for bit: the median is the middle order statistic, or
        the two middle ones added and halved (as ``np.median`` takes it); the swing is the
        larger distance from the reference to the window's extremes, which is the largest
        ``|hist - ref|`` since rounding a difference is monotonic and symmetric."""
        if self._by_channel is None:
            self._by_channel = np.ascontiguousarray(self.smooth.T)
        length = hi - lo
        rows = np.arange(len(lo))
        pos = lo[:, None] + np.arange(int(length.max()))
        inside = pos < hi[:, None]
        win = np.take(self._by_channel, np.where(inside, pos, 0), axis=1)  # (3, M, longest)
        win[:, ~inside] = np.inf
        win.sort(axis=-1)
        a, b = win[:, rows, (length - 1) // 2], win[:, rows, length // 2]
        ref = np.where(length % 2 == 1, a, (a + b) / 2).T
        low, high = win[:, :, 0].T, win[:, rows, length - 1].T
        swing = np.maximum(high - ref, ref - low)
        thr = np.maximum(1.5 * swing + 4 * self.sd_frame, self.min_step)
        toward = self.base - ref
        sign = np.where(np.abs(toward) > 2 * self.min_step, np.sign(toward), 0.0)
        return ref, thr, sign

    def departures(self, idx: np.ndarray, run: int, ref: np.ndarray, thr: np.ndarray,
                   sign: np.ndarray) -> np.ndarray:
        """(M, run) ``departure(idx[m], run, ...)`` for each candidate, from ``window_stats``;
        every frame idx[m] + run - 1 must lie inside the video."""
        dev = self.smooth[idx[:, None] + np.arange(run)] - ref[:, None]
        s = sign[:, None]
        dev = np.where(s != 0, dev * s, np.abs(dev))
        return np.max(dev / thr[:, None], axis=2)


def _running_median(x: np.ndarray, k: int) -> np.ndarray:
    """``ndimage.median_filter(x, size=(k, 1), mode="nearest")`` for an odd ``k``: the middle of
    each sorted window is one of its values, so picking it by partition gives the same numbers
    (equal numbers have equal bits, except 0.0 and -0.0, which go the slow way)."""
    if (k % 2 == 0 or x.ndim != 2 or not np.isfinite(x).all()
            or np.any(np.signbit(x) & (x == 0))):
        return ndimage.median_filter(x, size=(k, 1), mode="nearest")
    pad = np.pad(x, ((k // 2, k // 2), (0, 0)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, k, axis=0)   # (N, C, k)
    return np.ascontiguousarray(np.partition(win, k // 2, axis=-1)[..., k // 2])


@dataclass(frozen=True)
class PressTiming:
    """Frame indices of the press and release, found from the spot and the ring around it."""

    press_idx: int       # first frame that departs from the pre-press baseline
    release_idx: int     # first frame after the press plateau ends
    clear_idx: int       # first frame with the slide or fingertip gone from around the spot
    release_s: float


def _robust_sd(x: np.ndarray) -> np.ndarray:
    d = np.diff(x, axis=0)
    return np.maximum(1.4826 * np.median(np.abs(d - np.median(d, axis=0)), axis=0) / math.sqrt(2),
                      1e-6)


def _ring_deviation(ring_log: np.ndarray, n_base: int) -> np.ndarray:
    """(N,) how far the ring's look is from its pre-press baseline; below 1 is back to it."""
    ring_base = np.median(ring_log[:n_base], axis=0)
    ring_sd = _robust_sd(ring_log[:n_base])
    return np.max(np.abs(ring_log - ring_base) / (6 * ring_sd + 0.006), axis=1)


def _sustained(mask: np.ndarray, start: int, run: int) -> int | None:
    """First index from ``start`` on where ``mask`` holds for ``run`` frames in a row, or None."""
    if run < 1 or start < 0:
        return _sustained_frames(mask, start, run)
    m = np.asarray(mask[start:], dtype=bool)
    if len(m) < run:
        return None
    count = np.concatenate([[0], np.cumsum(m, dtype=np.int64)])
    full = np.flatnonzero(count[run:] - count[:-run] == run)
    return start + int(full[0]) if len(full) else None


def _sustained_frames(mask: np.ndarray, start: int, run: int) -> int | None:
    """``_sustained`` frame by frame (the reference the tests hold it to)."""
    count = 0
    for i in range(start, len(mask)):
        count = count + 1 if mask[i] else 0
        if count >= run:
            return i - run + 1
    return None


def _plateau_windows(t_s: np.ndarray, w0: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trailing plateau [lo, hi) each candidate release ``idx`` is judged against."""
    lo = np.maximum(np.searchsorted(t_s, t_s[idx] - 1.5), w0)
    hi = np.maximum(np.searchsorted(t_s, t_s[idx] - 0.2), lo + 2)
    return lo, hi


def _scan_release_frames(t_s: np.ndarray, feats: list[_ReleaseFeature], w0: int, w1: int,
                         run: int, run_alone: int, ring_clears) -> tuple[int, int, int] | None:
    """The first frame from ``w1`` on where the press plateau ends, with its plateau window.

    Frame by frame: the reference ``_scan_release`` is held to (tests/test_crt_timing_vectorised.py).
    """
    n = len(t_s)
    i = w1
    while i < n - run:
        lo = max(int(np.searchsorted(t_s, t_s[i] - 1.5)), w0)
        hi = max(int(np.searchsorted(t_s, t_s[i] - 0.2)), lo + 2)
        z = np.min([f.departure(i, run, lo, hi) for f in feats], axis=0)
        alone = feats[0].departure(i, run_alone, lo, hi) if i < n - run_alone else np.zeros(1)
        if (np.all(z > 1.0) or np.all(alone > 1.0)) and ring_clears(i):
            return i, lo, hi
        i += 1
    return None


def _scan_release(t_s: np.ndarray, feats: list[_ReleaseFeature], w0: int, w1: int, run: int,
                  run_alone: int, ring_clears) -> tuple[int, int, int] | None:
    """``_scan_release_frames`` on blocks of candidate frames at once, bit for bit the same.

    Each candidate's plateau statistics (median, swing, threshold, direction) are computed for a
    block of candidates together from their sorted windows; the departures of the following
    ``run`` (and ``run_alone``) frames then come from the same elementwise arithmetic as
    ``_ReleaseFeature.departure``. ``ring_clears`` is asked, in order, only where the spot says
    the plateau has ended.
    """
    n = len(t_s)
    # Order statistics are compared by value: 0.0 and -0.0 tie but differ in bits, so a series
    # holding -0.0 (or NaN) takes the frame-by-frame way.
    if not all(np.isfinite(f.smooth).all() and not np.any(np.signbit(f.smooth) & (f.smooth == 0))
               for f in feats):
        return _scan_release_frames(t_s, feats, w0, w1, run, run_alone, ring_clears)
    start, block = w1, 64
    while start < n - run:
        idx = np.arange(start, min(start + block, n - run))
        lo, hi = _plateau_windows(t_s, w0, idx)
        # Both views must depart for ``run`` frames, or the far-field view (feats[0]) alone for
        # ``run_alone`` frames, whose first ``run`` departures are the same numbers: so only
        # candidates where feats[0] departs for ``run`` frames need the rest.
        f0 = feats[0]
        ref, thr, sign = f0.window_stats(lo, hi)
        maybe = np.flatnonzero(np.all(f0.departures(idx, run, ref, thr, sign) > 1.0, axis=1))
        ends = np.zeros(len(idx), dtype=bool)
        if len(maybe):
            both = np.ones(len(maybe), dtype=bool)
            for f in feats[1:]:
                st = f.window_stats(lo[maybe], hi[maybe])
                both &= np.all(f.departures(idx[maybe], run, *st) > 1.0, axis=1)
            ends[maybe] = both
            alone = maybe[idx[maybe] < n - run_alone]
            if len(alone):
                ends[alone] |= np.all(f0.departures(idx[alone], run_alone, ref[alone],
                                                    thr[alone], sign[alone]) > 1.0, axis=1)
        for j in np.flatnonzero(ends):
            if ring_clears(int(idx[j])):
                return int(idx[j]), int(lo[j]), int(hi[j])
        start += len(idx)
        block = min(2 * block, 512)
    return None


def _lift_start(t_s: np.ndarray, ring_dev: np.ndarray, level: float, j: int, end: int,
                floor: int) -> int:
    """Where the ring began to clear, from its clearing line rather than a threshold crossing.

    A lift is smooth: the ring is a fifth of the way back only some way into it, so the frame
    where it first crosses that share is late by about a third of the lift. The clearing from
    80% to 50% of the covered level is nearly straight; extended back to the covered level it
    gives the start. A threshold nearer the covered level would fire on the ring's own noise
    instead. Never earlier than the lift can be (``MAX_LIFT_S`` before ``j``) or ``floor``.
    """
    half = np.nonzero(ring_dev[j:end] < 0.5 * level)[0]
    if not len(half) or half[0] < 2:
        return j
    k = j + int(half[0])
    # A ring that eases off its covered level before the lift (the fingertip's pressure easing,
    # the hand drifting) crosses 80% of the plateau's level early; the lift is the steep fall,
    # so the line is fitted from the last frame still within 80% of the ring's level just
    # before it (its highest over the lift's longest duration).
    k0 = max(int(np.searchsorted(t_s, t_s[k] - MAX_LIFT_S)), floor)
    if k0 < k:
        local = float(np.max(ring_dev[k0:k]))
        high = np.nonzero(ring_dev[j:k] >= RING_LIFT_SHARE * local)[0]
        if len(high) and local < level:
            j = max(j, j + int(high[-1]))
            level = local
            if k - j < 2:
                return j
    tt, dd = t_s[j:k + 1], ring_dev[j:k + 1]
    tm, dm = float(tt.mean()), float(dd.mean())
    slope = float(((tt - tm) * (dd - dm)).sum()) / max(float(((tt - tm) ** 2).sum()), 1e-12)
    if slope >= 0:
        return j
    t0 = tm + (level - dm) / slope
    t0 = max(t0, float(t_s[j]) - MAX_LIFT_S)
    return max(int(np.searchsorted(t_s, t0)), floor, 1) if t0 < t_s[j] else j


def _key_refresh(t_s: np.ndarray, feature: np.ndarray, base: np.ndarray, keys: np.ndarray,
                 i: int) -> int | None:
    """The key frame at a departure starting at frame ``i`` if the departure is the encoder's
    snap there (see ``SNAP_SHARE``), else None. ``feature`` is the unsmoothed (N, C) series."""
    n = len(t_s)
    for k in keys[(keys >= i - 2) & (keys <= i + 2)]:
        k = int(k)
        lo = max(int(np.searchsorted(t_s, t_s[k] - SNAP_WINDOW_S)), 0)
        hi = min(int(np.searchsorted(t_s, t_s[k] + SNAP_WINDOW_S)), n)
        if k - lo < 2 or hi - k < 2:
            continue
        before = np.median(feature[lo:k], axis=0)
        step = np.median(feature[k:hi], axis=0) - before
        c = int(np.argmax(np.abs(step)))
        if step[c] == 0:
            continue
        share = (feature[k, c] - feature[k - 1, c]) / step[c]
        press = base - before
        cp = int(np.argmax(np.abs(press)))
        back = step[cp] / press[cp] if abs(press[cp]) > 1e-9 else 0.0
        if share >= SNAP_SHARE and back < SNAP_BACK:
            return k
    return None


def _ring_release(ring_dev: np.ndarray, ring_level: float, start: int, run: int) -> int | None:
    """The release read from the ring alone, for a press whose spot barely steps back.

    A faint or slow refill (a noisy plateau under a fingertip of the same tone, a slow
    bi-exponential on pale skin) may move the spot less than the plateau's own swings, so the
    spot test above finds nothing; the ring the hand covered still comes back when it lifts. The
    ring must fall below ``RING_CLEAR_SHARE`` of its covered level and stay there; the release is
    the last frame, looking back from there, still near the covered level (the lift's start).
    A press that never ends keeps the ring covered, so this cannot invent a release.
    """
    low = ring_dev < max(RING_CLEAR_SHARE * ring_level, 1.0)
    cleared = _sustained(low, start, max(run, 3))
    if cleared is None:
        return None
    i = cleared
    while i > start and ring_dev[i - 1] < RING_LIFT_SHARE * ring_level:
        i -= 1
    return max(i, start + 1)


def detect_press(t_s: np.ndarray, spot_log: np.ndarray, ring_log: np.ndarray, n_base: int,
                 release_feature: np.ndarray, earliest_release_s: float | None = None,
                 hand_left_s: float | None = None, key_frames: np.ndarray | None = None,
                 ) -> tuple[PressTiming | None, str | None]:
    """Find press, release and the moment the occluder has gone.

    ``spot_log`` is log(ROI / ring) per channel and ``ring_log`` log(ring chromaticity) per
    channel, both (N, 3). The press is the first sustained departure of the spot from its baseline.
    During the press the spot shows a flat plateau (blanched skin under glass, or the examiner's
    fingertip); the release is where that plateau ends, which works whether or not the occluder
    hides the spot. The occluder has gone once the unpressed ring is back to its own baseline.
    ``earliest_release_s``, when given, is the earliest time other evidence allows the release
    (the whole frame still shows the hand until about a second later); a colour step before it is
    a transient inside the press. ``hand_left_s``, when given, is when the whole frame saw the
    hand leave: around it, a ring that has left its covered look for half a second has cleared,
    even if it does not come back near its pre-press look (see ``ring_clears``). ``key_frames``,
    when given, are the indices of the frames the encoder coded afresh: a departure that is only
    the picture snapping there is not a release (``_key_refresh``).
    Returns (timing, None) or (None, reason).
    """
    n = len(t_s)
    base = np.median(spot_log[:n_base], axis=0)
    # Frame-to-frame noise and the slower wander of the baseline (compression, sub-pixel
    # tracking) both count; a press moves the spot's colour well beyond either.
    spread = 1.4826 * np.median(np.abs(spot_log[:n_base] - base), axis=0)
    sd = np.maximum(_robust_sd(spot_log[:n_base]), spread)
    step = np.abs(spot_log - base)
    # The press is the largest change the spot goes through: a departure must also reach a good
    # share of it, so a wobble of a tiny, noisy spot before the press is not taken for it.
    big = np.percentile(np.max(step, axis=1), 95)
    dev = np.max(step / (sd * 8 + MIN_PRESS_STEP), axis=1)
    dev = np.minimum(dev, np.max(step, axis=1) / max(PRESS_SHARE * big, 1e-9))
    fps = (n - 1) / max(t_s[-1] - t_s[0], 1e-6)
    press = _sustained(dev > 1.0, n_base, max(3, int(round(0.05 * fps))))
    # A slide or fingertip that covers the ring as well as the spot moves the spot against the
    # ring by little (both are under it) while the ring itself leaves its baseline by far more
    # than it ever wanders; the ring, held off its baseline, says the press began.
    ring_dev = _ring_deviation(ring_log, n_base)
    ring_press = _sustained(ring_dev > RING_PRESS, n_base, max(3, int(round(RING_PRESS_S * fps))))
    if ring_press is not None and (press is None or ring_press < press):
        press = ring_press
    if press is None:
        # ...or held covered for longer than anything but a press keeps it there, where a spot
        # that wanders with the pulse or a flicker beat hides its own step (a baseline of 0.5 s
        # samples part of one cycle, and the step must clear eight of its deviations).
        press = _sustained(ring_dev > RING_COVERED, n_base,
                           max(3, int(round(RING_HELD_S * fps))))
    if press is None:
        return None, "no press found: the spot never blanched or was never covered"
    # Plateau reference over a short window well inside the press.
    t_press = t_s[press]
    w0 = int(np.searchsorted(t_s, t_press + PLATEAU_WINDOW_S[0]))
    w1 = int(np.searchsorted(t_s, t_press + PLATEAU_WINDOW_S[1]))
    if w1 - w0 < 3 or w1 >= n - 3:
        return None, "no release found: the video ends during the press"
    # Follow the plateau with a trailing median, so slow drift does not read as a release. The
    # threshold covers the plateau's own swings over the last second or so (flicker, the pulse),
    # so only a departure larger than anything seen while pressed counts. A centred running median
    # removes single-frame flicker without delaying the edge.
    k = int(np.clip(round(0.1 * fps), 1, 31)) | 1
    # Two views of the spot must agree that the press has ended: its colour against the far field
    # (sees the occluder go) and against the ring around it (blind to anything the whole area
    # shares); a transient that only one of them shows is not a release.
    feats = [_ReleaseFeature(f, k, n_base, w0, w1) for f in (release_feature, spot_log)]
    # ...unless the far-field view alone holds its departure for longer than a transient does.
    run = max(3, int(round(0.15 * fps)))
    run_alone = max(run + 1, int(round(1.0 * fps)))
    # The ring around the spot is the hand's evidence: where the slide or fingertip covers it
    # during the press, it returns to its own baseline only when the occluder leaves. A colour
    # step in the spot while the ring is still covered is a transient inside the press (the
    # camera wandering over the occluder's edge), not the release.
    ring_level = float(np.median(ring_dev[w0:w1]))
    ring_covered = ring_level > RING_COVERED
    clear_run = max(2, int(round(0.1 * fps)))

    ring_low = ring_dev < max(RING_CLEAR_SHARE * ring_level, 1.0)
    # Where the whole frame saw the hand leave, the ring need only leave its covered look and
    # stay off it for ``RING_OFF_S``: a ring that reaches into the spot's own blanching, or that
    # the camera's jolt after the lift misaligns by a few of its very tight thresholds, never
    # comes back near its pre-press look, though the hand has gone (docs/crt.md, "Session 24
    # (lead)").
    ring_off = ring_dev < max(RING_LIFT_SHARE * ring_level, 1.0)
    near_exit = (np.zeros(n, dtype=bool) if hand_left_s is None else
                 (t_s >= hand_left_s - EXIT_WINDOW_S[0]) & (t_s <= hand_left_s + EXIT_WINDOW_S[1]))

    off_run = max(clear_run, int(round(RING_OFF_S * fps)))

    def ring_clears(i: int) -> bool:
        if not ring_covered:
            return True
        end = int(np.searchsorted(t_s, t_s[i] + MAX_LIFT_S + RING_CLEAR_MARGIN_S))
        if _sustained(ring_low[:end], max(i - clear_run, w1), clear_run) is not None:
            return True
        if not near_exit[i]:
            return False
        # ...for longer than a camera wandering over the occluder's edge keeps it off, from as
        # soon after ``i`` as the ring must clear.
        off = _sustained(ring_off[:end + off_run], max(i - clear_run, w1), off_run)
        return off is not None and off < end

    def ring_lift(i: int, lo: int, hi: int, at: int) -> int:
        # The spot's colour can drift before the lift (the hand tilting); the ring says when
        # the occluder starts to leave it: the first frame well below its covered level, looked
        # for as far after the spot's departure ``at`` as ``ring_clears`` looked...
        end = int(np.searchsorted(t_s, t_s[at] + MAX_LIFT_S + RING_CLEAR_MARGIN_S))
        level = float(np.median(ring_dev[lo:hi]))
        floor = lo
        if level < max(RING_CLEAR_SHARE * ring_level, 1.0):
            # The plateau the spot departed from came after the ring had cleared: the spot stayed
            # blanched for seconds after the lift (a refill that starts slowly: a logistic or
            # delayed curve) and the trailing plateau followed it past the lift. The covered
            # level is then the press's own, and the lift may lie before that plateau, back to
            # where the search began (independent 10300000 video 0: +1.7 s late before).
            level, floor = ring_level, settled
        # A refill that starts late (a delayed curve) leaves the spot on its plateau after the
        # ring has cleared: the lift is then before ``i``, from the last frame still covered.
        while i > floor and ring_dev[i] < RING_LIFT_SHARE * level:
            i -= 1
        drop = np.nonzero(ring_dev[i:end] < RING_LIFT_SHARE * level)[0]
        if not len(drop):
            return i
        j = i + int(drop[0])
        return _lift_start(t_s, ring_dev, level, j, end, floor)

    # The scan starts no earlier than the other evidence allows (its plateau windows still trail
    # it by up to 1.5 s, inside the press).
    first = w1 if earliest_release_s is None else max(
        w1, min(int(np.searchsorted(t_s, earliest_release_s)), n - 1))
    release = None
    found = _scan_release(t_s, feats, w0, first, run, run_alone, ring_clears)
    keys = (np.zeros(0, dtype=np.int64) if key_frames is None
            else np.asarray(key_frames, dtype=np.int64))
    keys = keys[keys > w1]
    raw_base = np.median(release_feature[:n_base], axis=0)
    settled = w1    # the release is never stepped back before this frame
    while found is not None and len(keys):
        # The encoder's snap at a key frame: the plateau starts anew there.
        k = _key_refresh(t_s, release_feature, raw_base, keys, found[0])
        if k is None:
            break
        keys = keys[keys > k]
        settled = k
        found = _scan_release(t_s, feats, k, max(k + 1, first), run, run_alone, ring_clears)
    if found is not None:
        release, lo, hi = found
        # Step back to the last frame still on the plateau.
        at = release
        while release > settled and feats[0].departure(release - 1, 1, lo, hi)[0] > 0.3:
            release -= 1
        if ring_covered:
            release = ring_lift(release, lo, hi, at)
    if release is None and ring_covered:
        release = _ring_release(ring_dev, ring_level, first, clear_run)
    if release is None:
        return None, "no release found: the spot stays pressed until the end of the video"
    # The occluder has gone when the ring's own colour is back near its baseline.
    clear = _sustained(ring_dev < 1.0, release, 2)
    # The slide or fingertip takes at most about a third of a second to lift clear.
    cap = int(np.searchsorted(t_s, t_s[release] + MAX_LIFT_S))
    floor = int(np.searchsorted(t_s, t_s[release] + MIN_LIFT_S))
    clear = min(cap if clear is None else max(clear, floor), cap)
    clear = min(max(clear, release), n - 1)
    release_s = 0.5 * (t_s[release - 1] + t_s[release])
    return PressTiming(press_idx=press, release_idx=release, clear_idx=clear,
                       release_s=float(release_s)), None
