"""Renderer B's cloth and clutter: bed sheets, gowns and blankets in perspective, cables, ECG
electrodes, a dressing, a gloved hand and an arm's shadow.

Cloth is patterned in world coordinates (so prints and creases shrink with distance); clutter is
drawn in image space as (coverage, linear-RGB colour) pairs that the scene composites and keeps
off the spots that decide the score.
"""

from __future__ import annotations

import cv2
import numpy as np

F32 = np.float32
CLOTH = {  # sRGB
    "bed": ((0.94, 0.94, 0.93), (0.70, 0.80, 0.90), (0.76, 0.88, 0.80), (0.93, 0.90, 0.82),
            (0.85, 0.86, 0.88)),
    "gown": ((0.62, 0.75, 0.88), (0.70, 0.85, 0.80), (0.90, 0.90, 0.92), (0.55, 0.62, 0.75)),
    "sheet": ((0.95, 0.95, 0.94), (0.80, 0.86, 0.93)),
    "blanket": ((0.85, 0.80, 0.70), (0.55, 0.65, 0.80), (0.92, 0.92, 0.90), (0.60, 0.60, 0.62),
                (0.80, 0.55, 0.55)),
}
GLOVES = ((0.35, 0.45, 0.85), (0.50, 0.40, 0.75), (0.92, 0.92, 0.90), (0.12, 0.12, 0.14),
          (0.85, 0.78, 0.65))


def _lin(c) -> np.ndarray:
    c = np.asarray(c, dtype=F32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(F32)


def _world_noise(rng: np.random.Generator, pt: np.ndarray, cell: float) -> np.ndarray:
    """Smooth noise in [0, 1] over the bed's x/y, looked up at each pixel's world point."""
    res = cell / 4
    grid = rng.random((int(6 / res) + 1, int(6 / res) + 1)).astype(F32)
    grid = cv2.GaussianBlur(grid, (0, 0), 2.0)
    grid = (grid - grid.min()) / max(float(np.ptp(grid)), 1e-6)
    mx = ((pt[..., 0] + 3) / res).astype(F32)
    my = ((pt[..., 1] + 3) / res).astype(F32)
    return cv2.remap(grid, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def cloth_albedo(rng: np.random.Generator, pt: np.ndarray, kind: str) -> np.ndarray:
    """Linear-RGB (3, H, W) cloth of ``kind`` (bed, gown, sheet, blanket) with creases."""
    colours = CLOTH[kind]
    col = _lin(colours[int(rng.integers(len(colours)))])
    folds = _world_noise(rng, pt, rng.uniform(0.15, 0.4))
    crease = _world_noise(rng, pt, rng.uniform(0.2, 0.5))
    shade = (F32(0.86) + F32(0.14) * folds) * (
        F32(1) - F32(rng.uniform(0.05, 0.2)) * np.exp(-((crease - F32(0.5)) / F32(0.04)) ** 2))
    x, y = pt[..., 0], pt[..., 1]
    if kind == "gown":  # a small repeating print
        p = F32(rng.uniform(0.03, 0.06))
        dots = (np.sin(x / p * F32(np.pi)) * np.sin(y / p * F32(np.pi))) > F32(0.8)
        shade = shade * np.where(dots, F32(0.75), F32(1))
    elif kind == "blanket":  # knitted ribs
        p = F32(rng.uniform(0.012, 0.025))
        ang = rng.uniform(0, np.pi)
        ribs = np.sin((x * F32(np.cos(ang)) + y * F32(np.sin(ang))) / p * F32(2 * np.pi))
        shade = shade * (F32(0.9) + F32(0.1) * ribs)
    elif kind == "bed" and rng.random() < 0.25:  # a striped or checked sheet
        p = F32(rng.uniform(0.06, 0.15))
        stripes = (np.sin(x / p * F32(np.pi)) > F32(0.6))
        tint = _lin(CLOTH["bed"][int(rng.integers(1, len(CLOTH["bed"])))])
        out = col[:, None, None] * shade[None]
        return np.where(stripes[None], tint[:, None, None] * shade[None], out).astype(F32)
    return (col[:, None, None] * shade[None]).astype(F32)


def _leg_pixel(rng: np.random.Generator, hit: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(hit)
    if len(xs) == 0:
        return hit.shape[1] / 2, hit.shape[0] / 2
    i = int(rng.integers(len(xs)))
    return float(xs[i]), float(ys[i])


def _bezier(p0, p1, p2, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return ((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2).astype(np.int32)


def _solid(cov: np.ndarray, rgb, shade: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    col = _lin(rgb)[:, None, None] * np.ones_like(cov)[None]
    if shade is not None:
        col = col * shade[None]
    return cov, col.astype(F32)


def draw_cables(rng: np.random.Generator, w: int, h: int, hit: np.ndarray):
    """One to three monitoring cables crossing the frame, with a highlight along each."""
    cov = np.zeros((h, w), F32)
    shade = np.ones((h, w), F32)
    s = max(w, h)
    for _ in range(int(rng.integers(1, 4))):
        pts = [np.array([rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h]) for _ in range(3)]
        line = _bezier(*pts)
        th = max(2, int(s * rng.uniform(0.006, 0.014)))
        cv2.polylines(cov, [line], False, 1.0, th, cv2.LINE_AA)
        cv2.polylines(shade, [line + np.array([0, -max(1, th // 4)])], False, 1.35,
                      max(1, th // 3), cv2.LINE_AA)
    colour = [(0.9, 0.9, 0.9), (0.2, 0.2, 0.22), (0.45, 0.55, 0.8), (0.6, 0.6, 0.6)][
        int(rng.integers(4))]
    return _solid(cov, colour, shade)


def draw_electrodes(rng: np.random.Generator, w: int, h: int, hit: np.ndarray):
    """ECG electrode pads on the skin (white foam disc, grey snap) with their leads."""
    cov = np.zeros((h, w), F32)
    shade = np.ones((h, w), F32)
    s = max(w, h)
    for _ in range(int(rng.integers(1, 3))):
        x, y = _leg_pixel(rng, hit)
        r = int(s * rng.uniform(0.02, 0.035))
        cv2.circle(cov, (int(x), int(y)), r, 1.0, -1, cv2.LINE_AA)
        cv2.circle(shade, (int(x), int(y)), max(1, r // 3), 0.45, -1, cv2.LINE_AA)
        end = np.array([rng.uniform(0, w), rng.choice([0, h])])
        line = _bezier(np.array([x, y]), np.array([rng.uniform(0, w), rng.uniform(0, h)]), end)
        cv2.polylines(cov, [line], False, 1.0, max(2, int(s * 0.006)), cv2.LINE_AA)
    return _solid(cov, (0.93, 0.93, 0.9), shade)


def draw_dressing(rng: np.random.Generator, w: int, h: int, hit: np.ndarray):
    """A rectangular adhesive dressing with a pad, turned at any angle, on the skin."""
    cov = np.zeros((h, w), F32)
    shade = np.ones((h, w), F32)
    s = max(w, h)
    x, y = _leg_pixel(rng, hit)
    a, b = s * rng.uniform(0.04, 0.08), s * rng.uniform(0.03, 0.06)
    ang = rng.uniform(0, 180)
    box = cv2.boxPoints(((x, y), (2 * a, 2 * b), ang)).astype(np.int32)
    cv2.fillConvexPoly(cov, box, 1.0, cv2.LINE_AA)
    pad = cv2.boxPoints(((x, y), (1.1 * a, 1.0 * b), ang)).astype(np.int32)
    cv2.fillConvexPoly(shade, pad, 0.9, cv2.LINE_AA)
    cov = cv2.GaussianBlur(cov, (3, 3), 0.7)
    colour = [(0.95, 0.93, 0.88), (0.88, 0.76, 0.66), (0.96, 0.96, 0.96)][int(rng.integers(3))]
    return _solid(cov, colour, shade)


def draw_glove(rng: np.random.Generator, w: int, h: int, hit: np.ndarray):
    """A gloved hand reaching in from an edge of the frame (palm and four fingers)."""
    cov = np.zeros((h, w), F32)
    s = max(w, h)
    tx, ty = _leg_pixel(rng, hit)
    side = int(rng.integers(4))
    ex, ey = [(tx, -0.1 * h), (tx, 1.1 * h), (-0.1 * w, ty), (1.1 * w, ty)][side]
    d = np.array([tx - ex, ty - ey], float)
    d /= max(np.linalg.norm(d), 1e-6)
    palm = np.array([tx, ty]) - d * s * 0.12
    pw = s * rng.uniform(0.05, 0.07)
    cv2.line(cov, (int(ex), int(ey)), (int(palm[0]), int(palm[1])), 1.0, int(pw * 1.6), cv2.LINE_AA)
    cv2.ellipse(cov, (int(palm[0]), int(palm[1])), (int(pw * 1.1), int(pw * 0.9)),
                float(np.degrees(np.arctan2(d[1], d[0]))), 0, 360, 1.0, -1, cv2.LINE_AA)
    perp = np.array([-d[1], d[0]])
    for k in range(4):
        base = palm + perp * pw * (k - 1.5) * 0.55 + d * pw * 0.6
        tip = base + d * s * rng.uniform(0.05, 0.08) + perp * rng.normal(0, pw * 0.15)
        cv2.line(cov, (int(base[0]), int(base[1])), (int(tip[0]), int(tip[1])), 1.0,
                 max(2, int(pw * 0.45)), cv2.LINE_AA)
    shade = F32(0.75) + F32(0.25) * cv2.GaussianBlur(cov, (0, 0), max(1.0, pw * 0.3))
    return _solid(cov, GLOVES[int(rng.integers(len(GLOVES)))], shade)


def arm_shadow(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """The photographer's forearm between the ceiling light and the bed: a soft dark band."""
    field = np.zeros((h, w), F32)
    s = max(w, h)
    p0 = (int(rng.uniform(-0.1, 1.1) * w), int(rng.choice([-0.1, 1.1]) * h))
    p1 = (int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.2, 0.8) * h))
    cv2.line(field, p0, p1, 1.0, int(s * rng.uniform(0.12, 0.25)), cv2.LINE_AA)
    field = cv2.GaussianBlur(field, (0, 0), s * rng.uniform(0.03, 0.08))
    return F32(1) - F32(rng.uniform(0.3, 0.55)) * field
