"""Synthetic capillary-refill videos with exact ground truth (issue 2, generator 2).

Each video shows skin at rest, then pressed (a glass slide on the finger pulp, or the examiner's
fingertip on the knee), then released. After release the pressed skin recovers along a known
curve (``refill_curves.py``); ``s(t)`` is the blanching fraction, 1 at release and 0 at baseline:
``pixel = baseline + s(t) * (blanched - baseline)`` inside the contact patch.

The parts: ``refill_spec`` (parameters and their sampling), ``refill_curves`` (the recovery
curves and their CRT), ``refill_scene`` (still layers: skin, blanched patch, slide, fingertip),
``refill_frames`` (frame times and per-frame drawing). This module encodes (H.264, yuv420p, MP4,
each frame's true ``pts`` in a 1/90000 time base) and writes the truth.

``truth.json`` (a JSON list, one record per video; see ``render_refill_video``) follows the shared
contract in the project notes. ``rotation`` is the container's display rotation as PyAV's
``VideoFrame.rotation`` reads it (degrees counter-clockwise); the upright frame is
``np.rot90(decoded, k=rotation // 90)``. ``width``, ``height`` and ``roi`` are in upright pixels.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mottling.skin import ita_degrees
from mottling.synth.refill_curves import RefillCurve
from mottling.synth.refill_frames import TICKS_PER_S, RenderedFrames, blanch_signal, frame_pts
from mottling.synth.refill_spec import (
    BROKEN_KINDS,
    BROKEN_REASONS,
    CRT_RANGE_S,
    RefillSpec,
    at_resolution,
    break_spec,
    clean_spec,
    sample_spec,
    spec_from_dict,
)

log = logging.getLogger(__name__)
# 0.3: phone-like key frames (RefillSpec.gop_s); 0.3.1: a video turned by 90/270 degrees draws its
# flicker bands along the sensor's rows (the upright picture's columns), not the upright rows
GENERATOR_VERSION = "videos-0.3.1"
TIME_BASE = Fraction(1, TICKS_PER_S)

__all__ = ["BROKEN_KINDS", "BROKEN_REASONS", "CODECS", "CRT_RANGE_S", "GENERATOR_VERSION",
           "RefillCurve", "RefillSpec", "RenderedFrames", "blanch_signal", "break_spec",
           "clean_spec", "frame_pts", "generate_videos", "parse_keyframes", "render_refill_video",
           "sample_spec", "spec_from_dict", "truth_record"]


# The formats phones record in, each with the YUV matrix and tags its files carry:
# - "h264": H.264 8-bit, untagged (FFmpeg's BT.601 conversion); what the generator has always
#   written, byte for byte.
# - "hevc": HEVC 8-bit tagged BT.709, limited range (iPhones set to "High Efficiency" with HDR off,
#   and many Android phones).
# - "hevc10-hlg": HEVC Main10, BT.2020 matrix and primaries, HLG transfer, limited range: an
#   iPhone's default since the iPhone 12 ("HDR Video" on). The frames are the renderer's own sRGB
#   pixels converted with the BT.2020 matrix to 10-bit codes and tagged HLG, so the file exercises
#   the container, the bit depth, the matrix and the tags a decoder meets, not an HDR tone curve
#   (real HLG puts skin at other code values; the colour signal is a ratio, which the transfer
#   scales but does not delay).
CODECS = ("h264", "hevc", "hevc10-hlg")
# What phones spend on a video, in bits per pixel per frame (bit rate / (width x height x fps)):
# an iPhone writes 1080p30 H.264 at about 16 Mbit/s (0.26), HEVC at about 8 (0.13) and 1080p240
# slow motion in HEVC at about 64 (0.13); a messaging app's copy (about 1 Mbit/s at 848x480,
# 30 fps) is about 0.08. (Small frames need more bits per pixel than 1080p for the same
# quality, so these are on the harsh side at the generator's 240-640 px.) The generator's own
# default, a constant rate factor of 18-28, spends a median 0.044 with x264 (own 11000000,
# quartiles 0.02-0.16) and 0.007 with x265 (``benchmarks/crt_accuracy.py`` prints the bit rate
# of the set it scores).
PHONE_BITS_PER_PIXEL = {"iPhone H.264 original": 0.26, "iPhone HEVC original": 0.13,
                       "messaging copy": 0.08}
_HEVC = {  # codec -> (pix_fmt, swscale matrix name, colorspace, primaries, transfer) tags
    "hevc": ("yuv420p", "itu709", 1, 1, 1),
    "hevc10-hlg": ("yuv420p10le", "bt2020", 9, 9, 18),
}


def render_refill_video(path: str | Path, spec: RefillSpec, *, b_frames: bool = True,
                        faststart: bool = False, codec: str = "h264",
                        bits_per_pixel: float | None = None) -> dict:
    """Render ``spec`` to an MP4 at ``path`` (H.264 unless ``codec`` says another of ``CODECS``)
    and return its truth record (which names the codec, ``"codec"``, when it is not H.264).

    ``bits_per_pixel``: encode at a phone's bit rate (this many bits per pixel and frame, see
    ``PHONE_BITS_PER_PIXEL``) instead of the spec's constant rate factor; the record then says so
    (``"bits_per_pixel"``).

    ``path`` in the record is ``str(path)``; ``generate_videos`` rewrites it relative to the
    output folder. ``b_frames=False`` writes I- and P-frames only, as phones' hardware encoders
    mostly do; ``faststart`` puts the index before the frames (a streamable file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    video = RenderedFrames(spec)
    container, stream = _open_writer(path, spec, b_frames, faststart, codec, bits_per_pixel)
    k_rot = -(spec.rotation // 90)
    hevc = _HEVC.get(codec)
    try:
        for pts, pixels in video:
            if k_rot:
                pixels = np.ascontiguousarray(np.rot90(pixels, k=k_rot))
            vf = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if hevc is not None:    # the codec's own matrix, not the encoder's BT.601 default
                vf = vf.reformat(format=hevc[0], dst_colorspace=hevc[1], dst_color_range=1)
            vf.pts = int(pts)
            vf.time_base = TIME_BASE
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    scene = video.scene
    record = truth_record(spec, path, video.pts, scene.roi, scene.roi_baseline_rgb,
                          scene.roi_blanched_rgb, video.displacement_px)
    if codec != "h264":
        record["codec"] = codec
    if bits_per_pixel is not None:
        record["bits_per_pixel"] = bits_per_pixel
    return record


def _open_writer(path: Path, spec: RefillSpec, b_frames: bool = True, faststart: bool = False,
                 codec: str = "h264", bits_per_pixel: float | None = None):
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    if bits_per_pixel is not None and not bits_per_pixel > 0:
        raise ValueError(f"bits_per_pixel must be > 0, got {bits_per_pixel!r}")
    container = av.open(str(path), mode="w", format="mp4",
                        options={"movflags": "faststart"} if faststart else {})
    options = {"preset": spec.preset}
    if bits_per_pixel is None:
        options["crf"] = str(spec.crf)
    params = [] if b_frames else ["bframes=0"]
    if spec.gop_s is not None:
        keyint = max(1, round(spec.gop_s * spec.fps_nominal))
        params += [f"keyint={keyint}", f"min-keyint={keyint}", "scenecut=0"]
    hevc = _HEVC.get(codec)
    if hevc is None:
        if params:
            options["x264-params"] = ":".join(params)
        stream = container.add_stream("libx264", rate=Fraction(spec.fps_nominal), options=options)
    else:
        # One thread and no thread pool: x265 then writes the same file every time.
        params += ["pools=none", "frame-threads=1", "log-level=error"]
        options["x265-params"] = ":".join(params)
        stream = container.add_stream("libx265", rate=Fraction(spec.fps_nominal), options=options)
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc = hevc[2:]
        ctx.color_range = 1     # limited ("tv") range, as phones write
    if spec.rotation in (90, 270):
        stream.width, stream.height = spec.height, spec.width
    else:
        stream.width, stream.height = spec.width, spec.height
    if bits_per_pixel is not None:  # average bit rate, as a phone's encoder aims at one
        stream.bit_rate = round(bits_per_pixel * spec.width * spec.height * spec.fps_nominal)
    stream.pix_fmt = "yuv420p" if hevc is None else hevc[0]
    stream.time_base = TIME_BASE
    stream.codec_context.time_base = TIME_BASE
    stream.thread_count = 1  # x264 and x265 are bit-exact only single-threaded
    if spec.rotation:
        stream.set_display_rotation(spec.rotation)
    return container, stream


# --------------------------------------------------------------------------------------------
# Truth


def truth_record(spec: RefillSpec, path: Path, pts: np.ndarray, roi, base_rgb,
                 blanched_rgb, displacement_px: np.ndarray | None = None) -> dict:
    """The truth record of one rendered video: the shared contract plus extra detail.

    Contract fields: ``path``; ``site`` (finger/knee); ``skin_tone`` (Monk 1-10);
    ``fps_nominal``; ``vfr``; ``width``/``height`` (upright display size); ``rotation`` (display
    rotation in the container, 0/90/180/270, CCW as PyAV's ``VideoFrame.rotation`` reads it mod
    360); ``press_start_s`` (contact; the slide/fingertip arrives over the 0.3 s before);
    ``release_s``; ``crt_s`` (release to s = 0.1); ``tau_s`` (mono/delayed: the curve's tau;
    bi: ``crt_s / ln 10``); ``curve`` (``{"kind": "mono", "tau_s"}``,
    ``{"kind": "delayed", "tau_s", "delay_s"}`` or
    ``{"kind": "bi", "tau_fast_s", "tau_slow_s", "fast_weight"}``); ``roi`` [x, y, w, h] upright
    pixels inside the fully blanched patch; ``broken`` (null or a ``BROKEN_KINDS`` name);
    ``expected_status`` ("ok"/"rejected"); ``seed``; ``generator_version``.
    For ``no_release``, ``release_s``, ``crt_s``, ``tau_s`` and ``curve`` are null. Times are on
    the video's own presentation timestamps (first frame at 0).

    Extra: ``ita`` (of the ROI's baseline colour), ``frames``, ``duration_s`` (last pts),
    ``roi_baseline_rgb`` / ``roi_blanched_rgb`` (ROI mean sRGB 0-255 before noise, gain and
    encoding; s is the projection on their difference), ``blanch_contrast``, ``crf``, ``gop_s``
    (seconds between key frames; null: x264's default, every 250 frames and at scene cuts),
    ``broken_at_s`` (when the fault starts), ``spec`` (every ``RefillSpec`` field, to re-render).
    ``expected_reason``: the reason category a broken video must be rejected with (null when
    clean). ``motion_px``: the largest displacement of the view from the first frame, in pixels,
    over the frames before the fault (``motion_pct``: the same in % of the frame's short side);
    ``motion_px_by_frame``: that displacement for every frame. ``clipped_channel``: "red" when the
    exposure clips red on the spot, else null.
    """
    disp = np.zeros(len(pts)) if displacement_px is None else np.asarray(displacement_px)
    t_s = np.asarray(pts) / TICKS_PER_S
    before_fault = disp if spec.broken_at_s is None else disp[t_s < spec.broken_at_s]
    motion_px = float(before_fault.max()) if len(before_fault) else 0.0
    released = spec.broken != "no_release"
    crt = spec.curve.crt_s if released else None
    return {
        "path": str(path),
        "site": spec.site,
        "skin_tone": spec.skin_tone,
        "ita": round(ita_degrees(np.asarray(base_rgb) / 255.0), 2),
        "fps_nominal": spec.fps_nominal,
        "vfr": spec.vfr,
        "frames": int(len(pts)),
        "duration_s": float(pts[-1] / TICKS_PER_S) if len(pts) else 0.0,
        "width": spec.width,
        "height": spec.height,
        "rotation": spec.rotation,
        "press_start_s": spec.press_start_s,
        "release_s": spec.release_s if released else None,
        "crt_s": crt,
        "tau_s": spec.curve.equivalent_tau_s if released else None,
        "curve": spec.curve.to_dict() if released else None,
        "roi": [int(v) for v in roi],
        "roi_baseline_rgb": [round(float(v), 3) for v in base_rgb],
        "roi_blanched_rgb": [round(float(v), 3) for v in blanched_rgb],
        "blanch_contrast": spec.blanch_contrast,
        "crf": spec.crf,
        "gop_s": spec.gop_s,
        "broken": spec.broken,
        "broken_at_s": spec.broken_at_s,
        "expected_status": "rejected" if spec.broken else "ok",
        "expected_reason": BROKEN_REASONS.get(spec.broken) if spec.broken else None,
        "motion_px": round(motion_px, 2),
        "motion_pct": round(100 * motion_px / min(spec.width, spec.height), 2),
        "motion_px_by_frame": [round(float(v), 2) for v in disp],
        "clipped_channel": "red" if spec.clip_red else None,
        "seed": spec.seed,
        "generator_version": GENERATOR_VERSION,
        "spec": _spec_dict(spec),
    }


def _spec_dict(spec: RefillSpec) -> dict:
    d = asdict(spec)
    d["curve"] = spec.curve.to_dict()
    return d


# --------------------------------------------------------------------------------------------
# Batch


def _render_job(args: tuple[str, str, RefillSpec, str, float | None]) -> dict:
    out_dir, rel, spec, codec, bpp = args
    rec = render_refill_video(Path(out_dir) / rel, spec, codec=codec, bits_per_pixel=bpp)
    rec["path"] = rel
    return rec


def parse_keyframes(keyframes: str) -> float | None | str:
    """"mixed" (each spec's own), None (x264's default) or a key-frame interval in seconds."""
    if keyframes in ("mixed", "x264"):
        return None if keyframes == "x264" else "mixed"
    try:
        gop = float(keyframes)
    except ValueError:
        gop = -1.0
    if not gop > 0:
        raise ValueError(f"keyframes must be 'mixed', 'x264' or seconds > 0, got {keyframes!r}")
    return gop


def generate_videos(n: int, out_dir: str | Path, seed: int = 0, broken_fraction: float = 0.15,
                    site: str = "both", workers: int = 1, *,
                    duration_scale: float = 1.0, keyframes: str = "mixed",
                    codec: str = "h264", bits_per_pixel: float | None = None,
                    min_side: int | None = None, progress: bool = True) -> Path:
    """Render ``n`` videos under ``out_dir/videos/`` and write ``out_dir/truth.json``.

    Video ``i`` depends only on ``(seed, i)``, so ``workers`` changes nothing but speed.
    ``keyframes``: "mixed" keeps each video's drawn key-frame interval (mostly a phone's 0.5-2 s),
    "x264" gives every video x264's default, a number of seconds gives every video that interval;
    nothing else changes, so one seed rendered both ways is the same cases side by side.
    ``codec`` (one of ``CODECS``) and ``bits_per_pixel`` (a phone's bit rate instead of each
    spec's constant rate factor) likewise change only how the same frames are encoded.
    ``min_side``: film every video with at least this many pixels on its shorter side, as phones
    do (720 and up; the drawn sizes are 180-640), see ``refill_spec.at_resolution``; the scene is
    then drawn afresh at that size, so these are not the same frames scaled.
    ``progress`` shows a bar on stderr.
    """
    gop = parse_keyframes(keyframes)
    from tqdm import tqdm

    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(n):
        spec = sample_spec(np.random.default_rng([seed, i]), i, site, broken_fraction,
                           duration_scale=duration_scale)
        if gop != "mixed":
            spec = replace(spec, gop_s=gop)
        spec = at_resolution(spec, min_side)
        jobs.append((str(out_dir), f"videos/refill_{i:05d}.mp4", spec, codec, bits_per_pixel))
    if workers > 1 and n > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, n), mp_context=ctx) as pool:
            records = list(tqdm(pool.map(_render_job, jobs), total=n, unit="video",
                                disable=not progress))
    else:
        records = []
        for job in tqdm(jobs, unit="video", disable=not progress):
            records.append(_render_job(job))
            log.info("rendered %s", job[1])
    truth = out_dir / "truth.json"
    truth.write_text(json.dumps(records, indent=1) + "\n")
    config = {"n": n, "seed": seed, "broken_fraction": broken_fraction, "site": site,
              "duration_scale": duration_scale, "keyframes": keyframes,
              "generator_version": GENERATOR_VERSION}
    if codec != "h264":
        config["codec"] = codec
    if bits_per_pixel is not None:
        config["bits_per_pixel"] = bits_per_pixel
    if min_side is not None:
        config["min_side"] = min_side
    (out_dir / "synth_videos_config.json").write_text(json.dumps(config, indent=1) + "\n")
    return truth
