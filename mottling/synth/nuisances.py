"""Things in a bedside photo that are not the leg's mottling: the sheet and its print, occluders
(ECG leads, a dressing), hair, a bruise, light and the camera's own faults.

Images are linear-RGB float32, channel-first (3, H, W): broadcasting a (H, W) field over channels
is then contiguous and several times faster than over a trailing channel axis.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mottling.synth.patterns import WorleyNet, fbm, smooth_noise, upsample

SHEET_COLOURS = (  # sRGB: white, hospital blue, green, grey, cream
    (0.93, 0.93, 0.92), (0.72, 0.81, 0.90), (0.74, 0.86, 0.80), (0.83, 0.84, 0.86),
    (0.92, 0.89, 0.81))


def srgb_to_linear(c) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LUT_SIZE = 4096
_LIN = np.linspace(0, 1, _LUT_SIZE)
_TO_SRGB_LUT = np.clip(np.round(255 * np.where(
    _LIN <= 0.0031308, 12.92 * _LIN, 1.055 * _LIN ** (1 / 2.4) - 0.055)), 0, 255).astype(np.uint8)


_SRGB8_TO_LINEAR = srgb_to_linear(np.arange(256) / 255.0)


def linear_to_srgb8(lin: np.ndarray) -> np.ndarray:
    """Linear (3, H, W) float in [0, 1] to sRGB (H, W, 3) uint8 through a lookup table."""
    idx = np.clip(lin * np.float32(_LUT_SIZE - 1) + np.float32(0.5), 0, _LUT_SIZE - 1)
    out = _TO_SRGB_LUT[idx.astype(np.int16)]
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def folds(rng: np.random.Generator, h: int, w: int, n: int = 3) -> np.ndarray:
    """Shading of a crumpled sheet: a few soft ridges at random angles, warped by noise."""
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    warp = smooth_noise(rng, h, w, 3.0) * np.float32(6.0)
    out = np.zeros((h, w), dtype=np.float32)
    big = max(h, w)
    for _ in range(n):
        th = rng.uniform(0, np.pi)
        lam = rng.uniform(0.25, 0.7) * big
        kx, ky = np.float32(2 * np.pi * np.cos(th) / lam), np.float32(2 * np.pi * np.sin(th) / lam)
        phase = xs * kx + ys * ky + warp + np.float32(rng.uniform(0, 6.3))
        s = np.sin(phase)
        out += np.float32(rng.uniform(0.3, 1.0)) * s * s * s  # not ** 3: powf is 20x slower
    return out / np.float32(n)


def sheet(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, print_kind: str | None,
          colour=None) -> np.ndarray:
    """A bed sheet lying in the leg's plane: folds, weave, optionally a printed pattern."""
    h, w = u.shape
    hh, wh = (h + 1) // 2, (w + 1) // 2
    base = srgb_to_linear(colour if colour is not None
                          else SHEET_COLOURS[rng.integers(len(SHEET_COLOURS))])
    low = (np.float32(0.9) + np.float32(rng.uniform(0.05, 0.12)) * folds(rng, hh, wh)
           + np.float32(0.04) * fbm(rng, hh, wh, cells=4.0, octaves=2))
    shade = upsample(low, h, w) + np.float32(0.025) * (
        rng.random((h, w), dtype=np.float32) - np.float32(0.5))
    out = base[:, None, None] * shade[None]
    if print_kind is not None:
        ink = srgb_to_linear(rng.uniform(0.25, 0.65, 3) * np.array([1.0, 0.75, 1.0]))
        period = np.float32(rng.uniform(0.05, 0.12))
        su, sv = u * (1 / period), v * (1 / period)
        fu = su - np.floor(su) - np.float32(0.5)  # not %: float fmod is slow
        fv = sv - np.floor(sv) - np.float32(0.5)
        if print_kind == "dots":
            cover = np.clip((np.float32(0.22) - np.sqrt(fu * fu + fv * fv)) * np.float32(20), 0, 1)
        elif print_kind == "checks":
            cover = np.clip((np.float32(0.12) - np.minimum(np.abs(fu), np.abs(fv)))
                            * np.float32(25), 0, 1)
        else:  # a net-like print: the nastiest confounder for a mottling detector
            net = WorleyNet(rng, cell=float(period) * 0.8)
            cover = upsample(net.net(u[::2, ::2], v[::2, ::2], float(rng.uniform(0.1, 0.2))), h, w)
        cover = cover.astype(np.float32) * np.float32(rng.uniform(0.4, 0.8))
        out = out * (1 - cover)[None] + ink[:, None, None] * (cover * shade)[None]
    return out


def _bezier(p0, p1, p2, n=24) -> list[tuple[float, float]]:
    t = np.linspace(0, 1, n)[:, None]
    pts = (1 - t) ** 2 * np.array(p0) + 2 * (1 - t) * t * np.array(p1) + t ** 2 * np.array(p2)
    return [tuple(p) for p in pts]


def _layers(width: int, height: int):
    cover = Image.new("L", (width, height), 0)
    colour = Image.new("RGB", (width, height), (0, 0, 0))
    return cover, colour, ImageDraw.Draw(cover), ImageDraw.Draw(colour)


def _as_arrays(cover: Image.Image, colour: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    cov = np.asarray(cover, dtype=np.float32) * np.float32(1 / 255)
    col = _SRGB8_TO_LINEAR[np.asarray(colour).transpose(2, 0, 1)]
    return cov, col


def draw_ecg_leads(rng: np.random.Generator, width: int, height: int,
                   pads: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Electrode pads at ``pads`` (pixels) with wires leaving the frame.

    Returns coverage (H, W) in [0, 1] and colour (3, H, W) linear.
    """
    cover, colour, dc, dk = _layers(width, height)
    s = max(width, height) / 384
    wire_colours = [(235, 235, 230), (200, 40, 40), (40, 150, 60), (40, 40, 45), (230, 200, 40)]
    for (x, y) in pads:
        wc = wire_colours[rng.integers(len(wire_colours))]
        end = (float(rng.choice([-20, width + 20])), float(rng.uniform(0, height)))
        mid = ((x + end[0]) / 2 + rng.normal(0, 40 * s), (y + end[1]) / 2 + rng.normal(0, 40 * s))
        wire = _bezier((x, y), mid, end)
        lw = max(1, int(round(rng.uniform(2, 4) * s)))
        dc.line(wire, fill=255, width=lw)
        dk.line(wire, fill=wc, width=lw)
        r = rng.uniform(9, 13) * s
        dc.ellipse((x - r, y - r, x + r, y + r), fill=255)
        dk.ellipse((x - r, y - r, x + r, y + r), fill=(238, 238, 235))
        r2 = r * 0.45
        dk.ellipse((x - r2, y - r2, x + r2, y + r2), fill=(150, 150, 155))
    return _as_arrays(cover, colour)


def draw_dressing(rng: np.random.Generator, width: int, height: int, centre: tuple[float, float],
                  size_px: float) -> tuple[np.ndarray, np.ndarray]:
    """A rectangular gauze dressing with a tape border, rotated at random."""
    cover, colour, dc, dk = _layers(width, height)
    a, b = size_px * rng.uniform(0.7, 1.0), size_px * rng.uniform(0.45, 0.8)
    th = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    for scale, fill in ((1.0, (236, 230, 218)), (0.7, (250, 250, 248))):
        box = np.array([[-a, -b], [a, -b], [a, b], [-a, b]]) * scale @ rot.T + np.array(centre)
        poly = [tuple(p) for p in box]
        dc.polygon(poly, fill=255)
        dk.polygon(poly, fill=fill)
    return _as_arrays(cover, colour)


def draw_hair(rng: np.random.Generator, width: int, height: int, axis_angle: float,
              density: float) -> np.ndarray:
    """Short dark strokes roughly along the leg axis (hair lies towards the foot); coverage."""
    img = Image.new("L", (width, height), 0)
    d = ImageDraw.Draw(img)
    s = max(width, height) / 384
    n = int(density * width * height / 250)
    xs, ys = rng.uniform(0, width, n), rng.uniform(0, height, n)
    ang = axis_angle + np.pi + rng.normal(0, 0.4, n)
    length = rng.uniform(3, 7, n) * s
    shade = rng.integers(50, 150, n)
    for x, y, a, ln, c in zip(xs, ys, ang, length, shade):
        d.line((x, y, x + ln * np.cos(a), y + ln * np.sin(a)), fill=int(c), width=max(1, int(s)))
    return np.asarray(img, dtype=np.float32) * np.float32(1 / 255)


def colour_temperature_gains(t: float) -> np.ndarray:
    """t in [-1, 1]: -1 warm tungsten, 0 neutral, +1 cool daylight/LED. Mean gain 1."""
    warm = np.array([1.1, 0.97, 0.78], dtype=np.float32)
    cool = np.array([0.92, 0.99, 1.1], dtype=np.float32)
    neutral = np.ones(3, dtype=np.float32)
    g = neutral + (warm - neutral) * max(-t, 0) + (cool - neutral) * max(t, 0)
    return (g / g.mean()).astype(np.float32)


def camera_finish(rng: np.random.Generator, srgb8: np.ndarray) -> tuple[Image.Image, int]:
    """Blur and sensor noise on the 8-bit image; returns the image and a JPEG quality to save at."""
    img = Image.fromarray(srgb8, "RGB")
    if rng.random() < 0.35:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.6) * max(img.size) / 384))
    sigma = float(rng.uniform(0.5, 5.0))
    arr = np.asarray(img, dtype=np.float32)
    h, w, _ = arr.shape
    # sum of two uniforms: a cheap bell-shaped noise (a Gaussian draw costs 20x more here)
    luma = (rng.random((h, w, 1), dtype=np.float32) + rng.random((h, w, 1), dtype=np.float32)
            - np.float32(1.0)) * np.float32(sigma * 2.45)
    chroma = (rng.random((h, w, 3), dtype=np.float32) - np.float32(0.5)) * np.float32(sigma * 1.4)
    arr = np.clip(arr + luma + chroma + np.float32(0.5), 0, 255).astype(np.uint8)
    quality = int(rng.integers(55, 96))
    return Image.fromarray(arr, "RGB"), quality


def jpeg_bytes(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def soft_shadow(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A large soft shadow (the photographer, a bed rail) as a multiplicative field."""
    blob = smooth_noise(rng, height, width, cells=2.0)
    depth = np.float32(rng.uniform(0.25, 0.55))
    edge = np.clip((blob - np.float32(0.55)) * np.float32(6), 0, 1)
    return np.float32(1) - depth * edge
