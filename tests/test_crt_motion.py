"""Camera tracking on frames whose shift is known exactly, and the shortcuts the tracker takes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mottling.crt.motion import (
    HAND_REACH,
    _block_envelope,
    _hand_blocks,
    _masked_median,
    _soft_keep,
    block_means,
    track_camera,
)


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


def _finger_on_sheet(size: tuple[int, int] = (200, 260)) -> np.ndarray:
    """A dark finger (luma 60, faint texture) lying across a bright sheet (luma 200)."""
    scene = np.full(size, 200.0)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    scene[np.abs(yy - 0.5 * size[0] - 0.2 * (xx - 0.5 * size[1])) < 40] = 60.0
    return scene + 2 * _scene(5, size)[:size[0], :size[1]] / 8 - 32


def test_moved_edges_are_not_taken_for_a_hand_but_a_hand_is():
    """The camera moved 3 px over a high-contrast scene: every edge block then differs from the
    reference by far more than the hand threshold, yet none inside the picture is a hand (the
    old mask flagged about a tenth of the picture and the track followed the holes). A flat blob
    that matches nothing the reference shows nearby still is one."""
    scene = _finger_on_sheet()
    ref = scene[40:160, 40:220].astype(np.float32)
    moved = scene[43:163, 42:222].astype(np.float32)
    lo, hi = _block_envelope(ref, HAND_REACH)
    ref_b = block_means(ref)
    fb = block_means(np.stack([moved]))
    assert (np.abs(fb[0] - ref_b) > 22).sum() > 40            # the plain difference sees "hands"
    # (Only at the picture's border, where the move brings in what the reference never showed.)
    assert not _hand_blocks(fb, ref_b, lo, hi)[0, 3:-3, 3:-3].any()
    covered = moved.copy()
    covered[50:74, 60:120] = 125.0                            # a paler fingertip on the finger
    hand = _hand_blocks(block_means(np.stack([covered])), ref_b, lo, hi)[0]
    assert hand[13:17, 16:29].all() and hand.sum() < 0.2 * hand.size


def test_a_two_tone_scene_is_not_lost_when_the_camera_moves():
    """Half the picture a dark finger, half a pale sheet: the median block then sits on the edge
    between the tones, and a gain taken as the ratio of the frame's and the reference's median
    blocks jumps by the tones' ratio as the camera moves a pixel (the frame was then "lost" and
    the video refused for motion, with the track right to 0.1 px)."""
    size = (300, 360)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    scene = np.where(yy - 0.5 * size[0] - 0.3 * (xx - 0.5 * size[1]) > 0, 45.0, 150.0)
    scene = scene + _scene(9, size) - 128
    n = 40
    t = np.arange(n) / 30.0
    truth = np.stack([3 * np.sin(2 * np.pi * 0.5 * t), 2 * np.cos(2 * np.pi * 0.4 * t)], 1)
    truth -= truth[:5].mean(axis=0)
    frames = []
    for i, (dy, dx) in enumerate(truth):
        view = ndimage.shift(scene, (dy, dx), order=3, mode="reflect")[90:210, 90:270]
        view = view + np.random.default_rng(i).normal(0, 1.5, view.shape)
        frames.append(np.clip(np.round(view), 0, 255).astype(np.uint8))
    track = track_camera(np.stack(frames), t, n_base=5)
    assert np.percentile(np.hypot(*(track.shifts - truth).T), 90) < 0.3
    assert track.mismatch.max() < 3.0, track.mismatch.max()


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


# Two hand-held dark-skin videos of the own generator's development set (seed 777000): a Monk 9
# finger at 60 fps and a Monk 8 knee at 30 fps (both now with a key frame a second, generator
# 0.3). With a hand mask that took every block far from the unmoved reference for a hand, the
# finger's track after the release was 0.95 px off at the median and 4.1 px at the 90th
# percentile (the moved edges of the finger were masked and the correlation followed the holes);
# judged against the reference under any shift up to 3 px it is 0.11 / 0.51. The knee (0.56 /
# 1.45 px either way) is a different failure, not understood yet.
@pytest.mark.parametrize("index", [
    68, pytest.param(89, marks=pytest.mark.xfail(strict=True, reason=(
        "the knee's track is 0.56 px off at the median after the release with either hand mask; "
        "the s19-track tracker that fixed it was not merged (it tracked worse during the press: "
        "docs/crt.md, This round (s19-track))")))])
def test_dark_skin_hand_held_track_follows_the_true_camera_path(tmp_path, index):
    from mottling.crt.roi import baseline_count
    from mottling.crt.video import decode_video
    from mottling.synth.refill_frames import TICKS_PER_S, camera_path, frame_pts
    from mottling.synth.refill_spec import sample_spec
    from mottling.synth.videos import render_refill_video

    spec = sample_spec(np.random.default_rng([777000, index]), index, "both", 0.15)
    assert spec.broken is None and spec.skin_tone >= 8
    path = tmp_path / "dark.mp4"
    render_refill_video(path, spec)
    video = decode_video(path)
    t = video.t_s
    n_base = baseline_count(t)
    track = track_camera(video.yuv[..., 0], t, n_base)
    # The generator cuts frame i from its canvas at (dy, dx): skin at p appears at p - (dy, dx).
    dy, dx = camera_path(spec, frame_pts(spec) / TICKS_PER_S,
                         np.random.default_rng([spec.seed, 4]))
    truth = -np.stack([dy, dx], axis=1) * video.scale
    truth -= np.median(truth[:n_base], axis=0)
    est = track.shifts - np.median(track.shifts[:n_base], axis=0)
    settled = t >= spec.release_s + 0.4
    err = np.hypot(*(est - truth).T)[settled]
    assert np.hypot(*truth[settled].T).max() > 3.0     # the camera did move
    assert np.median(err) < 0.5, np.median(err)
    assert np.percentile(err, 90) < 1.0, np.percentile(err, 90)
