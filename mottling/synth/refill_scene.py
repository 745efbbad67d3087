"""Still layers of a refill video: skin, the blanched patch, and what presses it.

Everything here is drawn once per video on a canvas a little larger than the frame (the margin
lets the camera shake or move off the spot). The renderer in ``videos.py`` then builds each frame
as ``skin + s(t) * blanch_delta + pulse(t) * pulse_layer``, lays the glass slide or the examiner's
fingertip over it, and applies the global nuisances (exposure, flicker, noise) to the whole frame,
so the unpressed skin around the ROI shares them.

Colours are float32 sRGB in 0..255.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.skin import monk_rgb
from mottling.synth.nuisances import SHEET_COLOURS
from mottling.synth.patterns import smoothstep

# How blood changes skin colour, as per-channel multipliers on the melanin-tinted base colour.
# Perfused skin is redder (green and blue absorbed by haemoglobin); blanched skin loses that.
PERFUSED_TINT = np.array([1.0, 0.86, 0.88], dtype=np.float32)
BLANCHED_TINT = np.array([1.04, 1.03, 1.0], dtype=np.float32)
# Per unit of pulse: more blood darkens green most (haemoglobin absorbs near 540 nm).
PULSE_TINT = np.array([-0.3, -1.0, -0.6], dtype=np.float32)



@dataclass
class SceneLayers:
    """Canvas-sized float32 layers; the frame is the crop at (margin + shake) offsets."""

    skin: np.ndarray          # (Hc, Wc, 3) unpressed scene at baseline perfusion
    blanch_delta: np.ndarray  # (Hc, Wc, 3) blanched minus baseline, zero outside the contact
    pulse: np.ndarray         # (Hc, Wc, 3) colour change per unit pulse wave
    occluder_rgb: np.ndarray  # (Ho, Wo, 3) glass glare colour or examiner's fingertip
    occluder_alpha: np.ndarray  # (Ho, Wo, 1) in 0..1
    occluder_origin: tuple[int, int]  # (y, x) of its top-left on the canvas while pressing
    occluder_exit: tuple[float, float]  # (dy, dx) unit direction the occluder leaves along
    margin: int
    roi: tuple[int, int, int, int]  # x, y, w, h in (upright) frame pixels
    roi_baseline_rgb: np.ndarray
    roi_blanched_rgb: np.ndarray


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise with features about ``cell`` pixels across, zero mean, unit-ish std."""
    gh, gw = int(h / cell) + 3, int(w / cell) + 3
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    ys = np.linspace(0, gh - 2.001, h, dtype=np.float32)
    xs = np.linspace(0, gw - 2.001, w, dtype=np.float32)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = ys - y0, xs - x0
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy)[:, None] + bot * fy[:, None]


def _skin_texture(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Multiplicative skin texture around 1: blotches plus pores."""
    tex = 1.0 + 0.035 * _smooth_noise(rng, h, w, 0.35 * scale)
    tex += 0.015 * _smooth_noise(rng, h, w, 0.06 * scale)
    tex += 0.012 * rng.standard_normal((h, w)).astype(np.float32)
    return tex


def _sheet(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = 255 * np.array(SHEET_COLOURS[int(rng.integers(len(SHEET_COLOURS)))], dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    weave = 0.02 * np.sin(xx * 1.9) * np.sin(yy * 1.7)
    folds = 0.08 * _smooth_noise(rng, h, w, 0.3 * min(h, w))
    return base * (0.78 + weave + folds)[..., None]


def build_scene(rng: np.random.Generator, site: str, width: int, height: int, skin_tone: int,
                blanch_contrast: float, pulse_amp: float, margin: int,
                examiner_tone: int, exposure_level: float = 0.85,
                shake_px: float = 0.0) -> SceneLayers:
    """Draw the canvas layers for one video (upright orientation).

    The ROI stays inside the full-blanch plateau even when the camera shakes by ``shake_px``.
    """
    hc, wc = height + 2 * margin, width + 2 * margin
    short = float(min(width, height))
    cy, cx = margin + height * rng.uniform(0.42, 0.58), margin + width * rng.uniform(0.42, 0.58)
    yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float32)

    # ``exposure_level`` keeps blanched light skin below 255: a clipped ROI hides the signal.
    tone_rgb = (monk_rgb(skin_tone) * 255.0 * exposure_level).astype(np.float32)
    base_rgb = tone_rgb * PERFUSED_TINT
    texture = _skin_texture(rng, hc, wc, short)

    if site == "finger":
        skin_mask, shading, contact_r = _finger_geometry(rng, yy, xx, cy, cx, short, texture)
    else:
        skin_mask, shading, contact_r = _knee_geometry(rng, yy, xx, cy, cx, short)

    skin = base_rgb[None, None, :] * (texture * shading)[..., None]
    sheet = _sheet(rng, hc, wc) * np.float32(exposure_level)
    skin = skin * skin_mask[..., None] + sheet * (1.0 - skin_mask[..., None])

    # Contact patch: s(t) applies fully within 0.8 r and fades out by 1.15 r.
    dist = np.hypot(yy - cy, xx - cx)
    contact = 1.0 - smoothstep(dist, 0.8 * contact_r, 1.15 * contact_r)
    blanch_factor = (BLANCHED_TINT / PERFUSED_TINT - 1.0) * np.float32(blanch_contrast)
    skin_only = skin_mask * (texture * shading)
    blanch_delta = (base_rgb * blanch_factor)[None, None, :] * (skin_only * contact)[..., None]
    pulse = (base_rgb * PULSE_TINT * np.float32(pulse_amp))[None, None, :] * skin_only[..., None]

    # ROI: a square inside the full-blanch plateau (radius 0.8 r) whose corners keep clear of it
    # by the camera shake plus a pixel, in frame pixels.
    half = int((0.8 * contact_r - np.ceil(shake_px) - 1.5) / np.sqrt(2.0))
    roi = (int(round(cx - margin)) - half, int(round(cy - margin)) - half, 2 * half, 2 * half)
    ry, rx = roi[1] + margin, roi[0] + margin
    roi_base = skin[ry:ry + roi[3], rx:rx + roi[2]].reshape(-1, 3).mean(axis=0)
    roi_delta = blanch_delta[ry:ry + roi[3], rx:rx + roi[2]].reshape(-1, 3).mean(axis=0)

    if site == "finger":
        occ_rgb, occ_alpha, origin, exit_dir = _glass_slide(rng, hc, wc, cy, cx, contact_r)
    else:
        reach = 0.65 * float(np.hypot(hc, wc))
        occ_rgb, occ_alpha, origin, exit_dir = _fingertip(rng, cy, cx, contact_r, reach,
                                                          examiner_tone)
    return SceneLayers(skin=skin.astype(np.float32), blanch_delta=blanch_delta.astype(np.float32),
                       pulse=pulse.astype(np.float32), occluder_rgb=occ_rgb,
                       occluder_alpha=occ_alpha, occluder_origin=origin, occluder_exit=exit_dir,
                       margin=margin, roi=roi, roi_baseline_rgb=roi_base.astype(np.float64),
                       roi_blanched_rgb=(roi_base + roi_delta).astype(np.float64))


def _finger_geometry(rng, yy, xx, cy, cx, short, texture):
    """A finger pulp seen from the palm side, tip rounded, running out of one frame edge."""
    angle = rng.uniform(-0.5, 0.5) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
    if rng.random() < 0.5:
        angle += np.pi
    ux, uy = np.cos(angle), np.sin(angle)  # along the finger, pointing to the tip
    half_w = short * rng.uniform(0.30, 0.40)
    along = (xx - cx) * ux + (yy - cy) * uy
    across = -(xx - cx) * uy + (yy - cy) * ux
    tip = half_w * rng.uniform(0.5, 0.9)  # the tip lies this far beyond the pulp centre
    # Capsule: a band along the axis, closed by a half-ellipse at the tip.
    beyond = np.maximum(along - tip + half_w, 0.0)
    r = np.hypot(beyond, across)
    skin_mask = 1.0 - smoothstep(r, half_w - 2.5, half_w + 2.5)
    rel = np.clip(across / half_w, -1, 1)
    shading = 0.72 + 0.28 * np.sqrt(np.maximum(1.0 - rel * rel, 0.0))
    # Fingerprint ridges: concentric whorl around the pulp core.
    period = max(3.0, short * rng.uniform(0.018, 0.03))
    warp = 3.0 * _smooth_noise(rng, *yy.shape, 0.2 * short)
    ridges = np.sin(2 * np.pi * (np.hypot(along * 1.3, across) + warp) / period)
    texture *= 1.0 + 0.035 * ridges
    contact_r = half_w * rng.uniform(0.55, 0.7)
    return skin_mask.astype(np.float32), shading.astype(np.float32), contact_r


def _knee_geometry(rng, yy, xx, cy, cx, short):
    """Close-up of the skin over the knee: domed shading, sometimes the sheet at one edge."""
    ky, kx = cy + rng.uniform(-0.3, 0.3) * short, cx + rng.uniform(-0.3, 0.3) * short
    dome = np.hypot(yy - ky, xx - kx) / (1.2 * short)
    shading = 1.0 - 0.3 * np.clip(dome, 0, 1.5) ** 2
    skin_mask = np.ones_like(yy)
    if rng.random() < 0.5:
        # The edge of the limb against the sheet, far from the pressed spot.
        edge_angle = rng.uniform(0, 2 * np.pi)
        ex, ey = np.cos(edge_angle), np.sin(edge_angle)
        proj = (xx - cx) * ex + (yy - cy) * ey
        edge = short * rng.uniform(0.55, 0.75)
        skin_mask = 1.0 - smoothstep(proj, edge - 3, edge + 3)
    contact_r = short * rng.uniform(0.09, 0.13)
    return skin_mask.astype(np.float32), shading.astype(np.float32), contact_r


def _glass_slide(rng, hc, wc, cy, cx, contact_r):
    """A slide lying across the pulp: faint glare tint, a bright streak and visible edges."""
    yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    ux, uy = np.cos(angle), np.sin(angle)
    along = (xx - cx) * ux + (yy - cy) * uy
    across = -(xx - cx) * uy + (yy - cy) * ux
    half_w = contact_r * rng.uniform(1.8, 2.6)
    inside = 1.0 - smoothstep(np.abs(across), half_w - 1.5, half_w + 1.5)
    edge_line = np.exp(-((np.abs(across) - half_w) ** 2) / 2.0)
    streak_pos = rng.uniform(-0.6, 0.6) * half_w
    streak = np.exp(-((across - streak_pos - 0.3 * along) ** 2) / (2 * (0.12 * half_w) ** 2))
    base_alpha = rng.uniform(0.06, 0.14)
    alpha = inside * (base_alpha + 0.35 * streak) + 0.5 * edge_line
    glare = np.array([232, 240, 248], dtype=np.float32) * rng.uniform(0.9, 1.05)
    rgb = np.broadcast_to(glare, (hc, wc, 3)).astype(np.float32)
    return rgb, np.clip(alpha, 0, 0.9)[..., None].astype(np.float32), (0, 0), (uy, ux)


def _fingertip(rng, cy, cx, contact_r, reach, examiner_tone):
    """The examiner's fingertip seen from above (nail side), a capsule running off-frame."""
    angle = rng.uniform(0, 2 * np.pi)
    ux, uy = np.cos(angle), np.sin(angle)  # from the tip towards the examiner's hand
    half_w = contact_r * rng.uniform(1.35, 1.6)
    length = reach
    # Sprite = bounding box of the capsule from the tip centre along +u.
    pad = half_w + 3
    ey, ex = length * uy, length * ux
    y_lo, y_hi = int(np.floor(min(0, ey) - pad)), int(np.ceil(max(0, ey) + pad))
    x_lo, x_hi = int(np.floor(min(0, ex) - pad)), int(np.ceil(max(0, ex) + pad))
    hh, ww = y_hi - y_lo, x_hi - x_lo
    oy, ox = -y_lo, -x_lo  # tip centre inside the sprite
    yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
    along = (xx - ox) * ux + (yy - oy) * uy
    across = -(xx - ox) * uy + (yy - oy) * ux
    seg = np.clip(along, 0.0, length)
    r = np.hypot(along - seg, across)
    alpha = 1.0 - smoothstep(r, half_w - 2.0, half_w + 2.0)
    rel = np.clip(across / half_w, -1, 1)
    shade = 0.62 + 0.38 * np.sqrt(np.maximum(1.0 - rel * rel, 0.0))
    shade *= 1.0 + 0.03 * _smooth_noise(rng, hh, ww, 0.4 * half_w)
    colour = (monk_rgb(examiner_tone) * 235.0).astype(np.float32) * np.array([1.0, 0.9, 0.9],
                                                                             dtype=np.float32)
    rgb = colour[None, None, :] * shade[..., None]
    # Nail plate: a lighter, pinker, glossy oval just behind the tip.
    nail = np.hypot((along - 0.55 * half_w) / (0.75 * half_w), across / (0.62 * half_w))
    nail_w = (1.0 - smoothstep(nail, 0.85, 1.0))[..., None]
    nail_rgb = np.array([236, 196, 190], dtype=np.float32) * shade[..., None] * 1.02
    rgb = rgb * (1 - 0.7 * nail_w) + nail_rgb * 0.7 * nail_w
    origin = (int(round(cy)) - oy, int(round(cx)) - ox)
    return (np.clip(rgb, 0, 255).astype(np.float32), alpha[..., None].astype(np.float32), origin,
            (uy, ux))
