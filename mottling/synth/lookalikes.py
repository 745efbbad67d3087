"""Renderer A's ward look-alikes (photos/1.2): things on or over a leg that are not mottling.

Skin marks (veins, a red knee, freckles) are absorbance fields added to the skin's albedo; an arm's
or a phone's shadow is a multiplicative field over the whole photo; a gloved hand is an occluder
(coverage + colour, like the dressing and the ECG leads in ``nuisances``); a camera flash adds a hot
spot and a glare on the skin. None of them changes the mottling mask, so a clean leg with any of
them stays score 0.

Written for renderer A alone (flat leg plane through a homography, ``leg.Camera``): it shares no
code with renderer B's ``ward_*`` modules. Arrays are float32; images channel-first (3, H, W).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mottling.synth.patterns import smooth_noise

F = np.float32


def _to_pixels(cam, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``Camera.to_pixels``: leg-plane points (u, v) to pixel (x, y)."""
    inv = np.linalg.inv(cam.pix_to_leg)
    u, v = np.asarray(u, float), np.asarray(v, float)
    q = np.stack([cam.side_sign * v, -u, np.ones(u.shape)])
    p = inv @ q.reshape(3, -1)
    return p[0] / p[2], p[1] / p[2]


def _blurred(img: Image.Image, radius: float) -> np.ndarray:
    if radius > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(img, dtype=np.float32) * F(1 / 255)


def veins(rng: np.random.Generator, cam, anat, h: int, w: int) -> np.ndarray:
    """Bluish subcutaneous veins (a few branching trunks along the leg) and, on half of the legs,
    clusters of fine red-purple spider veins: absorbance (3, H, W) to add to the skin's."""
    s = max(h, w) / 384
    ppu = cam.px_per_unit
    trunk = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(trunk)
    for _ in range(int(rng.integers(1, 5))):
        u0, v0 = rng.uniform(-0.4, 0.95), rng.uniform(-0.9, 0.9) * anat.hw_knee
        heading = rng.normal(0, 0.45) + (0.0 if rng.random() < 0.5 else np.pi)
        width = max(1, int(round(rng.uniform(0.006, 0.016) * ppu)))
        stack = [(u0, v0, heading, width, int(rng.integers(12, 40)))]
        while stack:
            u, v, a, wd, n = stack.pop()
            us, vs = [u], [v]
            for _ in range(n):
                a += rng.normal(0, 0.25)
                u, v = u + 0.02 * np.cos(a), v + 0.02 * np.sin(a)
                us.append(u)
                vs.append(v)
                if wd > 1 and rng.random() < 0.06 and len(stack) < 12:
                    stack.append((u, v, a + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2),
                                  max(1, wd - 1), int(rng.integers(4, 15))))
            x, y = _to_pixels(cam, np.array(us), np.array(vs))
            d.line(list(zip(x.tolist(), y.tolist())), fill=int(rng.integers(150, 256)), width=wd,
                   joint="curve")
    blue = _blurred(trunk, rng.uniform(0.6, 2.0) * s)
    od = np.array([0.32, 0.2, 0.07], F)[:, None, None] * blue[None] * F(rng.uniform(0.5, 1.3))
    if rng.random() < 0.5:  # spider veins: fine red-purple bursts, the closest to a lace
        fine = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(fine)
        for _ in range(int(rng.integers(1, 6))):
            cu, cv = rng.uniform(-0.3, 0.9), rng.uniform(-0.8, 0.8) * anat.hw_knee
            for _ in range(int(rng.integers(5, 14))):
                a = rng.uniform(0, 2 * np.pi)
                us, vs = [cu], [cv]
                u, v = cu, cv
                for _ in range(int(rng.integers(3, 9))):
                    a += rng.normal(0, 0.6)
                    u, v = u + 0.008 * np.cos(a), v + 0.008 * np.sin(a)
                    us.append(u)
                    vs.append(v)
                x, y = _to_pixels(cam, np.array(us), np.array(vs))
                d.line(list(zip(x.tolist(), y.tolist())), fill=int(rng.integers(120, 256)),
                       width=max(1, int(round(s))))
        red = _blurred(fine, 0.5 * s)
        od += np.array([0.05, 0.4, 0.25], F)[:, None, None] * red[None] * F(rng.uniform(0.5, 1.2))
    return od


def red_knee(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Erythema over the knee (pressure, cellulitis, a rash): a red blush with a ragged edge and,
    on some legs, a blotchy inside; absorbance (3, H, W) that takes green and blue, not red."""
    h, w = u.shape
    cu, cv = rng.normal(0.02, 0.05), rng.normal(0, 0.04)
    r = F(rng.uniform(0.1, 0.32))
    ratio = F(rng.uniform(0.7, 1.6))
    d = np.sqrt((u - F(cu)) ** 2 * ratio + (v - F(cv)) ** 2 / ratio) / r
    d = d + F(rng.uniform(0.2, 0.7)) * (smooth_noise(rng, h, w, rng.uniform(5, 12)) - F(0.5))
    blush = np.clip((F(1.15) - d) * F(rng.uniform(2, 6)), 0, 1)
    if rng.random() < 0.5:
        blush *= F(0.6) + F(0.8) * smooth_noise(rng, h, w, rng.uniform(10, 22))
    amp = F(rng.uniform(0.35, 0.9))
    return np.array([0.0, 0.45, 0.35], F)[:, None, None] * (blush * amp)[None]


def freckles(rng: np.random.Generator, cam, anat, h: int, w: int) -> np.ndarray:
    """Small brown macules scattered over the leg: absorbance (3, H, W)."""
    s = max(h, w) / 384
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    n = int(rng.integers(40, 400))
    us = rng.uniform(-0.6, 1.3, n)
    vs = rng.uniform(-0.35, 0.35, n)
    x, y = _to_pixels(cam, us, vs)
    rad = rng.uniform(0.5, 2.2, n) * s
    val = rng.integers(80, 256, n)
    for xi, yi, ri, vi in zip(x, y, rad, val):
        d.ellipse((xi - ri, yi - ri, xi + ri, yi + ri), fill=int(vi))
    spots = _blurred(img, 0.5 * s)
    return np.array([0.22, 0.42, 0.7], F)[:, None, None] * spots[None] * F(rng.uniform(0.4, 1.1))


def cast_shadow(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """The shadow of the photographer's arm (a forearm and hand reaching in from an edge) or of
    the phone itself (a rounded slab): a soft multiplicative field (H, W) in (0, 1]."""
    s = max(h, w)
    img = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(img)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    if rng.random() < 0.7:  # an arm: from a frame edge to a hand near (cx, cy)
        a = rng.uniform(0, 2 * np.pi)
        ex, ey = cx + 1.5 * s * np.cos(a), cy + 1.5 * s * np.sin(a)
        d.line((ex, ey, cx, cy), fill=255, width=int(rng.uniform(0.1, 0.2) * s))
        r = rng.uniform(0.07, 0.12) * s
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:  # the phone held over the leg
        a, b = rng.uniform(0.08, 0.16) * s, rng.uniform(0.15, 0.3) * s
        th = rng.uniform(0, np.pi)
        rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        box = np.array([[-a, -b], [a, -b], [a, b], [-a, b]]) @ rot.T + np.array([cx, cy])
        d.polygon([tuple(p) for p in box], fill=255)
    field = _blurred(img, rng.uniform(0.015, 0.06) * s)
    return F(1) - F(rng.uniform(0.25, 0.6)) * field


GLOVE_COLOURS = ((70, 110, 200), (120, 95, 185), (232, 228, 215), (45, 45, 50), (235, 215, 185))


def draw_glove(rng: np.random.Generator, w: int, h: int, tip: tuple[float, float],
               size_px: float) -> tuple[np.ndarray, np.ndarray]:
    """A gloved hand lying on the leg, fingertips at ``tip``, the wrist leaving the frame:
    coverage (H, W) and linear colour (3, H, W) with a little shading across the hand."""
    cover = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(cover)
    a = rng.uniform(0, 2 * np.pi)
    ax, ay = np.cos(a), np.sin(a)  # from the fingertips towards the wrist
    px, py = -ay, ax
    tx, ty = tip
    finger = size_px * 0.42
    palm_c = (tx + ax * (finger + 0.3 * size_px), ty + ay * (finger + 0.3 * size_px))
    fw = max(2, int(size_px * 0.11))
    for k, off in enumerate((-1.5, -0.5, 0.5, 1.5)):
        length = finger * (0.85, 1.0, 0.95, 0.75)[k]
        bx = palm_c[0] - ax * 0.25 * size_px + px * off * fw * 1.05
        by = palm_c[1] - ay * 0.25 * size_px + py * off * fw * 1.05
        ex, ey = bx - ax * length, by - ay * length
        d.line((bx, by, ex, ey), fill=255, width=fw)
        d.ellipse((ex - fw / 2, ey - fw / 2, ex + fw / 2, ey + fw / 2), fill=255)
    r = 0.3 * size_px
    d.ellipse((palm_c[0] - r, palm_c[1] - r, palm_c[0] + r, palm_c[1] + r), fill=255)
    side = rng.choice([-1, 1])  # the thumb
    d.line((palm_c[0] + side * px * r * 0.8, palm_c[1] + side * py * r * 0.8,
            palm_c[0] + side * px * r * 1.6 - ax * r * 0.6,
            palm_c[1] + side * py * r * 1.6 - ay * r * 0.6), fill=255, width=int(fw * 1.2))
    wrist = (palm_c[0] + ax * 3 * w, palm_c[1] + ay * 3 * w)
    d.line((palm_c[0], palm_c[1]) + wrist, fill=255, width=int(0.55 * size_px))
    cov = _blurred(cover, 0.6)
    rgb = np.array(GLOVE_COLOURS[rng.integers(len(GLOVE_COLOURS))], np.float32) / 255
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4).astype(F)
    ys = np.arange(h, dtype=F)[:, None]
    xs = np.arange(w, dtype=F)[None, :]
    across = ((xs - F(palm_c[0])) * F(px) + (ys - F(palm_c[1])) * F(py)) / F(size_px)
    shade = F(0.75) + F(0.25) * np.cos(np.clip(across, -1.5, 1.5) * F(1.6))
    return cov, lin[:, None, None] * shade[None]


def flash_glare(rng: np.random.Generator, h: int, w: int, skin_cov: np.ndarray):
    """A phone flash: light that falls off from a point near the frame's centre (a gain field)
    and a specular glare on the skin around it (an additive linear field); both (H, W)."""
    s = F(max(h, w))
    cx, cy = F(w * rng.uniform(0.3, 0.7)), F(h * rng.uniform(0.3, 0.7))
    ys = np.arange(h, dtype=F)[:, None]
    xs = np.arange(w, dtype=F)[None, :]
    r2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / (s * s)
    gain = F(0.6) + F(rng.uniform(0.6, 1.0)) * np.exp(-r2 / F(rng.uniform(0.08, 0.3)))
    spot = np.exp(-np.minimum(r2 / F(rng.uniform(0.002, 0.012)), F(80)))
    sheen = F(0.7) + F(0.6) * smooth_noise(rng, h, w, rng.uniform(8, 20))
    glare = F(rng.uniform(0.08, 0.45)) * spot * sheen * skin_cov
    return gain, glare
