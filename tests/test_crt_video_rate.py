"""Slow-motion video can be analysed at about ``VideoLimits.analysis_max_hz`` (here 120 Hz; off by
default, which keeps every frame).

Frames closer than 0.6 of that period to the last frame kept are passed over, and from twice the
rate the decoder skips frames no other frame refers to (``skip_frame = NONREF``). The frames that
are kept must be exactly the frames a full decode gives at the same times, whatever the decoder's
thread count; a stream of I- and P-frames only (nothing to skip) is thinned the same way; 120 fps
video, even with jittered frame times, keeps every frame.
"""

from __future__ import annotations


import av
import numpy as np
import pytest

from mottling.crt import VideoLimits, decode_video
from mottling.errors import InputError
from mottling.synth.refill_curves import RefillCurve
from mottling.synth.videos import RefillSpec, render_refill_video

EVERY = VideoLimits(decoder_threads=1)     # the default: every frame
HZ = 120.0


def _spec(fps: int, **kw) -> RefillSpec:
    base = dict(seed=240, site="finger", skin_tone=4, width=160, height=120, fps_nominal=fps,
                pre_press_s=1.0, press_duration_s=1.5, post_release_s=2.0,
                curve=RefillCurve("mono", tau_s=0.6), noise_sigma=1.0, shake_px=1.0,
                wander_px=0.5, drift_px=2.0, crf=23, preset="veryfast")
    base.update(kw)
    return RefillSpec(**base)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("crt_rate")
    out = {}
    out["240_ipb"] = d / "ipb240.mp4"
    render_refill_video(out["240_ipb"], _spec(240))
    out["240_ippp"] = d / "ippp240.mp4"
    render_refill_video(out["240_ippp"], _spec(240), b_frames=False)
    out["120_vfr"] = d / "vfr120.mp4"
    render_refill_video(out["120_vfr"], _spec(120, vfr=True, vfr_jitter=0.4))
    return out


def _pict_types(path) -> list[str]:
    with av.open(str(path)) as c:
        return [str(f.pict_type)[-1] for f in c.decode(c.streams.video[0])]


def _kept_are_full_decode_frames(path, limits: VideoLimits):
    full = decode_video(path, EVERY)
    part = decode_video(path, limits)
    # Times are counted from the first frame, which both keep (the first frame is an I-frame).
    at = np.searchsorted(full.t_s, part.t_s)
    assert np.array_equal(full.t_s[at], part.t_s)
    assert np.array_equal(full.yuv[at], part.yuv)
    return full, part


@pytest.mark.parametrize("kind", ["240_ipb", "240_ippp"])
def test_slow_motion_is_analysed_at_about_120_hz_with_the_full_decode_frames(clips, kind):
    path = clips[kind]
    types = _pict_types(path)
    assert ("3" in types) == (kind == "240_ipb")     # x264's B-frames, or none at all
    full, part = _kept_are_full_decode_frames(
        path, VideoLimits(decoder_threads=1, analysis_max_hz=HZ))
    gaps = np.diff(part.t_s)
    assert gaps.min() >= 0.6 / 120 - 1e-9
    assert 0.4 * len(full.t_s) <= len(part.t_s) <= 0.55 * len(full.t_s)
    assert np.median(gaps) == pytest.approx(1 / 120, rel=0.02)
    assert part.yuv.shape[1:] == full.yuv.shape[1:]     # the same analysis size as before


@pytest.mark.parametrize("kind", ["240_ipb", "240_ippp"])
def test_thinned_frames_identical_whatever_the_decoder_thread_count(clips, kind):
    videos = [decode_video(clips[kind], VideoLimits(decoder_threads=k, analysis_max_hz=HZ))
              for k in (1, 2, 4, 0)]
    for v in videos[1:]:
        assert np.array_equal(v.t_s, videos[0].t_s)
        assert np.array_equal(v.yuv, videos[0].yuv)


def test_120_fps_keeps_every_frame_even_jittered(clips):
    full = decode_video(clips["120_vfr"], EVERY)
    part = decode_video(clips["120_vfr"], VideoLimits(decoder_threads=1, analysis_max_hz=HZ))
    assert np.diff(full.t_s).min() < 1 / 120 * 0.7     # really jittered
    assert np.array_equal(full.t_s, part.t_s)
    assert np.array_equal(full.yuv, part.yuv)


def test_truncated_slow_motion_still_refused(tmp_path):
    """With frames skipped on purpose the declared frame count is no test of a cut file (the old
    check would refuse every intact slow-motion video): the intact file decodes, a cut one is
    refused (here FFmpeg's own error at the cut; the decoded span against the declared duration
    is the check when the cut falls between packets)."""
    # The index in front of the frames, so a cut file still opens; then cut the frames in half.
    front = tmp_path / "front.mp4"
    render_refill_video(front, _spec(240), faststart=True)
    data = front.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    fast = VideoLimits(analysis_max_hz=HZ)
    assert len(decode_video(front, fast).t_s) > 100
    with pytest.raises(InputError, match="truncated"):
        decode_video(cut, fast)


REPRO = """
import json, sys
from mottling.crt import VideoLimits, measure_crt
r = measure_crt(sys.argv[1], "finger",
                limits=VideoLimits(decoder_threads=int(sys.argv[2]), analysis_max_hz=120.0))
print(json.dumps(r.to_dict(include_curve=True)))
"""


def test_slow_motion_result_bit_for_bit_across_processes_and_threads(clips):
    import json
    import os
    import subprocess
    import sys

    outs = []
    for decoder, maths in (("1", "1"), ("3", "2")):
        env = {**os.environ, "OMP_NUM_THREADS": maths, "OPENBLAS_NUM_THREADS": maths,
               "MKL_NUM_THREADS": maths}
        proc = subprocess.run([sys.executable, "-c", REPRO, str(clips["240_ipb"]), decoder],
                              env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    result = json.loads(outs[0])
    assert result["frames"] < 700            # analysed at about 120 Hz (4.5 s at 240 fps: 1080)
    assert outs[0] == outs[1]


def test_default_decodes_every_frame(clips):
    """Off by default: a 240 fps video keeps all its frames (the results of main, bit for bit)."""
    v = decode_video(clips["240_ipb"], VideoLimits(decoder_threads=1))
    with av.open(str(clips["240_ipb"])) as c:
        assert len(v.t_s) == sum(1 for _ in c.decode(c.streams.video[0]))
