"""Frame by frame: when each frame is taken, and what it shows.

Frame times are chosen first (constant or variable frame rate, in ticks of 1/90000 s) and the
scene is drawn at exactly those times, so the container's timestamps carry the truth. Each frame
is ``skin + s(t) * blanch_delta + pulse(t) * pulse_layer``, with the glass slide or the examiner's
fingertip laid over it, then the global nuisances (exposure drift, auto-exposure, rolling-shutter
flicker, shake, sensor noise) applied to the whole frame, so the unpressed skin around the ROI
shares them.
"""

from __future__ import annotations

import math

import numpy as np

from mottling.synth.patterns import smoothstep
from mottling.synth.refill_scene import build_scene
from mottling.synth.refill_spec import APPROACH_S, PRESS_IN_S, RefillSpec

TICKS_PER_S = 90000  # the container time base is 1 / TICKS_PER_S

# Timing


def frame_pts(spec: RefillSpec) -> np.ndarray:
    """Presentation timestamps in 1/90000 s. Constant rate, or jittered with dropped frames."""
    total = int(round(spec.duration_s * TICKS_PER_S))
    step = TICKS_PER_S / spec.fps_nominal
    if not spec.vfr:
        return np.round(np.arange(0, total, step)).astype(np.int64)
    rng = np.random.default_rng([spec.seed, 2])
    n = int(total / step * 1.5) + 2
    intervals = step * (1.0 + spec.vfr_jitter * rng.uniform(-1.0, 1.0, n))
    if spec.vfr_slow_segment:  # a stretch of 1-2 s at 50-80% of the nominal rate
        t = np.cumsum(intervals)
        start = rng.uniform(0.1, 0.7) * total
        slow = (t > start) & (t < start + rng.uniform(1.0, 2.0) * TICKS_PER_S)
        intervals[slow] /= rng.uniform(0.5, 0.8)
    pts = np.concatenate([[0.0], np.cumsum(intervals)])
    pts = np.round(pts[pts < total]).astype(np.int64)
    keep = rng.random(len(pts)) >= spec.vfr_drop
    keep[0] = True
    pts = pts[keep]
    return pts[np.concatenate([[True], np.diff(pts) > 0])]


# --------------------------------------------------------------------------------------------
# Rendering


def blanch_signal(spec: RefillSpec, t: np.ndarray) -> np.ndarray:
    """s(t) over the whole video: 0 before the press, ramping to 1, held, then the curve."""
    t = np.asarray(t, dtype=np.float64)
    s = smoothstep((t - spec.press_start_s) / PRESS_IN_S)
    after = t >= spec.release_s
    s[after] = spec.curve.blanch_fraction(t[after] - spec.release_s)
    return s


def _wander(rng: np.random.Generator, t: np.ndarray, f_lo: float, f_hi: float,
            k: int = 3) -> np.ndarray:
    """Smooth zero-mean wander with unit peak amplitude: a few random sinusoids."""
    out = np.zeros_like(t)
    for _ in range(k):
        out += np.sin(2 * np.pi * rng.uniform(f_lo, f_hi) * t + rng.uniform(0, 2 * np.pi))
    return out / k


def camera_path(spec: RefillSpec, t: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) integer offsets of the view per frame: what a hand-held phone does.

    Tremor (smooth, ``shake_px``), a random walk that reverts towards the aim over about a second
    (``wander_px`` per 1/30 s step, so the same wander per second at any frame rate), and a slow
    drift of ``drift_px`` over the video. ``camera_moved`` adds a move, 0.4 s long, that takes the
    pressed spot out of the picture.
    """
    n = len(t)
    out = []
    angle = rng.uniform(0, 2 * np.pi)
    drift = spec.drift_px * smoothstep(t / max(float(t[-1]), 1e-6) if n else t)
    for axis, unit in ((0, np.sin(angle)), (1, np.cos(angle))):
        tremor = spec.shake_px * _wander(rng, t, 0.5, 6.0)
        walk = np.zeros(n)
        steps = rng.standard_normal(n)
        for i in range(1, n):
            dt = float(t[i] - t[i - 1])
            walk[i] = walk[i - 1] * math.exp(-dt) + spec.wander_px * math.sqrt(dt * 30) * steps[i]
        out.append(tremor + walk + unit * drift)
    dy, dx = out
    if spec.broken == "camera_moved":
        ramp = smoothstep((t - spec.broken_at_s) / 0.4)
        # Along one axis, by 0.85 of the frame: the spot (near the centre) leaves the view.
        if rng.random() < 0.5:
            dy = dy + ramp * 0.85 * spec.height * (1 if rng.random() < 0.5 else -1)
        else:
            dx = dx + ramp * 0.85 * spec.width * (1 if rng.random() < 0.5 else -1)
    # Relative to the first frame, where the truth ROI is given.
    return np.round(dy - dy[0]).astype(int), np.round(dx - dx[0]).astype(int)


class RenderedFrames:
    """The frames of one video before encoding: iterate for ``(pts, upright uint8 RGB)``.

    Everything random is drawn in ``__init__`` from ``spec.seed``, so iteration is repeatable.
    """

    def __init__(self, spec: RefillSpec) -> None:
        self.spec = spec
        w, h = spec.width, spec.height
        rng = np.random.default_rng([spec.seed, 1])
        self.pts = frame_pts(spec)
        t = self.t = self.pts / TICKS_PER_S
        n = len(t)
        # Where the camera looks, per frame (integer pixels of the canvas): the frame is cut from
        # the canvas at (margin + dy, margin + dx), so a canvas margin as wide as the largest
        # excursion is drawn.
        self.dy, self.dx = camera_path(spec, t, np.random.default_rng([spec.seed, 4]))
        self.margin = int(max(np.abs(self.dy).max(), np.abs(self.dx).max())) + 1
        self.scene = build_scene(np.random.default_rng([spec.seed, 0]), spec.site, w, h,
                                 spec.skin_tone, spec.blanch_contrast, spec.pulse_amp,
                                 self.margin, spec.examiner_tone, spec.exposure_level,
                                 spec.shake_px)
        self.s = blanch_signal(spec, t)
        self.pulse = _wander(rng, t, spec.heart_rate_bpm / 60, spec.heart_rate_bpm / 60, 1)
        exposure = 1.0 + spec.exposure_drift * _wander(rng, t, 0.05, 0.3)
        if spec.ae_response:
            # Auto-exposure reacts, about half a second late, to what covers the spot.
            covered = (t > spec.press_start_s) & (t < spec.release_s)
            lag = np.exp(-np.maximum(t - np.where(covered, spec.press_start_s,
                                                   spec.release_s), 0.0) / 0.5)
            level = np.where(covered, 1.0 - lag, np.where(t >= spec.release_s, lag, 0.0))
            exposure = exposure * (1.0 + spec.ae_response * level)
        light = np.ones((n, 3))
        self.occ_level, self.occ_shift = _occluder_track(spec, t, self.scene)
        if spec.broken == "light_switched":
            factor = rng.uniform(0.5, 0.7) if rng.random() < 0.5 else rng.uniform(1.3, 1.5)
            warm = rng.random() < 0.5
            tint = np.array([1.0, 0.97, 0.88]) if warm else np.array([0.9, 0.97, 1.05])
            light[t >= spec.broken_at_s] = factor * tint
        elif spec.broken == "dark_frame":
            first = int(np.searchsorted(t, spec.broken_at_s))
            light[first:first + int(rng.integers(1, 4))] = 0.03
        self.gain = (exposure[:, None] * light).astype(np.float32)
        self.flicker_phase = rng.uniform(0, 2 * np.pi)
        # Rolling-shutter readout: the sensor reads the stored frame's rows one after the other
        # over 0.8 of a frame interval, so a video stored turned by 90 or 270 degrees shows them as
        # the upright picture's columns (the axis is what the analysis needs; which end is read
        # first only sets the way the bands travel, and is kept as generator 0.3.0 drew it, so
        # upright and upside-down videos render byte for byte as before).
        lines = w if spec.rotation in (90, 270) else h
        self.readout_axis = 1 if spec.rotation in (90, 270) else 0
        self.row_t = np.arange(lines) * (0.8 / (spec.fps_nominal * lines))
        self.noise_bank = None
        if spec.noise_sigma > 0:
            self.noise_bank = (spec.noise_sigma * rng.standard_normal((4, h + 16, w + 16, 3))
                               + 0.5).astype(np.float32)
        self.noise_pick = rng.integers(0, [4, 16, 16], size=(n, 3))

    @property
    def displacement_px(self) -> np.ndarray:
        """(N,) distance of each frame's view from the first frame's, in pixels (the truth)."""
        return np.hypot(self.dy - self.dy[0], self.dx - self.dx[0])

    def __len__(self) -> int:
        return len(self.pts)

    def __iter__(self):
        spec, scene = self.spec, self.scene
        w, h = spec.width, spec.height
        occ = _Occluder(scene, w, h)
        # Only the contact patch changes with s(t): work on its bounding box.
        nz = np.nonzero(np.abs(scene.blanch_delta).sum(axis=2) > 0)
        by0, by1, bx0, bx1 = nz[0].min(), nz[0].max() + 1, nz[1].min(), nz[1].max() + 1
        tmp = np.empty((h, w, 3), dtype=np.float32)
        half = np.float32(0.5)  # rounding offset, so astype(uint8) rounds to nearest
        for i in range(len(self.pts)):
            y0, x0 = self.margin + self.dy[i], self.margin + self.dx[i]
            frame = scene.skin[y0:y0 + h, x0:x0 + w].copy()
            if self.s[i] > 0:
                # Patch bounding box, clipped to this frame's crop.
                cy0, cy1 = max(by0, y0), min(by1, y0 + h)
                cx0, cx1 = max(bx0, x0), min(bx1, x0 + w)
                if cy1 > cy0 and cx1 > cx0:
                    frame[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] += (
                        np.float32(self.s[i]) * scene.blanch_delta[cy0:cy1, cx0:cx1])
            if spec.pulse_amp > 0:
                np.multiply(scene.pulse[y0:y0 + h, x0:x0 + w], np.float32(self.pulse[i]), out=tmp)
                frame += tmp
            if self.occ_level[i] > 0:
                occ.draw(frame, y0, x0, float(self.occ_level[i]), self.occ_shift[i])
            # Gains go through a (h, w*3) view: numpy broadcasts a length-3 axis slowly.
            flat = frame.reshape(h, w * 3)
            if spec.flicker_amp > 0:
                lines = (1.0 + spec.flicker_amp * np.sin(
                    2 * np.pi * spec.flicker_hz * (self.t[i] + self.row_t)
                    + self.flicker_phase)).astype(np.float32)
                if self.readout_axis == 0:
                    flat *= lines[:, None]
                else:
                    frame *= lines[None, :, None]
            flat *= np.tile(self.gain[i], w)[None, :]
            if self.noise_bank is not None:
                j, ny, nx = self.noise_pick[i]
                frame += self.noise_bank[j, ny:ny + h, nx:nx + w]  # carries the +0.5
            else:
                frame += half
            np.clip(frame, 0, 255, out=frame)
            yield int(self.pts[i]), frame.astype(np.uint8)


class _Occluder:
    """Pastes the slide or fingertip, with its alpha scaled and shifted, into a frame."""

    def __init__(self, scene, w: int, h: int) -> None:
        # Alpha repeated over the channels (numpy broadcasts a length-1 last axis slowly) and
        # premultiplied: a fully present occluder costs one multiply and one add per pixel.
        self.alpha = np.repeat(scene.occluder_alpha, 3, axis=2)
        self.keep = 1.0 - self.alpha
        self.premult = (self.alpha * scene.occluder_rgb).astype(np.float32)
        self.origin = scene.occluder_origin
        self.w, self.h = w, h

    def draw(self, frame: np.ndarray, y0: int, x0: int, level: float,
             shift: np.ndarray) -> None:
        # Occluder top-left in frame coordinates.
        oy = self.origin[0] + int(shift[0]) - y0
        ox = self.origin[1] + int(shift[1]) - x0
        ho, wo = self.alpha.shape[:2]
        fy0, fx0 = max(oy, 0), max(ox, 0)
        fy1, fx1 = min(oy + ho, self.h), min(ox + wo, self.w)
        if fy1 <= fy0 or fx1 <= fx0:
            return
        sy, sx = slice(fy0 - oy, fy1 - oy), slice(fx0 - ox, fx1 - ox)
        region = frame[fy0:fy1, fx0:fx1]
        if level >= 1.0:
            region *= self.keep[sy, sx]
            region += self.premult[sy, sx]
        else:
            lv = np.float32(level)
            region *= 1.0 - lv * self.alpha[sy, sx]
            region += lv * self.premult[sy, sx]


def _occluder_track(spec: RefillSpec, t: np.ndarray, scene) -> tuple[np.ndarray, np.ndarray]:
    """Opacity and (dy, dx) shift of the occluder per frame.

    The slide fades in as it lands and out as it lifts. The fingertip slides in along its own
    axis before the press and away after release, far enough to leave the frame; while it
    presses, the examiner's physiological tremor (8-12 Hz) moves it by about a pixel.
    """
    arrive = smoothstep((t - (spec.press_start_s - APPROACH_S)) / APPROACH_S)
    leave = 1.0 - smoothstep((t - spec.release_s) / spec.lift_s)
    presence = np.minimum(arrive, leave)
    shift = np.zeros((len(t), 2), dtype=int)
    if spec.site == "finger":
        return presence, shift
    away = float(np.hypot(spec.width, spec.height)) + 2 * scene.margin
    dist = (1.0 - presence) * away
    tremor = np.random.default_rng([spec.seed, 3])
    shift[:, 0] = np.round(dist * scene.occluder_exit[0] + 1.2 * _wander(tremor, t, 8.0, 12.0))
    shift[:, 1] = np.round(dist * scene.occluder_exit[1] + 1.2 * _wander(tremor, t, 8.0, 12.0))
    return (presence > 0).astype(np.float64), shift
