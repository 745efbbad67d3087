"""Find the pressed spot and lay out the unpressed skin around it.

All work happens on the shrunk analysis frames. Coordinates given to or returned by the public API
are in upright source pixels; ``DecodedVideo.scale`` converts between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mottling.crt.motion import block_means
from mottling.errors import UnprocessableInputError

TRACK_HZ = 60.0   # the occluder's exit is found on frames at about this rate
LATE_MOVE_PX = 4.0  # the video's end is compared only if the camera is within this of the exit


@dataclass(frozen=True)
class SpotGeometry:
    """Analysis-pixel masks for one video, in the reference (pre-press) frame."""

    roi: tuple[int, int, int, int]    # x, y, w, h of the pressed spot (analysis pixels)
    inner_box: tuple[int, int, int, int]  # inner part of the ROI used for the signal
    roi_mask: np.ndarray              # (h, w) bool: the inner box as a mask
    ring_mask: np.ndarray             # (h, w) bool: unpressed skin just around the contact
    far_mask: np.ndarray              # (h, w) bool: the rest of the frame (global light reference)


def baseline_count(t_s: np.ndarray, seconds: float = 0.5) -> int:
    return int(max(3, min(np.searchsorted(t_s, seconds), len(t_s) // 4)))


def _aligned(img: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``img`` moved back by the camera shift, so pixel p shows the reference's p."""
    sy, sx = (int(round(v)) for v in shift)
    return np.roll(img, (-sy, -sx), axis=(0, 1))


def auto_roi(yuv: np.ndarray, matrix, t_s: np.ndarray, shifts: np.ndarray,
             n_base: int, debug: dict | None = None) -> tuple[int, int, int, int] | None:
    """The spot that is still blanched once the slide or fingertip has gone.

    The moment the occluder leaves is the largest drop of the frame's overall change from its
    pre-press look. Just after it, only the pressed skin still differs from baseline, and it differs
    in the blanching direction (green rises against red as blood leaves), and it recovers: by the
    end of the video it is back, so it differs from the last frames too. Frames are aligned on the
    camera track first, so a wandering phone does not smear the map. Returns analysis-pixel
    x, y, w, h or None.
    """
    n = len(t_s)
    fps = (n - 1) / max(float(t_s[-1] - t_s[0]), 1e-6)
    step = max(1, int(round(fps / TRACK_HZ)))
    idx = np.arange(0, n, step)
    # Change of luma and of both chroma planes, so a faint glass slide on dark skin (which hardly
    # changes the brightness) still shows where it leaves.
    energy = np.zeros(len(idx))
    y_base = np.median(block_means(yuv[:n_base, ..., 0].astype(np.float32)), axis=0) + 1.0
    for c in range(3):
        plane = block_means(yuv[idx, ..., c].astype(np.float32))
        base_c = np.median(block_means(yuv[:n_base, ..., c].astype(np.float32)), axis=0)
        energy += (np.abs(plane - base_c[None]) / y_base[None]).mean(axis=(1, 2), dtype=np.float64)
    t_i = t_s[idx]
    m = len(idx)
    rate = fps / step
    w = max(2, int(round(0.3 * rate)))
    gap = max(1, int(round(0.1 * rate)))
    nb = max(1, int(np.searchsorted(t_i, t_s[n_base - 1])))
    csum = np.concatenate([[0.0], np.cumsum(energy)])
    best, drop = 0.0, None
    for i in range(nb + w, m - gap - w):
        before = (csum[i] - csum[i - w]) / w
        after = (csum[i + gap + w] - csum[i + gap]) / w
        if before - after > best:
            best, drop = before - after, i
    if debug is not None:
        debug["energy"], debug["t_energy"] = energy, t_i
        debug["drop_s"] = None if drop is None else float(t_i[drop])
    if drop is None:
        return None
    i0 = int(np.searchsorted(t_s, t_i[drop] + 0.35))
    i1 = max(i0 + 2, int(np.searchsorted(t_s, t_i[drop] + 0.8)))
    if i0 >= n - 1:
        return None
    base_rgb = matrix.to_rgb(np.median(yuv[:n_base], axis=0).astype(np.float32)) + 1.0
    window = list(range(i0, min(i1, n), max(1, (min(i1, n) - i0) // 12)))
    score = _blanch_map(yuv, matrix, window, shifts, base_rgb)
    # The spot is what recovers: against the last frames (refilled skin) it must differ as much
    # as against the pre-press ones. Drift, a changed light or a misaligned edge differ from
    # the baseline but not from the end of the video, so they drop out.
    late0 = int(np.searchsorted(t_s, max(t_s[-1] - 0.6, t_s[min(i1, n - 1)])))
    late = list(range(late0, n, max(1, (n - late0) // 8)))
    # ...unless the camera has since moved well away (the end shows another view, and aligning
    # it would roll most of the frame out of the comparison).
    reach = float(np.abs(shifts[window]).max()) + LATE_MOVE_PX
    if late and float(np.abs(shifts[late]).max()) <= reach:
        score = np.minimum(score, score - _blanch_map(yuv, matrix, late, shifts, base_rgb))
        window = window + late
    score[base_rgb.mean(axis=2) < 15] = 0
    # Aligning rolls the frame: the band that wrapped round from the far edge is not the scene.
    edge = int(np.ceil(np.abs(shifts[window]).max())) + 2
    score[:edge] = score[-edge:] = 0
    score[:, :edge] = score[:, -edge:] = 0
    # Smoothed over a few pixels (the spot is tens of analysis pixels wide): faint blanching on
    # dark skin sits near the per-pixel noise.
    score = ndimage.uniform_filter(score, max(3, min(score.shape) // 40))
    hh, ww = score.shape
    yy, xx = np.mgrid[0:hh, 0:ww]
    centre = np.exp(-(((yy - hh / 2) / (0.6 * hh)) ** 2 + ((xx - ww / 2) / (0.6 * ww)) ** 2))
    weighted = score * (0.5 + 0.5 * centre)
    if debug is not None:
        debug["score"] = score
    peak = float(weighted.max())
    if not np.isfinite(peak) or peak <= 0.003:
        return None
    iy, ix = np.unravel_index(int(np.argmax(weighted)), weighted.shape)
    labels, _ = ndimage.label(score > 0.5 * score[iy, ix])
    blob = labels == labels[iy, ix]
    # The single highest pixel sits on a noise peak; half of the blob's typical level (its
    # median) is the edge of the blanched patch, so the ROI (and the ring laid out from its
    # size) is not shrunk on noisy, faint maps.
    level = 0.5 * float(np.median(score[blob]))
    labels, _ = ndimage.label(score > level)
    blob = labels == labels[iy, ix]
    area = float(blob.sum())
    cy, cx = ndimage.center_of_mass(blob)
    radius = np.sqrt(area / np.pi)
    half = max(1.5, 0.5 * radius)
    cy, cx = cy + 0.5, cx + 0.5
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    side = max(2, int(round(2 * half)))
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
    iw, ih = max(1, int(round(0.8 * rw))), max(1, int(round(0.8 * rh)))
    ix = int(np.clip(round(cx - iw / 2), 0, max(0, w - iw)))
    iy = int(np.clip(round(cy - ih / 2), 0, max(0, h - ih)))
    inner = (ix, iy, min(iw, w), min(ih, h))
    roi_mask = np.zeros((h, w), dtype=bool)
    roi_mask[iy:iy + inner[3], ix:ix + inner[2]] = True
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
    ring_mask = (dist > 3.0 * half) & (dist < 4.2 * half)
    far_mask = dist > 4.8 * half
    return SpotGeometry(roi=roi, inner_box=inner, roi_mask=roi_mask, ring_mask=ring_mask,
                        far_mask=far_mask)


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


def _blanch_map(yuv: np.ndarray, matrix, frames, shifts: np.ndarray,
                base_rgb: np.ndarray) -> np.ndarray:
    """Median over ``frames`` of green-over-red against the baseline, aligned on the track."""
    maps = []
    for i in frames:
        rgb = _aligned(matrix.to_rgb(yuv[i].astype(np.float32)), shifts[i]) / base_rgb
        maps.append(rgb[..., 1] - rgb[..., 0])                # green up against red
    return np.median(np.stack(maps), axis=0)

