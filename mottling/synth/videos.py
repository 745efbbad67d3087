"""Synthetic capillary-refill videos with exact ground truth (issue 2, generator 2).

Each video shows skin at rest, then pressed (a glass slide on the finger pulp, or the examiner's
fingertip on the knee), then released. After release the pressed skin recovers along a known
curve (``refill_curves.py``); ``s(t)`` is the blanching fraction, 1 at release and 0 at baseline:
``pixel = baseline + s(t) * (blanched - baseline)`` inside the contact patch.

Frame times are chosen first (constant or variable frame rate), written as each frame's ``pts``
in a 1/90000 time base, and the scene is rendered at exactly those times, so the container's own
timestamps carry the truth. Global nuisances (exposure drift, flicker, sensor noise, shake) act on
the whole frame, so the unpressed skin around the ROI shares them.

``truth.json`` (a JSON list, one record per video; see ``render_refill_video``) follows the shared
contract in the project notes. ``rotation`` is the container's display rotation as PyAV's
``VideoFrame.rotation`` reads it (degrees counter-clockwise); the upright frame is
``np.rot90(decoded, k=rotation // 90)``. ``width``, ``height`` and ``roi`` are in upright pixels.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mottling.skin import ita_degrees
from mottling.synth.refill_curves import RefillCurve, curve_for_crt
from mottling.synth.refill_scene import build_scene

log = logging.getLogger(__name__)

GENERATOR_VERSION = "videos-0.1.0"
TIME_BASE = Fraction(1, 90000)
TICKS_PER_S = 90000
BROKEN_KINDS = ("no_release", "camera_moved", "light_switched", "dark_frame")
SITES = ("finger", "knee")
CRT_RANGE_S = {"finger": (1.0, 6.0), "knee": (1.5, 8.0)}
PRESS_IN_S = 0.3   # skin goes from baseline to fully blanched over this time after contact
APPROACH_S = 0.3   # the slide or fingertip arrives over this time before contact


@dataclass(frozen=True)
class RefillSpec:
    """Every parameter of one refill video. Same spec, same bytes."""

    seed: int
    index: int = 0
    site: str = "finger"
    skin_tone: int = 3
    examiner_tone: int = 2
    width: int = 320           # upright display size
    height: int = 240
    rotation: int = 0          # container display rotation (0/90/180/270, CCW as PyAV reads it)
    fps_nominal: int = 30
    vfr: bool = False
    vfr_jitter: float = 0.0    # each interval varies by +- this fraction of the nominal one
    vfr_drop: float = 0.0      # probability that a frame is dropped
    vfr_slow_segment: bool = False  # a stretch at a lower rate (low-light auto frame rate)
    pre_press_s: float = 1.0
    press_duration_s: float = 3.0
    post_release_s: float = 6.0
    curve: RefillCurve = field(default_factory=lambda: RefillCurve("mono", tau_s=1.0))
    lift_s: float = 0.15       # the slide/fingertip takes this long to leave after release
    blanch_contrast: float = 1.0
    exposure_level: float = 0.85  # scene brightness; light skin must not clip when blanched
    noise_sigma: float = 0.0   # sensor noise, 8-bit levels
    exposure_drift: float = 0.0  # relative amplitude of slow auto-exposure wander
    ae_response: float = 0.0   # auto-exposure gain step when the slide/fingertip fills the view
    flicker_amp: float = 0.0
    flicker_hz: float = 100.0  # twice the mains frequency
    pulse_amp: float = 0.0
    heart_rate_bpm: float = 80.0
    shake_px: float = 0.0
    crf: int = 18              # x264 constant rate factor; 0 is lossless (used by truth checks)
    preset: str = "superfast"
    broken: str | None = None
    broken_at_s: float | None = None  # video time at which the fault starts
    video_s: float | None = None      # total length; None: release + post_release

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise ValueError(f"site must be one of {SITES}, got {self.site!r}")
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 64:
            raise ValueError("width and height must be even and at least 64 (yuv420p)")
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError("rotation must be 0, 90, 180 or 270")
        if not 0 <= self.crf <= 51:
            raise ValueError("crf must be 0-51 (0 is lossless H.264)")
        if self.broken is not None and self.broken not in BROKEN_KINDS:
            raise ValueError(f"broken must be None or one of {BROKEN_KINDS}")

    @property
    def press_start_s(self) -> float:
        return self.pre_press_s

    @property
    def release_s(self) -> float:
        return self.pre_press_s + self.press_duration_s

    @property
    def duration_s(self) -> float:
        return self.video_s if self.video_s is not None else self.release_s + self.post_release_s


# --------------------------------------------------------------------------------------------
# Sampling


def sample_spec(rng: np.random.Generator, index: int, site: str = "both",
                broken_fraction: float = 0.0, *, duration_scale: float = 1.0) -> RefillSpec:
    """Draw one video's parameters. ``site`` "both" alternates finger/knee by index.

    Which indices are broken depends only on the index (a golden-ratio sequence), so any ``n``
    gets close to ``broken_fraction`` broken videos. ``duration_scale`` shrinks the rest and
    press phases (not the recovery, which must cover the CRT) for quick tests.
    """
    if site == "both":
        site = SITES[index % 2]
    if site not in SITES:
        raise ValueError(f"site must be finger, knee or both, got {site!r}")
    broken = None
    if ((index + 1) * 0.6180339887498949) % 1.0 < broken_fraction:
        broken = BROKEN_KINDS[int(rng.integers(len(BROKEN_KINDS)))]

    tone = int(rng.integers(1, 11))
    fps = int(rng.choice([30, 60, 120, 240], p=[0.4, 0.3, 0.15, 0.15]))
    vfr = fps <= 60 and rng.random() < 0.35
    if fps >= 120:  # slow-motion modes: small frames, short clips
        sizes = [(320, 240), (320, 180), (240, 320)]
        press = rng.uniform(3.0, 6.0)
    else:
        sizes = [(640, 480), (480, 360), (640, 360), (320, 240), (360, 640), (480, 640),
                 (240, 320)]
        press = rng.uniform(3.0, 15.0)
    width, height = sizes[int(rng.integers(len(sizes)))]
    rotation = int(rng.choice([90, 180, 270])) if rng.random() < 0.15 else 0

    lo, hi = CRT_RANGE_S[site]
    crt = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    kind = str(rng.choice(["mono", "bi", "delayed"], p=[0.5, 0.25, 0.25]))
    curve = curve_for_crt(kind, crt, rng)

    # The baseline before the press is what the CRT module normalises against: keep >= 0.8 s.
    pre = max(0.8, rng.uniform(1.0, 2.0) * duration_scale)
    press = max(0.5, press * duration_scale)
    post = crt * rng.uniform(1.3, 1.8) + 1.0
    # Blanching contrast falls with melanin: dark skin shows a much smaller colour change.
    contrast = float(np.clip(rng.uniform(0.8, 1.2) * (1.0 - 0.06 * (tone - 1)), 0.25, 1.2))
    spec = RefillSpec(
        seed=int(rng.integers(2**31)), index=index, site=site, skin_tone=tone,
        examiner_tone=int(rng.integers(1, 11)), width=width, height=height, rotation=rotation,
        fps_nominal=fps, vfr=bool(vfr),
        vfr_jitter=float(rng.uniform(0.1, 0.4)) if vfr else 0.0,
        vfr_drop=float(rng.uniform(0.02, 0.1)) if vfr else 0.0,
        vfr_slow_segment=bool(vfr and rng.random() < 0.5),
        pre_press_s=float(pre), press_duration_s=float(press), post_release_s=float(post),
        curve=curve, lift_s=float(rng.uniform(0.08, 0.3)), blanch_contrast=contrast,
        exposure_level=float(rng.uniform(0.72, 0.9) if tone <= 5 else rng.uniform(0.8, 1.1)),
        noise_sigma=float(rng.uniform(0.5, 4.0)), exposure_drift=float(rng.uniform(0, 0.05)),
        ae_response=float(rng.uniform(-0.04, 0.04)) if rng.random() < 0.5 else 0.0,
        flicker_amp=float(rng.uniform(0, 0.03)) if rng.random() < 0.5 else 0.0,
        flicker_hz=float(rng.choice([100.0, 120.0])),
        pulse_amp=float(rng.uniform(0.002, 0.01)), heart_rate_bpm=float(rng.uniform(55, 130)),
        shake_px=float(rng.uniform(0, 3.0)), crf=int(rng.integers(18, 31)),
    )
    if broken is not None:
        spec = break_spec(spec, broken, rng)
    return spec


def break_spec(spec: RefillSpec, broken: str, rng: np.random.Generator) -> RefillSpec:
    """Turn a clean spec into one the CRT module must reject."""
    crt = spec.curve.crt_s
    if broken == "no_release":
        end = spec.press_start_s + spec.press_duration_s * rng.uniform(0.5, 0.9)
        return replace(spec, broken=broken, broken_at_s=None, video_s=float(end))
    at = spec.release_s + crt * rng.uniform(0.2, 0.7)
    return replace(spec, broken=broken, broken_at_s=float(at))


def clean_spec(spec: RefillSpec) -> RefillSpec:
    """The same video with every random nuisance off (for checks of the truth itself)."""
    return replace(spec, noise_sigma=0.0, exposure_drift=0.0, ae_response=0.0, flicker_amp=0.0,
                   pulse_amp=0.0, shake_px=0.0, broken=None, broken_at_s=None, video_s=None)


# --------------------------------------------------------------------------------------------
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


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def blanch_signal(spec: RefillSpec, t: np.ndarray) -> np.ndarray:
    """s(t) over the whole video: 0 before the press, ramping to 1, held, then the curve."""
    t = np.asarray(t, dtype=np.float64)
    s = _smoothstep((t - spec.press_start_s) / PRESS_IN_S)
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


def render_refill_video(path: str | Path, spec: RefillSpec) -> dict:
    """Render ``spec`` to an H.264 MP4 at ``path`` and return its truth record.

    ``path`` in the record is ``str(path)``; ``generate_videos`` rewrites it relative to the
    output folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    video = RenderedFrames(spec)
    container, stream = _open_writer(path, spec)
    k_rot = -(spec.rotation // 90)
    try:
        for pts, pixels in video:
            if k_rot:
                pixels = np.ascontiguousarray(np.rot90(pixels, k=k_rot))
            vf = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            vf.pts = int(pts)
            vf.time_base = TIME_BASE
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    scene = video.scene
    return truth_record(spec, path, video.pts, scene.roi, scene.roi_baseline_rgb,
                        scene.roi_blanched_rgb)


class RenderedFrames:
    """The frames of one video before encoding: iterate for ``(pts, upright uint8 RGB)``.

    Everything random is drawn in ``__init__`` from ``spec.seed``, so iteration is repeatable.
    """

    def __init__(self, spec: RefillSpec) -> None:
        self.spec = spec
        w, h = spec.width, spec.height
        rng = np.random.default_rng([spec.seed, 1])
        move = (0, 0)
        if spec.broken == "camera_moved":
            ang = rng.uniform(0, 2 * np.pi)
            dist = 0.4 * min(w, h)
            move = (int(round(dist * np.sin(ang))), int(round(dist * np.cos(ang))))
        self.margin = int(math.ceil(spec.shake_px)) + 1 + max(abs(move[0]), abs(move[1]))
        self.scene = build_scene(np.random.default_rng([spec.seed, 0]), spec.site, w, h,
                                 spec.skin_tone, spec.blanch_contrast, spec.pulse_amp,
                                 self.margin, spec.examiner_tone, spec.exposure_level,
                                 spec.shake_px)
        self.pts = frame_pts(spec)
        t = self.t = self.pts / TICKS_PER_S
        n = len(t)
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
        self.dy = np.round(spec.shake_px * _wander(rng, t, 0.5, 6.0)).astype(int)
        self.dx = np.round(spec.shake_px * _wander(rng, t, 0.5, 6.0)).astype(int)
        light = np.ones((n, 3))
        self.occ_level, self.occ_shift = _occluder_track(spec, t, self.scene)
        if spec.broken == "camera_moved":
            ramp = _smoothstep((t - spec.broken_at_s) / 0.4)
            self.dy += np.round(ramp * move[0]).astype(int)
            self.dx += np.round(ramp * move[1]).astype(int)
        elif spec.broken == "light_switched":
            factor = rng.uniform(0.5, 0.7) if rng.random() < 0.5 else rng.uniform(1.3, 1.5)
            warm = rng.random() < 0.5
            tint = np.array([1.0, 0.97, 0.88]) if warm else np.array([0.9, 0.97, 1.05])
            light[t >= spec.broken_at_s] = factor * tint
        elif spec.broken == "dark_frame":
            first = int(np.searchsorted(t, spec.broken_at_s))
            light[first:first + int(rng.integers(1, 4))] = 0.03
        self.gain = (exposure[:, None] * light).astype(np.float32)
        self.flicker_phase = rng.uniform(0, 2 * np.pi)
        self.row_t = np.arange(h) * (0.8 / (spec.fps_nominal * h))  # rolling-shutter readout
        self.noise_bank = None
        if spec.noise_sigma > 0:
            self.noise_bank = (spec.noise_sigma * rng.standard_normal((4, h + 16, w + 16, 3))
                               + 0.5).astype(np.float32)
        self.noise_pick = rng.integers(0, [4, 16, 16], size=(n, 3))

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
            if spec.flicker_amp > 0:
                rows = 1.0 + spec.flicker_amp * np.sin(
                    2 * np.pi * spec.flicker_hz * (self.t[i] + self.row_t) + self.flicker_phase)
                frame *= rows.astype(np.float32)[:, None, None] * self.gain[i][None, None, :]
            else:
                frame *= self.gain[i][None, None, :]
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
        self.rgb, self.alpha = scene.occluder_rgb, scene.occluder_alpha
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
        a = self.alpha[fy0 - oy:fy1 - oy, fx0 - ox:fx1 - ox]
        if level < 1.0:
            a = a * np.float32(level)
        region = frame[fy0:fy1, fx0:fx1]
        region += a * (self.rgb[fy0 - oy:fy1 - oy, fx0 - ox:fx1 - ox] - region)


def _occluder_track(spec: RefillSpec, t: np.ndarray, scene) -> tuple[np.ndarray, np.ndarray]:
    """Opacity and (dy, dx) shift of the occluder per frame.

    The slide fades in as it lands and out as it lifts. The fingertip slides in along its own
    axis before the press and away after release, far enough to leave the frame.
    """
    arrive = _smoothstep((t - (spec.press_start_s - APPROACH_S)) / APPROACH_S)
    leave = 1.0 - _smoothstep((t - spec.release_s) / spec.lift_s)
    presence = np.minimum(arrive, leave)
    shift = np.zeros((len(t), 2), dtype=int)
    if spec.site == "finger":
        return presence, shift
    away = float(np.hypot(spec.width, spec.height)) + 2 * scene.margin
    dist = (1.0 - presence) * away
    shift[:, 0] = np.round(dist * scene.occluder_exit[0])
    shift[:, 1] = np.round(dist * scene.occluder_exit[1])
    return (presence > 0).astype(np.float64), shift


def _open_writer(path: Path, spec: RefillSpec):
    container = av.open(str(path), mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=Fraction(spec.fps_nominal),
                                  options={"crf": str(spec.crf), "preset": spec.preset})
    if spec.rotation in (90, 270):
        stream.width, stream.height = spec.height, spec.width
    else:
        stream.width, stream.height = spec.width, spec.height
    stream.pix_fmt = "yuv420p"
    stream.time_base = TIME_BASE
    stream.codec_context.time_base = TIME_BASE
    stream.thread_count = 1  # x264 is bit-exact only single-threaded
    if spec.rotation:
        stream.set_display_rotation(spec.rotation)
    return container, stream


# --------------------------------------------------------------------------------------------
# Truth


def truth_record(spec: RefillSpec, path: Path, pts: np.ndarray, roi, base_rgb, blanched_rgb) -> dict:
    """The truth record of one rendered video (shared contract plus extra detail)."""
    released = spec.broken != "no_release"
    crt = spec.curve.crt_s if released else None
    return {
        "path": str(path),
        "site": spec.site,
        "skin_tone": spec.skin_tone,
        "ita": round(ita_degrees(np.asarray(base_rgb) / 255.0), 2),
        "fps_nominal": spec.fps_nominal,
        "vfr": spec.vfr,
        "frames": int(len(pts)),
        "duration_s": float(pts[-1] / TICKS_PER_S) if len(pts) else 0.0,
        "width": spec.width,
        "height": spec.height,
        "rotation": spec.rotation,
        "press_start_s": spec.press_start_s,
        "release_s": spec.release_s if released else None,
        "crt_s": crt,
        "tau_s": spec.curve.equivalent_tau_s if released else None,
        "curve": spec.curve.to_dict() if released else None,
        "roi": [int(v) for v in roi],
        "roi_baseline_rgb": [round(float(v), 3) for v in base_rgb],
        "roi_blanched_rgb": [round(float(v), 3) for v in blanched_rgb],
        "blanch_contrast": spec.blanch_contrast,
        "crf": spec.crf,
        "broken": spec.broken,
        "broken_at_s": spec.broken_at_s,
        "expected_status": "rejected" if spec.broken else "ok",
        "seed": spec.seed,
        "generator_version": GENERATOR_VERSION,
        "spec": _spec_dict(spec),
    }


def _spec_dict(spec: RefillSpec) -> dict:
    d = asdict(spec)
    d["curve"] = spec.curve.to_dict()
    return d


# --------------------------------------------------------------------------------------------
# Batch


def _render_job(args: tuple[str, str, RefillSpec]) -> dict:
    out_dir, rel, spec = args
    rec = render_refill_video(Path(out_dir) / rel, spec)
    rec["path"] = rel
    return rec


def generate_videos(n: int, out_dir: str | Path, seed: int = 0, broken_fraction: float = 0.15,
                    site: str = "both", workers: int = 1, *,
                    duration_scale: float = 1.0) -> Path:
    """Render ``n`` videos under ``out_dir/videos/`` and write ``out_dir/truth.json``.

    Video ``i`` depends only on ``(seed, i)``, so ``workers`` changes nothing but speed.
    """
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(n):
        spec = sample_spec(np.random.default_rng([seed, i]), i, site, broken_fraction,
                           duration_scale=duration_scale)
        jobs.append((str(out_dir), f"videos/refill_{i:05d}.mp4", spec))
    if workers > 1 and n > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, n), mp_context=ctx) as pool:
            records = list(pool.map(_render_job, jobs))
    else:
        records = []
        for job in jobs:
            records.append(_render_job(job))
            log.info("rendered %s", job[1])
    truth = out_dir / "truth.json"
    truth.write_text(json.dumps(records, indent=1) + "\n")
    config = {"n": n, "seed": seed, "broken_fraction": broken_fraction, "site": site,
              "duration_scale": duration_scale, "generator_version": GENERATOR_VERSION}
    (out_dir / "synth_videos_config.json").write_text(json.dumps(config, indent=1) + "\n")
    return truth
