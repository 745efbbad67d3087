"""Photo quality flags, and how much each one lowers the confidence of a score.

Flags (words for each in ``mottling.results.IMAGE_QUALITY_MESSAGES``):

- ``too_dark``: even the brighter part of the photo is dark (95th percentile of luma below
  ``dark_p95``). Judged on the bright end, not the mean, so a well-lit photo of very dark skin
  (Monk 9-10, whose swatches have a luma near 35/255) is not called dark.
- ``overexposed``: three quarters of the picture is blown to white in all three channels, or half
  of it is and the skin that is left has its red channel clipped almost everywhere. The bar is high
  because a white sheet burnt out beside a well-exposed leg is common (generated photos with
  auto-exposure have up to ~72% of such pixels) and does not spoil the score.
- ``blurred``: the no-reference blur measure of Crete et al. (2007): how much of the local
  variation survives an extra 9-pixel box blur. It is a ratio, so it depends far less on contrast
  than the variance of the Laplacian, which scales with contrast squared and would call
  low-contrast photos of dark skin blurred. It is taken at about the model's input size, so blur
  the model cannot see is not flagged; the threshold sits above the mild blur (Gaussian sigma up to
  1.6 px at 384 px) that the training generator already includes.
- ``no_skin``: too few pixels have a colour that skin could have under some light. The test is in
  CIELAB and lenient on purpose (see ``skin_mask``): it must never flag dark skin (a YCbCr box such as
  Cr >= 133 misses Monk 9-10) nor light skin under a cool cast. It catches frames of sheet-blue,
  green, black or blown-out white; it cannot tell a grey or beige wall from a leg.
- ``low_resolution``: the short side is under ``min_short_side`` pixels (after decoding).
- ``no_colour``: the photo is greyscale or all but colourless (90th percentile of HSV saturation,
  among pixels bright enough to carry a colour, under ``colour_min_saturation``). Mottling is a
  colour sign, so such a photo cannot be scored as if it were colour: the flag cuts the confidence
  hardest of all. Saturation, not chroma, so that dim light or dark skin (low chroma, ordinary
  saturation) is not mistaken for a photo without colour. On generated photos the lowest value
  is about 0.07 and a greyscale photo gives exactly 0.

Confidence: ``confidence = max(probabilities) * product(penalty[flag] for each flag raised)``,
with the penalties in ``QualityPolicy`` (``no_skin`` cuts hardest, as a score without a leg in view
means nothing). Everything is measured on a small copy of the photo, so it costs a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
from PIL import Image

from mottling.results import IMAGE_QUALITY_MESSAGES

QUALITY_FLAGS = tuple(IMAGE_QUALITY_MESSAGES)

_DEFAULT_PENALTIES = MappingProxyType({
    "too_dark": 0.5,
    "overexposed": 0.6,
    "blurred": 0.6,
    "no_skin": 0.25,
    "low_resolution": 0.7,
    "no_colour": 0.2,
})


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds for each flag and the factor it multiplies the confidence by."""

    dark_p95: float = 40.0            # luma (0-255) that 95% of the pixels stay under
    blown_fraction: float = 0.75      # share of pixels with R, G and B all >= 250; or both of:
    blown_fraction_with_skin: float = 0.5
    skin_clipped_fraction: float = 0.85   # share of warm skin-coloured pixels with red >= 250
    blur_max: float = 0.6             # Crete blur measure (0 sharp .. 1 flat) above which: blurred
    skin_min_fraction: float = 0.10   # share of possibly-skin pixels below which: no_skin
    skin_min_a: float = -9.0          # CIELAB a* floor (greener is not skin)
    skin_min_b: float = -12.0         # CIELAB b* floor (bluer is not skin)
    skin_l_range: tuple[float, float] = (4.0, 98.0)
    min_short_side: int = 224         # pixels
    colour_min_saturation: float = 0.03   # 90th-percentile HSV saturation below which: no_colour
    colour_min_value: int = 8         # pixels darker than this (max of R, G, B) carry no colour
    # Long side of the copy every measure is taken on: about the model's input size, so blur that
    # the model cannot see is not flagged, and area averaging tames sensor noise.
    analysis_size: int = 256
    penalties: Mapping[str, float] = field(default_factory=lambda: _DEFAULT_PENALTIES)

    def __post_init__(self) -> None:
        unknown = set(self.penalties) - set(QUALITY_FLAGS)
        if unknown:
            raise ValueError(f"unknown quality flags {sorted(unknown)}")


DEFAULT_POLICY = QualityPolicy()


@dataclass(frozen=True)
class QualityReport:
    flags: tuple[str, ...]
    luma_p95: float
    blown_fraction: float
    blur: float
    skin_fraction: float
    short_side: int
    saturation_p90: float = -1.0     # -1: no pixel bright enough to tell

    def confidence_factor(self, policy: QualityPolicy = DEFAULT_POLICY) -> float:
        factor = 1.0
        for flag in self.flags:
            factor *= float(policy.penalties.get(flag, 1.0))
        return factor


def assess_quality(image: Image.Image, policy: QualityPolicy = DEFAULT_POLICY) -> QualityReport:
    """Measure one photo (RGB) and raise the flags it deserves, in ``QUALITY_FLAGS`` order."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small_image = _shrink(rgb, policy.analysis_size)
    small_u8 = np.asarray(small_image)
    small = small_u8.astype(np.float32)
    luma = small @ np.array([0.299, 0.587, 0.114], np.float32)
    luma_p95 = float(np.percentile(luma, 95))
    # channel-wise minimum; ndarray.min(axis=-1) over a length-3 axis is many times slower
    darkest = np.minimum(np.minimum(small[..., 0], small[..., 1]), small[..., 2])
    blown = float(np.mean(darkest >= 250.0))
    sub = small_u8[::2, ::2]                      # shares only: every 4th pixel will do
    skin_px = skin_mask(sub, policy)
    skin = float(np.mean(skin_px))
    # light skin overexposes red first: warm skin-coloured pixels whose red channel is clipped
    red, blue = sub[..., 0].astype(np.int16), sub[..., 2].astype(np.int16)
    warm = skin_px & (red - blue >= 12)
    skin_clipped = float(np.mean(red[warm] >= 250)) if warm.any() else 0.0
    blur = blur_measure(luma)
    saturation = colour_saturation(sub, policy.colour_min_value)
    short_side = min(rgb.size)

    raised = {
        "too_dark": luma_p95 < policy.dark_p95,
        "overexposed": blown > policy.blown_fraction or (
            blown > policy.blown_fraction_with_skin and skin_clipped > policy.skin_clipped_fraction),
        "blurred": blur > policy.blur_max,
        "no_skin": skin < policy.skin_min_fraction,
        "low_resolution": short_side < policy.min_short_side,
        "no_colour": saturation is not None and saturation < policy.colour_min_saturation,
    }
    flags = tuple(f for f in QUALITY_FLAGS if raised.get(f, False))
    return QualityReport(flags, luma_p95, blown, blur, skin, short_side,
                         -1.0 if saturation is None else saturation)


def adjusted_confidence(probabilities: np.ndarray, report: QualityReport,
                        policy: QualityPolicy = DEFAULT_POLICY) -> float:
    """The model's own confidence (top class probability) lowered for each quality flag."""
    return float(np.max(probabilities)) * report.confidence_factor(policy)


# sRGB 8-bit -> linear light, as a table (what ``mottling.skin.srgb_to_lab`` computes, but fast)
_LINEAR = np.array([c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
                    for c in np.arange(256) / 255.0], np.float32)
_RGB_TO_XYZ_D65 = (np.array([[0.4124564, 0.3575761, 0.1804375],
                             [0.2126729, 0.7151522, 0.0721750],
                             [0.0193339, 0.1191920, 0.9503041]])
                   / np.array([[0.95047], [1.0], [1.08883]])).astype(np.float32)


def skin_mask(rgb: np.ndarray, policy: QualityPolicy = DEFAULT_POLICY) -> np.ndarray:
    """Boolean HxW mask of pixels whose colour could be skin, from an HxWx3 uint8-range array.

    In CIELAB: not green (a* >= ``skin_min_a``), not blue (b* >= ``skin_min_b``), neither black
    nor blown white (L* within ``skin_l_range``). Deliberately lenient: it has to keep every Monk
    tone under tinted light (generated photos include cool and warm casts that push very dark skin
    towards purple and light skin towards khaki), so neutral greys, whites and beige count as
    possible skin; what it rejects is a frame of sheet-blue, green, black or blown-out white.
    """
    idx = np.asarray(rgb)
    if idx.dtype != np.uint8:
        idx = np.clip(idx, 0, 255).astype(np.uint8)
    xyz = _LINEAR[idx] @ _RGB_TO_XYZ_D65.T
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    lightness = 116 * f[..., 1] - 16
    a_star = 500 * (f[..., 0] - f[..., 1])
    b_star = 200 * (f[..., 1] - f[..., 2])
    lo, hi = policy.skin_l_range
    return ((lightness >= lo) & (lightness <= hi) & (a_star >= policy.skin_min_a)
            & (b_star >= policy.skin_min_b))


def colour_saturation(rgb: np.ndarray, min_value: int = 24) -> float | None:
    """90th percentile of HSV saturation ((max - min) / max of R, G, B) over the pixels that can
    show a colour: brightest channel at least ``min_value`` and not blown to white in all three.
    ``None`` when no pixel can (a black or burnt-out frame). The floor is low on purpose: in a dim
    photo the skin may be the darkest thing in view, and quantisation noise in dark pixels only
    ever adds saturation, so it can hide a faint colour but never invent a missing one."""
    px = np.asarray(rgb).reshape(-1, 3)
    top = px.max(axis=1).astype(np.float32)
    lit = (top >= min_value) & (px.min(axis=1) < 250)
    if not lit.any():
        return None
    spread = top[lit] - px[lit].min(axis=1)
    return float(np.percentile(spread / top[lit], 90))


def blur_measure(grey: np.ndarray) -> float:
    """Crete et al. (2007) blur measure of a grey image: 0 = sharp, 1 = nothing left to blur.

    Re-blurring a sharp image removes much local variation; re-blurring a blurred one removes
    little. The measure is the share of variation that survives, the worse of the two directions.
    """
    f = np.asarray(grey, dtype=np.float32)
    worst = 0.0
    for axis in (0, 1):
        if f.shape[axis] < 3:
            return 1.0
        blurred = _box_blur(f, 9, axis)
        d_f = np.abs(np.diff(f, axis=axis))
        d_b = np.abs(np.diff(blurred, axis=axis))
        s_f = float(d_f.sum())
        if s_f < 1e-3 * d_f.size:  # a flat picture: nothing in focus
            return 1.0
        s_v = float(np.maximum(0.0, d_f - d_b).sum())
        worst = max(worst, (s_f - s_v) / s_f)
    return worst


def _box_blur(f: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Centred moving average along ``axis``, edges repeated (scipy's uniform_filter1d, "nearest");
    written with a cumulative sum so that this module does not pay scipy's import time."""
    half = size // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (half + 1, half)
    c = np.cumsum(np.pad(f.astype(np.float64), pad, mode="edge"), axis=axis)
    hi = np.take(c, np.arange(size, c.shape[axis]), axis=axis)
    lo = np.take(c, np.arange(0, c.shape[axis] - size), axis=axis)
    return ((hi - lo) / size).astype(np.float32)


def _shrink(image: Image.Image, long_side: int) -> Image.Image:
    w, h = image.size
    scale = long_side / max(w, h)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.BOX)
