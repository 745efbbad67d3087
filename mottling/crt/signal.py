"""Per-frame colour of the pressed spot, normalised against the unpressed skin around it.

The spot's mean RGB is divided channel by channel by the mean RGB of a ring of unpressed skin just
outside the contact patch. Exposure drift, flicker and the pulse act on both alike, so they cancel,
while the blanching, which only the spot shows, remains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.crt.colour import YuvMatrix
from mottling.crt.roi import RING_INNER, SpotGeometry
from mottling.skin import srgb_to_lab

SIGNALS = ("projection", "green", "a_star")
DEFAULT_SIGNAL = "green"  # measured best across skin tones (benchmarks/crt_accuracy.py --colours)


CHANNELS = ("red", "green", "blue")
# Which channel carries the blanching best, in order: haemoglobin absorbs green most, then blue.
CHANNEL_PREFERENCE = (1, 2, 0)


@dataclass(frozen=True)
class SpotSeries:
    """Colour time series of one video (all (N, 3) float64 RGB means in 0..255)."""

    roi_rgb: np.ndarray
    ring_rgb: np.ndarray
    far_rgb: np.ndarray
    roi_sat: np.ndarray     # (N, 3) share of ROI pixels at or above 250, per channel
    frame_luma: np.ndarray  # (N,) mean luma of the whole frame
    # (N, 3) the skin level with the spot, the same number of pixels in every row of it (see
    # ``row_matched``); None where a row of the spot has too little skin beside it
    band_rgb: np.ndarray | None = None


def _box_means(yuv: np.ndarray, box: tuple[int, int, int, int], shifts: np.ndarray) -> np.ndarray:
    """(N, 3) float64 mean YUV of the box (x, y, w, h) moved by each frame's (dy, dx) shift.

    Bilinear in the shift: the means at the four surrounding whole-pixel positions are blended,
    so sub-pixel tracking moves the reading smoothly. Positions are clamped to the frame.
    """
    n, h, w = yuv.shape[:3]
    x, y, bw, bh = box
    fy = np.floor(shifts[:, 0]).astype(int)
    fx = np.floor(shifts[:, 1]).astype(int)
    ty = shifts[:, 0] - fy
    tx = shifts[:, 1] - fx
    out = np.zeros((n, 3))
    planes = np.moveaxis(yuv, -1, 1)    # (N, 3, h, w): contiguous planes as decode_video stores them
    if planes.flags.c_contiguous:
        # Every frame at once, each read at its own (clamped) positions: one gather of the box's
        # pixels and of the row and column beside it when no corner is clamped, one gather per
        # corner otherwise. Integer sums, so the same numbers as before.
        flat = (np.arange(bh)[:, None] * w + np.arange(bw)[None, :]).ravel()
        whole = (y + fy >= 0) & (y + fy + 1 <= h - bh) & (x + fx >= 0) & (x + fx + 1 <= w - bw)
        sums = np.empty((n, 3, 4))
        f = np.nonzero(whole)[0]
        if len(f):
            sums[f] = _shifted_sums(yuv, f, (y + fy[f]) * w + x + fx[f], flat, (0, 1, w, w + 1))
        r = np.nonzero(~whole)[0]
        if len(r):
            for k, (oy, ox) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
                y0 = np.clip(y + fy[r] + oy, 0, h - bh)
                x0 = np.clip(x + fx[r] + ox, 0, w - bw)
                sums[r, :, k] = _shifted_sums(yuv, r, y0 * w + x0, flat, (0,))[:, :, 0]
        corner = sums / (bh * bw)
        wy, wx = ty[:, None], tx[:, None]
        return ((1 - wy) * ((1 - wx) * corner[:, :, 0] + wx * corner[:, :, 1])
                + wy * ((1 - wx) * corner[:, :, 2] + wx * corner[:, :, 3]))
    for key in sorted(set(zip(fy.tolist(), fx.tolist()))):
        g = np.nonzero((fy == key[0]) & (fx == key[1]))[0]
        corner = {}
        for oy in (0, 1):
            for ox in (0, 1):
                y0 = int(np.clip(y + key[0] + oy, 0, h - bh))
                x0 = int(np.clip(x + key[1] + ox, 0, w - bw))
                # Integer sums of the codes: the same numbers as a float64 sum, in any order.
                sub = planes[g, :, y0:y0 + bh, x0:x0 + bw]
                corner[oy, ox] = (sub.sum(axis=(2, 3), dtype=np.uint32).astype(np.float64)
                                  / (bh * bw))
        wy, wx = ty[g, None], tx[g, None]
        out[g] = ((1 - wy) * ((1 - wx) * corner[0, 0] + wx * corner[0, 1])
                  + wy * ((1 - wx) * corner[1, 0] + wx * corner[1, 1]))
    return out


def _pixel_sums(yuv: np.ndarray, frames: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """(len(frames), 3) float64 sums of the Y, U, V codes at the pixels ``flat`` (indices into
    h * w) of each frame in ``frames``: exact integers, so bit for bit what a float64 sum of the
    same pixels gives in any order. Only those pixels are read, straight from the planar storage
    ``decode_video`` makes (yuv[i, ..., c] contiguous); other layouts are gathered as they are.
    """
    n, h, w = yuv.shape[:3]
    planes = np.moveaxis(yuv, -1, 1)
    out = np.empty((len(frames), 3))
    if not planes.flags.c_contiguous:
        ys, xs = np.divmod(flat, w)
        for s in range(0, len(frames), 256):
            sub = yuv[frames[s:s + 256, None], ys[None, :], xs[None, :]]
            out[s:s + 256] = sub.sum(axis=1, dtype=np.uint32)
        return out
    buf = planes.reshape(-1)
    hw = h * w
    # Frames in chunks, so the index array stays small next to the video.
    step = max(1, (1 << 20) // max(3 * len(flat), 1))
    chan = np.arange(3) * hw
    for s in range(0, len(frames), step):
        f = frames[s:s + step]
        idx = ((f * (3 * hw))[:, None, None] + chan[None, :, None]) + flat[None, None, :]
        # 32-bit sums are exact: a frame has far fewer than 2**32 / 255 pixels.
        out[s:s + step] = np.take(buf, idx).sum(axis=2, dtype=np.uint32)
    return out


def _corner_sums(yuv: np.ndarray, frames: np.ndarray, flats: list[np.ndarray]) -> np.ndarray:
    """(len(frames), 3, len(flats)) float64 sums of the Y, U, V codes at each pixel set of
    ``flats`` (indices into h * w), for planar frames as ``decode_video`` stores them.

    The union of the sets is gathered once (the bilinear corners of a mask share most of their
    pixels); each set's sum is the union's sum less the few union pixels the set lacks. All of it
    is integer arithmetic, so the result is bit for bit the sum of the same codes in any order.
    """
    n, h, w = yuv.shape[:3]
    hw = h * w
    buf = np.moveaxis(yuv, -1, 1).reshape(n, 3 * hw)   # a view: planes are contiguous
    if len(flats) == 1:     # one set: itself (its order does not change an integer sum)
        union, missing = np.asarray(flats[0]), [np.zeros(0, int)]
    else:
        union = np.unique(np.concatenate(flats))
        missing = []
        for f in flats:
            have = np.zeros(len(union), bool)
            have[np.searchsorted(union, f)] = True
            missing.append(np.nonzero(~have)[0])
    cols = (np.arange(3)[:, None] * hw + union[None, :]).ravel()
    out = np.empty((len(frames), 3, len(flats)))
    step = max(1, (1 << 21) // max(len(cols), 1))
    # Frames in pieces of at most ``step``: a run of consecutive frames (a camera position lasts
    # a while) is read through a view of its rows; scattered frames by one flat index each.
    cut = np.nonzero(np.diff(frames) != 1)[0] + 1
    runs = list(zip(np.concatenate([[0], cut]).tolist(),
                    np.concatenate([cut, [len(frames)]]).tolist()))
    scattered = len(runs) > len(frames) // 4 + 1
    if scattered:
        runs = [(0, len(frames))]
    pieces = [(s, min(s + step, b)) for a, b in runs for s in range(a, b, step)]
    for a, b in pieces:
        if scattered:
            idx = (frames[a:b].astype(np.int64) * (3 * hw))[:, None] + cols[None, :]
            vals = np.take(buf.reshape(-1), idx)
        else:
            vals = buf[frames[a]:frames[a] + (b - a)].take(cols, axis=1)
        vals = vals.reshape(b - a, 3, len(union))
        # 32-bit sums are exact: a frame has far fewer than 2**32 / 255 pixels.
        total = vals.sum(axis=2, dtype=np.uint32).astype(np.int64)
        for k, miss in enumerate(missing):
            out[a:b, :, k] = (total - vals[:, :, miss].sum(axis=2, dtype=np.uint32)
                              if len(miss) else total)
    return out


def _shifted_sums(yuv: np.ndarray, frames: np.ndarray, offsets: np.ndarray, flat: np.ndarray,
                  deltas: tuple[int, ...]) -> np.ndarray:
    """(len(frames), 3, len(deltas)) float64 sums of the Y, U, V codes at the pixels
    ``flat + offsets[i] + deltas[k]`` (indices into h * w) of each frame ``frames[i]``, for planar
    frames as ``decode_video`` stores them. The caller makes sure every moved pixel lies in the
    frame, so no offset wraps into another row.

    All frames are read by one gather per piece, whatever their camera position (``offsets`` moves
    each frame's reading). The pixels of the union of the ``deltas`` copies are ordered by which
    copies hold them, so one pass of segment sums gives each membership pattern's sum and each
    copy's sum adds up the patterns it holds. Integer arithmetic throughout, so the result is bit
    for bit the sum of the same codes in any order.
    """
    n, h, w = yuv.shape[:3]
    hw = h * w
    flat = np.asarray(flat, dtype=np.int64)
    union = np.unique(np.concatenate([flat + d for d in deltas]))
    code = np.zeros(len(union), np.int64)
    for k, d in enumerate(deltas):
        code[np.searchsorted(union, flat + d)] |= 1 << k
    order = np.argsort(code, kind="stable")
    union, code = union[order], code[order]
    starts = np.concatenate([[0], np.nonzero(np.diff(code))[0] + 1])
    patterns = code[starts]
    nu = len(union)
    cols = (np.arange(3)[:, None] * hw + union[None, :]).ravel()
    seg = (np.arange(3)[:, None] * nu + starts[None, :]).ravel()
    # which patterns make up each copy: (P, K) 0/1
    member = ((patterns[:, None] >> np.arange(len(deltas))[None, :]) & 1).astype(np.int64)
    buf = np.moveaxis(yuv, -1, 1).reshape(-1)        # a view: planes are contiguous
    base = np.asarray(frames, np.int64) * (3 * hw) + np.asarray(offsets, np.int64)
    out = np.empty((len(frames), 3, len(deltas)))
    step = max(1, (1 << 16) // max(len(cols), 1))
    for a in range(0, len(frames), step):
        idx = base[a:a + step, None] + cols[None, :]
        vals = np.take(buf, idx)
        # 32-bit sums are exact: a frame has far fewer than 2**32 / 255 pixels.
        part = np.add.reduceat(vals, seg, axis=1, dtype=np.uint32).astype(np.int64)
        out[a:a + step] = part.reshape(len(idx), 3, len(patterns)) @ member
    return out


def _mask_means(yuv: np.ndarray, mask: np.ndarray, shifts: np.ndarray | None,
                subpixel: bool = False) -> np.ndarray:
    """(N, 3) float64 mean YUV over ``mask``, moved by each frame's shift if given.

    With ``subpixel`` the means at the four surrounding whole-pixel positions are blended
    bilinearly (as for the spot): a reference read at the nearest whole pixel jumps over the skin
    texture each time the rounded shift changes, and the spot-over-ring ratio shows that as a step.
    """
    n, h, w = yuv.shape[:3]
    ys, xs = np.nonzero(mask)
    out = np.full((n, 3), np.nan)
    if len(ys) == 0:
        return out
    if shifts is None:
        shifts = np.zeros((n, 2))
        subpixel = False
    if subpixel:
        base = np.floor(shifts).astype(int)
        frac = shifts - base
        corners = ((0, 0), (0, 1), (1, 0), (1, 1))
    else:
        base = np.round(shifts).astype(int)
        frac = np.zeros_like(shifts)
        corners = ((0, 0),)
    planar = np.moveaxis(yuv, -1, 1).flags.c_contiguous
    rest = np.arange(n)
    if planar and len(ys) >= 4 and len(corners) > 1:
        # Frames whose every corner copy of the mask lies inside the picture (all but a camera
        # that wandered to the edge): one gather for all of them, whatever their position. (A
        # single corner reads as fast per camera position below: runs of frames, no index.)
        reach_y, reach_x = max(c[0] for c in corners), max(c[1] for c in corners)
        whole = ((base[:, 0] + ys.min() >= 0) & (base[:, 0] + ys.max() + reach_y < h)
                 & (base[:, 1] + xs.min() >= 0) & (base[:, 1] + xs.max() + reach_x < w))
        f = np.nonzero(whole)[0]
        rest = np.nonzero(~whole)[0]
        if len(f):
            sums = _shifted_sums(yuv, f, base[f, 0] * w + base[f, 1], ys * w + xs,
                                 tuple(oy * w + ox for oy, ox in corners))
            acc = np.zeros((len(f), 3))
            for k, (oy, ox) in enumerate(corners):
                m = sums[:, :, k] / len(ys)
                wy = frac[f, 0] if oy else 1 - frac[f, 0]
                wx = frac[f, 1] if ox else 1 - frac[f, 1]
                acc += (wy * wx)[:, None] * m
            out[f] = acc
    for key in sorted(set(map(tuple, base[rest].tolist()))):
        g = np.nonzero((base[:, 0] == key[0]) & (base[:, 1] == key[1]))[0]
        flats, counts = [], []
        for oy, ox in corners:
            yy, xx = ys + key[0] + oy, xs + key[1] + ox
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            if inside.sum() < max(4, 0.3 * len(ys)):
                break
            flats.append(yy[inside] * w + xx[inside])
            counts.append(inside.sum())
        if len(flats) < len(corners):
            continue
        if planar:
            sums = _corner_sums(yuv, g, flats)
        else:
            sums = np.stack([_pixel_sums(yuv, g, f) for f in flats], axis=-1)
        acc = np.zeros((len(g), 3))
        for k, (oy, ox) in enumerate(corners):
            m = sums[:, :, k] / counts[k]
            wy = frac[g, 0] if oy else 1 - frac[g, 0]
            wx = frac[g, 1] if ox else 1 - frac[g, 1]
            acc += (wy * wx)[:, None] * m
        out[g] = acc
    return out


def skin_like(base_rgb: np.ndarray, roi_mask: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep the pixels of ``mask`` whose baseline chromaticity is close to the spot's (skin, not sheet)."""
    base = base_rgb.astype(np.float32)
    total = base.sum(axis=2) + 1.0
    chroma = base[..., :2] / total[..., None]
    ref = chroma[roi_mask].mean(axis=0)
    dist = np.abs(chroma - ref).max(axis=2)
    bright = base.mean(axis=2)
    roi_bright = bright[roi_mask].mean()
    ok = mask & (dist < 0.03) & (bright > 0.5 * roi_bright) & (bright < 1.6 * roi_bright + 10)
    return ok if ok.sum() >= 8 else mask


MIN_BAND_ROW = 2     # skin pixels a row of the spot needs beside it for the level reference
BAND_REACH = 6.0     # the level skin reaches this many ROI half-sides from the spot's centre
BAND_EDGE = 0.04     # ...and keeps this share of the frame clear of its edges (a wandering camera)


def _level_band(geom: SpotGeometry, axis: int) -> np.ndarray:
    """The pixels level with the spot (its rows; its columns with ``axis`` 1) that lie between
    the ring's inner edge and ``BAND_REACH`` ROI half-sides from the spot's centre, inside the
    frame less ``BAND_EDGE`` of it at each side."""
    h, w = geom.roi_mask.shape
    x, y, rw, rh = geom.roi
    half = max(rw, rh) / 2
    if axis == 1:
        pos, size = np.arange(h) + 0.5 - (y + rh / 2), h
    else:
        pos, size = np.arange(w) + 0.5 - (x + rw / 2), w
    edge = int(np.ceil(BAND_EDGE * size))
    keep = (np.abs(pos) > RING_INNER * half) & (np.abs(pos) < BAND_REACH * half)
    keep[:edge] = keep[size - edge:] = False
    band = np.zeros((h, w), dtype=bool)
    ix, iy, iw, ih = geom.inner_box
    if axis == 1:
        band[keep, ix:ix + iw] = True
    else:
        band[iy:iy + ih, keep] = True
    return band


def row_matched(mask: np.ndarray, box: tuple[int, int, int, int], axis: int = 0
                ) -> np.ndarray | None:
    """The pixels of ``mask`` level with ``box`` (x, y, w, h), thinned to the same number in every
    row of it, or None where a row has fewer than ``MIN_BAND_ROW``. ``axis`` 1 matches columns
    instead (a video stored turned by 90 or 270 degrees: its sensor rows are the upright
    picture's columns).

    A phone's rolling shutter reads the sensor's rows one after the other, so a light flickering
    at twice the mains frequency lays bands across the picture that move from frame to frame.
    The spot and a ring around it sample different rows, and their ratio keeps part of the bands
    (on both renderers, as on phones under mains light). Level with the spot, and as many pixels
    in each of its rows, a reference's mean carries every row's gain with the spot's own weights,
    so any brightness that depends on the row alone cancels in the ratio. Each row keeps its pixels
    evenly spread over its extent (the same choice in any process).
    """
    if axis == 1:
        x, y, w, h = box
        band = row_matched(mask.T, (y, x, h, w))
        return None if band is None else np.ascontiguousarray(band.T)
    x, y, w, h = box
    rows = [np.flatnonzero(mask[r]) for r in range(y, y + h)]
    k = min((len(c) for c in rows), default=0)
    if k < MIN_BAND_ROW:
        return None
    band = np.zeros_like(mask)
    for r, cols in zip(range(y, y + h), rows):
        band[r, cols[np.round(np.linspace(0, len(cols) - 1, k)).astype(int)]] = True
    return band


def _roi_saturation(yuv: np.ndarray, matrix, box: tuple[int, int, int, int],
                    shifts: np.ndarray) -> np.ndarray:
    """(N, 3) share of the box's pixels (moved to the nearest whole-pixel shift) at or above 250,
    per RGB channel.

    Frames whose code ranges prove that no pixel reaches 250 get 0 (what counting gives) without
    converting their pixels; the others are converted pixel by pixel as before.
    """
    n, h, w = yuv.shape[:3]
    x, y, rw, rh = box
    roi_sat = np.zeros((n, 3))
    keys = np.round(shifts).astype(int)
    for key in sorted(set(map(tuple, keys.tolist()))):
        g = np.nonzero((keys[:, 0] == key[0]) & (keys[:, 1] == key[1]))[0]
        y0 = int(np.clip(y + key[0], 0, h - rh))
        x0 = int(np.clip(x + key[1], 0, w - rw))
        pix = yuv[g, y0:y0 + rh, x0:x0 + rw]
        if isinstance(matrix, YuvMatrix):
            yb, ub, vb = (pix[..., c] for c in range(3))
            top = matrix.rgb_upper_bound(yb.max(axis=(1, 2)), ub.min(axis=(1, 2)),
                                         ub.max(axis=(1, 2)), vb.min(axis=(1, 2)),
                                         vb.max(axis=(1, 2)))
            near = np.nonzero(top.max(axis=1) >= 249.0)[0]
            if len(near) < len(g):
                g, pix = g[near], pix[near]
        rgb = matrix.to_rgb(pix.astype(np.float32))
        roi_sat[g] = (rgb >= 250).mean(axis=(1, 2))
    return roi_sat


def spot_series(yuv: np.ndarray, matrix, geom: SpotGeometry, n_base: int,
                shifts: np.ndarray, readout_axis: int = 0) -> SpotSeries:
    """Colour of the spot and of the skin around it, read where the camera track puts them.

    ``readout_axis``: 0 where the frames' rows are the sensor's (read one after the other by a
    rolling shutter), 1 where their columns are (a video stored turned by 90 or 270 degrees)."""
    base_rgb = matrix.to_rgb(np.median(yuv[:n_base], axis=0).astype(np.float32))
    ring = skin_like(base_rgb, geom.roi_mask, geom.ring_mask)
    far = skin_like(base_rgb, geom.roi_mask, geom.far_mask)
    roi_rgb = matrix.to_rgb(_box_means(yuv, geom.inner_box, shifts))
    ring_rgb = matrix.to_rgb(_mask_means(yuv, ring, shifts, subpixel=True))
    # Skin level with the spot, row for row, from the ring's inner edge out to BAND_REACH of the
    # spot's size: rolling-shutter bands cancel against it (``measure`` uses it where it holds
    # the spot clearly steadier than the ring); it holds about 2.5 times the ring's two sides.
    band_mask = row_matched(skin_like(base_rgb, geom.roi_mask, _level_band(geom, readout_axis)),
                            geom.inner_box, readout_axis)
    band_rgb = (None if band_mask is None
                else matrix.to_rgb(_mask_means(yuv, band_mask, shifts, subpixel=True)))
    # The far field is the global light reference (every other pixel is plenty); it is tracked
    # too, or a wandering phone would slide sheet in and out of it and fake a colour change.
    sub = np.zeros_like(far)
    sub[::2, ::2] = True
    far_rgb = matrix.to_rgb(_mask_means(yuv, far & sub, shifts))
    # Clipping is judged per channel on the spot's own pixels (at the nearest whole-pixel shift).
    roi_sat = _roi_saturation(yuv, matrix, geom.inner_box, shifts)
    # Integer sums of the codes: the same numbers a float64 sum gives, without a float copy.
    luma = (yuv[:, ::2, ::2, 0].sum(axis=(1, 2), dtype=np.int64).astype(np.float64)
            / yuv[0, ::2, ::2, 0].size)
    return SpotSeries(roi_rgb=roi_rgb, ring_rgb=ring_rgb, far_rgb=far_rgb, roi_sat=roi_sat,
                      frame_luma=matrix.luma(luma), band_rgb=band_rgb)


def relative_colour(roi_rgb: np.ndarray, ring_rgb: np.ndarray, base_idx: np.ndarray) -> np.ndarray:
    """(N, 3) per-channel change of ROI/ring against the pre-press ratio (0 at baseline)."""
    ratio = roi_rgb / np.maximum(ring_rgb, 1e-3)
    base = np.median(ratio[base_idx], axis=0)
    return ratio / base - 1.0


def usable_channels(roi_sat: np.ndarray, idx: np.ndarray, max_share: float) -> list[int]:
    """Channels not clipped on the spot over the frames ``idx``, best first.

    A channel is clipped when a noticeable share of the spot's pixels sits at the top of the scale
    in a typical frame, or when most of them do in any frame.
    """
    sat = roi_sat[idx]
    if len(sat) == 0:
        return list(CHANNEL_PREFERENCE)
    clipped = (np.median(sat, axis=0) > max_share) | (sat.max(axis=0) > 0.5)
    return [c for c in CHANNEL_PREFERENCE if not clipped[c]]


def colour_signal(rel: np.ndarray, roi_base_rgb: np.ndarray, kind: str,
                  direction: np.ndarray | None = None, noise_sd: np.ndarray | None = None,
                  channel: int = 1) -> np.ndarray:
    """One number per frame, 0 at baseline, from the relative ROI colour change ``rel``.

    ``green`` reads ``channel`` (green unless green is clipped and another channel stands in).

    ``projection`` is a matched filter: the change projected on the blanching direction seen right
    after release, each channel weighted by the inverse of its noise variance.
    """
    if kind == "green":
        return rel[:, channel]
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
