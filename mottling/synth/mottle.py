"""Mottling: where it is (the region that decides the label) and what it looks like (a reticular,
violaceous net with gaps and confluent blotches).

The region's furthest point along the leg axis is exactly the drawn extent, so the label follows
``mottling.scale`` by construction; the look varies freely inside it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from mottling.synth.leg import Anatomy
from mottling.synth.patterns import WorleyNet, smooth_noise, smoothstep

# Absorbance (per channel, linear RGB) of deoxygenated blood pooled in the superficial venous
# plexus: takes green and red, spares blue, which reads as violaceous.
ABSORB_PURPLE = np.array([0.80, 1.15, 0.40], dtype=np.float32)
ABSORB_BLUE = np.array([0.95, 1.05, 0.55], dtype=np.float32)
ABSORB_RED = np.array([0.45, 1.10, 0.70], dtype=np.float32)  # dusky red-violet


def mottled_region(rng: np.random.Generator, score: int, extent: float, anat: Anatomy,
                   u: np.ndarray, v: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """(hard bool region, intensity envelope in [0, 1], v where the region reaches ``extent``)."""
    if score == 1:
        rv = extent * rng.uniform(0.8, 1.0)
        d = (u / np.float32(extent)) ** 2 + (v / np.float32(rv)) ** 2
        return d <= 1.0, 0.6 + 0.4 * smoothstep((1.0 - d) * 3), 0.0
    if score == 2:
        au = extent * rng.uniform(0.9, 1.6)
        uc = extent - au
        av = anat.hw_knee * rng.uniform(0.6, 1.15)
        d = ((u - np.float32(uc)) / np.float32(au)) ** 2 + (v / np.float32(av)) ** 2
        return d <= 1.0, 0.45 + 0.55 * smoothstep((1.0 - d) * 2.5), 0.0
    # 3-5: from below the knee up to an irregular front that peaks at (extent, v_top)
    v_top = float(rng.uniform(-0.45, 0.45) * anat.hw_knee)
    amp = float(rng.uniform(0.02, 0.12))
    f1, f2 = rng.uniform(7, 18, 2)
    f3 = rng.uniform(30, 60)
    p1, p2, p3 = rng.uniform(0, 2 * np.pi, 3)
    bow = float(rng.uniform(0.5, 3.0))

    def wob(x):
        return (0.5 * (np.sin(np.float32(f1) * x + np.float32(p1)) + 1)
                + 0.3 * (np.sin(np.float32(f2) * x + np.float32(p2)) + 1)
                + 0.12 * (np.sin(np.float32(f3) * x + np.float32(p3)) + 1))

    grid = np.linspace(-0.6, 0.6, 241, dtype=np.float32)
    g0 = wob(grid)
    span = max(float(g0.max() - g0.min()), 1e-6)
    dip = float(wob(np.float32(v_top)))
    dv = v - np.float32(v_top)
    # >= 0 everywhere and 0 at v_top, so the front's highest point is exactly at ``extent``
    wv = np.maximum(wob(v) - np.float32(dip), 0) * np.float32(1 / span) + np.float32(bow) * dv * dv
    top = np.float32(extent) - np.float32(amp) * wv
    bottom = -float(rng.uniform(0.15, 0.7))
    region = (u <= top) & (u >= np.float32(bottom))
    fade_top = 0.45 + 0.55 * smoothstep((top - u) * np.float32(1 / 0.05))
    fade_bottom = smoothstep((u - np.float32(bottom)) * np.float32(1 / 0.12))
    return region, fade_top * fade_bottom, v_top


def mottling_density(rng: np.random.Generator, anat: Anatomy, score: int, extent: float,
                     u: np.ndarray, v: np.ndarray, envelope: np.ndarray,
                     sel: np.ndarray) -> np.ndarray:
    """Net density in [0, ~1] over the whole frame (0 outside ``sel``).

    Drawn at half resolution and upsampled: four times cheaper, and the soft edge of the lines
    is what mottling looks like through a phone lens anyway.
    """
    h, w = u.shape
    uh, vh, eh, sh = u[::2, ::2], v[::2, ::2], envelope[::2, ::2], sel[::2, ::2]
    hh, wh = uh.shape
    tex = np.random.default_rng(anat.texture_seed + 1)
    cell = float(tex.uniform(0.028, 0.06))
    if score == 1:
        cell = min(cell, float(rng.uniform(0.35, 0.6)) * extent)
    net = WorleyNet(tex, cell)
    coarse = WorleyNet(tex, cell * float(tex.uniform(2.0, 3.0)))
    coarse_w = np.float32(rng.uniform(0.0, 0.8))
    # the noise is laid out in pixels: size it by how many net cells cross the frame
    span_units = float(np.hypot(u[0, 0] - u[-1, -1], v[0, 0] - v[-1, -1]))
    cells_across = span_units / cell
    warp_u = (smooth_noise(rng, hh, wh, cells_across / 2.5) - 0.5) * np.float32(cell * 0.9)
    warp_v = (smooth_noise(rng, hh, wh, cells_across / 2.5) - 0.5) * np.float32(cell * 0.9)
    width_field = smooth_noise(rng, hh, wh, cells_across / 3.0)
    gaps = smoothstep((smooth_noise(rng, hh, wh, cells_across / 2.0) - 0.25) * 3.0)
    blotch = smoothstep((smooth_noise(rng, hh, wh, cells_across / 4.0) - 0.6) * 3.0)
    line_w = float(rng.uniform(0.18, 0.42))
    dens = np.zeros((hh, wh), dtype=np.float32)
    if sh.any():
        lw = np.float32(line_w) * (0.5 + width_field[sh])
        uu, vv = uh[sh] + warp_u[sh], vh[sh] + warp_v[sh]
        f1, f2 = net.f1_f2(uu, vv)
        e = (f2 - f1) / lw
        lines = np.exp(-np.minimum(e * e, 80)) * (0.35 + 0.65 * gaps[sh])
        if coarse_w > 0:  # broad marbling bands around groups of islands
            c1, c2 = coarse.f1_f2(uu, vv)
            ec = (c2 - c1) * np.float32(1 / 0.35)
            lines = np.maximum(lines, coarse_w * np.exp(-np.minimum(ec * ec, 80)))
        dens[sh] = np.maximum(lines, 0.75 * blotch[sh]) * eh[sh]
    full = Image.fromarray(dens, mode="F").resize((w, h), Image.BILINEAR)
    return np.asarray(full, dtype=np.float32) * sel


def mottling_absorbance(rng: np.random.Generator, anat: Anatomy, dens: np.ndarray,
                        envelope: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-channel optical density (3, H, W) to multiply skin by ``exp(-A)``, and the contrast."""
    melanin = (anat.skin_tone - 1) / 9
    # Blood in the dermis changes the reflectance by a ratio, whatever the melanin above it; the
    # net still reads fainter on dark skin because the skin is darker and its surface sheen is
    # not mottled. The optical density is raised a little with melanin so that the net stays at
    # least as visible as a clinician would see it at the bedside (a generator design choice).
    contrast = float(rng.uniform(0.6, 1.3) * (1 + 0.25 * melanin))
    w = rng.dirichlet((2.0, 1.0, 1.5)).astype(np.float32)
    absorb = w[0] * ABSORB_PURPLE + w[1] * ABSORB_BLUE + w[2] * ABSORB_RED
    dusky = np.float32(0.18) * envelope * envelope * region
    od = (dens + dusky) * np.float32(contrast)
    return absorb[:, None, None] * od[None], contrast
