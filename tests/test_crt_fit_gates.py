"""Fit-quality gates that depend on what a blanching looks like, not only on how well a curve fits."""

from __future__ import annotations

import math

import numpy as np

from mottling.crt.gates import DEFAULT_GATES, fit_quality, reason_category
from mottling.crt.refill import fit_recovery

TAU = 1.0
CRT = TAU * math.log(10)


def _recovery(amplitude: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(0.3, 2.5 * CRT, 1 / 30)
    return t, amplitude * np.exp(-t / TAU) + rng.normal(0.0, 0.004, len(t))


def test_a_spot_that_comes_back_from_darker_is_not_a_refill():
    # The green signal rises when blood is pressed out; a spot that starts darker than its
    # baseline and returns (a shadow, the track off the spot) fits the same curve, upside down.
    t, y = _recovery(-0.1)
    fit = fit_recovery(t, y)
    assert fit is not None and fit.amplitude < 0
    reason = fit_quality(fit, snr=25.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES)
    assert reason_category(reason) == "no blanching"


def test_a_signal_that_falls_on_blanching_keeps_its_refill():
    # a* falls when the spot blanches: there a negative amplitude is the blanching.
    t, y = _recovery(-0.1)
    fit = fit_recovery(t, y)
    assert fit_quality(fit, snr=25.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES,
                       blanch_sign=-1.0) is None
    t, y = _recovery(0.1)
    assert fit_quality(fit_recovery(t, y), snr=25.0, t_end_s=float(t[-1]),
                       gates=DEFAULT_GATES) is None
