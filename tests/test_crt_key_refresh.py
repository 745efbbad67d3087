"""An encoder's key frame is not a release.

x264 (and a phone's encoder) skips the blocks of a slowly changing, flat scene in its P-frames: the
decoded picture lags the scene, and at the next key frame, coded afresh, it snaps to it. Inside a
long press, with the camera drifting over a smooth skin texture, that snap moves the spot's colour
against the far field by more than the plateau's own swings, and it stays moved, so the far-field
view alone took it for the release. Seen on the independent renderer (x264's key frame every
250 frames): 13 of 120 releases found more than 0.4 s early with the true ROI, 7 of them at a key
frame, reads of +78 … +262 % (docs/crt.md, "Session 24 (lead)"). A snap comes in one frame and
does not go back towards the pre-press look; the lift of a slide or fingertip takes several
frames, or goes back.
"""

from __future__ import annotations

import numpy as np

from tests.bench_support import load_benchmark
from mottling.crt import measure_crt
from mottling.crt.roi import baseline_count
from mottling.crt.timing import detect_press
from mottling.crt.video import VideoLimits, decode_video

FPS = 60.0
PRESS_S, SNAP_S, RELEASE_S, END_S = 2.0, 6.0, 11.0, 16.0


def _press_with_snap(seed: int, release_at_key: bool = False):
    """A glass-slide press (the ring is not covered) whose far-field view steps at a key frame
    inside the press, away from the pre-press look, and stays there."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, END_S, 1 / FPS)
    pressed = ((t >= PRESS_S) & (t < RELEASE_S)).astype(float)
    after = np.where(t >= RELEASE_S, np.exp(-(t - RELEASE_S) / 1.2), 0.0)
    snapped = ((t >= SNAP_S) & (t < RELEASE_S)).astype(float)
    spot = (0.2 * pressed + 0.2 * after)[:, None] * np.array([0.3, 1.0, 0.6])
    spot += 0.004 * snapped[:, None] * np.array([1.0, -0.5, 0.5])
    raw = (0.3 * pressed + 0.3 * after)[:, None] * np.array([0.7, 1.0, 1.1])
    raw += 0.06 * snapped[:, None] * np.array([1.0, 0.2, -1.0])    # mostly across, not back
    ring = np.zeros((len(t), 4))
    noise = [rng.normal(0.0, 0.003, x.shape) for x in (spot, ring, raw)]
    keys = [0, int(np.searchsorted(t, SNAP_S))]
    if release_at_key:
        keys.append(int(np.searchsorted(t, RELEASE_S)))
    return t, spot + noise[0], ring + noise[1], raw + noise[2], np.array(keys)


def test_without_the_key_frames_the_snap_is_taken_for_the_release():
    # The failure the key frames are there for.
    t, spot, ring, raw, _ = _press_with_snap(0)
    timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
    assert reason is None
    assert abs(timing.release_s - SNAP_S) < 0.1, timing.release_s


def test_a_snap_at_a_key_frame_is_passed_over():
    for seed in range(3):
        t, spot, ring, raw, keys = _press_with_snap(seed)
        timing, reason = detect_press(t, spot, ring, baseline_count(t), raw, key_frames=keys)
        assert reason is None, (seed, reason)
        assert abs(timing.release_s - RELEASE_S) < 0.1, (seed, timing.release_s)


def test_a_release_at_a_key_frame_is_still_the_release():
    # An encoder puts a key frame where the picture changes most (the hand leaving): the release
    # itself is often one. It goes back towards the pre-press look, so it is not a snap.
    for seed in range(3):
        t, spot, ring, raw, keys = _press_with_snap(seed, release_at_key=True)
        timing, reason = detect_press(t, spot, ring, baseline_count(t), raw, key_frames=keys)
        assert reason is None, (seed, reason)
        assert abs(timing.release_s - RELEASE_S) < 0.1, (seed, timing.release_s)


def test_decoder_reports_the_key_frames(tmp_path):
    ind = load_benchmark("crt_independent")
    case = ind.draw_case(np.random.default_rng([9696000, 31]), 31)
    path = tmp_path / "knee.mp4"
    truth = ind.render(case, path)
    video = decode_video(path, VideoLimits())
    assert video.key is not None and video.key[0]
    # x264's default: a key frame every 250 frames unless the picture cuts.
    assert 2 <= int(video.key.sum()) <= len(video.t_s) // 100 + 4
    # Independent renderer, development set 9696000, video 31 (knee, Monk 4, CRF 27, 30 fps): a
    # key frame 0.6 s before the release; the release was read there (-0.62 s, CRT +15 %).
    r = measure_crt(path, "knee", roi=tuple(truth["roi"]))
    assert r.status == "ok", r.reason
    assert abs(r.release_s - truth["release_s"]) < 0.15, (r.release_s, truth["release_s"])
    assert abs(r.crt_s / truth["crt_s"] - 1) < 0.1, (r.crt_s, truth["crt_s"])
