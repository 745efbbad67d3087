"""Camera tracking on frames whose shift is known exactly, and the shortcuts the tracker takes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mottling.crt.motion import _masked_median, _soft_keep, track_camera


def _scene(seed: int = 3, size: tuple[int, int] = (240, 300)) -> np.ndarray:
    """Skin-like texture: smoothed noise of a few luma codes' contrast around mid-grey."""
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.normal(0, 1, size), 1.5)
    return 128 + 8 * tex / tex.std()


def _frames(shifts: np.ndarray, hand_from: int | None = None,
            size: tuple[int, int] = (90, 120)) -> np.ndarray:
    """(N, *size) uint8 views of one scene moved by ``shifts`` (dy, dx; content at p appears at
    p + shift), with an examiner's 'hand' (a flat bright blob) over the left third from
    ``hand_from`` on."""
    scene = _scene()
    h, w = size
    out = []
    for i, (dy, dx) in enumerate(shifts):
        moved = ndimage.shift(scene, (dy, dx), order=3, mode="reflect")
        frame = moved[40:40 + h, 40:40 + w].copy()
        if hand_from is not None and i >= hand_from:
            frame[h // 9:h * 8 // 9, 0:w // 3] = 215.0
        frame += np.random.default_rng(100 + i).normal(0, 1.0, frame.shape)
        out.append(np.clip(np.round(frame), 0, 255).astype(np.uint8))
    return np.stack(out)


# 60 x 80 and 120 x 213 are correlated at full resolution, 135 x 240 (1080p) at half resolution
# with the DFT refinement.
@pytest.mark.parametrize("size", [(60, 80), (120, 213), (135, 240)])
def test_recovers_known_sub_pixel_shifts_with_a_hand_in_the_picture(size):
    n = 60
    t = np.arange(n) / 30.0
    truth = np.stack([2.5 * np.sin(2 * np.pi * 0.4 * t), 3.0 * t / t[-1] - 0.4 * np.cos(3 * t)], 1)
    truth -= truth[:5].mean(axis=0)
    track = track_camera(_frames(truth, hand_from=30, size=size), t, n_base=5)
    err = np.hypot(*(track.shifts - truth).T)
    assert np.median(err) < 0.1, np.median(err)
    assert err.max() < 0.3, err.max()
    # The aligned frames match the reference, hand or not: nothing is lost.
    assert np.all(track.mismatch < 4.0), track.mismatch.max()


def test_a_different_scene_is_lost_not_tracked():
    n = 40
    t = np.arange(n) / 30.0
    frames = _frames(np.zeros((n, 2)))
    frames[25:] = _frames(np.zeros((15, 2)))[:, ::-1, ::-1]   # the camera now sees other skin
    track = track_camera(frames, t, n_base=5)
    assert np.all(track.mismatch[:20] < 2.5)
    assert np.all(track.mismatch[26:] > 4.0)


def test_masked_median_equals_numpy_median():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 7, 9)).astype(np.float32)
    keep = rng.random(x.shape) > 0.4
    keep[0] = False
    got = _masked_median(x, keep, keep.sum(axis=(1, 2)))
    assert got[0] == np.inf
    for i in range(1, 6):
        assert got[i] == pytest.approx(float(np.median(x[i][keep[i]])), abs=1e-6)


def test_soft_mask_ramps_only_at_the_hand_edge():
    keep_b = np.ones((1, 10, 12), dtype=bool)
    keep_b[0, 3:7, 4:9] = False                       # a hand of 4 x 5 blocks
    soft = _soft_keep(keep_b, 42, 50)[0]
    assert soft.shape == (42, 50)
    assert np.all(soft[:8] == 1) and np.all(soft[30:] == 1)      # far from the hand: kept
    assert np.all(soft[15:25, 20:32] == 0)                       # deep inside: masked
    row = soft[20, 10:26]                                        # across the left edge
    assert np.all(np.diff(row) <= 0) and 0 < row[6] < 1
