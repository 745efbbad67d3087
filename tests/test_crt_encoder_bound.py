"""benchmarks/crt_encoder_bound.py re-renders a set's videos changing nothing but the encoder's
CRF: at the set's own CRF the file comes back byte for byte, so a lossless re-render differs from
the set's video in the encoding alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mottling.synth.refill_spec import sample_spec
from mottling.synth.videos import _spec_dict, render_refill_video
from tests.bench_support import load_benchmark


def test_rerender_changes_only_the_encoding(tmp_path):
    bound = load_benchmark("crt_encoder_bound")
    spec = sample_spec(np.random.default_rng([21, 3]), 0, duration_scale=0.3)
    spec = replace(spec, width=160, height=120, fps_nominal=30, broken=None, broken_at_s=None)
    (tmp_path / "videos").mkdir()
    original = tmp_path / "videos" / "x.mp4"
    render_refill_video(original, spec)
    record = {"path": "videos/x.mp4", "spec": _spec_dict(spec)}

    same = bound.rerender(tmp_path, [record], spec.crf, workers=1) / "videos" / "x.mp4"
    assert same.read_bytes() == original.read_bytes()
    if spec.crf != 0:
        lossless = bound.rerender(tmp_path, [record], 0, workers=1) / "videos" / "x.mp4"
        assert lossless.read_bytes() != original.read_bytes()
        assert lossless.stat().st_size > original.stat().st_size
