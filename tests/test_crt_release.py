"""Release detection on a long press whose spot colour swings back towards baseline mid-press.

The README demo's knee video failed this way: the camera wandered over the edge of the examiner's
fingertip for several seconds, the spot's colour moved most of the way back to its baseline and
then returned to the plateau, and that excursion was taken for the release (8 s early). The ring
around the spot stays covered throughout, and clears only when the fingertip really lifts.
"""

from __future__ import annotations

import numpy as np

from mottling.crt.timing import detect_press
from mottling.crt.roi import baseline_count

FPS = 30.0
PRESS_S, RELEASE_S, END_S = 2.0, 13.1, 18.0


def _signals(seed: int, excursion: bool):
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, END_S, 1 / FPS)
    pressed = (t >= PRESS_S) & (t < RELEASE_S)
    level = np.where(pressed, 1.0, 0.0)
    if excursion:
        # 4 s mid-press: the spot reads most of the way back to baseline, then the plateau again.
        dip = np.clip(np.minimum((t - 4.0) / 0.4, (8.5 - t) / 0.4), 0.0, 1.0)
        level = level - 0.75 * dip * pressed
    after = np.where(t >= RELEASE_S, 0.3 * np.exp(-(t - RELEASE_S) / 0.9), 0.0)
    spot = (level + after)[:, None] * np.array([0.27, 0.33, 0.39])
    raw = (level + after)[:, None] * np.array([0.85, 1.2, 1.35])
    ring = pressed[:, None] * np.array([-0.19, 0.12, 0.19, 0.75])
    noise = lambda shape: rng.normal(0.0, 0.003, shape)  # noqa: E731
    return t, spot + noise(spot.shape), ring + noise(ring.shape), raw + noise(raw.shape)


def test_release_is_where_the_covered_ring_clears_not_a_mid_press_excursion():
    for seed in range(3):
        t, spot, ring, raw = _signals(seed, excursion=True)
        timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
        assert reason is None, reason
        assert abs(timing.release_s - RELEASE_S) < 0.15, (seed, timing.release_s)
        assert abs(t[timing.press_idx] - PRESS_S) < 0.15


def test_plain_press_release_still_found():
    t, spot, ring, raw = _signals(7, excursion=False)
    timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
    assert reason is None, reason
    assert abs(timing.release_s - RELEASE_S) < 0.15, timing.release_s


def _faint_signals(seed: int, ends: bool):
    """A noisy plateau under a fingertip of the skin's own tone: the spot steps back by less
    than the plateau's swings, while the ring the fingertip covers clears at the lift."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, END_S, 1 / FPS)
    release = RELEASE_S if ends else END_S + 1.0
    pressed = (t >= PRESS_S) & (t < release)
    swing = 0.06 * np.sin(2 * np.pi * 0.7 * t + seed) + rng.normal(0.0, 0.03, len(t))
    level = np.where(pressed, 0.1 + swing, 0.0)
    after = np.where(t >= release, 0.06 * np.exp(-(t - release) / 1.5), 0.0)
    spot = (level + after)[:, None] * np.array([0.8, 1.0, 1.1])
    ring = pressed[:, None] * np.array([-0.05, 0.03, 0.05, 0.2])
    noise = lambda shape: rng.normal(0.0, 0.003, shape)  # noqa: E731
    return t, spot + noise(spot.shape), ring + noise(ring.shape), spot + noise(spot.shape)


def test_release_read_from_the_ring_when_the_spot_barely_steps():
    for seed in range(3):
        t, spot, ring, raw = _faint_signals(seed, ends=True)
        timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
        assert reason is None, (seed, reason)
        assert abs(timing.release_s - RELEASE_S) < 0.15, (seed, timing.release_s)


def test_a_press_that_never_ends_still_has_no_release():
    t, spot, ring, raw = _faint_signals(11, ends=False)
    timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
    assert timing is None and reason.startswith("no release"), reason
