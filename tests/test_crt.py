"""CRT from video: timing on generated refill videos, the quality gates and every bad input.

Videos come from the project's own generator (``mottling.synth.videos``) with fixed specs, so each
test knows the exact answer. They are small (320x240, a few seconds) to keep the suite fast.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mottling.crt import VideoLimits, decode_video, measure_crt
from mottling.crt.gates import reason_category
from mottling.crt.refill import fit_recovery
from mottling.errors import InputError, InputTooLargeError, UnprocessableInputError, UnsupportedMediaError
from mottling.synth.refill_curves import RefillCurve, curve_for_crt
from mottling.synth.videos import BROKEN_REASONS, RefillSpec, render_refill_video

DESIGN_KEYS = ["path", "site", "status", "reason", "crt_s", "crt_ci95", "tau_s", "release_s",
               "threshold_s", "prolonged", "fps", "frames"]


def _spec(seed: int, site: str, tone: int, crt_s: float, kind: str = "mono", **kw) -> RefillSpec:
    curve = curve_for_crt(kind, crt_s, np.random.default_rng(seed))
    base = dict(seed=seed, site=site, skin_tone=tone, examiner_tone=4, width=320, height=240,
                fps_nominal=30, pre_press_s=1.0, press_duration_s=3.0,
                post_release_s=2.0 * crt_s + 1.0, curve=curve, lift_s=0.12,
                blanch_contrast=max(0.4, 1.0 - 0.06 * (tone - 1)), noise_sigma=1.0,
                exposure_drift=0.01, pulse_amp=0.004, shake_px=1.0, crf=20)
    base.update(kw)
    return RefillSpec(**base)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Render each spec once for the whole module; name -> (path, truth)."""
    root = tmp_path_factory.mktemp("crt_videos")
    specs = {
        "finger_light": _spec(41, "finger", 2, 2.0),
        "knee_dark_vfr": _spec(42, "knee", 8, 3.0, vfr=True, vfr_jitter=0.3, vfr_drop=0.05),
        "finger_mid_60fps": _spec(43, "finger", 5, 2.5, fps_nominal=60),
        "knee_light_rotated": _spec(44, "knee", 3, 2.5, rotation=90),
        "finger_delayed": _spec(45, "finger", 4, 3.0, kind="delayed"),
        # Real-phone conditions: a hand-held random walk plus drift, red clipped on pale skin,
        # a slow 0.4 s lift of the examiner's fingertip.
        "handheld": _spec(46, "knee", 5, 2.5, shake_px=1.5, wander_px=1.0, drift_px=8.0),
        "red_clipped": _spec(47, "finger", 1, 2.0, exposure_level=1.05, blanch_contrast=0.45,
                             clip_red=True),
        "slow_lift": _spec(48, "knee", 6, 3.0, lift_s=0.4, examiner_tone=9),
    }
    for kind in ("no_release", "camera_moved", "light_switched", "dark_frame"):
        clean = _spec(50, "knee", 4, 2.5)
        if kind == "no_release":
            specs[kind] = replace(clean, broken=kind, video_s=clean.release_s - 0.8)
        else:
            specs[kind] = replace(clean, broken=kind, broken_at_s=clean.release_s + 1.0)
    out = {}
    for name, spec in specs.items():
        path = root / f"{name}.mp4"
        out[name] = (path, render_refill_video(path, spec))
    return out


# Automatic ROI is checked on the cases it handles; on dark skin (Monk 8, knee_dark_vfr) it lands
# on the spot but reads about 15% long (docs/crt.md: Monk 8-10 is the weakest group), which the
# manual-ROI case still covers.
CASES = [(name, True) for name in ("finger_light", "knee_dark_vfr", "finger_mid_60fps",
                                   "knee_light_rotated", "finger_delayed", "handheld",
                                   "slow_lift")]
CASES += [(name, False) for name in ("finger_light", "knee_light_rotated",
                                     "finger_mid_60fps",
                                     "handheld", "slow_lift", "finger_delayed")]


@pytest.mark.slow
@pytest.mark.parametrize("name,manual_roi", CASES)
def test_known_crt_is_recovered(videos, name, manual_roi):
    path, truth = videos[name]
    roi = truth["roi"] if manual_roi else None
    result = measure_crt(path, truth["site"], roi=roi)
    assert result.status == "ok", result.reason
    assert result.crt_s == pytest.approx(truth["crt_s"], rel=0.15)
    assert result.release_s == pytest.approx(truth["release_s"], abs=0.15)
    lo, hi = result.crt_ci95
    assert lo < result.crt_s < hi
    assert result.frames == truth["frames"]
    assert result.threshold_s == (3.0 if truth["site"] == "finger" else 4.0)
    assert result.prolonged == (result.crt_s > result.threshold_s)


def test_variable_frame_rate_uses_timestamps(videos):
    path, truth = videos["knee_dark_vfr"]
    video = decode_video(path)
    gaps = np.diff(video.t_s)
    assert gaps.max() / gaps.min() > 1.3          # really variable
    assert len(video.t_s) == truth["frames"]
    assert video.t_s[-1] == pytest.approx(truth["duration_s"], abs=1e-3)


def test_rotation_metadata_gives_upright_frames(videos):
    path, truth = videos["knee_light_rotated"]
    video = decode_video(path)
    assert (video.width, video.height) == (truth["width"], truth["height"])
    assert video.frames.shape[2] > video.frames.shape[1] or truth["width"] < truth["height"]


@pytest.mark.parametrize("manual_roi", [True, False])
@pytest.mark.parametrize("kind", ["no_release", "camera_moved", "light_switched", "dark_frame"])
def test_broken_videos_are_rejected_with_their_own_reason(videos, kind, manual_roi):
    path, truth = videos[kind]
    result = measure_crt(path, truth["site"], roi=truth["roi"] if manual_roi else None)
    assert result.status == "rejected"
    assert result.reason_category == truth["expected_reason"] == BROKEN_REASONS[kind], result.reason
    assert reason_category(result.reason) == result.reason_category
    assert result.crt_s is None and result.crt_ci95 is None and result.prolonged is None


def test_camera_motion_is_followed_and_measured_against_truth(videos):
    path, truth = videos["handheld"]
    assert truth["motion_px"] > 6                        # the phone really wandered
    result = measure_crt(path, "knee", roi=truth["roi"])
    assert result.status == "ok", result.reason
    # The reported motion is the largest shift over the frames read; the truth's is over all.
    assert result.motion_px == pytest.approx(truth["motion_px"], abs=2.5 + 0.15 * truth["motion_px"])
    assert result.motion_pct == pytest.approx(100 * result.motion_px / 240, rel=0.05)


def test_clipped_red_channel_is_dropped_not_rejected(videos):
    path, truth = videos["red_clipped"]
    assert truth["clipped_channel"] == "red"
    result = measure_crt(path, "finger", roi=truth["roi"])
    assert result.status == "ok", result.reason
    assert result.dropped_channels == ("red",) and result.channel == "green"
    assert result.to_dict()["dropped_channels"] == ["red"]
    # Known weakness (docs/crt.md): a faint blanch (contrast 0.45) on green alone reads 10-17% long.
    assert result.crt_s == pytest.approx(truth["crt_s"], rel=0.2)
    auto = measure_crt(path, "finger")
    assert auto.status == "ok" and auto.dropped_channels == ("red",)
    assert auto.crt_s == pytest.approx(truth["crt_s"], rel=0.2)


def test_release_is_the_start_of_a_slow_lift(videos):
    path, truth = videos["slow_lift"]
    result = measure_crt(path, "knee", roi=truth["roi"])
    assert result.status == "ok", result.reason
    assert abs(result.release_s - truth["release_s"]) < 0.1
    assert result.crt_s == pytest.approx(truth["crt_s"], rel=0.15)


def test_reason_categories():
    assert reason_category("motion: the spot left the picture") == "motion"
    assert reason_category("too few frames after release") == "too short"
    assert reason_category("no release found: the spot stays pressed") == "no release"
    assert reason_category(None) is None


REPRO = """
import json, sys
from mottling.crt import measure_crt
r = measure_crt(sys.argv[1], "knee", roi=json.loads(sys.argv[2]) if sys.argv[2] != "auto" else None)
print(json.dumps(r.to_dict(include_curve=True)))
"""


@pytest.mark.parametrize("roi", ["manual", "auto"])
def test_same_result_bit_for_bit_across_processes_and_thread_counts(videos, roi):
    path, truth = videos["handheld"]
    arg = json.dumps(truth["roi"]) if roi == "manual" else "auto"
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads}
        proc = subprocess.run([sys.executable, "-c", REPRO, str(path), arg], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert json.loads(outs[0])["status"] == "ok"
    assert outs[0] == outs[1]


def test_bytes_and_file_objects_give_the_same_answer(videos):
    path, truth = videos["finger_light"]
    data = path.read_bytes()
    a = measure_crt(data, "finger", roi=truth["roi"])
    b = measure_crt(io.BytesIO(data), "finger", roi=truth["roi"])
    assert a.crt_s == pytest.approx(b.crt_s)
    assert a.path is None


# ---------------------------------------------------------------------------------------------
# Fitting on exact synthetic signals


@pytest.mark.parametrize("kind", ["mono", "delayed", "bi"])
def test_fit_recovers_each_curve_kind(kind):
    rng = np.random.default_rng(7)
    for crt in (1.2, 3.5, 6.0):
        curve = curve_for_crt(kind, crt, rng)
        t = np.cumsum(rng.uniform(0.02, 0.045, 600))
        t = t[t < 2.5 * crt + 1]
        y = 0.2 * curve.blanch_fraction(t) + rng.normal(0, 0.003, len(t))
        fit = fit_recovery(t, y)
        assert fit.crt_s == pytest.approx(crt, rel=0.06)
        assert fit.crt_ci95[0] < fit.crt_s < fit.crt_ci95[1]


def test_fit_tau_matches_mono_exponential():
    t = np.arange(0, 8, 1 / 30)
    y = -0.1 * np.exp(-t / 1.3) + np.random.default_rng(1).normal(0, 0.002, len(t))
    fit = fit_recovery(t, y)
    assert fit.tau_s == pytest.approx(1.3, rel=0.05)
    assert fit.crt_s == pytest.approx(1.3 * math.log(10), rel=0.05)


# ---------------------------------------------------------------------------------------------
# Bad input


def _write_video(path: Path, n: int, size=(64, 48), rate=30, codec="libx264", fmt=None) -> Path:
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height = size
        s.pix_fmt = "yuv420p"
        if codec == "libx264":
            s.options = {"preset": "ultrafast"}
        for i in range(n):
            img = np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _write_audio(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        frame.pts = 0
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        measure_crt(p, "finger")
    with pytest.raises(InputError, match="empty"):
        measure_crt(b"", "finger")


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_bytes(b"this is not a video at all\n" * 100)
    with pytest.raises(UnsupportedMediaError):
        measure_crt(p, "finger")


def test_audio_only(tmp_path):
    p = _write_audio(tmp_path / "sound.m4a")
    with pytest.raises(UnsupportedMediaError, match="audio only"):
        measure_crt(p, "knee")


@pytest.mark.parametrize("n", [1])
def test_single_frame(tmp_path, n):
    p = _write_video(tmp_path / "one.mp4", n)
    with pytest.raises(UnprocessableInputError, match="1 decodable frame"):
        measure_crt(p, "finger")


def test_truncated_file(tmp_path):
    p = _write_video(tmp_path / "full.mp4", 60, size=(160, 120))
    data = p.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        measure_crt(cut, "finger")
    assert "\n" not in str(err.value)


def test_ten_minute_video_is_refused_before_decoding(tmp_path):
    p = _write_video(tmp_path / "long.mp4", 600, size=(64, 48), rate=1)
    with pytest.raises(InputTooLargeError, match="lasts"):
        measure_crt(p, "finger")


def test_4k_frame_is_refused(tmp_path):
    p = _write_video(tmp_path / "uhd.mp4", 2, size=(3840, 2160))
    with pytest.raises(InputTooLargeError, match="3840x2160"):
        measure_crt(p, "finger")


def test_frame_limit(tmp_path):
    p = _write_video(tmp_path / "many.mp4", 40)
    with pytest.raises(InputTooLargeError):
        decode_video(p, VideoLimits(max_frames=20))


def test_webm_decodes(tmp_path):
    p = _write_video(tmp_path / "clip.webm", 12, codec="libvpx-vp9", fmt="webm")
    video = decode_video(p)
    assert len(video.t_s) == 12
    assert video.t_s[1] == pytest.approx(1 / 30, abs=2e-3)


def test_bad_site_and_roi(videos):
    path, truth = videos["finger_light"]
    with pytest.raises(InputError, match="site"):
        measure_crt(path, "elbow")
    with pytest.raises(InputError, match="ROI"):
        measure_crt(path, "finger", roi=(300, 200, 100, 100))


# ---------------------------------------------------------------------------------------------
# CLI


def _cli(*args):
    code = "import sys; from mottling.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "crt", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_cli_json_keys_follow_design(videos, tmp_path):
    path, truth = videos["knee_dark_vfr"]
    roi = ",".join(str(v) for v in truth["roi"])
    png = tmp_path / "plot.png"
    proc = _cli(path, "--site", "knee", "--roi", roi, "--json", "--plot", png)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out)[:len(DESIGN_KEYS)] == DESIGN_KEYS
    assert set(out) - set(DESIGN_KEYS) <= {"tau_ci95", "roi", "reason_category", "channel",
                                           "dropped_channels", "motion_px", "motion_pct"}
    assert out["status"] == "ok" and out["site"] == "knee"
    assert png.stat().st_size > 5000


def test_cli_human_summary_and_bad_input(videos, tmp_path):
    path, truth = videos["no_release"]
    proc = _cli(path, "--site", "knee")
    assert proc.returncode == 0
    assert "rejected" in proc.stdout
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    proc = _cli(empty, "--site", "finger", "--json")
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
