"""Follow the camera: where the skin of the first frames sits in every later frame.

A hand-held phone wanders by a few pixels; the pressed spot goes with the picture, so its colour is
read where the skin actually is rather than the video being refused. The shift of each frame
against the pre-press reference comes from phase correlation on the luma, with the examiner's hand
(and anything else that differs grossly from the reference) masked out. How well the aligned frame
then matches the reference, brightness-normalised so a lamp change does not count, tells whether
the tracking can be trusted; a frame whose mismatch is far above the reference frames' own is
"lost" (the spot left the picture or something covers it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage

BLOCK = 4            # hand mask and mismatch work on 4x4-pixel block means
HAND_CODES = 22.0    # a block this far (luma codes) from the reference is not the skin scene
MIN_PSR = 8.0        # correlation peak height over the correlation's spread, to be believed
TRACK_HZ = 30.0      # higher frame rates are tracked at about this rate and interpolated


@dataclass(frozen=True)
class CameraTrack:
    """Per-frame camera shift against the pre-press reference, in analysis pixels."""

    shifts: np.ndarray     # (N, 2) dy, dx: reference content at p appears at p + shift
    mismatch: np.ndarray   # (N,) aligned mismatch over the reference frames' own (1 = as still)

    def displacement(self, idx: np.ndarray) -> float:
        """Largest shift over the frames ``idx``, in analysis pixels."""
        if len(idx) == 0:
            return 0.0
        return float(np.max(np.hypot(self.shifts[idx, 0], self.shifts[idx, 1])))


def block_means(luma: np.ndarray) -> np.ndarray:
    """(N, h/4, w/4) float32 means of 4x4 blocks (strided adds: fast and exact)."""
    n, h, w = luma.shape
    hh, ww = h // BLOCK, w // BLOCK
    acc = np.zeros((n, hh, ww), dtype=np.float32)
    for dy in range(BLOCK):
        for dx in range(BLOCK):
            acc += luma[:, dy:hh * BLOCK:BLOCK, dx:ww * BLOCK:BLOCK]
    return acc * np.float32(1.0 / BLOCK**2)


def track_camera(luma: np.ndarray, t_s: np.ndarray, n_base: int) -> CameraTrack:
    """Shift and mismatch of every frame of ``luma`` (N, h, w, uint8 or float) against its start."""
    n, h, w = luma.shape
    fps = (n - 1) / max(float(t_s[-1] - t_s[0]), 1e-6)
    step = max(1, int(round(fps / TRACK_HZ)))
    idx = np.unique(np.concatenate([np.arange(0, n, step), np.arange(n_base), [n - 1]]))
    frames = luma[idx].astype(np.float32)
    ref = np.median(luma[:n_base].astype(np.float32), axis=0)

    # Hand mask: blocks far from the reference, grown by one block.
    ref_b = block_means(ref[None])[0]
    # Brightness-normalised first, so a lamp switched on does not read as a hand everywhere.
    fb = block_means(frames)
    gain = np.median(fb.reshape(len(fb), -1), axis=1) / max(float(np.median(ref_b)), 1e-3)
    far = np.abs(fb / np.maximum(gain, 1e-3)[:, None, None] - ref_b[None]) > HAND_CODES
    grown = far.copy()
    grown[:, 1:] |= far[:, :-1]
    grown[:, :-1] |= far[:, 1:]
    grown[:, :, 1:] |= far[:, :, :-1]
    grown[:, :, :-1] |= far[:, :, 1:]
    keep = ~np.repeat(np.repeat(grown, BLOCK, axis=1), BLOCK, axis=2)
    keep = np.pad(keep, ((0, 0), (0, h - keep.shape[1]), (0, w - keep.shape[2])),
                  constant_values=True)

    hard_keep = keep
    # A soft-edged mask: a hard hole would add edges of its own for the correlation to lock onto.
    keep = ndimage.uniform_filter(keep.astype(np.float32), size=(1, 5, 5))
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    ref_f = sp_fft.rfft2((ref - ref.mean(dtype=np.float64)) * window)
    weight = keep * window[None]
    mean = (frames * weight).sum(axis=(1, 2), dtype=np.float64) / np.maximum(
        weight.sum(axis=(1, 2), dtype=np.float64), 1e-6)
    spec = sp_fft.rfft2((frames - mean[:, None, None].astype(np.float32)) * weight)
    cross = spec * np.conj(ref_f)[None]
    cross /= np.abs(cross) + 1e-9
    corr = sp_fft.irfft2(cross, s=(h, w))
    peaks = [_peak(c, h, w) for c in corr]
    shifts = _smooth_track(np.array([p[:2] for p in peaks]), np.array([p[2] for p in peaks]))

    mismatch = _mismatch(frames, ref, shifts, hard_keep)
    base = np.isin(idx, np.arange(n_base))
    noise = max(float(np.median(mismatch[base])), 0.5)
    # Interpolate the tracked frames onto every frame.
    all_shifts = np.stack([np.interp(np.arange(n), idx, shifts[:, k]) for k in range(2)], axis=1)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(n)), 0, len(idx) - 1)]
    rel = np.interp(np.arange(n), idx, mismatch / noise)
    rel = np.maximum(rel, (mismatch / noise)[np.searchsorted(idx, nearest)])
    return CameraTrack(shifts=all_shifts, mismatch=rel)


def _smooth_track(shifts: np.ndarray, psr: np.ndarray) -> np.ndarray:
    """Drop peaks that are weak or jump away from their neighbours; a phone moves smoothly.

    Weak peaks (low peak-to-sidelobe ratio: little texture, or a hand in the way) and shifts more
    than 1.5 pixels from the running median of their neighbours are replaced by interpolation.
    """
    good = psr >= MIN_PSR
    if good.sum() < 2:
        return np.zeros_like(shifts)
    pos = np.arange(len(shifts))
    filled = np.stack([np.interp(pos, pos[good], shifts[good, k]) for k in range(2)], axis=1)
    med = ndimage.median_filter(filled, size=(7, 1), mode="nearest")
    jump = np.hypot(*(filled - med).T) > 1.5
    good &= ~jump
    if good.sum() < 2:
        return med
    return np.stack([np.interp(pos, pos[good], shifts[good, k]) for k in range(2)], axis=1)


def _peak(c: np.ndarray, h: int, w: int) -> tuple[float, float, float]:
    """Sub-pixel (dy, dx) of the correlation peak within a quarter frame, and its sharpness."""
    hh, ww = c.shape
    reach = np.zeros_like(c, dtype=bool)
    ry, rx = h // 4, w // 4
    reach[:ry + 1, :rx + 1] = reach[:ry + 1, -rx:] = reach[-ry:, :rx + 1] = reach[-ry:, -rx:] = True
    cc = np.where(reach, c, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(cc)), c.shape)
    psr = float((c[iy, ix] - c.mean()) / (c.std() + 1e-12))
    dy = iy + _parabola(c[(iy - 1) % hh, ix], c[iy, ix], c[(iy + 1) % hh, ix])
    dx = ix + _parabola(c[iy, (ix - 1) % ww], c[iy, ix], c[iy, (ix + 1) % ww])
    if dy > hh / 2:
        dy -= hh
    if dx > ww / 2:
        dx -= ww
    return float(dy), float(dx), psr


def _parabola(a: float, b: float, c: float) -> float:
    den = a - 2 * b + c
    return 0.0 if den == 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def _mismatch(frames: np.ndarray, ref: np.ndarray, shifts: np.ndarray,
              keep: np.ndarray) -> np.ndarray:
    """Median |block difference| of each frame, aligned and gain-normalised, against the reference.

    The frame is aligned to the whole pixel, then compared on 4x4 blocks. Blocks the hand mask
    touched and the part outside the overlap are ignored; a frame with less than a quarter of the
    reference left to compare gets an infinite mismatch.
    """
    n, h, w = frames.shape
    out = np.empty(n)
    for i in range(n):
        sy, sx = (int(round(v)) for v in shifts[i])
        # Reference pixel (y, x) appears at (y + sy, x + sx) in frame i.
        ry0, ry1 = max(0, -sy), min(h, h - sy)
        rx0, rx1 = max(0, -sx), min(w, w - sx)
        if (ry1 - ry0) * (rx1 - rx0) < 0.25 * h * w or ry1 - ry0 < BLOCK or rx1 - rx0 < BLOCK:
            out[i] = np.inf
            continue
        a = block_means(frames[i, ry0 + sy:ry1 + sy, rx0 + sx:rx1 + sx][None])[0]
        b = block_means(ref[ry0:ry1, rx0:rx1][None])[0]
        k = block_means(keep[i, ry0 + sy:ry1 + sy, rx0 + sx:rx1 + sx][None].astype(np.float32))[0]
        k = k > 0.99
        if k.sum() < 0.25 * (h // BLOCK) * (w // BLOCK):
            # Most of the picture differs from the reference: a covered or a different scene.
            out[i] = np.inf
            continue
        gain = np.median(a[k]) / max(float(np.median(b[k])), 1e-3)
        out[i] = float(np.median(np.abs(a[k] / max(gain, 1e-3) - b[k])))
    return out
