"""Find the pressed spot, the unpressed skin around it, and follow camera shake.

All work happens on the shrunk analysis frames. Coordinates given to or returned by the public API
are in upright source pixels; ``DecodedVideo.scale`` converts between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mottling.errors import UnprocessableInputError

COARSE = 4   # auto ROI and shake tracking work on 4x4 blocks of analysis pixels


@dataclass(frozen=True)
class SpotGeometry:
    """Analysis-pixel masks for one video."""

    roi: tuple[int, int, int, int]    # x, y, w, h of the pressed spot (analysis pixels)
    roi_mask: np.ndarray              # (h, w) bool: inner part of the ROI used for the signal
    ring_mask: np.ndarray             # (h, w) bool: unpressed skin just around the contact
    far_mask: np.ndarray              # (h, w) bool: the rest of the frame (global light reference)


def coarse_stack(frames: np.ndarray) -> np.ndarray:
    """(N, h/4, w/4, 3) float32 block means."""
    n, h, w, _ = frames.shape
    hh, ww = h // COARSE, w // COARSE
    acc = np.zeros((n, hh, ww, 3), dtype=np.uint16)
    # Sixteen strided adds are far faster than a reduction over interleaved axes.
    for dy in range(COARSE):
        for dx in range(COARSE):
            acc += frames[:, dy:hh * COARSE:COARSE, dx:ww * COARSE:COARSE]
    return acc.astype(np.float32) * np.float32(1.0 / COARSE**2)


def baseline_count(t_s: np.ndarray, seconds: float = 0.5) -> int:
    return int(max(3, min(np.searchsorted(t_s, seconds), len(t_s) // 4)))


def auto_roi(coarse: np.ndarray, t_s: np.ndarray) -> tuple[int, int, int, int] | None:
    """The spot that is still blanched once the slide or fingertip has gone.

    The moment the occluder leaves is the largest drop of the frame's overall change from its
    pre-press look. Just after it, only the pressed skin still differs from baseline, and it differs
    in the blanching direction (green rises against red as blood leaves). Returns analysis-pixel
    x, y, w, h or None.
    """
    n = len(t_s)
    nb = baseline_count(t_s)
    base = np.median(coarse[:nb], axis=0) + 1.0
    rel = coarse / base[None] - 1.0                              # (N, hh, ww, 3)
    energy = np.abs(rel).max(axis=3).mean(axis=(1, 2))
    fps = (n - 1) / max(float(t_s[-1] - t_s[0]), 1e-6)
    w = max(2, int(round(0.3 * fps)))
    gap = max(1, int(round(0.1 * fps)))
    csum = np.concatenate([[0.0], np.cumsum(energy)])
    best, drop = 0.0, None
    for i in range(nb + w, n - gap - w):
        before = (csum[i] - csum[i - w]) / w
        after = (csum[i + gap + w] - csum[i + gap]) / w
        if before - after > best:
            best, drop = before - after, i
    if drop is None:
        return None
    i0 = int(np.searchsorted(t_s, t_s[drop] + 0.35))
    i1 = max(i0 + 2, int(np.searchsorted(t_s, t_s[drop] + 0.8)))
    if i0 >= n - 1:
        return None
    blanch = rel[i0:i1, ..., 1] - rel[i0:i1, ..., 0]             # green up against red
    score = np.median(blanch, axis=0)
    score[coarse[:nb].mean(axis=(0, 3)) < 15] = 0
    score = ndimage.uniform_filter(score, 3)
    hh, ww = score.shape
    yy, xx = np.mgrid[0:hh, 0:ww]
    centre = np.exp(-(((yy - hh / 2) / (0.6 * hh)) ** 2 + ((xx - ww / 2) / (0.6 * ww)) ** 2))
    weighted = score * (0.5 + 0.5 * centre)
    peak = float(weighted.max())
    if not np.isfinite(peak) or peak <= 0.003:
        return None
    iy, ix = np.unravel_index(int(np.argmax(weighted)), weighted.shape)
    labels, _ = ndimage.label(score > 0.5 * score[iy, ix])
    blob = labels == labels[iy, ix]
    area = float(blob.sum())
    cy, cx = ndimage.center_of_mass(blob)
    radius = np.sqrt(area / np.pi) * COARSE
    half = max(2.0, 0.45 * radius)
    cy, cx = (cy + 0.5) * COARSE, (cx + 0.5) * COARSE
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    side = int(round(2 * half))
    return max(0, x0), max(0, y0), side, side


def spot_geometry(shape: tuple[int, int], roi: tuple[int, int, int, int]) -> SpotGeometry:
    """Masks for the ROI interior, the unpressed ring around the contact and the far field.

    The contact patch reaches about 2.7 ROI half-sides from the centre (generator geometry: ROI corners
    at 0.6 r, full blanch to 0.8 r, fading out by 1.15 r), so the ring starts well beyond it.
    """
    h, w = shape
    x, y, rw, rh = roi
    cx, cy = x + rw / 2, y + rh / 2
    half = max(rw, rh) / 2
    yy, xx = np.mgrid[0:h, 0:w]
    inner = 0.8
    roi_mask = (np.abs(xx + 0.5 - cx) <= inner * rw / 2) & (np.abs(yy + 0.5 - cy) <= inner * rh / 2)
    if roi_mask.sum() < 4:
        roi_mask = (np.abs(xx + 0.5 - cx) <= max(rw / 2, 1)) & (np.abs(yy + 0.5 - cy) <= max(rh / 2, 1))
    dist = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
    ring_mask = (dist > 3.0 * half) & (dist < 4.2 * half)
    far_mask = dist > 4.8 * half
    return SpotGeometry(roi=roi, roi_mask=roi_mask, ring_mask=ring_mask, far_mask=far_mask)


def track_shifts(coarse: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """(N, 2) translation (dy, dx) of each frame against the baseline, in analysis pixels.

    Phase correlation on the coarse luma; a parabola through the peak gives sub-block precision.
    """
    nb = baseline_count(t_s)
    luma = coarse @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    hh, ww = luma.shape[1:]
    window = np.outer(np.hanning(hh), np.hanning(ww)).astype(np.float32)
    ref = np.median(luma[:nb], axis=0)
    ref_f = np.fft.rfft2((ref - ref.mean()) * window)
    out = np.zeros((len(luma), 2))
    spec = np.fft.rfft2((luma - luma.mean(axis=(1, 2), keepdims=True)) * window[None])
    cross = spec * np.conj(ref_f)[None]
    cross /= np.abs(cross) + 1e-6
    corr = np.fft.irfft2(cross, s=(hh, ww))
    for i, c in enumerate(corr):
        iy, ix = np.unravel_index(int(np.argmax(c)), c.shape)
        dy = iy + _parabola(c[(iy - 1) % hh, ix], c[iy, ix], c[(iy + 1) % hh, ix])
        dx = ix + _parabola(c[iy, (ix - 1) % ww], c[iy, ix], c[iy, (ix + 1) % ww])
        if dy > hh / 2:
            dy -= hh
        if dx > ww / 2:
            dx -= ww
        out[i] = dy, dx
    return out * COARSE


def _parabola(a: float, b: float, c: float) -> float:
    den = a - 2 * b + c
    return 0.0 if den == 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """``"X,Y,W,H"`` (pixels of the upright frame, as the CLI's ``--roi`` and the HTTP ``roi``
    field take it) -> a tuple; empty means none. Raises ``UnprocessableInputError`` otherwise: four
    integers, a corner inside the picture's quadrant (X, Y >= 0) and a positive width and height."""
    if text is None or not text.strip():
        return None
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or parts[0] < 0 or parts[1] < 0 or parts[2] <= 0 or parts[3] <= 0:
        raise UnprocessableInputError(
            f"roi must be X,Y,W,H integers with X, Y >= 0 and a positive width and height, "
            f"got {text[:60]!r}")
    return parts  # type: ignore[return-value]
