"""Photo quality flags, and how much each one lowers the confidence of a score.

Flags (words for each in ``mottling.results.IMAGE_QUALITY_MESSAGES``):

- ``too_dark``: even the brighter part of the photo is dark (95th percentile of luma below
  ``dark_p95``). Judged on the bright end, not the mean, so a well-lit photo of very dark skin
  (Monk 9-10, whose swatches have a luma near 35/255) is not called dark.
- ``overexposed``: a large share of pixels is blown to white in all three channels.
- ``blurred``: the no-reference blur measure of Crete et al. (2007): how much of the local
  variation survives an extra 9-pixel box blur. It is a ratio, so it does not depend on contrast;
  the plain variance of the Laplacian scales with contrast squared and would call low-contrast photos
  of dark skin blurred.
- ``no_skin``: too few pixels have a skin colour. Skin of every Monk tone, 1 to 10, has an
  orange-red hue (about 0-50 degrees in HSV) with a little saturation; what differs between tones is
  brightness. So the test is on hue and saturation, with a low brightness floor, and not on a
  YCbCr box tuned to light skin (the classic Cr >= 133 box misses Monk 9-10). Mottled skin is
  purple-red, so hues from 320 degrees count as well.
- ``low_resolution``: the short side is under ``min_short_side`` pixels (after decoding).

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
from scipy.ndimage import uniform_filter1d

from mottling.results import IMAGE_QUALITY_MESSAGES

QUALITY_FLAGS = tuple(IMAGE_QUALITY_MESSAGES)

_DEFAULT_PENALTIES = MappingProxyType({
    "too_dark": 0.5,
    "overexposed": 0.6,
    "blurred": 0.6,
    "no_skin": 0.25,
    "low_resolution": 0.7,
})


@dataclass(frozen=True)
class QualityPolicy:
    """Thresholds for each flag and the factor it multiplies the confidence by."""

    dark_p95: float = 40.0            # luma (0-255) that 95% of the pixels stay under
    blown_fraction: float = 0.25      # share of pixels with R, G and B all >= 250
    blur_max: float = 0.45            # Crete blur measure (0 sharp .. 1 flat) above which: blurred
    skin_min_fraction: float = 0.08   # share of skin-coloured pixels below which: no_skin
    min_short_side: int = 224         # pixels
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

    def confidence_factor(self, policy: QualityPolicy = DEFAULT_POLICY) -> float:
        factor = 1.0
        for flag in self.flags:
            factor *= float(policy.penalties.get(flag, 1.0))
        return factor

    def messages(self) -> list[str]:
        return [IMAGE_QUALITY_MESSAGES[f] for f in self.flags]


def assess_quality(image: Image.Image, policy: QualityPolicy = DEFAULT_POLICY) -> QualityReport:
    """Measure one photo (RGB) and raise the flags it deserves, in ``QUALITY_FLAGS`` order."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small_image = _shrink(rgb, policy.analysis_size)
    small = np.asarray(small_image, dtype=np.float32)
    luma = small @ np.array([0.299, 0.587, 0.114], np.float32)
    luma_p95 = float(np.percentile(luma, 95))
    blown = float(np.mean(small.min(axis=-1) >= 250.0))
    skin = float(np.mean(skin_mask(small)))
    blur = blur_measure(luma)
    short_side = min(rgb.size)

    raised = {
        "too_dark": luma_p95 < policy.dark_p95,
        "overexposed": blown > policy.blown_fraction,
        "blurred": blur > policy.blur_max,
        "no_skin": skin < policy.skin_min_fraction,
        "low_resolution": short_side < policy.min_short_side,
    }
    flags = tuple(f for f in QUALITY_FLAGS if raised.get(f, False))
    return QualityReport(flags, luma_p95, blown, blur, skin, short_side)


def adjusted_confidence(probabilities: np.ndarray, report: QualityReport,
                        policy: QualityPolicy = DEFAULT_POLICY) -> float:
    """The model's own confidence (top class probability) lowered for each quality flag."""
    return float(np.max(probabilities)) * report.confidence_factor(policy)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean HxW mask of skin-coloured pixels in an HxWx3 array on a 0-255 scale.

    Hue in [320, 360) or [0, 50] degrees, saturation 0.05-0.85, value at least 0.07. Light skin is
    barely saturated (Monk 1 has S ~0.07), dark skin barely bright (Monk 10 has V ~0.16); both pass.
    Neutral greys and whites (S < 0.05), greens, blues and black fail. The hue bounds are written
    as comparisons (hue <= 50 with R >= G >= B is (G - B) <= 5/6 (R - B)) to stay cheap.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    chroma = r - np.minimum(g, b)               # = max - min when red is the largest channel
    red_max = (r >= g) & (r >= b) & (chroma > 0)
    orange = (g >= b) & ((g - b) <= (50.0 / 60.0) * chroma)   # hue 0..50
    purple = (b > g) & ((b - g) <= (40.0 / 60.0) * chroma)    # hue 320..360
    sat_ok = (chroma >= 0.05 * r) & (chroma <= 0.85 * r)
    return red_max & (orange | purple) & sat_ok & (r >= 0.07 * 255.0)


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
        blurred = uniform_filter1d(f, size=9, axis=axis, mode="nearest")
        d_f = np.abs(np.diff(f, axis=axis))
        d_b = np.abs(np.diff(blurred, axis=axis))
        s_f = float(d_f.sum())
        if s_f < 1e-3 * d_f.size:  # a flat picture: nothing in focus
            return 1.0
        s_v = float(np.maximum(0.0, d_f - d_b).sum())
        worst = max(worst, (s_f - s_v) / s_f)
    return worst


def _shrink(image: Image.Image, long_side: int) -> Image.Image:
    w, h = image.size
    scale = long_side / max(w, h)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.BOX)
