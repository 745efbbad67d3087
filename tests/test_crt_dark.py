"""Issue 11, dark skin (round s20-dark): with ``QualityGates.decide_by_threshold`` (off by default)
an uncertain CRT whose whole reported 95% interval lies on one side of the site's threshold answers
the clinical question and is reported with that interval; one whose interval straddles the
threshold is still refused (docs/crt.md, "This round (s20-dark)"). The interval judged is the
reported one (``refill.reported_interval``), not the fit's own, which is too narrow."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mottling.crt.gates import DEFAULT_GATES, fit_quality, interval_decides
from mottling.crt.refill import LN10, Z95, RefillFit, reported_interval

DECIDE = dataclasses.replace(DEFAULT_GATES, decide_by_threshold=True)


def _wide_fit(crt_s: float, lo: float, hi: float) -> RefillFit:
    tau = crt_s / LN10
    return RefillFit(model="mono", params={"tau_s": tau, "delay_s": 0.0}, amplitude=0.1,
                     tau_s=tau, tau_ci95=(lo / LN10, hi / LN10), crt_s=crt_s, crt_ci95=(lo, hi),
                     residual_sd=0.3, r2=0.2)


def test_interval_decides_only_when_wholly_on_one_side():
    assert interval_decides((0.05, 2.83), 4.0)        # the README demo's knee, true ROI
    assert interval_decides((4.5, 11.0), 3.0)
    assert not interval_decides((0.0, 5.47), 4.0)     # the same video, automatic ROI
    assert not interval_decides((0.0, 2.9), None)
    assert not interval_decides((0.0, float("inf")), 4.0)


def _uncertain_fit(crt_s: float, rel_sd: float) -> RefillFit:
    sd = rel_sd * crt_s
    return _wide_fit(crt_s, max(0.0, crt_s - Z95 * sd), crt_s + Z95 * sd)


def test_fit_quality_reports_an_uncertain_crt_that_answers_the_threshold():
    below = _uncertain_fit(0.6, 0.27)                 # reported interval wholly below 4 s
    assert below.crt_rel_uncertainty > DEFAULT_GATES.max_crt_rel_uncertainty
    assert reported_interval(below.crt_s, below.crt_sd_s)[1] < 4.0
    assert fit_quality(below, snr=30.0, t_end_s=4.5, gates=DECIDE, threshold_s=4.0) is None
    # Without a threshold, or with the rule off (the default), it is refused as before.
    assert fit_quality(below, snr=30.0, t_end_s=4.5, gates=DECIDE).startswith("poor fit")
    assert not DEFAULT_GATES.decide_by_threshold
    assert fit_quality(below, snr=30.0, t_end_s=4.5, gates=DEFAULT_GATES,
                       threshold_s=4.0).startswith("poor fit")
    # Straddling the threshold: refused. So is a fit whose own interval (0.05-2.83 s, the README
    # demo's knee with the true ROI) lies below it while the reported one does not.
    spans = _wide_fit(1.45, 0.0, 5.47)
    assert fit_quality(spans, snr=30.0, t_end_s=4.5, gates=DECIDE,
                       threshold_s=4.0).startswith("poor fit")
    spans = _wide_fit(1.44, 0.05, 2.83)
    assert reported_interval(spans.crt_s, spans.crt_sd_s)[1] > 4.0
    assert fit_quality(spans, snr=30.0, t_end_s=4.5, gates=DECIDE,
                       threshold_s=4.0).startswith("poor fit")
    # The other gates still come first: a faint change is not reported whatever its interval.
    assert fit_quality(below, snr=3.0, t_end_s=4.5, gates=DECIDE,
                       threshold_s=4.0).startswith("no blanching")


def _analyse(monkeypatch, fit: RefillFit, site: str = "finger", gates=DECIDE):
    """``measure.analyse`` on a made-up clean series with the fit replaced by ``fit``."""
    from mottling.crt import measure as m
    from mottling.crt.motion import CameraTrack
    from mottling.crt.signal import SpotSeries
    from mottling.crt.timing import PressTiming
    from mottling.crt.video import DecodedVideo
    from mottling.scale import DEFAULT_THRESHOLDS

    t = np.arange(0.0, 30.0, 1 / 30)   # long enough for a 15 s refill
    n = len(t)
    skin = np.array([80.0, 47.0, 39.0])
    s = np.where(t < 4.0, np.where(t > 1.5, 1.0, 0.0), np.exp(-(t - 4.0) / 0.8))
    roi = skin[None, :] * (1 + 0.1 * s[:, None])
    ring = np.repeat(skin[None, :], n, axis=0)
    series = SpotSeries(roi_rgb=roi, ring_rgb=ring, far_rgb=ring * 0.9,
                        roi_sat=np.zeros((n, 3)), frame_luma=np.full(n, 60.0))
    track = CameraTrack(shifts=np.zeros((n, 2)), mismatch=np.ones(n))
    timing = PressTiming(press_idx=45, release_idx=120, clear_idx=126, release_s=4.0)
    monkeypatch.setattr(m, "track_camera", lambda *a, **k: track)
    monkeypatch.setattr(m, "spot_series", lambda *a, **k: series)
    monkeypatch.setattr(m, "detect_press", lambda *a, **k: (timing, None))
    monkeypatch.setattr(m, "fit_recovery", lambda *a, **k: fit)
    video = DecodedVideo(yuv=np.broadcast_to(np.zeros((1, 1, 1, 1), np.uint8), (n, 60, 80, 3)),
                         t_s=t, width=80, height=60, rotation=0, scale=1.0, codec="h264")
    return m.analyse(video, site, (30, 20, 10, 10), None, DEFAULT_THRESHOLDS, gates, "green")


@pytest.mark.parametrize("crt, prolonged", [(0.45, False), (15.0, True)])
def test_measure_reports_the_interval_when_it_answers_the_threshold(monkeypatch, crt, prolonged):
    fit = _uncertain_fit(crt, 0.27)                              # finger: threshold 3 s
    res = _analyse(monkeypatch, fit)
    assert res.status == "ok", res.reason
    lo, hi = res.crt_ci95
    assert (lo, hi) == pytest.approx(reported_interval(crt, fit.crt_sd_s))
    assert hi < 3.0 or lo > 3.0
    assert res.prolonged is prolonged
    assert math.isclose(res.crt_s, crt)
    # The default gates refuse it, as before this round.
    res = _analyse(monkeypatch, fit, gates=DEFAULT_GATES)
    assert res.status == "rejected" and res.reason_category == "poor fit"


def test_measure_still_refuses_an_interval_across_the_threshold(monkeypatch):
    res = _analyse(monkeypatch, _wide_fit(2.0, 0.2, 3.8))
    assert res.status == "rejected"
    assert res.reason_category == "poor fit"
