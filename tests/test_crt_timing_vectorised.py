"""The block-wise release scan in ``timing.py`` gives bit for bit what the frame-by-frame loop gives.

``_scan_release`` (candidate frames in blocks, plateau medians from sorted windows) replaced the
per-frame loop ``_scan_release_frames`` for speed, and ``_sustained`` a per-frame count; both old
forms stay as references. Checked on many synthetic series: frame rates 30 to 240, jittered frame
times, quantised values (ties and even-length windows), mid-press excursions, presses that never
end; per candidate window, per scan, and through ``detect_press`` as a whole.
"""

from __future__ import annotations

import numpy as np
import pytest

from mottling.crt import timing as tm
from mottling.crt.roi import baseline_count


def _series(seed: int):
    rng = np.random.default_rng(seed)
    fps = float(rng.choice([30.0, 30.0, 60.0, 120.0, 240.0]))
    end = rng.uniform(7.0, 11.0) if fps < 200 else rng.uniform(6.0, 7.5)
    dt = np.full(int(end * fps), 1 / fps)
    if rng.random() < 0.4:  # variable frame timing
        dt *= rng.uniform(0.6, 1.4, len(dt))
    t = np.cumsum(dt) - dt[0]
    press, release = rng.uniform(1.0, 2.0), rng.uniform(4.0, end - 1.0)
    if rng.random() < 0.15:
        release = end + 1.0  # a press that never ends
    pressed = (t >= press) & (t < release)
    level = np.where(pressed, rng.uniform(0.05, 1.0), 0.0)
    if rng.random() < 0.4:  # the camera wanders over the occluder's edge mid-press
        a, b = press + 1.6, press + 1.6 + rng.uniform(0.3, 1.5)
        level = level - rng.uniform(0.2, 0.9) * level * ((t > a) & (t < b))
    tau = rng.uniform(0.3, 2.0)
    after = np.where(t >= release, 0.3 * np.exp(-(t - release) / tau), 0.0)
    noise = rng.uniform(0.001, 0.03)
    nz = lambda shape: rng.normal(0.0, noise, shape)  # noqa: E731
    spot = (level + after)[:, None] * rng.uniform(0.2, 1.2, 3) + nz((len(t), 3))
    raw = (level + after)[:, None] * rng.uniform(0.5, 1.5, 3) + nz((len(t), 3))
    covered = rng.random() < 0.6
    ring = (pressed * covered)[:, None] * rng.uniform(-0.8, 0.8, 4) + nz((len(t), 4)) / 3
    if rng.random() < 0.4:  # coarse values: many ties in the medians
        q = rng.choice([1e-3, 4e-3])
        # (+ 0.0 turns -0.0 into 0.0, which the block scan would send the slow way)
        spot, raw, ring = (np.round(x / q) * q + 0.0 for x in (spot, raw, ring))
    return t, spot, ring, raw


SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_window_statistics_equal_the_per_frame_departure(seed):
    t, spot, ring, raw = _series(seed)
    n, n_base = len(t), baseline_count(t)
    fps = (n - 1) / (t[-1] - t[0])
    k = int(np.clip(round(0.1 * fps), 1, 31)) | 1
    w0, w1 = int(0.25 * n), int(0.35 * n)
    run = max(3, int(round(0.15 * fps)))
    idx = np.arange(w1, n - run)
    lo, hi = tm._plateau_windows(t, w0, idx)
    for feature in (raw, spot):
        f = tm._ReleaseFeature(feature, k, n_base, w0, w1)
        ref, thr, sign = f.window_stats(lo, hi)
        got = f.departures(idx, run, ref, thr, sign)
        want = np.array([f.departure(int(i), run, int(a), int(b))
                         for i, a, b in zip(idx, lo, hi)])
        assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", SEEDS)
def test_block_scan_equals_frame_by_frame_scan(seed):
    t, spot, ring, raw = _series(seed)
    n, n_base = len(t), baseline_count(t)
    fps = (n - 1) / (t[-1] - t[0])
    k = int(np.clip(round(0.1 * fps), 1, 31)) | 1
    rng = np.random.default_rng(1000 + seed)
    w0 = int(rng.uniform(0.15, 0.3) * n)
    w1 = w0 + int(rng.integers(3, 40))
    feats = [tm._ReleaseFeature(f, k, n_base, w0, w1) for f in (raw, spot)]
    run = max(3, int(round(0.15 * fps)))
    run_alone = max(run + 1, int(round(1.0 * fps)))
    # The ring's verdict is an arbitrary pattern here, so a candidate it refuses is skipped.
    clears = rng.random(n) < rng.choice([0.05, 0.5, 1.0])
    asked_block, asked_frames = [], []

    def ring_clears(i, asked):
        asked.append(i)
        return bool(clears[i])

    got = tm._scan_release(t, feats, w0, w1, run, run_alone, lambda i: ring_clears(i, asked_block))
    want = tm._scan_release_frames(t, feats, w0, w1, run, run_alone,
                                   lambda i: ring_clears(i, asked_frames))
    assert got == want
    assert asked_block == asked_frames


@pytest.mark.parametrize("seed", SEEDS)
def test_detect_press_unchanged(seed, monkeypatch):
    t, spot, ring, raw = _series(seed)
    n_base = baseline_count(t)
    got = tm.detect_press(t, spot, ring, n_base, raw)
    monkeypatch.setattr(tm, "_scan_release", tm._scan_release_frames)
    monkeypatch.setattr(tm, "_sustained", tm._sustained_frames)
    want = tm.detect_press(t, spot, ring, n_base, raw)
    assert got == want


def test_sustained_equals_the_frame_count():
    rng = np.random.default_rng(5)
    for _ in range(2000):
        n = int(rng.integers(0, 40))
        mask = rng.random(n) < rng.uniform(0.2, 0.95)
        start, run = int(rng.integers(0, n + 3)), int(rng.integers(1, 8))
        assert tm._sustained(mask, start, run) == tm._sustained_frames(mask, start, run)


def test_running_median_equals_scipy_median_filter():
    from scipy import ndimage

    rng = np.random.default_rng(9)
    for _ in range(200):
        n, k = int(rng.integers(1, 80)), int(rng.integers(0, 16)) * 2 + 1
        x = rng.normal(size=(n, 3))
        if rng.random() < 0.5:
            x = np.round(x, 1)  # ties
        want = ndimage.median_filter(x, size=(k, 1), mode="nearest")
        assert tm._running_median(x, k).tobytes() == want.tobytes()


def test_negative_zero_takes_the_frame_by_frame_way():
    t, spot, ring, raw = _series(3)
    raw = raw.copy()
    raw[:40] = -0.0
    got = tm.detect_press(t, spot, ring, baseline_count(t), raw)
    mp = pytest.MonkeyPatch()
    mp.setattr(tm, "_scan_release", tm._scan_release_frames)
    try:
        want = tm.detect_press(t, spot, ring, baseline_count(t), raw)
    finally:
        mp.undo()
    assert got == want
