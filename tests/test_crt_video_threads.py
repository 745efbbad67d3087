"""Decoder threads change the speed of decoding, never the frames or the CRT result.

``decode_video`` lets FFmpeg decode with several threads (``VideoLimits.decoder_threads``, 0 = as
many as the process may use). FFmpeg's frame and slice threading are bit-exact; these tests hold
us to it on the project's own videos, in one process and across processes with different thread
settings for the decoder and for the maths libraries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mottling.crt import VideoLimits, decode_video
from mottling.synth.refill_curves import RefillCurve
from mottling.synth.videos import RefillSpec, render_refill_video


@pytest.fixture(scope="module")
def handheld(tmp_path_factory):
    """A short hand-held knee video (wander, drift, tremor) at 60 fps, variable frame timing."""
    spec = RefillSpec(seed=61, site="knee", skin_tone=5, examiner_tone=4, width=320, height=240,
                      fps_nominal=60, pre_press_s=1.0, press_duration_s=3.0, post_release_s=5.0,
                      curve=RefillCurve("mono", tau_s=1.0), lift_s=0.15, noise_sigma=1.0,
                      exposure_drift=0.01, pulse_amp=0.004, shake_px=1.5, wander_px=1.0,
                      drift_px=6.0, vfr=True, vfr_jitter=0.2, crf=20)
    path = tmp_path_factory.mktemp("crt_threads") / "handheld.mp4"
    return path, render_refill_video(path, spec)


def test_frames_identical_whatever_the_decoder_thread_count(handheld):
    path, _ = handheld
    videos = [decode_video(path, VideoLimits(decoder_threads=k)) for k in (1, 2, 4, 0)]
    first = videos[0]
    assert len(first.t_s) > 400
    for v in videos[1:]:
        assert np.array_equal(v.yuv, first.yuv)
        assert np.array_equal(v.t_s, first.t_s)
    # Planar storage: each plane of a frame is one contiguous block.
    assert first.yuv[3, ..., 0].flags["C_CONTIGUOUS"]


REPRO = """
import json, sys
from mottling.crt import VideoLimits, measure_crt
r = measure_crt(sys.argv[1], "knee", limits=VideoLimits(decoder_threads=int(sys.argv[2])))
print(json.dumps(r.to_dict(include_curve=True)))
"""


def test_same_result_bit_for_bit_across_decoder_and_maths_threads(handheld):
    path, truth = handheld
    outs = []
    for decoder, maths in (("1", "1"), ("3", "2")):
        env = {**os.environ, "OMP_NUM_THREADS": maths, "OPENBLAS_NUM_THREADS": maths,
               "MKL_NUM_THREADS": maths}
        proc = subprocess.run([sys.executable, "-c", REPRO, str(path), decoder], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    result = json.loads(outs[0])
    assert result["status"] == "ok", result["reason"]
    assert result["crt_s"] == pytest.approx(truth["crt_s"], rel=0.25)
    assert outs[0] == outs[1]


def test_decoder_threads_only_on_an_idle_core():
    """Automatic threads (decoder_threads=0) go to FFmpeg only while a core is idle; a set count is
    kept whatever the load."""
    from mottling.crt.video import decoder_thread_count

    auto = VideoLimits(decoder_threads=0)
    assert decoder_thread_count(auto, load=0.2, cores=2) == 0
    assert decoder_thread_count(auto, load=1.0, cores=2) == 0
    assert decoder_thread_count(auto, load=1.5, cores=2) == 1
    assert decoder_thread_count(auto, load=17.0, cores=2) == 1
    assert decoder_thread_count(auto, load=0.0, cores=1) == 1
    assert decoder_thread_count(auto, load=5.0, cores=8) == 0
    assert decoder_thread_count(VideoLimits(decoder_threads=3), load=17.0, cores=2) == 3
    assert decoder_thread_count(auto) in (0, 1)
