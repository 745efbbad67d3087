"""The refill-video generator: its curves, its determinism, and that each video carries its truth.

The truth checks decode the MP4 with PyAV and read the ROI from the YUV planes with an exact
float BT.601 conversion: PyAV's own ``to_ndarray(format="rgb24")`` goes through swscale's fast
integer path, which moves ROI means by up to ~0.5 level, enough to shift a 90% crossing by
several frames.
"""

from __future__ import annotations

import json
from dataclasses import replace

import av
import numpy as np
import pytest
from click.testing import CliRunner

from mottling.synth.refill_curves import LN10, RefillCurve, curve_for_crt
from mottling.synth.videos import (
    BROKEN_KINDS,
    CRT_RANGE_S,
    RefillSpec,
    RenderedFrames,
    break_spec,
    frame_pts,
    generate_videos,
    parse_keyframes,
    render_refill_video,
    sample_spec,
    spec_from_dict,
)

# BT.601 limited-range YCbCr -> RGB (what libx264 gets from swscale's rgb24 -> yuv420p default).
YUV_TO_RGB = np.array([[1.164383, 0.0, 1.596027],
                       [1.164383, -0.391762, -0.812968],
                       [1.164383, 2.017232, 0.0]])


def read_roi(path, roi):
    """Per decoded frame: time from the container's pts, and the ROI's mean RGB (upright)."""
    x, y, w, h = roi
    times, colours, rotations = [], [], set()
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            planes = frame.to_ndarray()  # yuv420p: (H * 3 / 2, W)
            hh, ww = frame.height, frame.width
            lum = planes[:hh]
            cb = planes[hh:hh + hh // 4].reshape(hh // 2, ww // 2)
            cr = planes[hh + hh // 4:].reshape(hh // 2, ww // 2)
            k = (frame.rotation // 90) % 4
            rotations.add(frame.rotation % 360)
            lum, cb, cr = (np.rot90(p, k=k) for p in (lum, cb, cr))
            yuv = np.array([lum[y:y + h, x:x + w].mean(),
                            cb[y // 2:(y + h) // 2, x // 2:(x + w) // 2].mean(),
                            cr[y // 2:(y + h) // 2, x // 2:(x + w) // 2].mean()])
            colours.append(YUV_TO_RGB @ (yuv - [16.0, 128.0, 128.0]))
            times.append(float(frame.pts * frame.time_base))
    return np.array(times), np.array(colours), rotations


def measured_crt(record, times, colours):
    """90% recovery time read off the video with the true release time.

    s(t) is the ROI colour projected on the blanching direction, scaled between the measured
    baseline (before the press) and the blanched colour. Around the crossing (0.04 < s < 0.25)
    log s is a straight line in time for mono and delayed curves and gently bent for bi, so a
    least-squares quadratic through those frames gives the crossing with the noise of any one
    frame averaged away.
    """
    rest = times < record["press_start_s"] - 0.35
    baseline = colours[rest].mean(axis=0)
    direction = np.array(record["roi_blanched_rgb"]) - np.array(record["roi_baseline_rgb"])
    s = (colours - baseline) @ direction / (direction @ direction)
    release = record["release_s"]
    near = (times > release + 0.4) & (s > 0.04) & (s < 0.25)
    near &= times < times[near][0] + 4 * record["crt_s"]  # the first descent only
    assert near.sum() >= 5
    since = times[near] - release
    poly = np.polyfit(since, np.log(s[near]), 2)
    grid = np.linspace(since.min(), since.max(), 20001)
    return grid[np.argmin(np.abs(np.polyval(poly, grid) - np.log(0.1)))]


def small_spec(**kw) -> RefillSpec:
    base = dict(seed=11, site="finger", skin_tone=3, width=320, height=240, fps_nominal=30,
                pre_press_s=1.0, press_duration_s=1.0, post_release_s=3.0,
                curve=RefillCurve("mono", tau_s=0.8), crf=18)
    base.update(kw)
    return RefillSpec(**base)


# ---------------------------------------------------------------------------- curves

@pytest.mark.parametrize("kind", ["mono", "bi", "delayed"])
def test_curve_for_crt_hits_its_target(kind):
    rng = np.random.default_rng(0)
    for crt in (1.0, 3.3, 8.0):
        curve = curve_for_crt(kind, crt, rng)
        assert curve.crt_s == pytest.approx(crt, abs=1e-6)
        assert float(curve.blanch_fraction(crt)) == pytest.approx(0.1, abs=1e-6)
        assert float(curve.blanch_fraction(0.0)) == pytest.approx(1.0)
        assert curve.equivalent_tau_s == pytest.approx(
            crt / LN10 if kind == "bi" else curve.tau_s)


def test_curve_definitions():
    assert RefillCurve("mono", tau_s=2.0).crt_s == pytest.approx(2.0 * LN10)
    assert RefillCurve("delayed", tau_s=1.0, delay_s=0.5).crt_s == pytest.approx(0.5 + LN10)
    bi = RefillCurve("bi", tau_s=2.0, tau_fast_s=0.5, fast_weight=0.5)
    assert 0.5 * LN10 < bi.crt_s < 2.0 * LN10
    with pytest.raises(ValueError):
        RefillCurve("bi", tau_s=1.0, tau_fast_s=2.0, fast_weight=0.5)


def test_sampled_specs_cover_the_issue_ranges():
    specs = [sample_spec(np.random.default_rng([3, i]), i, "both", 0.2) for i in range(300)]
    for spec in specs:
        lo, hi = CRT_RANGE_S[spec.site]
        if spec.broken != "no_release":
            assert lo - 1e-9 <= spec.curve.crt_s <= hi + 1e-9
        assert 3.0 <= spec.press_duration_s <= 15.0
        assert 18 <= spec.crf <= 28
        assert 0.1 <= spec.lift_s <= 0.4
    assert {s.site for s in specs} == {"finger", "knee"}
    assert {s.fps_nominal for s in specs} == {30, 60, 120, 240}
    assert {s.curve.kind for s in specs} == {"mono", "bi", "delayed"}
    assert any(s.vfr for s in specs) and any(s.rotation for s in specs)
    assert any(s.width < s.height for s in specs) and any(s.width > s.height for s in specs)
    broken = [s.broken for s in specs if s.broken]
    assert set(broken) == set(BROKEN_KINDS)
    assert 0.15 < len(broken) / len(specs) < 0.25
    for spec in specs[:40]:  # the truth file's ``spec`` field rebuilds the very same spec
        assert spec_from_dict(json.loads(json.dumps(_spec_field(spec)))) == spec
    # Darker skin blanches less.
    light = np.mean([s.blanch_contrast for s in specs if s.skin_tone <= 3])
    dark = np.mean([s.blanch_contrast for s in specs if s.skin_tone >= 8])
    assert dark < 0.75 * light


def _spec_field(spec):
    from mottling.synth.videos import _spec_dict

    return _spec_dict(spec)


def test_variable_frame_rate_timestamps_are_jittered_and_dropped():
    spec = small_spec(fps_nominal=60, vfr=True, vfr_jitter=0.3, vfr_drop=0.08,
                      vfr_slow_segment=True)
    steps = np.diff(frame_pts(spec)) / 90000
    assert steps.min() > 0
    assert steps.std() > 0.1 / 60
    assert steps.max() > 1.8 / 60  # a dropped frame leaves a gap
    cfr = np.diff(frame_pts(replace(spec, vfr=False)))
    assert set(cfr.tolist()) == {1500}


# ---------------------------------------------------------------------------- determinism

def test_same_seed_same_bytes(tmp_path):
    spec = small_spec(noise_sigma=2.0, shake_px=2.0, flicker_amp=0.02, exposure_drift=0.03,
                      pulse_amp=0.005, site="knee", press_duration_s=1.0, post_release_s=2.5)
    a = render_refill_video(tmp_path / "a.mp4", spec)
    b = render_refill_video(tmp_path / "b.mp4", spec)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    a.pop("path"), b.pop("path")
    assert a == b
    other = render_refill_video(tmp_path / "c.mp4", replace(spec, seed=12))
    assert (tmp_path / "c.mp4").read_bytes() != (tmp_path / "a.mp4").read_bytes()
    assert other["roi"] != a["roi"] or other["roi_baseline_rgb"] != a["roi_baseline_rgb"]


@pytest.mark.slow
def test_workers_give_identical_output(tmp_path):
    kw = dict(n=2, seed=16, broken_fraction=0.0, site="finger", duration_scale=0.2,
              progress=False)
    one = generate_videos(out_dir=tmp_path / "one", workers=1, **kw)
    two = generate_videos(out_dir=tmp_path / "two", workers=2, **kw)
    assert one.read_text() == two.read_text()
    for rec in json.loads(one.read_text()):
        assert (one.parent / rec["path"]).read_bytes() == (two.parent / rec["path"]).read_bytes()


# ---------------------------------------------------------------------------- truth

TRUTH_CASES = [
    # fps, vfr, site, curve, rotation
    (30, False, "finger", RefillCurve("mono", tau_s=0.8), 0),
    (60, False, "knee", RefillCurve("bi", tau_s=1.2, tau_fast_s=0.3, fast_weight=0.5), 90),
    (30, True, "finger", RefillCurve("delayed", tau_s=0.7, delay_s=0.4), 0),
    (60, True, "knee", RefillCurve("mono", tau_s=0.9), 270),
]


@pytest.mark.parametrize("fps,vfr,site,curve,rotation", TRUTH_CASES)
def test_clean_video_carries_its_crt(tmp_path, fps, vfr, site, curve, rotation):
    """Lossless H.264 (CRF 0, yuv420p) plus a little sensor noise as dither: what is left between
    the truth and the decoded video is 8-bit rounding, so the 90% crossing read off the container
    timestamps must land within one frame interval of ``crt_s``."""
    spec = small_spec(fps_nominal=fps, vfr=vfr, site=site, curve=curve, rotation=rotation,
                      crf=0, noise_sigma=1.5, vfr_jitter=0.3 if vfr else 0.0,
                      vfr_drop=0.08 if vfr else 0.0, vfr_slow_segment=vfr)
    record = render_refill_video(tmp_path / "v.mp4", spec)
    times, colours, rotations = read_roi(tmp_path / "v.mp4", record["roi"])
    # The container holds exactly the timestamps the frames were rendered at.
    assert np.array_equal(np.round(times * 90000).astype(int), frame_pts(spec))
    assert len(times) == record["frames"]
    assert rotations == {rotation}
    crt = measured_crt(record, times, colours)
    assert abs(crt - record["crt_s"]) <= 1.0 / fps, (crt, record["crt_s"])
    assert record["crt_s"] == pytest.approx(curve.crt_s)
    assert record["tau_s"] == pytest.approx(curve.equivalent_tau_s)


def test_compressed_video_stays_close_to_its_crt(tmp_path):
    """At CRF 18 the encoder lags slow colour changes (skipped blocks, dead-zone), so the
    crossing moves by a few frames: the CRT module has to live with this."""
    spec = small_spec(crf=18, noise_sigma=1.5)
    record = render_refill_video(tmp_path / "v.mp4", spec)
    times, colours, _ = read_roi(tmp_path / "v.mp4", record["roi"])
    crt = measured_crt(record, times, colours)
    assert abs(crt - record["crt_s"]) <= max(4 / spec.fps_nominal, 0.05 * record["crt_s"])


def test_raw_frames_follow_the_curve_exactly():
    spec = small_spec(site="knee", noise_sigma=0.0)
    frames = RenderedFrames(spec)
    x, y, w, h = frames.scene.roi
    means = np.array([px[y:y + h, x:x + w].reshape(-1, 3).mean(axis=0) for _, px in frames])
    base, blanched = frames.scene.roi_baseline_rgb, frames.scene.roi_blanched_rgb
    d = blanched - base
    s = (means - base) @ d / (d @ d)
    visible = (frames.t < spec.press_start_s - 0.35) | (frames.t > spec.release_s + 0.35)
    assert np.abs(s[visible] - frames.s[visible]).max() < 0.01
    # Light skin under this light does not clip when blanched.
    assert blanched.max() < 250


# ---------------------------------------------------------------------------- broken videos

def _frames_means(path):
    with av.open(str(path)) as container:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24").astype(np.float32))
                for f in container.decode(video=0)]


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_broken_videos_carry_their_fault(tmp_path, kind):
    spec = break_spec(small_spec(site="knee", press_duration_s=1.5), kind,
                      np.random.default_rng(1))
    record = render_refill_video(tmp_path / "b.mp4", spec)
    assert record["broken"] == kind and record["expected_status"] == "rejected"
    frames = _frames_means(tmp_path / "b.mp4")
    times = np.array([t for t, _ in frames])
    if kind == "no_release":
        assert record["release_s"] is None and record["crt_s"] is None
        assert times[-1] < spec.release_s
        return
    at = record["broken_at_s"]
    assert record["release_s"] < at < record["release_s"] + record["crt_s"]
    before = frames[int(np.searchsorted(times, at)) - 2][1]
    after_i = int(np.searchsorted(times, at + 0.5))
    if kind == "camera_moved":
        x, y, w, h = record["roi"]
        moved = frames[after_i][1]
        # The scene under the frame has shifted by far more than the ROI's size.
        assert np.abs(moved - before).mean() > 4.0
    elif kind == "light_switched":
        ratio = frames[after_i][1].mean() / before.mean()
        assert ratio < 0.8 or ratio > 1.2
    else:
        darkest = min(px.mean() for t, px in frames if t >= at)
        assert darkest < 15 and before.mean() > 60


# ---------------------------------------------------------------------------- key frames

def _key_frame_times(path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(p.pts * p.time_base) for p in container.demux(stream)
                if p.pts is not None and p.is_keyframe]


def test_key_frames_come_at_the_phone_like_interval(tmp_path):
    """A phone's encoder puts a key frame about every second and nowhere else; x264's default puts
    one every 250 frames (only the first, in a 5-s clip)."""
    spec = small_spec(fps_nominal=30, press_duration_s=1.5, post_release_s=2.5, gop_s=1.0)
    render_refill_video(tmp_path / "phone.mp4", spec)
    keys = _key_frame_times(tmp_path / "phone.mp4")
    assert np.allclose(keys, np.arange(len(keys)), atol=1e-6)
    assert len(keys) == 5            # frames at 0 … 4.97 s
    render_refill_video(tmp_path / "x264.mp4", replace(spec, gop_s=None))
    assert _key_frame_times(tmp_path / "x264.mp4") == [0.0]
    with pytest.raises(ValueError, match="gop_s"):
        small_spec(gop_s=0.0)


def test_sampled_key_frame_intervals_and_the_override():
    """Mostly a phone's interval, some x264 default; drawn last, so ``keyframes="x264"`` or a
    number changes the encoding of the very same case and nothing else."""
    specs = [sample_spec(np.random.default_rng([3, i]), i, "both", 0.2) for i in range(300)]
    gops = [s.gop_s for s in specs]
    assert set(gops) == {0.5, 1.0, 2.0, None}
    assert 0.4 < gops.count(1.0) / len(gops) < 0.6
    assert 0.08 < gops.count(None) / len(gops) < 0.25
    assert parse_keyframes("mixed") == "mixed" and parse_keyframes("x264") is None
    assert parse_keyframes("0.5") == 0.5
    for bad in ("0", "-1", "phone", "nan"):
        with pytest.raises(ValueError, match="keyframes"):
            parse_keyframes(bad)


def test_cli_keyframes_option(tmp_path):
    from mottling.cli import cli

    kw = ["synth", "videos", "--n", "1", "--seed", "6", "--site", "finger"]
    bad = CliRunner().invoke(cli, [*kw, "--out", str(tmp_path / "bad"), "--keyframes", "often"])
    assert bad.exit_code == 2 and "--keyframes" in bad.output
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "x264"
    ok = CliRunner().invoke(cli, [*kw, "--out", str(out), "--keyframes", "x264"])
    assert ok.exit_code == 0, ok.output
    rec = json.loads((out / "truth.json").read_text())[0]
    assert rec["gop_s"] is None and rec["spec"]["gop_s"] is None
    drawn = sample_spec(np.random.default_rng([6, 0]), 0, "finger", 0.15)
    assert spec_from_dict(rec["spec"]) == replace(drawn, gop_s=None)


# ---------------------------------------------------------------------------- CLI

def test_cli_synth_videos(tmp_path):
    from mottling.cli import cli

    out = tmp_path / "vids"
    result = CliRunner().invoke(cli, ["synth", "videos", "--n", "3", "--out", str(out),
                                      "--seed", "6", "--site", "finger"])
    assert result.exit_code == 0, result.output
    records = json.loads((out / "truth.json").read_text())
    assert len(records) == 3
    keys = {"path", "site", "skin_tone", "fps_nominal", "vfr", "width", "height", "rotation",
            "press_start_s", "release_s", "crt_s", "tau_s", "curve", "roi", "broken",
            "expected_status", "seed", "generator_version", "gop_s"}
    for rec in records:
        assert keys <= set(rec)
        assert rec["site"] == "finger"
        with av.open(str(out / rec["path"])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert {stream.width, stream.height} == {rec["width"], rec["height"]}


def test_global_nuisances_cancel_against_surrounding_skin():
    """Exposure drift, auto-exposure and a light switch act on the whole frame, so the ROI's
    colour divided by the unpressed skin around it is the same as in the clean video."""
    from mottling.synth.videos import clean_spec

    # Exposure low enough that a 1.5x brighter lamp clips nothing.
    spec = small_spec(site="knee", exposure_drift=0.05, ae_response=0.04, pulse_amp=0.0,
                      noise_sigma=0.0, shake_px=0.0, exposure_level=0.55)
    spec = break_spec(spec, "light_switched", np.random.default_rng(2))

    def ratios(s):
        frames = RenderedFrames(s)
        x, y, w, h = frames.scene.roi
        cx, cy = x + w // 2, y + h // 2
        ring = np.zeros((s.height, s.width), bool)
        yy, xx = np.mgrid[0:s.height, 0:s.width]
        dist = np.hypot(yy - cy, xx - cx)
        ring[(dist > 3 * w) & (dist < 4 * w)] = True
        out = []
        for _, px in frames:
            px = px.astype(np.float64)
            out.append(px[y:y + h, x:x + w].reshape(-1, 3).mean(0) / px[ring].mean(0))
        return frames.t, np.array(out)

    t, nuisance = ratios(spec)
    _, clean = ratios(clean_spec(spec))
    visible = (t < spec.press_start_s - 0.35) | (t > spec.release_s + 0.35)
    assert np.abs(nuisance[visible] / clean[visible] - 1).max() < 0.01
    # ... while the raw ROI colour alone does move with the light.
    step = RenderedFrames(spec).gain[:, 1]
    assert not 0.8 < step[-1] / step[0] < 1.2


# ---------------------------------------------------------------------------- real-phone conditions

def test_sampled_specs_carry_real_phone_conditions():
    specs = [sample_spec(np.random.default_rng([5, i]), i, "both", 0.2) for i in range(300)]
    assert any(s.clip_red for s in specs) and all(s.skin_tone <= 3 for s in specs if s.clip_red)
    assert max(s.wander_px for s in specs) > 0.8 and max(s.drift_px for s in specs) > 6
    fast = [s for s in specs if s.fps_nominal >= 120]
    assert any(s.vfr_drop > 0 for s in fast)
    for tone in range(1, 11):
        assert {s.site for s in specs if s.skin_tone == tone} == {"finger", "knee"}


def test_truth_records_the_true_camera_displacement_and_reason(tmp_path):
    from mottling.synth.refill_frames import RenderedFrames

    spec = small_spec(site="knee", wander_px=1.0, drift_px=8.0, shake_px=1.0)
    frames = RenderedFrames(spec)
    record = render_refill_video(tmp_path / "w.mp4", spec)
    disp = np.hypot(frames.dy, frames.dx)
    assert record["motion_px"] == pytest.approx(disp.max(), abs=0.01) and disp.max() > 3
    assert record["motion_px_by_frame"][0] == 0.0
    assert record["motion_pct"] == pytest.approx(100 * disp.max() / 240, abs=0.01)
    assert record["expected_reason"] is None and record["clipped_channel"] is None
    # The decoded frames really moved by that much: the scene at the last frame, shifted back by
    # the recorded offset, matches the first frame better than unshifted.
    first, last = (_frames_means(tmp_path / "w.mp4")[i][1] for i in (0, -1))
    dy, dx = int(frames.dy[-1]), int(frames.dx[-1])
    if dy or dx:
        back = np.roll(last, (dy, dx), axis=(0, 1))[20:-20, 20:-20]
        assert np.abs(back - first[20:-20, 20:-20]).mean() < np.abs(last - first)[20:-20, 20:-20].mean()


def test_broken_kinds_are_labelled_with_their_reason():
    from mottling.synth.videos import BROKEN_REASONS

    assert set(BROKEN_REASONS) == set(BROKEN_KINDS)
    assert BROKEN_REASONS["camera_moved"] == "motion"
    assert BROKEN_REASONS["light_switched"] == "lighting"


def test_red_channel_clips_while_green_does_not():
    from mottling.synth.refill_frames import RenderedFrames

    spec = small_spec(skin_tone=1, exposure_level=1.05, blanch_contrast=0.45, clip_red=True,
                      noise_sigma=1.0)
    frames = RenderedFrames(spec)
    x, y, w, h = frames.scene.roi
    for i, (_, px) in enumerate(frames):
        roi = px[y:y + h, x:x + w].reshape(-1, 3)
        assert (roi[:, 0] >= 254).mean() > 0.5          # red sits at the top
        assert (roi[:, 1] >= 254).mean() < 0.05         # green carries the refill


# ---------------------------------------------------------------------------- phone resolution

def test_at_resolution_films_the_same_case_at_a_phones_size():
    """``--min-side``: the drawn 180-640 px are below any phone's 720 px and up. The frame grows
    with its aspect kept (even sizes, as yuv420p needs) and the hand-held motion with it, so the
    camera moves by the same share of the frame; nothing else of the case changes."""
    from mottling.synth.refill_spec import at_resolution

    spec = small_spec(width=320, height=180, shake_px=1.5, wander_px=0.5, drift_px=4.0)
    big = at_resolution(spec, 720)
    assert (big.width, big.height) == (1280, 720)
    assert (big.shake_px, big.wander_px, big.drift_px) == pytest.approx((6.0, 2.0, 16.0))
    assert replace(big, width=320, height=180, shake_px=1.5, wander_px=0.5,
                   drift_px=4.0) == spec
    odd = at_resolution(small_spec(width=240, height=320), 250)
    assert (odd.width, odd.height) == (250, 334)    # 333.3 up to the next even size
    assert at_resolution(spec, 180) is spec and at_resolution(spec, None) is spec


def test_min_side_reaches_the_videos_and_their_truth(tmp_path):
    from mottling.cli import cli

    out = tmp_path / "phone"
    res = CliRunner().invoke(cli, ["synth", "videos", "--n", "1", "--out", str(out), "--seed", "7",
                               "--broken-fraction", "0", "--min-side", "400"])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "truth.json").read_text())[0]
    drawn = sample_spec(np.random.default_rng([7, 0]), 0, "both", 0.0)
    assert min(drawn.width, drawn.height) < 400 <= min(rec["width"], rec["height"])
    with av.open(str(out / rec["path"])) as c:
        s = c.streams.video[0]
        assert sorted((s.codec_context.width, s.codec_context.height)) == sorted(
            (rec["width"], rec["height"]))
    assert json.loads((out / "synth_videos_config.json").read_text())["min_side"] == 400
