"""The faster colour sums give the same bits as the plain ones they replaced.

``signal._mask_means`` reads only the mask's pixels from the planar frames and gets three of the
four bilinear corners from the pixels they gain and lose; ``motion.shrink`` adds 8-bit codes as
integers. Each is held here to the plain computation (kept in this file) on random frames,
shifts that push the mask off the picture, and both frame layouts.
"""

from __future__ import annotations

import numpy as np
import pytest

from mottling.crt import colour, motion, signal


def _mask_means_plain(yuv, mask, shifts, subpixel=False):
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
    for key in sorted(set(map(tuple, base.tolist()))):
        g = np.nonzero((base[:, 0] == key[0]) & (base[:, 1] == key[1]))[0]
        acc = np.zeros((len(g), 3))
        ok = True
        for oy, ox in corners:
            yy, xx = ys + key[0] + oy, xs + key[1] + ox
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            if inside.sum() < max(4, 0.3 * len(ys)):
                ok = False
                break
            m = yuv[g][:, yy[inside], xx[inside]].sum(axis=1, dtype=np.float64) / inside.sum()
            wy = frac[g, 0] if oy else 1 - frac[g, 0]
            wx = frac[g, 1] if ox else 1 - frac[g, 1]
            acc += (wy * wx)[:, None] * m
        if ok:
            out[g] = acc
    return out


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("planar", [True, False])
def test_mask_means_bit_identical(seed, planar):
    rng = np.random.default_rng(seed)
    n, h, w = int(rng.integers(5, 60)), int(rng.integers(20, 70)), int(rng.integers(20, 90))
    if planar:   # as decode_video stores frames: each frame's Y, U and V planes contiguous
        yuv = np.moveaxis(rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8), 1, -1)
    else:
        yuv = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, 25)
    d = np.hypot(yy - cy, xx - cx)
    mask = (d > r) & (d < r * rng.uniform(1.2, 2.0))
    if rng.random() < 0.3:
        mask &= rng.random((h, w)) < 0.7
    shifts = np.cumsum(rng.normal(0, rng.choice([0.3, 3.0]), (n, 2)), axis=0)
    for sub in (True, False):
        got = signal._mask_means(yuv, mask, shifts, subpixel=sub)
        want = _mask_means_plain(yuv, mask, shifts, subpixel=sub)
        assert got.tobytes() == want.tobytes()


def _shrink_plain(img, f):
    return motion.shrink(img.astype(np.float32), f)


@pytest.mark.parametrize("f", [1, 2, 3, 4, 8])
def test_shrink_of_8bit_codes_bit_identical(f):
    rng = np.random.default_rng(f)
    img = rng.integers(0, 256, (7, 41, 67), dtype=np.uint8)
    img[0] = 255
    got, want = motion.shrink(img, f), _shrink_plain(img, f)
    assert got.dtype == want.dtype == np.float32
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("frames_kind", ["scattered", "runs", "big"])
def test_corner_sums_gathered_once_bit_identical(seed, frames_kind):
    """The union of the corners' pixels is read once; each corner's sum is the union's sum less
    the pixels it lacks. Held to a plain float64 sum of each set's codes (sets that overlap, that
    are disjoint, equal, nested or a single pixel; frames in any order and repeated, or in runs of
    consecutive frames as a camera position gives them; frames big enough to be read in pieces)."""
    rng = np.random.default_rng(100 + seed)
    n, h, w = int(rng.integers(3, 40)), int(rng.integers(5, 50)), int(rng.integers(5, 70))
    if frames_kind == "big":
        n, h, w = 23, int(rng.integers(300, 420)), int(rng.integers(300, 420))
    yuv = np.moveaxis(rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8), 1, -1)
    yuv[rng.integers(0, n)] = 255
    hw = h * w
    a = rng.choice(hw, int(rng.integers(1, hw)), replace=False)
    flats = [a, rng.choice(hw, int(rng.integers(1, hw)), replace=False), a[: max(1, len(a) // 2)],
             a.copy(), rng.choice(hw, 1)]
    if frames_kind == "scattered":
        frames = rng.integers(0, n, int(rng.integers(1, 3 * n)))
    else:
        frames = np.nonzero(np.repeat(rng.random(8) < 0.6, -(-n // 8))[:n])[0]
        frames = frames if len(frames) else np.arange(n)
    got = signal._corner_sums(yuv, frames, flats)
    planes = np.moveaxis(yuv, -1, 1).reshape(n, 3, hw)
    want = np.stack([planes[frames][:, :, f].astype(np.float64).sum(axis=2) for f in flats], -1)
    assert got.dtype == np.float64 and got.tobytes() == want.tobytes()


def _roi_saturation_plain(yuv, matrix, box, shifts):
    n, h, w = yuv.shape[:3]
    x, y, rw, rh = box
    out = np.zeros((n, 3))
    keys = np.round(shifts).astype(int)
    for key in sorted(set(map(tuple, keys.tolist()))):
        g = np.nonzero((keys[:, 0] == key[0]) & (keys[:, 1] == key[1]))[0]
        y0 = int(np.clip(y + key[0], 0, h - rh))
        x0 = int(np.clip(x + key[1], 0, w - rw))
        rgb = matrix.to_rgb(yuv[g, y0:y0 + rh, x0:x0 + rw].astype(np.float32))
        out[g] = (rgb >= 250).mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("matrix", [colour.BT601_LIMITED, colour.YuvMatrix(0.2126, 0.0722, False),
                                    colour.YuvMatrix(0.299, 0.114, True),
                                    colour.YuvMatrix(0.2126, 0.0722, True)])
def test_roi_saturation_skips_only_frames_that_cannot_clip(seed, matrix):
    """Frames whose code ranges prove no pixel reaches 250 are not converted; the shares are
    bit for bit the plain per-pixel count's, on frames from far below to right at the limit."""
    rng = np.random.default_rng(200 + seed)
    n, h, w = 40, 24, 30
    # Each frame's codes sit in a narrow band around its own level, some of them at the edge.
    level = rng.integers(0, 256, (n, 1, 1, 3))
    codes = level + rng.integers(-6, 7, (n, h, w, 3))
    yuv = np.moveaxis(np.clip(codes, 0, 255).astype(np.uint8).transpose(0, 3, 1, 2), 1, -1)
    shifts = np.cumsum(rng.normal(0, 1.5, (n, 2)), axis=0)
    box = (int(rng.integers(0, 20)), int(rng.integers(0, 14)), 8, 8)
    got = signal._roi_saturation(yuv, matrix, box, shifts)
    want = _roi_saturation_plain(yuv, matrix, box, shifts)
    assert got.tobytes() == want.tobytes()


def test_rgb_upper_bound_holds_for_every_code():
    """The bound is above what to_rgb gives for every Y, U, V code triple (on a grid), so a frame
    it declares safe cannot hold a pixel at 250."""
    c = np.arange(0, 256, 3, dtype=np.float32)
    yuv = np.stack(np.meshgrid(c, c, c, indexing="ij"), axis=-1).reshape(-1, 3)
    for m in (colour.BT601_LIMITED, colour.YuvMatrix(0.2126, 0.0722, True)):
        rgb = m.to_rgb(yuv).astype(np.float64)
        top = m.rgb_upper_bound(yuv[:, 0], yuv[:, 1], yuv[:, 1], yuv[:, 2], yuv[:, 2])
        assert np.all(top >= rgb - 0.01)
        assert np.abs(top - rgb).max() < 0.01


def _box_means_plain(yuv, box, shifts):
    """The per-camera-position loop ``signal._box_means`` used before it read every frame at once."""
    n, h, w = yuv.shape[:3]
    x, y, bw, bh = box
    fy = np.floor(shifts[:, 0]).astype(int)
    fx = np.floor(shifts[:, 1]).astype(int)
    ty = shifts[:, 0] - fy
    tx = shifts[:, 1] - fx
    out = np.zeros((n, 3))
    for key in sorted(set(zip(fy.tolist(), fx.tolist()))):
        g = np.nonzero((fy == key[0]) & (fx == key[1]))[0]
        corner = {}
        for oy in (0, 1):
            for ox in (0, 1):
                y0 = int(np.clip(y + key[0] + oy, 0, h - bh))
                x0 = int(np.clip(x + key[1] + ox, 0, w - bw))
                corner[oy, ox] = (yuv[g, y0:y0 + bh, x0:x0 + bw].astype(np.float64)
                                  .sum(axis=(1, 2)) / (bh * bw))
        wy, wx = ty[g, None], tx[g, None]
        out[g] = ((1 - wy) * ((1 - wx) * corner[0, 0] + wx * corner[0, 1])
                  + wy * ((1 - wx) * corner[1, 0] + wx * corner[1, 1]))
    return out


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("planar", [True, False])
def test_box_means_bit_identical(seed, planar):
    """Every frame read at once (one gather for frames whose four corners are all inside, one per
    corner for frames clamped at the edge) gives the bits of the per-position loop: boxes of one
    pixel up to the whole frame, shifts that push the box against every edge."""
    rng = np.random.default_rng(300 + seed)
    n, h, w = int(rng.integers(5, 60)), int(rng.integers(8, 50)), int(rng.integers(8, 60))
    if planar:
        yuv = np.moveaxis(rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8), 1, -1)
    else:
        yuv = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    bw, bh = int(rng.integers(1, w + 1)), int(rng.integers(1, h + 1))
    box = (int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1)), bw, bh)
    shifts = np.cumsum(rng.normal(0, rng.choice([0.3, 2.0, 6.0]), (n, 2)), axis=0)
    got = signal._box_means(yuv, box, shifts)
    assert got.tobytes() == _box_means_plain(yuv, box, shifts).tobytes()
