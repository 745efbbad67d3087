"""Press and release timing where the spot's own colour misleads and the ring does not.

Three failures seen on generated videos (docs/crt.md, "This round (s19-fit)"):

- a slide that covers the ring as well as the spot moves the spot *against the ring* by less than
  its noise floor, so the press was taken from the refill's own step after the lift and the
  release was found 0.9 s late (or not at all); the ring, held far off its baseline for seconds,
  says when the press began;
- a spot that drifts back towards its baseline before the lift (the hand easing off) made the
  release search step back through the whole drift, and the ring's lift was then looked for only
  1 s after that early frame, so the release came out more than a second early;
- a covered ring that eases off its level before the lift crossed 80% of the plateau's level a
  second early, and the lift's start was extrapolated from there.
"""

from __future__ import annotations

import numpy as np

from mottling.crt.roi import baseline_count
from mottling.crt.timing import detect_press

FPS = 60.0
PRESS_S, RELEASE_S, END_S = 2.0, 13.1, 18.0


def _ring(t: np.ndarray, pressed: np.ndarray) -> np.ndarray:
    return pressed[:, None] * np.array([-0.19, 0.12, 0.19, 0.75])


def _noisy(rng: np.random.Generator, t: np.ndarray, spot: np.ndarray, ring: np.ndarray,
           raw: np.ndarray):
    """The series as ``detect_press`` takes them, each with its own frame noise (drawn in this
    order: spot, ring, raw)."""
    return tuple([t] + [x + rng.normal(0.0, 0.003, x.shape) for x in (spot, ring, raw)])


def _slide_over_ring(seed: int):
    """The spot against the ring barely moves under the slide (0.025 in green); the refill after
    the lift moves it by more (the slide's glare leaves with it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, END_S, 1 / FPS)
    pressed = (t >= PRESS_S) & (t < RELEASE_S)
    after = np.where(t >= RELEASE_S, np.exp(-(t - RELEASE_S) / 0.9), 0.0)
    spot = (0.025 * pressed + 0.09 * after)[:, None] * np.array([0.1, 1.0, 0.4])
    raw = (0.45 * pressed + 0.09 * after)[:, None] * np.array([0.7, 1.0, 1.1])
    return _noisy(rng, t, spot, _ring(t, pressed), raw)


def _drift_before_lift(seed: int):
    """The spot eases back a quarter of the way to baseline over the 1.2 s before the lift while
    the ring stays covered until the lift itself."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, END_S, 1 / FPS)
    pressed = (t >= PRESS_S) & (t < RELEASE_S)
    ease = np.clip((t - (RELEASE_S - 1.2)) / 1.2, 0.0, 1.0)
    level = np.where(pressed, 1.0 - 0.35 * ease, 0.0)
    after = np.where(t >= RELEASE_S, 0.3 * np.exp(-(t - RELEASE_S) / 0.9), 0.0)
    spot = (level + after)[:, None] * np.array([0.27, 0.33, 0.39])
    raw = (level + after)[:, None] * np.array([0.85, 1.2, 1.35])
    return _noisy(rng, t, spot, _ring(t, pressed), raw)


def test_press_read_from_the_covered_ring_when_the_spot_barely_moves_against_it():
    for seed in range(3):
        t, spot, ring, raw = _slide_over_ring(seed)
        timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
        assert reason is None, (seed, reason)
        assert abs(t[timing.press_idx] - PRESS_S) < 0.3, (seed, t[timing.press_idx])
        assert abs(timing.release_s - RELEASE_S) < 0.15, (seed, timing.release_s)


def test_release_not_stepped_back_through_a_drift_before_the_lift():
    for seed in range(3):
        t, spot, ring, raw = _drift_before_lift(seed)
        timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
        assert reason is None, (seed, reason)
        assert abs(timing.release_s - RELEASE_S) < 0.15, (seed, timing.release_s)


def _ring_eases_before_lift(seed: int):
    """The covered ring eases off by 40% of its level over the 1.5 s before the lift (the
    fingertip's pressure easing), then falls steeply when the fingertip lifts."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, END_S, 1 / FPS)
    pressed = (t >= PRESS_S) & (t < RELEASE_S)
    ease = 1.0 - 0.4 * np.clip((t - (RELEASE_S - 1.5)) / 1.5, 0.0, 1.0)
    ring = (pressed * ease)[:, None] * np.array([-0.19, 0.12, 0.19, 0.75])
    after = np.where(t >= RELEASE_S, 0.3 * np.exp(-(t - RELEASE_S) / 0.9), 0.0)
    level = np.where(pressed, 1.0 - 0.2 * (1.0 - ease), 0.0) + after
    spot = level[:, None] * np.array([0.27, 0.33, 0.39])
    raw = level[:, None] * np.array([0.85, 1.2, 1.35])
    return _noisy(rng, t, spot, ring, raw)


def test_release_at_the_rings_steep_fall_not_where_it_began_to_ease():
    for seed in range(3):
        t, spot, ring, raw = _ring_eases_before_lift(seed)
        timing, reason = detect_press(t, spot, ring, baseline_count(t), raw)
        assert reason is None, (seed, reason)
        assert abs(timing.release_s - RELEASE_S) < 0.15, (seed, timing.release_s)
