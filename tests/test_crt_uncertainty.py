"""The refill time's interval is honest, and it (not R2) decides whether a fit is refused.

Phone video does not give white residuals: the encoder holds a slowly changing block and then
refreshes it (steps), the camera track wobbles over the skin texture. A fit that treats such
residuals as independent reports a false 2% interval. And a faint but clean recovery explains
little of the variance (low R2) while still giving a usable number.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mottling.crt.gates import DEFAULT_GATES, fit_quality
from mottling.crt.refill import fit_recovery

FPS = 30.0
TAU = 1.2
CRT = TAU * math.log(10)


def _held_noise(rng: np.random.Generator, n: int, sd: float, hold: int) -> np.ndarray:
    """Noise that stays put for ``hold`` frames at a time (an encoder's skipped blocks)."""
    steps = rng.normal(0.0, sd, n // hold + 1)
    return np.repeat(steps, hold)[:n]


def _signal(seed: int, held: bool):
    rng = np.random.default_rng(seed)
    t = np.arange(0.3, 2.5 * CRT, 1 / FPS)
    noise = _held_noise(rng, len(t), 0.01, 12) if held else rng.normal(0.0, 0.01, len(t))
    return t, 0.12 * np.exp(-t / TAU) + noise


def test_held_steps_widen_the_interval_and_it_still_covers_the_truth():
    covered, width_held, width_white = 0, [], []
    for seed in range(20):
        fit = fit_recovery(*_signal(seed, held=True))
        lo, hi = fit.crt_ci95
        covered += lo <= CRT <= hi
        width_held.append((hi - lo) / fit.crt_s)
        white = fit_recovery(*_signal(seed, held=False))
        width_white.append((white.crt_ci95[1] - white.crt_ci95[0]) / white.crt_s)
    # A 95% interval should hold the truth nearly always; treating the steps as 12x more
    # independent points than they are covered it in about half the cases.
    assert covered >= 17, covered
    assert np.median(width_held) > 2.0 * np.median(width_white)


def test_faint_clean_recovery_is_measured_despite_a_low_r2():
    rng = np.random.default_rng(3)
    t = np.arange(0.3, 2.5 * CRT, 1 / FPS)
    sd = 0.004
    y = 6.5 * sd * np.exp(-t / TAU) + rng.normal(0.0, sd, len(t))
    fit = fit_recovery(t, y)
    assert fit.r2 < 0.8            # the old gate refused this
    assert fit_quality(fit, snr=6.5, t_end_s=float(t[-1]), gates=DEFAULT_GATES) is None
    assert fit.crt_s == pytest.approx(CRT, rel=0.15)
    assert fit.crt_ci95[0] < CRT < fit.crt_ci95[1]


def test_a_fit_that_follows_steps_is_refused_for_its_uncertainty():
    rng = np.random.default_rng(5)
    t = np.arange(0.3, 2.5 * CRT, 1 / FPS)
    # A tiny recovery drowned in steps far larger than it.
    y = 0.01 * np.exp(-t / TAU) + _held_noise(rng, len(t), 0.02, 15)
    fit = fit_recovery(t, y)
    reason = fit_quality(fit, snr=6.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES)
    # Steps this large can also turn the fitted amplitude upside down, which the sign gate
    # names first ("no blanching"); either way the number is refused.
    assert reason is not None and reason.split(":")[0] in ("poor fit", "no blanching")
    # The interval alone refuses it, whatever the sign.
    assert fit_quality(fit, snr=6.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES,
                       blanch_sign=float(np.sign(fit.amplitude))).startswith("poor fit")
