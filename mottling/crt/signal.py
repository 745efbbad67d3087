"""Per-frame colour of the pressed spot, normalised against the unpressed skin around it.

The spot's mean RGB is divided channel by channel by the mean RGB of a ring of unpressed skin just
outside the contact patch. Exposure drift, flicker and the pulse act on both alike, so they cancel,
while the blanching, which only the spot shows, remains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.crt.roi import COARSE, SpotGeometry
from mottling.skin import srgb_to_lab

SIGNALS = ("projection", "green", "a_star")
DEFAULT_SIGNAL = "green"  # measured best across skin tones (benchmarks/crt_accuracy.py --colours)


@dataclass(frozen=True)
class SpotSeries:
    """Colour time series of one video (all (N, 3) float64 RGB means in 0..255)."""

    roi_rgb: np.ndarray
    ring_rgb: np.ndarray
    far_rgb: np.ndarray
    roi_sat: np.ndarray     # (N,) share of ROI pixels at or above 250 in any channel
    frame_luma: np.ndarray  # (N,) mean luma of the whole frame


def _masked_means(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return np.full((len(frames), 3), np.nan)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sub = frames[:, y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1]
    if m.all():
        return sub.reshape(len(frames), -1, 3).sum(axis=1, dtype=np.float64) / m.size
    return sub[:, m].sum(axis=1, dtype=np.float64) / float(m.sum())


def skin_like(frames_base: np.ndarray, roi_mask: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep the pixels of ``mask`` whose baseline chromaticity is close to the spot's (skin, not sheet)."""
    base = frames_base.astype(np.float32)
    total = base.sum(axis=2) + 1.0
    chroma = base[..., :2] / total[..., None]
    ref = chroma[roi_mask].mean(axis=0)
    dist = np.abs(chroma - ref).max(axis=2)
    bright = base.mean(axis=2)
    roi_bright = bright[roi_mask].mean()
    ok = mask & (dist < 0.03) & (bright > 0.5 * roi_bright) & (bright < 1.6 * roi_bright + 10)
    return ok if ok.sum() >= 8 else mask


def spot_series(frames: np.ndarray, coarse: np.ndarray, geom: SpotGeometry, n_base: int) -> SpotSeries:
    """ROI means from the analysis frames; the ring and far field from the 4x4-block frames."""
    hh, ww = coarse.shape[1:3]
    c = COARSE // 2
    ring_c = geom.ring_mask[c::COARSE, c::COARSE][:hh, :ww]
    far_c = geom.far_mask[c::COARSE, c::COARSE][:hh, :ww]
    roi_c = geom.roi_mask[c::COARSE, c::COARSE][:hh, :ww]
    if not roi_c.any():
        iy, ix = (int(v) // COARSE for v in np.argwhere(geom.roi_mask).mean(axis=0))
        roi_c = np.zeros_like(ring_c)
        roi_c[min(iy, hh - 1), min(ix, ww - 1)] = True
    base_img = np.median(coarse[:n_base], axis=0)
    ring = skin_like(base_img, roi_c, ring_c)
    far = skin_like(base_img, roi_c, far_c)
    roi_rgb = _masked_means(frames, geom.roi_mask)
    ring_rgb = _masked_means(coarse, ring)
    far_rgb = _masked_means(coarse, far)
    ys, xs = np.nonzero(geom.roi_mask)
    sub = frames[:, ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    roi_sat = (sub.max(axis=3) >= 250).mean(axis=(1, 2))
    luma = coarse @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return SpotSeries(roi_rgb=roi_rgb, ring_rgb=ring_rgb, far_rgb=far_rgb, roi_sat=roi_sat,
                      frame_luma=luma.mean(axis=(1, 2)))


def relative_colour(series: SpotSeries, base_idx: np.ndarray) -> np.ndarray:
    """(N, 3) per-channel change of ROI/ring against the pre-press ratio (0 at baseline)."""
    ratio = series.roi_rgb / np.maximum(series.ring_rgb, 1e-3)
    base = np.median(ratio[base_idx], axis=0)
    return ratio / base - 1.0


def colour_signal(rel: np.ndarray, roi_base_rgb: np.ndarray, kind: str,
                  direction: np.ndarray | None = None, noise_sd: np.ndarray | None = None) -> np.ndarray:
    """One number per frame, 0 at baseline, from the relative ROI colour change ``rel``.

    ``projection`` is a matched filter: the change projected on the blanching direction seen right
    after release, each channel weighted by the inverse of its noise variance.
    """
    if kind == "green":
        return rel[:, 1]
    if kind == "a_star":
        rgb = np.clip(roi_base_rgb[None, :] * (1.0 + rel), 0, 255) / 255.0
        a = srgb_to_lab(rgb)[..., 1]
        a0 = srgb_to_lab((roi_base_rgb / 255.0)[None, :])[..., 1]
        return a - a0
    if kind == "projection":
        if direction is None:
            raise ValueError("projection needs the blanching direction")
        var = np.ones(3) if noise_sd is None else np.maximum(noise_sd, 1e-6) ** 2
        w = direction / var
        norm = float(w @ direction)
        if norm <= 0:
            return rel[:, 1]
        return rel @ w / norm   # in units of the direction's length (1 = the blanched change)
    raise ValueError(f"colour signal must be one of {SIGNALS}, got {kind!r}")
