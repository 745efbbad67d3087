"""Automatic ROI: it lands on the pressed spot, not on a finger's edge or the background.

Two clean videos from the benchmark generator's development seed (777000, never the benchmark's
910000): dark fingers under a glass slide, where the blanching after the lift is a few percent and
the edge of the finger against a bright sheet, misaligned by a fraction of a pixel, used to
outshine it (the old ROI landed 0.9 and 1.4 spot radii away). Both fail on the code before the
recovery map was read in each pixel's own noise and the spot found with a disc matched filter.
"""

from __future__ import annotations

import numpy as np
import pytest

from mottling.crt.motion import track_camera
from mottling.crt.roi import auto_roi, baseline_count
from mottling.crt.video import VideoLimits, decode_video
from mottling.synth.videos import render_refill_video
from mottling.synth.refill_spec import sample_spec
from tests.bench_support import load_benchmark


def _true_spot(truth: dict) -> tuple[float, float, float]:
    """Spot centre (x, y) and radius in source pixels (the generator's ROI sits inside 0.8 r less
    the shake and a pixel and a half; benchmarks/crt_accuracy.py reads it the same way)."""
    x, y, w, h = truth["roi"]
    shake = truth["spec"]["shake_px"] if isinstance(truth["spec"], dict) else 0.0
    radius = (w / 2 * np.sqrt(2) + np.ceil(shake) + 1.5) / 0.8
    return x + w / 2, y + h / 2, radius


@pytest.mark.parametrize("index", [24, 58])
def test_auto_roi_lands_on_faint_spot_on_dark_finger(tmp_path, index):
    spec = sample_spec(np.random.default_rng([777000, index]), index, "both", 0.15)
    assert spec.site == "finger" and spec.skin_tone >= 7 and spec.broken is None
    path = tmp_path / f"dark_finger_{index}.mp4"
    truth = render_refill_video(path, spec)
    video = decode_video(path, VideoLimits())
    n_base = baseline_count(video.t_s)
    track = track_camera(video.yuv[..., 0], video.t_s, n_base)
    roi = auto_roi(video.yuv, video.matrix, video.t_s, track.shifts, n_base)
    assert roi is not None
    sx, sy, r = _true_spot({**truth, "spec": {"shake_px": spec.shake_px}})
    x, y, w, h = (v / video.scale for v in roi)
    dist = float(np.hypot(x + w / 2 - sx, y + h / 2 - sy))
    assert dist <= 0.5 * r, f"ROI centre {dist / r:.2f} spot radii from the spot"
    # The ROI is sized from the spot found: inside the blanched patch, not a speck.
    assert 0.3 * r <= w <= 1.6 * r


def _dark_frame_knee(seed: int, post_release_s: float, lift_s: float,
                     dark_after_release_s: float):
    """A 30 fps knee video, Monk 4, a 3 s press released at 4.0 s, one frame dark
    ``dark_after_release_s`` after the release."""
    from mottling.synth.refill_curves import curve_for_crt
    from mottling.synth.videos import RefillSpec

    curve = curve_for_crt("mono", 2.5, np.random.default_rng(seed))
    return RefillSpec(seed=seed, site="knee", skin_tone=4, examiner_tone=4, width=320,
                      height=240, fps_nominal=30, pre_press_s=1.0, press_duration_s=3.0,
                      post_release_s=post_release_s, curve=curve, lift_s=lift_s,
                      blanch_contrast=0.8, noise_sigma=1.0, exposure_drift=0.01,
                      pulse_amp=0.004, shake_px=1.0, crf=20, broken="dark_frame",
                      broken_at_s=4.0 + dark_after_release_s)


def test_dark_frame_during_the_lift_is_still_rejected_as_dark(tmp_path):
    """Frames that go dark while the hand lifts (between the release and the moment the ring
    clears, which the fit skips) still mean the light or the camera failed. The old gate looked
    only at the fitted frames, so such a video came back ``ok`` when the ROI's ring cleared late
    (an automatic ROI a little larger than the generator's); here a slow lift makes it happen
    with the true ROI too."""
    from mottling.crt import measure_crt

    spec = _dark_frame_knee(60, post_release_s=6.0, lift_s=0.4, dark_after_release_s=0.15)
    path = tmp_path / "dark_in_lift.mp4"
    truth = render_refill_video(path, spec)
    r = measure_crt(path, "knee", roi=tuple(truth["roi"]))
    assert r.status == "rejected" and r.reason_category == "dark", r.reason


def test_no_release_with_automatic_roi_is_named_no_release(tmp_path):
    """A press that never ends (the development seed's video 4: a knee, the examiner's fingertip
    still down when the video stops): no spot recovers, and the old automatic ROI then landed
    on skin that was never pressed, so the timing said ``no press``. Now the ROI goes where the
    press still is and the video is refused for what is wrong with it."""
    from mottling.crt import measure_crt

    spec = sample_spec(np.random.default_rng([777000, 4]), 4, "both", 0.15)
    assert spec.broken == "no_release"
    path = tmp_path / "no_release.mp4"
    render_refill_video(path, spec)
    r = measure_crt(path, spec.site)
    assert r.status == "rejected" and r.reason_category == "no release", r.reason


def test_dark_frame_that_cuts_the_refill_short_is_named_dark(tmp_path):
    """A recording that goes dark just after the release and stops soon after has too few frames
    to fit; the dark frame is the reason (the generator's ``dark_frame`` kind must get ``dark``),
    not the shortness it causes. The old order said "too few frames after release"."""
    from mottling.crt import measure_crt

    spec = _dark_frame_knee(61, post_release_s=0.5, lift_s=0.1, dark_after_release_s=0.3)
    path = tmp_path / "dark_then_short.mp4"
    truth = render_refill_video(path, spec)
    r = measure_crt(path, "knee", roi=tuple(truth["roi"]))
    assert r.status == "rejected" and r.reason_category == "dark", r.reason


@pytest.mark.parametrize("seed, index, kind, want", [
    # a light switched 1.1 s after the lift keeps the spot looking pressed to the end (seed
    # 2468000, looked at after the benchmark: the old code said "no release found")
    (2468000, 12, "light_switched", "lighting"),
    # a dark frame 0.6 s after the lift at 240 fps breaks the press search (seed 1357000; the
    # old code said "no press found")
    (1357000, 88, "dark_frame", "dark"),
])
def test_a_fault_that_breaks_the_timing_is_named_for_itself(tmp_path, seed, index, kind, want):
    """When no press or release can be found, a light change seen alike over the whole picture,
    or a dark frame, is the reason, not the missing release it causes."""
    from mottling.crt import measure_crt

    spec = sample_spec(np.random.default_rng([seed, index]), index, "both", 0.15)
    assert spec.broken == kind
    path = tmp_path / f"{kind}.mp4"
    truth = render_refill_video(path, spec)
    r = measure_crt(path, spec.site, roi=tuple(truth["roi"]))
    assert r.status == "rejected" and r.reason_category == want, r.reason


EARLY_EXIT = pytest.mark.xfail(strict=True, reason=(
    "independent renderer 2 (x264 without the macroblock tree, deterministic): the exit is "
    "found at 6.97 s, 1.65 s before the release, though the ROI lands 0.03 radii from the spot; "
    "the release is then read 1.1 s late and the CRT -22 % (docs/crt.md, 'Session 26 (lead)')"))


_INDEPENDENT_RUNS: dict = {}


def _auto_roi_on_independent(tmp_path_factory, seed, index):
    """Render the independent renderer's case and run the automatic ROI on it, once a session."""
    if (seed, index) in _INDEPENDENT_RUNS:
        return _INDEPENDENT_RUNS[seed, index]
    ind = load_benchmark("crt_independent")
    case = ind.draw_case(np.random.default_rng([seed, index]), index)
    path = tmp_path_factory.mktemp("independent") / "thumb_stays.mp4"
    truth = ind.render(case, path)
    video = decode_video(path, VideoLimits())
    n_base = baseline_count(video.t_s)
    track = track_camera(video.yuv[..., 0], video.t_s, n_base)
    debug: dict = {}
    roi = auto_roi(video.yuv, video.matrix, video.t_s, track.shifts, n_base, debug=debug)
    assert roi is not None
    sx, sy = truth["spot_centre"]
    x, y, w, h = (v / video.scale for v in roi)
    dist = float(np.hypot(x + w / 2 - sx, y + h / 2 - sy))
    _INDEPENDENT_RUNS[seed, index] = truth, debug, dist / truth["spot_radius_px"]
    return _INDEPENDENT_RUNS[seed, index]


@pytest.mark.parametrize("seed, index", [pytest.param(4242000, 4, marks=EARLY_EXIT),
                                         (7070000, 5)])
def test_auto_roi_finds_the_exit_on_the_independent_renderer(tmp_path_factory, seed, index):
    truth, debug, _ = _auto_roi_on_independent(tmp_path_factory, seed, index)
    assert abs(debug["drop_s"] - truth["release_s"]) < 1.0, debug["drop_s"]


@pytest.mark.parametrize("seed, index", [(4242000, 4), (7070000, 5)])
def test_auto_roi_takes_the_exit_whose_spot_recovers(tmp_path_factory, seed, index):
    """The independent renderer's thumb rolls off the spot but stays in the picture, and leaves
    it seconds later: the largest drop of the whole frame's change then comes 7 s after the
    release, when the spot has long recovered, and the old ROI landed on a faint patch 0.75 spot
    radii off (seed 4242000, video 4: a development set, not a fresh one). Now each of the
    largest drops is tried and the one whose spot recovers most clearly (on bare skin) wins.

    Seed 7070000, video 5 (round s20-roi): an auto-exposure ramp with steps (the frame brightens
    by 10% over 7 s and drops back at once, during the press) makes the largest drops of the
    plain change, and the hand's exit was not among the candidates (the ROI landed 6.5 radii
    off, on a speck); the exit candidates now also come from the change with each plane's gain
    and offset fitted per frame divided out."""
    _, _, dist = _auto_roi_on_independent(tmp_path_factory, seed, index)
    assert dist <= 0.5, f"ROI centre {dist:.2f} spot radii from the spot"
