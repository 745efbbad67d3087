"""Renderer B's skin, painted on the leg's surface: mottling as a lace of livid lines and patches,
and look-alikes that are not mottling (veins, a bruise, a red knee, freckles).

Everything is drawn into a texture over surface coordinates ``(u, arc)`` (thigh-axis position and
distance around the leg, in thigh lengths) and then looked up per pixel, so the pattern is seen in
perspective and wraps round the leg. The mottling texture is a different construction from
renderer A's cellular net: zero crossings of band-passed noise (a reticulated lace) mixed with
dusky blotches from thresholded low-frequency noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mottling.scale import extent_bounds
from mottling.synth.ward_leg import WardLeg

F32 = np.float32
TEXEL = 0.004                 # thigh lengths per texel (about 1.7 mm)
U_RANGE = (-1.0, 1.5)
ARC_RANGE = (-0.8, 0.8)
DISTRACTORS = ("veins", "bruise", "red_knee", "freckles")


@dataclass
class SkinTexture:
    """Linear-RGB albedo (3, Hu, Wa) and the mottled region (Hu, Wa) over the surface grid."""

    albedo: np.ndarray
    region: np.ndarray
    contrast: float
    distractors: tuple[str, ...]


def texture_grid() -> tuple[np.ndarray, np.ndarray]:
    """``u`` down the rows and ``arc`` across the columns of the texture, float32."""
    u = np.arange(U_RANGE[0], U_RANGE[1], TEXEL, dtype=F32)
    a = np.arange(ARC_RANGE[0], ARC_RANGE[1], TEXEL, dtype=F32)
    return np.meshgrid(u, a, indexing="ij")


def to_texel(u: np.ndarray, arc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Texture coordinates (x = column, y = row) for cv2.remap."""
    return ((arc - F32(ARC_RANGE[0])) / F32(TEXEL)).astype(F32), \
        ((u - F32(U_RANGE[0])) / F32(TEXEL)).astype(F32)


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """White noise blurred to features of ``sigma`` texels, scaled to unit standard deviation."""
    g = cv2.GaussianBlur(rng.standard_normal(shape).astype(F32), (0, 0), sigma)
    return g / F32(g.std() + 1e-6)


def _lace(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """A reticular lace: the zero set of band-passed noise, as soft lines in [0, 1]."""
    white = rng.standard_normal(shape).astype(F32)
    band = cv2.GaussianBlur(white, (0, 0), cell * 0.35) - cv2.GaussianBlur(white, (0, 0), cell)
    band /= F32(band.std() + 1e-6)
    return np.exp(-(band / F32(rng.uniform(0.35, 0.7))) ** 2)


def draw_extent(rng: np.random.Generator, score: int, leg: WardLeg, margin: float) -> float | None:
    """How far the mottling reaches (thigh lengths), inside the score's bounds with a margin."""
    if score == 0:
        return None
    lm = leg.landmarks
    if score == 1:
        return float(rng.uniform(0.55, 0.92) * lm.coin_radius)
    lo, hi = extent_bounds(score, lm)
    if score == 5:
        return float(rng.uniform(lo + 2 * margin, lo + 0.28))
    a, b = lo + margin, hi - margin
    return float(rng.uniform(a, b)) if b > a else 0.5 * (lo + hi)


def mottled_region(rng: np.random.Generator, score: int, extent: float, u: np.ndarray,
                   arc: np.ndarray) -> np.ndarray:
    """Where the skin is mottled: reaches ``extent`` up the front of the thigh and no further."""
    if score == 1:  # a coin-sized patch on the kneecap, its furthest point towards the thigh
        ang = np.arctan2(arc, u)
        wobble = np.clip(0.5 + 0.5 * np.sin(ang * rng.integers(2, 5) + rng.uniform(0, 6)), 0, 1)
        r = extent * (1 - 0.25 * wobble * (np.abs(ang) > 0.5))
        return (u * u + arc * arc) <= r * r
    arcs = arc[0]
    n = cv2.GaussianBlur(rng.random((1, arcs.size)).astype(F32), (0, 0), 18).ravel()
    n = (n - n.min()) / max(float(np.ptp(n)), 1e-6)
    tip = rng.uniform(-0.12, 0.12)  # the tongue that reaches furthest, near the front line
    n = np.minimum(n, np.abs(arcs - F32(tip)) * F32(4))
    edge = extent - min(0.35 * extent, 0.12) * n
    width = {2: rng.uniform(0.14, 0.3), 3: rng.uniform(0.25, 0.6)}.get(score, 0.8)
    low = -rng.uniform(0.03, 0.5) if score > 2 else -rng.uniform(0.02, 0.12)
    return (u <= edge[None, :]) & (u >= low) & (np.abs(arc) <= width)


def paint_skin(rng: np.random.Generator, leg: WardLeg, score: int, extent: float | None,
               base_linear: np.ndarray, distractors: tuple[str, ...]) -> SkinTexture:
    """The leg's albedo with mottling (inside the region) and the named look-alikes."""
    u, arc = texture_grid()
    shape = u.shape
    tex = np.random.default_rng(leg.texture_seed)
    lum = F32(1) + F32(0.05) * _noise(tex, shape, 12) + F32(0.02) * _noise(tex, shape, 1.5)
    albedo = base_linear.astype(F32)[:, None, None] * lum[None]
    dark = (leg.skin_tone - 1) / 9.0
    if "freckles" in distractors:
        spots = (tex.random(shape) < 0.0025).astype(F32)
        spots = cv2.GaussianBlur(spots, (0, 0), 1.2) * F32(8)
        albedo *= np.exp(-np.clip(spots, 0, 1)[None] * np.array([0.5, 0.6, 0.7], F32)[:, None, None])
    if "red_knee" in distractors:  # erythema over the kneecap: redness, no lace
        r = rng.uniform(0.07, 0.16)
        red = np.exp(-((u / F32(r * 1.3)) ** 2 + (arc / F32(r)) ** 2)) * F32(rng.uniform(0.5, 1.0))
        red *= F32(1) + F32(0.3) * _noise(rng, shape, 6)
        albedo *= np.exp(-np.clip(red, 0, 1.5)[None] * np.array([-0.12, 0.35, 0.28], F32)[:, None, None])
    if "veins" in distractors:
        veins = np.zeros(shape, F32)
        for _ in range(int(rng.integers(2, 6))):
            a0 = rng.uniform(-0.5, 0.5)
            pts, pu, pa, ang = [], rng.uniform(-0.6, 1.3), a0, rng.normal(0, 0.4)
            for _ in range(int(rng.integers(30, 80))):
                ang += rng.normal(0, 0.25)
                pu += 0.012 * np.cos(ang)
                pa += 0.012 * np.sin(ang)
                x, y = to_texel(np.array([pu], F32), np.array([pa], F32))
                pts.append((float(x[0]), float(y[0])))
            cv2.polylines(veins, [np.array(pts, np.int32)], False, 1.0,
                          int(rng.integers(2, 5)), cv2.LINE_AA)
        veins = cv2.GaussianBlur(veins, (0, 0), 1.5) * F32(rng.uniform(0.3, 0.8) * (1 - 0.6 * dark))
        albedo *= np.exp(-veins[None] * np.array([0.55, 0.3, 0.05], F32)[:, None, None])
    if "bruise" in distractors:
        bu, ba = rng.uniform(-0.4, 1.1), rng.uniform(-0.4, 0.4)
        r = rng.uniform(0.03, 0.09)
        d = np.sqrt(((u - F32(bu)) / F32(r * rng.uniform(0.7, 1.5))) ** 2 + ((arc - F32(ba)) / F32(r)) ** 2)
        d = d + F32(0.25) * _noise(rng, shape, 8)
        core = np.exp(-np.maximum(d, 0) ** 2 * F32(1.5))
        age = rng.uniform(0, 1)  # fresh: purple; old: yellow-green at the rim
        col = np.array([0.8, 1.4, 0.4], F32) * F32(1 - age) + np.array([0.05, 0.1, 0.9], F32) * F32(age)
        albedo *= np.exp(-core[None] * col[:, None, None] * F32(rng.uniform(0.6, 1.2)))
    region = np.zeros(shape, bool)
    contrast = 0.0
    if score > 0 and extent is not None:
        region = mottled_region(rng, score, extent, u, arc)
        lace = _lace(rng, shape, rng.uniform(4, 9))
        blot = np.clip(_noise(rng, shape, rng.uniform(4, 10)) * F32(0.6) + F32(0.3), 0, 1)
        mix = F32(rng.uniform(0.3, 0.8))
        dens = np.clip(mix * lace + (F32(1) - mix) * blot, 0, 1)
        dens *= F32(0.6) + F32(0.4) * np.clip(_noise(rng, shape, 30) + F32(0.5), 0, 1)
        soft = cv2.GaussianBlur(region.astype(F32), (0, 0), 1.2)
        # The lace is an absorbance in the dermis: in log reflectance it is the same on any skin
        # tone (melanin above it scales skin and lace alike; the surface glare that does dilute
        # it on dark skin comes from the lighting). Version 1.0 also cut it by up to 45 % on dark
        # skin, which left most Monk 8-10 mottling below one just-noticeable difference at the
        # model's input size (benchmarks/mottling_visibility.py).
        contrast = float(rng.uniform(0.5, 1.2))
        od = dens * soft * F32(contrast)
        hue = np.array([rng.uniform(0.45, 0.7), 1.0, rng.uniform(0.35, 0.6)], F32)
        albedo *= np.exp(-od[None] * hue[:, None, None])
    return SkinTexture(albedo.astype(F32), region, contrast, distractors)


def sample_distractors(rng: np.random.Generator, score: int) -> tuple[str, ...]:
    """Look-alikes for this photo: most clean legs get at least one, mottled legs some."""
    p = {"veins": 0.3, "bruise": 0.18, "red_knee": 0.22, "freckles": 0.15}
    if score == 0:
        p = {k: min(0.9, 1.6 * v) for k, v in p.items()}
    return tuple(k for k in DISTRACTORS if rng.random() < p[k])


def lookup(tex: np.ndarray, u: np.ndarray, arc: np.ndarray) -> np.ndarray:
    """Sample a (C, Hu, Wa) or (Hu, Wa) texture at per-pixel surface coordinates."""
    mx, my = to_texel(u, arc)
    if tex.ndim == 2:
        return cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.stack([cv2.remap(np.ascontiguousarray(c), mx, my, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT) for c in tex])
