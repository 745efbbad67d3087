"""The formats phones record refill videos in: HEVC, and HEVC Main10 tagged BT.2020 HLG.

An iPhone records HEVC Main10 with the BT.2020 matrix and the HLG transfer by default ("HDR
Video", since the iPhone 12); many Android phones and iPhones with HDR off write 8-bit HEVC tagged
BT.709. The decoder reads 10-bit planes itself (as it reads 8-bit ones: only the analysis pixels,
rounded to 8 bits) and converts with the matrix the file declares. Before, a BT.2020 file was
converted with BT.601's coefficients, so its "green" was a mix of channels, and every 10-bit frame
went through a full-resolution scaler (1.5 s of a 1080p30 clip's 3.3 s).
"""

from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest

from mottling.crt import measure_crt
from mottling.crt.colour import BT2020, matrix_for
from mottling.crt.video import VideoLimits, decode_video
from mottling.synth.refill_curves import RefillCurve
from mottling.synth.refill_spec import RefillSpec
from mottling.synth.videos import CODECS, render_refill_video

SKIN = (182.0, 124.0, 101.0)   # a Monk 4-5 skin colour, sRGB codes


def _skin_hevc10(path, rgb=SKIN, n=6, size=(64, 48)):
    """``n`` frames of one skin colour with grain (so the means do not hinge on one rounding),
    HEVC Main10 lossless, BT.2020 matrix, limited range. Returns the frames' mean sRGB."""
    w, h = size
    rng = np.random.default_rng(0)
    pixels = np.clip(np.round(np.asarray(rgb) + rng.normal(0, 4, (h, w, 3))), 0, 255)
    pixels = pixels.astype(np.uint8)
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("libx265", rate=10, options={
            "x265-params": "lossless=1:pools=none:frame-threads=1:log-level=error"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p10le"
        ctx = s.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = 9, 9, 18, 1
        for i in range(n):
            f = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            f = f.reformat(format="yuv420p10le", dst_colorspace="bt2020", dst_color_range=1)
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return pixels.reshape(-1, 3).mean(axis=0)


def test_a_bt2020_file_is_read_with_its_own_matrix(tmp_path):
    path = tmp_path / "skin.mp4"
    want = _skin_hevc10(path)
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    assert frame.format.name == "yuv420p10le"
    m = matrix_for(frame)
    assert (m.kr, m.kb, m.full_range) == (*BT2020, False)

    v = decode_video(path, VideoLimits())
    assert v.matrix == m
    rgb = v.matrix.to_rgb(v.yuv[0].reshape(-1, 3).mean(axis=0))
    # The colour comes back within 0.4 codes (measured; the grain averages the 10-to-8-bit
    # rounding out, 4:2:0 chroma keeps some); read with BT.601's coefficients, as before, red
    # came back 1.9 codes low and blue 3.2 codes high.
    assert np.abs(rgb - want).max() < 0.75, (rgb, want)


def test_ten_bit_planes_are_sampled_and_rounded_to_eight_bits(tmp_path):
    """Each analysis pixel is the 10-bit code of its sample, rounded half up to 8 bits; its luma
    is, within the rounding, what the full-frame scaler the decoder used before gave."""
    path = tmp_path / "clip.mp4"
    spec = _spec(seed=5, width=320, height=240, post_s=1.0)
    render_refill_video(path, spec, codec="hevc10-hlg")
    limits = VideoLimits()
    v = decode_video(path, limits)
    k = int(round(320 / v.yuv.shape[2]))
    o = k // 2
    scaler = av.video.reformatter.VideoReformatter()
    with av.open(str(path)) as c:
        c.streams.video[0].codec_context.options = {"skip_loop_filter": "all"}  # as decode_video
        for i, frame in enumerate(c.decode(video=0)):
            if i % 40:
                continue
            y = np.frombuffer(frame.planes[0], np.uint16).reshape(240, -1)[:, :320]
            u = np.frombuffer(frame.planes[1], np.uint16).reshape(120, -1)[:, :160]
            mine = np.stack([y[o::k, o::k], u[o // 2::k // 2, o // 2::k // 2]], axis=-1)
            want = np.minimum((mine[: v.yuv.shape[1], : v.yuv.shape[2]] + 2) >> 2, 255)
            assert np.array_equal(v.yuv[i, ..., :2], want)
            old = scaler.reformat(frame, format="yuv444p").to_ndarray()  # (3, h, w) planes
            old = np.moveaxis(old, 0, -1)[o::k, o::k][: v.yuv.shape[1], : v.yuv.shape[2]]
            # Luma (chroma: swscale interpolates 4:2:0 up to every pixel, we take the sample's own)
            assert np.abs(old[..., 0].astype(int) - v.yuv[i, ..., 0]).max() <= 1


def _spec(seed: int, width: int = 320, height: int = 240, post_s: float = 6.0) -> RefillSpec:
    return RefillSpec(seed=seed, site="knee", skin_tone=5, width=width, height=height,
                      fps_nominal=30, pre_press_s=1.5, press_duration_s=4.0, post_release_s=post_s,
                      curve=RefillCurve("mono", tau_s=1.0), noise_sigma=1.5, exposure_drift=0.01,
                      pulse_amp=0.003, shake_px=1.0, wander_px=0.5, drift_px=2.0, crf=23,
                      gop_s=1.0)


def test_the_generator_writes_each_codec_reproducibly(tmp_path):
    assert CODECS == ("h264", "hevc", "hevc10-hlg")
    spec = _spec(seed=11, post_s=1.0)
    digests = []
    for name in ("a.mp4", "b.mp4"):
        truth = render_refill_video(tmp_path / name, spec, codec="hevc10-hlg")
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert truth["codec"] == "hevc10-hlg"
    with av.open(str(tmp_path / "a.mp4")) as c:
        s = c.streams.video[0]
        frame = next(c.decode(s))
        assert s.codec_context.name == "hevc"
        assert (frame.format.name, frame.colorspace, s.codec_context.color_trc) == \
            ("yuv420p10le", 9, 18)
    assert "codec" not in render_refill_video(tmp_path / "c.mp4", spec)   # H.264 as before
    with pytest.raises(ValueError, match="codec"):
        render_refill_video(tmp_path / "d.mp4", spec, codec="vp9")


@pytest.mark.parametrize("codec", CODECS)
def test_the_refill_is_timed_in_each_phone_format(tmp_path, codec):
    """The same scene encoded as each phone format is measured, with the true and the automatic
    ROI, within 15 % of the truth (2.30 s)."""
    path = tmp_path / f"{codec}.mp4"
    truth = render_refill_video(path, _spec(seed=21), codec=codec)
    for roi in (tuple(truth["roi"]), None):
        r = measure_crt(path, "knee", roi=roi)
        assert r.status == "ok", (codec, roi, r.reason)
        assert abs(r.crt_s / truth["crt_s"] - 1) < 0.15, (codec, roi, r.crt_s, truth["crt_s"])


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_the_generator_can_spend_a_phones_bit_rate(tmp_path, codec):
    """At ``bits_per_pixel`` the encoder aims at that bit rate instead of the spec's CRF, and the
    record says so."""
    spec = _spec(seed=11, post_s=1.0)
    path = tmp_path / "v.mp4"
    truth = render_refill_video(path, spec, codec=codec, bits_per_pixel=0.1)
    assert truth["bits_per_pixel"] == 0.1
    bpp = 8 * path.stat().st_size / truth["duration_s"] / (320 * 240 * 30)
    assert 0.07 < bpp < 0.13, bpp
    crf = render_refill_video(tmp_path / "crf.mp4", spec, codec=codec)
    assert "bits_per_pixel" not in crf
    with pytest.raises(ValueError, match="bits_per_pixel"):
        render_refill_video(tmp_path / "x.mp4", spec, bits_per_pixel=0)
