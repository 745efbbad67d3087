"""Fit-quality gates that depend on what a blanching looks like, not only on how well a curve fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

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


def test_a_switched_light_changes_the_whole_picture_alike():
    from mottling.crt.gates import light_is_global

    # Ring, far field and whole frame, log-brightness after the refill against before the press
    # (values as measured on generated videos: a light switched off; a camera turned away).
    assert light_is_global((-0.389, -0.381, -0.387))
    assert not light_is_global((-0.592, -0.428, -0.464))
    assert not light_is_global((1.692, 1.732, 0.162))
    assert not light_is_global((-0.4, float("nan"), -0.39))   # far field out of the picture


def test_motion_gate_can_judge_the_spot_leaving_and_the_track_apart():
    from types import SimpleNamespace

    from mottling.crt.gates import camera_motion

    n = 10
    shifts = np.zeros((n, 2))
    shifts[5:, 1] = 200.0                        # the spot slides out of a 100 px wide frame
    lost = SimpleNamespace(shifts=np.zeros((n, 2)), mismatch=np.full(n, 9.0),
                           displacement=lambda idx: 0.0)
    left = SimpleNamespace(shifts=shifts, mismatch=np.ones(n), displacement=lambda idx: 200.0)
    idx = np.arange(n)
    box, shape = (40, 40, 10, 10), (100, 100)
    assert camera_motion(left, idx, box, shape, 1.0, DEFAULT_GATES, check="left") is not None
    assert camera_motion(lost, idx, box, shape, 1.0, DEFAULT_GATES, check="left") is None
    assert camera_motion(lost, idx, box, shape, 1.0, DEFAULT_GATES, check="lost") is not None
    assert camera_motion(left, idx, box, shape, 1.0, DEFAULT_GATES, check="lost") is None


def test_too_short_only_while_the_colour_is_still_away_from_its_baseline():
    from mottling.crt.gates import fit_quality

    # A slow recovery cut off early: the colour at the end is still far from the baseline.
    t = np.arange(0.3, 3.0, 1 / 30)
    rng = np.random.default_rng(1)
    y = 0.1 * np.exp(-t / 3.0) + rng.normal(0.0, 0.002, len(t))
    fit = fit_recovery(t, y)
    end_share = float(np.median(y[t >= t[-1] - 0.5])) / fit.amplitude
    reason = fit_quality(fit, snr=25.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES,
                         end_share=end_share)
    assert reason_category(reason) == "too short"
    # The colour is back before the end, but a curve puts the 90% point past it: the fit is wrong
    # (a faint, drifting recovery), not the recording.
    reason = fit_quality(fit, snr=25.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES, end_share=0.08)
    assert reason_category(reason) == "poor fit"


def _analyse_series(monkeypatch, light_after_s: float, turned_away: bool):
    """``measure.analyse`` on a made-up track and colour series: a clean refill after a release
    at 4 s, then from ``light_after_s`` the track loses every frame and the light changes, alike
    everywhere (a switched light) or differently in the ring, far field and frame (a camera turned
    away)."""
    from mottling.crt import measure as m
    from mottling.crt.motion import CameraTrack
    from mottling.crt.signal import SpotSeries
    from mottling.crt.timing import PressTiming
    from mottling.crt.video import DecodedVideo
    from mottling.scale import DEFAULT_THRESHOLDS

    t = np.arange(0.0, 9.0, 1 / 30)
    n = len(t)
    after = t >= light_after_s
    skin = np.array([180.0, 120.0, 100.0])
    s = np.where(t < 4.0, np.where(t > 1.5, 1.0, 0.0), np.exp(-(t - 4.0) / 0.8))
    roi = skin[None, :] * (1 + 0.15 * s[:, None])
    ring = np.repeat(skin[None, :], n, axis=0)
    far = np.repeat(skin[None, :] * 0.9, n, axis=0)
    luma = np.full(n, 110.0)
    gain = np.where(after, 0.6, 1.0)
    roi, ring, far, luma = roi * gain[:, None], ring * gain[:, None], far * gain[:, None], luma * gain
    if turned_away:
        far = far * np.where(after, 1.5, 1.0)[:, None]
    series = SpotSeries(roi_rgb=roi, ring_rgb=ring, far_rgb=far, roi_sat=np.zeros((n, 3)),
                        frame_luma=luma)
    track = CameraTrack(shifts=np.zeros((n, 2)), mismatch=np.where(after, 9.0, 1.0))
    timing = PressTiming(press_idx=45, release_idx=120, clear_idx=126, release_s=4.0)
    monkeypatch.setattr(m, "track_camera", lambda *a, **k: track)
    monkeypatch.setattr(m, "spot_series", lambda *a, **k: series)
    monkeypatch.setattr(m, "detect_press", lambda *a, **k: (timing, None))
    video = DecodedVideo(yuv=np.broadcast_to(np.zeros((1, 1, 1, 1), np.uint8), (n, 60, 80, 3)),
                         t_s=t, width=80, height=60, rotation=0, scale=1.0, codec="h264")
    return m.analyse(video, "finger", (30, 20, 10, 10), None, DEFAULT_THRESHOLDS, DEFAULT_GATES,
                     "green")


def test_a_switched_light_is_named_lighting_though_it_also_breaks_the_track(monkeypatch):
    res = _analyse_series(monkeypatch, light_after_s=5.5, turned_away=False)
    assert res.reason_category == "lighting", res.reason
    res = _analyse_series(monkeypatch, light_after_s=5.5, turned_away=True)
    assert res.reason_category == "motion", res.reason
    # Without either fault the made-up refill is measured (the series itself is sound).
    res = _analyse_series(monkeypatch, light_after_s=99.0, turned_away=False)
    assert res.status == "ok", res.reason


def test_a_faint_or_unsteady_refill_says_what_to_do_about_it():
    # Refusals for a faint colour change or an uncertain time end with what to record instead
    # (on the own generator most come back when the same frames are encoded losslessly); a
    # recording cut short says so, without that advice.
    t, y = _recovery(0.1)
    fit = fit_recovery(t, y)
    faint = fit_quality(fit, snr=2.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES)
    assert reason_category(faint) == "no blanching" and "original video" in faint
    noisy = fit_recovery(t, 0.1 * np.exp(-t / TAU)
                         + np.random.default_rng(1).normal(0.0, 0.08, len(t)))
    unsure = fit_quality(noisy, snr=25.0, t_end_s=float(t[-1]), gates=DEFAULT_GATES)
    assert reason_category(unsure) == "poor fit" and "original video" in unsure
    short = fit_quality(fit, snr=25.0, t_end_s=0.5 * CRT, gates=DEFAULT_GATES)
    assert reason_category(short) == "too short" and "original video" not in short


def test_noise_is_judged_as_a_30_fps_video_shows_it():
    """The blanching is compared with the baseline's noise over 1/30 s means: a 240 fps video's
    per-frame noise is sqrt(8) times what its curve, fitted to every frame, is up against; at
    30 fps the two are the same."""
    from mottling.crt.measure import NOISE_BIN_S, _binned_sd

    rng = np.random.default_rng(4)
    for fps, ratio in ((240, math.sqrt(8)), (30, 1.0)):
        t = np.arange(0, 20, 1 / fps)
        y = rng.normal(0, 1, len(t))
        idx = np.arange(len(t))
        assert np.std(y) / _binned_sd(y, t, idx, NOISE_BIN_S) == pytest.approx(ratio, rel=0.08)
    # A drift is not averaged away: slow noise counts in full at any frame rate.
    t = np.arange(0, 20, 1 / 240)
    slow = np.sin(2 * np.pi * 0.5 * t)
    assert _binned_sd(slow, t, np.arange(len(t)), NOISE_BIN_S) == pytest.approx(np.std(slow),
                                                                                 rel=0.01)
