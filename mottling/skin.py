"""Skin tone: the Monk Skin Tone scale and the individual typology angle (ITA) from CIELAB.

Every metric we publish is broken out by skin tone, so tone groups are defined once, here.
"""

from __future__ import annotations

import numpy as np

# Monk Skin Tone scale (Monk 2019), sRGB hex swatches for tones 1-10.
MONK_HEX = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96",
            "a07e56", "825c43", "604134", "3a312a", "292420")
MONK_TONES = tuple(range(1, 11))


def monk_rgb(tone: int) -> np.ndarray:
    """sRGB of a Monk tone as floats in [0, 1]."""
    if tone not in MONK_TONES:
        raise ValueError(f"Monk tone is 1-10, got {tone!r}")
    h = MONK_HEX[tone - 1]
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0


def monk_group(tone: int) -> str:
    """Three reporting groups, so each holds enough images for a stable metric."""
    if tone not in MONK_TONES:
        raise ValueError(f"Monk tone is 1-10, got {tone!r}")
    return "monk_1-3" if tone <= 3 else ("monk_4-7" if tone <= 7 else "monk_8-10")


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] (any shape ending in 3) to CIELAB under D65."""
    rgb = np.asarray(rgb, dtype=np.float64)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def ita_degrees(rgb: np.ndarray) -> float:
    """ITA = atan((L* - 50) / b*) in degrees, of the mean colour of ``rgb`` (floats in [0, 1])."""
    lab = srgb_to_lab(np.asarray(rgb, dtype=np.float64).reshape(-1, 3)).mean(axis=0)
    return float(np.degrees(np.arctan2(lab[0] - 50.0, lab[2])))


ITA_CLASSES = ((55.0, "very_light"), (41.0, "light"), (28.0, "intermediate"),
               (10.0, "tan"), (-30.0, "brown"))


def ita_class(ita: float) -> str:
    """Chardon's ITA categories (very light > 55 > light > 41 > intermediate > 28 > tan > 10 >
    brown > -30 > dark)."""
    for lower, name in ITA_CLASSES:
        if ita > lower:
            return name
    return "dark"
