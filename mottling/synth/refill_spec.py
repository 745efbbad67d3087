"""What one synthetic refill video is: its parameters, and how they are drawn at random.

``RefillSpec`` holds every parameter of one video (same spec, same bytes). ``sample_spec`` draws
them over the ranges of issue 2; ``break_spec`` turns a spec into one the CRT module must reject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from mottling.scale import SITES
from mottling.synth.refill_curves import RefillCurve, curve_for_crt

BROKEN_KINDS = ("no_release", "camera_moved", "light_switched", "dark_frame")
# The reason category (see ``mottling.crt.gates.reason_category``) each broken kind must get.
BROKEN_REASONS = {"no_release": "no release", "camera_moved": "motion",
                  "light_switched": "lighting", "dark_frame": "dark"}
CRT_RANGE_S = {"finger": (1.0, 6.0), "knee": (1.5, 8.0)}
# Key-frame intervals (s) and their shares. Phones' hardware encoders put a key frame about every
# second (Android's usual I-frame interval is 1 s; iPhones use 0.5-1 s); None is x264's default
# (every 250 frames and at scene cuts: 4-8 s at 30-60 fps), what a desktop re-encode gives.
KEYFRAME_GOPS_S = (0.5, 1.0, 2.0, None)
KEYFRAME_SHARES = (0.2, 0.5, 0.15, 0.15)
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
    shake_px: float = 0.0      # hand tremor: smooth wander of this peak amplitude (px)
    wander_px: float = 0.0     # handheld random walk: step sd per 1/30 s (px), reverting over ~1 s
    drift_px: float = 0.0      # slow drift of the whole frame over the video (px)
    clip_red: bool = False     # pale skin under auto-exposure: the red channel clips at 255
    crf: int = 18              # x264 constant rate factor; 0 is lossless (used by truth checks)
    preset: str = "superfast"
    gop_s: float | None = None  # a key frame every this many seconds and none elsewhere;
    #                             None: x264's default (every 250 frames and at scene cuts)
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
        if self.gop_s is not None and self.gop_s <= 0:
            raise ValueError("gop_s must be positive or None (x264's default)")
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
    # Slow-motion modes drop frames now and then (the phone cannot keep up).
    drops = fps >= 120 and rng.random() < 0.6
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
    exposure = float(rng.uniform(0.7, 0.85) if tone <= 5 else rng.uniform(0.8, 1.1))
    clip_red = tone <= 3 and rng.random() < 0.35
    if clip_red:
        # Auto-exposure set on a darker scene: red sits at 255 on the spot while green (which
        # carries most of the blanching) stays below it, as on real phones.
        exposure = float(rng.uniform(1.04, 1.06))
        contrast = float(rng.uniform(0.4, 0.5))
    spec = RefillSpec(
        seed=int(rng.integers(2**31)), index=index, site=site, skin_tone=tone,
        examiner_tone=int(rng.integers(1, 11)), width=width, height=height, rotation=rotation,
        fps_nominal=fps, vfr=bool(vfr or drops),
        vfr_jitter=float(rng.uniform(0.1, 0.4)) if vfr else (0.03 if drops else 0.0),
        vfr_drop=float(rng.uniform(0.02, 0.1)) if vfr else (float(rng.uniform(0.01, 0.05))
                                                            if drops else 0.0),
        vfr_slow_segment=bool(vfr and rng.random() < 0.5),
        pre_press_s=float(pre), press_duration_s=float(press), post_release_s=float(post),
        curve=curve, lift_s=float(rng.uniform(0.1, 0.4)), blanch_contrast=contrast,
        exposure_level=exposure,
        noise_sigma=float(rng.uniform(0.5, 4.0)), exposure_drift=float(rng.uniform(0, 0.05)),
        ae_response=float(rng.uniform(-0.04, 0.04)) if rng.random() < 0.5 else 0.0,
        flicker_amp=float(rng.uniform(0, 0.03)) if rng.random() < 0.5 else 0.0,
        flicker_hz=float(rng.choice([100.0, 120.0])),
        pulse_amp=float(rng.uniform(0.002, 0.01)), heart_rate_bpm=float(rng.uniform(55, 130)),
        shake_px=float(rng.uniform(0, 2.0)), wander_px=float(rng.uniform(0.0, 1.0)),
        drift_px=float(rng.uniform(0.0, 8.0)), clip_red=bool(clip_red),
        crf=int(rng.integers(18, 29)),
    )
    if broken is not None:
        spec = break_spec(spec, broken, rng)
    # Drawn last, so every other parameter is what generator 0.2 drew for the same seed.
    gop = KEYFRAME_GOPS_S[int(rng.choice(len(KEYFRAME_GOPS_S), p=KEYFRAME_SHARES))]
    return replace(spec, gop_s=gop)


def break_spec(spec: RefillSpec, broken: str, rng: np.random.Generator) -> RefillSpec:
    """Turn a clean spec into one the CRT module must reject."""
    crt = spec.curve.crt_s
    if broken == "no_release":
        end = spec.press_start_s + spec.press_duration_s * rng.uniform(0.5, 0.9)
        return replace(spec, broken=broken, broken_at_s=None, video_s=float(end))
    at = spec.release_s + crt * rng.uniform(0.2, 0.7)
    return replace(spec, broken=broken, broken_at_s=float(at))


def at_resolution(spec: RefillSpec, min_side: int | None) -> RefillSpec:
    """The same video filmed with at least ``min_side`` pixels on its shorter side.

    The drawn sizes (180-640 px) are smaller than any phone records (720 px and up, 1080 px by
    default). The frame is scaled up with its aspect kept; the hand-held motion, drawn in pixels,
    scales with it, so the camera moves by the same share of the frame. The scene (skin, spot,
    light, noise per pixel) is drawn again at the new size from the same seed. A spec already at
    least that large is returned as it is.
    """
    short = min(spec.width, spec.height)
    if min_side is None or short >= min_side:
        return spec
    f = min_side / short

    def even(side: int) -> int:     # up to the next even size (rounded first: 240 * 250 / 240)
        return 2 * math.ceil(round(side * f / 2, 9))

    return replace(spec, width=even(spec.width), height=even(spec.height), shake_px=spec.shake_px * f,
                   wander_px=spec.wander_px * f, drift_px=spec.drift_px * f)


def clean_spec(spec: RefillSpec) -> RefillSpec:
    """The same video with every random nuisance off (for checks of the truth itself)."""
    return replace(spec, noise_sigma=0.0, exposure_drift=0.0, ae_response=0.0, flicker_amp=0.0,
                   pulse_amp=0.0, shake_px=0.0, wander_px=0.0, drift_px=0.0, broken=None, broken_at_s=None, video_s=None)


# --------------------------------------------------------------------------------------------


def spec_from_dict(d: dict) -> RefillSpec:
    """Rebuild a spec from the ``spec`` field of a truth record (to re-render a video)."""
    from mottling.synth.refill_curves import curve_from_dict

    return RefillSpec(**{**d, "curve": curve_from_dict(d["curve"])})
