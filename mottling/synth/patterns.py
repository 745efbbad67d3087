"""Procedural noise for the photo generator: smooth value noise and a cellular (Worley) net.

Everything is vectorised numpy and float32, because the generator has to make tens of photos per
second on one core.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def smoothstep(x, edge0: float = 0.0, edge1: float = 1.0):
    """Hermite step from 0 (at ``edge0``) to 1 (at ``edge1``) with zero slope at both ends: the
    soft edge every generator draws (mottling fronts, a finger's outline, a press ramping in)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: float,
                 aspect: float = 1.0) -> np.ndarray:
    """Value noise in roughly [0, 1] at ``cells`` blobs across the larger side.

    A tiny random grid is upsampled by Pillow's bicubic filter, which is far faster than any
    per-pixel interpolation in numpy. ``aspect`` > 1 stretches the blobs along x.
    """
    big = max(height, width)
    gw = max(2, int(round(cells * width / big / aspect)) + 2)
    gh = max(2, int(round(cells * height / big)) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    img = Image.fromarray(grid, mode="F").resize((width, height), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def upsample(field: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float32 field: smooth fields are drawn small and enlarged."""
    img = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), mode="F")
    return np.array(img.resize((width, height), Image.BILINEAR), dtype=np.float32)


def fbm(rng: np.random.Generator, height: int, width: int, cells: float, octaves: int = 3,
        gain: float = 0.5) -> np.ndarray:
    """Fractal sum of value noise, normalised to mean 0 and unit-ish amplitude."""
    total = np.zeros((height, width), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total += amp * (smooth_noise(rng, height, width, cells * 2 ** k) - 0.5)
        norm += amp
        amp *= gain
    return total / (0.5 * norm)


class WorleyNet:
    """A jittered-grid cellular pattern evaluated at arbitrary 2-D points.

    The feature points come from a periodic table seeded once, so the same patient keeps the same
    net across photographs while the camera moves.
    """

    TABLE = 64

    def __init__(self, rng: np.random.Generator, cell: float, jitter: float = 0.9):
        self.cell = float(cell)
        off = (0.5 + jitter * (rng.random((self.TABLE * self.TABLE, 2)) - 0.5)).astype(np.float32)
        self.off_x = np.ascontiguousarray(off[:, 0])
        self.off_y = np.ascontiguousarray(off[:, 1])

    def f1_f2(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances (in cell units) to the nearest and second-nearest feature point."""
        inv = np.float32(1.0 / self.cell)
        xs = x * inv
        ys = y * inv
        fx_floor = np.floor(xs)
        fy_floor = np.floor(ys)
        fx = xs - fx_floor
        fy = ys - fy_floor
        mask = self.TABLE - 1
        ix = fx_floor.astype(np.int32)
        iy = fy_floor.astype(np.int32)
        f1 = np.full(x.shape, 9.0, dtype=np.float32)
        f2 = np.full(x.shape, 9.0, dtype=np.float32)
        cols = [((ix + dx) & mask, np.float32(dx) - fx) for dx in (-1, 0, 1)]
        for dy in (-1, 0, 1):
            row = ((iy + dy) & mask) * self.TABLE
            rel_y = np.float32(dy) - fy
            for col, rel_x in cols:
                idx = row + col
                ddx = np.take(self.off_x, idx) + rel_x
                ddy = np.take(self.off_y, idx) + rel_y
                d = ddx * ddx + ddy * ddy
                np.minimum(f2, np.maximum(f1, d), out=f2)
                np.minimum(f1, d, out=f1)
        return np.sqrt(f1), np.sqrt(f2)

    def net(self, x: np.ndarray, y: np.ndarray, line_width: float | np.ndarray) -> np.ndarray:
        """Reticular net in [0, 1]: 1 on the cell borders, falling to 0 inside the islands."""
        f1, f2 = self.f1_f2(x, y)
        edge = (f2 - f1) / line_width
        return np.exp(-np.minimum(edge * edge, 80)).astype(np.float32)
