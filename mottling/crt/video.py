"""Decode a refill video into small upright YUV frames and their presentation timestamps.

Phone videos are often variable-rate, so every frame keeps its own presentation time and the nominal
frame rate is never used for timing. Frames are shrunk while decoding by sampling the decoder's own
Y, U and V planes on a regular grid (a colour mean over a spot needs few pixels, and no per-frame
scaler or RGB conversion runs), so memory stays bounded by ``VideoLimits`` whatever the source
resolution. The samples are stored plane by plane (each frame's Y, U and V contiguous), which makes
both the per-frame copy and the later per-plane reads cheap. The decoder may use several threads:
FFmpeg's frame and slice threading give the same frames, bit for bit, as one thread (a test checks
it on our videos), so the result does not depend on the machine. Colour stays in YUV: the means
over the spot are converted to RGB in float64 afterwards (``colour.py``), so a slow colour change
is not rounded into a staircase of whole RGB codes. Slow-motion video can be analysed at about
``VideoLimits.analysis_max_hz`` (off by default; 120 Hz measured): a refill lasts seconds, and
every analysed frame costs its sampling and its share of the colour series; from twice that rate
the frames no other frame refers to are not even decoded (the kept frames decode to the same bits
as in a full decode).
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from mottling.crt.colour import BT601_LIMITED, YuvMatrix, matrix_for
from mottling.errors import (
    InputError,
    InputTooLargeError,
    UnprocessableInputError,
    UnsupportedMediaError,
)
from mottling.media import HEAD_BYTES, VIDEO_DEMUXERS, sniff_format

log = logging.getLogger(__name__)

VideoSource = str | Path | bytes | bytearray | BinaryIO


@dataclass(frozen=True)
class VideoLimits:
    """Hard limits checked before and while decoding."""

    max_bytes: int = 300 * 1024 * 1024
    max_duration_s: float = 60.0
    max_frames: int = 7200
    max_pixels: int = 2560 * 1440          # a 4K frame (8.3 MP) is refused
    min_frames: int = 2
    analysis_long_side: int = 256          # frames are shrunk to this while decoding
    analysis_budget_bytes: int = 96 * 1024 * 1024  # all shrunk frames together
    decoder_threads: int = 0               # 0: FFmpeg's choice when a core is idle, else one
                                           # (see decoder_thread_count); n: n threads
    analysis_max_hz: float = 0.0           # >0: faster videos are analysed at about this rate
                                           # (frames closer than 0.6 of its period to the last one
                                           # kept are passed over; from 2x it, non-reference frames
                                           # are not even decoded); 0: every frame. Off by default:
                                           # at 120 a 240 fps x264 video costs 40% less CPU, but
                                           # the automatic ROI refused 3 more of 18 such videos and
                                           # a single dark B-frame goes unseen (docs/crt.md, s20-speed)


@dataclass(frozen=True)
class DecodedVideo:
    """Upright, shrunk frames. ``scale`` maps upright source pixels to analysis pixels."""

    yuv: np.ndarray           # (N, h, w, 3) uint8 Y, U, V samples, upright (a view of planar
                              # storage: yuv[i, ..., c] is contiguous)
    t_s: np.ndarray           # (N,) presentation times in seconds, starting at 0
    width: int                # upright display size of the source
    height: int
    rotation: int             # counterclockwise display rotation applied, degrees
    scale: float              # analysis pixels per source pixel
    codec: str
    matrix: YuvMatrix = BT601_LIMITED
    # (N,) True where the encoder coded the frame afresh (a key frame, or one passed over since
    # the frame kept before it): the P-frames before it may lag the scene, and it snaps back.
    # None where unknown.
    key: np.ndarray | None = None

    @property
    def frames(self) -> np.ndarray:
        """(N, h, w, 3) uint8 RGB (computed on demand; the analysis itself stays in YUV)."""
        rgb = self.matrix.to_rgb(self.yuv.astype(np.float32))
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

    @property
    def fps(self) -> float:
        """Mean frame rate measured from the timestamps (for reporting only)."""
        if len(self.t_s) < 2 or self.t_s[-1] <= self.t_s[0]:
            return float("nan")
        return (len(self.t_s) - 1) / float(self.t_s[-1] - self.t_s[0])


def _open(source: VideoSource, limits: VideoLimits):
    """Open ``source`` with the demuxer its own bytes name, never one FFmpeg guesses.

    A path is opened by Python and handed to FFmpeg as a file object, so no part of a file name is
    read as a protocol ("concat:", "subfile,") or a pattern ("%03d"); the demuxer is forced from the
    sniffed bytes, so text playlists (ffconcat, HLS) and image sequences, which open other files,
    are never reached.
    """
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise InputError("the video is empty (zero bytes)")
        if len(source) > limits.max_bytes:
            raise InputTooLargeError(
                f"the video is {len(source) / 2**20:.0f} MiB; the limit is "
                f"{limits.max_bytes / 2**20:.0f} MiB")
        source = io.BytesIO(bytes(source))
    owned = False   # a file object the caller passed stays the caller's to close
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"no such video file: {path}")
        size = path.stat().st_size
        if size == 0:
            raise InputError("the video is empty (zero bytes)")
        if size > limits.max_bytes:
            raise InputTooLargeError(
                f"the video is {size / 2**20:.0f} MiB; the limit is {limits.max_bytes / 2**20:.0f} MiB")
        source = path.open("rb")
        owned = True
    head = source.read(HEAD_BYTES)
    source.seek(0)
    demuxer = VIDEO_DEMUXERS.get(sniff_format(head) or "")
    if demuxer is None:
        _close_if(owned, source)
        raise UnsupportedMediaError(
            "not a video file we read: MP4, MOV, WebM or Matroska are accepted")
    try:
        container = av.open(source, mode="r", format=demuxer,
                            options={"enable_drefs": "0", "use_absolute_path": "0"})
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as err:
        _close_if(owned, source)
        # The bytes name a container we read, so this one is broken, e.g. an MP4 cut before its index.
        raise InputError(f"the video is truncated or corrupt ({_short(err)})") from None
    return container, (source if owned else None)


def _close_if(owned: bool, handle) -> None:
    if owned:
        handle.close()


def _short(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(":")[0].strip() or type(err).__name__


def _analysis_size(width: int, height: int, expected_frames: int, limits: VideoLimits) -> tuple[int, int]:
    long_side = limits.analysis_long_side
    # Keep every shrunk frame of the longest allowed video inside the memory budget.
    per_frame = limits.analysis_budget_bytes / max(expected_frames, 1) / 3
    long_side = min(long_side, int(math.sqrt(per_frame * max(width, height) / min(width, height))))
    long_side = max(long_side, 48)
    s = min(1.0, long_side / max(width, height))
    w = max(2, int(round(width * s / 2)) * 2)
    h = max(2, int(round(height * s / 2)) * 2)
    return w, h


def decode_video(source: VideoSource, limits: VideoLimits = VideoLimits()) -> DecodedVideo:
    """Decode ``source`` (path, bytes or binary file object) or raise an ``InputError`` subclass."""
    container, handle = _open(source, limits)
    try:
        return _decode(container, limits)
    finally:
        container.close()
        if handle is not None:
            handle.close()


def decoder_thread_count(limits: VideoLimits, load: float | None = None,
                         cores: int | None = None) -> int:
    """The decoder's ``thread_count``: ``limits.decoder_threads`` when set, otherwise 0 (FFmpeg
    picks, about one thread per core) while the machine has an idle core beside this process, and
    1 when it has none.

    Threads change only the speed (FFmpeg's frame and slice threading are bit-exact). They pay
    off on an idle core; on a busy machine their hand-offs cost CPU time and, waiting for each
    other's turn on a core, wall time too (measured on the 2-core test machine under load: one
    thread took 12-28% less CPU and 10-20% less wall time than FFmpeg's automatic three).
    ``load`` (one-minute load average) and ``cores`` (cores this process may use) are read from
    the system when not given.
    """
    if limits.decoder_threads > 0:
        return int(limits.decoder_threads)
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:      # not on Linux
            cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):   # no load average here: let FFmpeg decide
            return 0
    return 0 if cores > 1 and load <= cores - 1 else 1


def _decode(container, limits: VideoLimits) -> DecodedVideo:
    if not container.streams.video:
        if container.streams.audio:
            raise UnsupportedMediaError("the file holds audio only; a video stream is needed")
        raise UnsupportedMediaError("the file holds no video stream")
    stream = _main_video_stream(container.streams.video)
    cc = stream.codec_context
    if cc is None:      # FFmpeg knows no decoder for the stream's codec (found by the fuzz test)
        raise UnsupportedMediaError("the video stream uses a codec that cannot be decoded")
    width, height = int(cc.width or 0), int(cc.height or 0)
    if width <= 0 or height <= 0:
        raise UnsupportedMediaError("the video stream has no frame size; the file may be corrupt")
    if width * height > limits.max_pixels:
        raise InputTooLargeError(
            f"the video frame is {width}x{height} ({width * height / 1e6:.1f} MP); the limit is "
            f"{limits.max_pixels / 1e6:.1f} MP. Record at 1080p or lower")
    duration_s = _declared_duration(container, stream)
    if duration_s is not None and duration_s > limits.max_duration_s + 0.5:
        raise InputTooLargeError(
            f"the video lasts {duration_s:.0f} s; the limit is {limits.max_duration_s:.0f} s. "
            "Trim it to the press and the refill")
    declared_frames = int(stream.frames or 0)
    if declared_frames > limits.max_frames:
        raise InputTooLargeError(
            f"the video has {declared_frames} frames; the limit is {limits.max_frames}")
    rate = float(stream.average_rate or stream.guessed_rate or 30)
    expected = declared_frames or int(min(limits.max_duration_s, duration_s or limits.max_duration_s)
                                      * min(rate, 240)) or limits.max_frames
    w, h = _analysis_size(width, height, min(expected, limits.max_frames), limits)

    # Threads change the speed, never the frames (bit-exact decoding; tests/test_crt_video_threads.py).
    cc.thread_type = "AUTO"
    cc.thread_count = decoder_thread_count(limits)
    # The deblocking filter changes nothing that a colour mean over a spot can see; skipping it
    # makes H.264/HEVC decoding about a fifth faster.
    cc.options = {"skip_loop_filter": "all"}
    # A refill lasts seconds: above ``analysis_max_hz`` (slow-motion video) frames closer than 0.6
    # of its period (5 ms at 120 Hz) to the last frame kept are passed over (240 fps is analysed
    # at 120 Hz; 120 fps, even with its intervals jittered by 40%, keeps every frame), and from
    # twice that rate the decoder skips the frames no other frame refers to (B-frames an encoder left unreferenced; the frames
    # it keeps decode to the same bits, since nothing refers to the skipped ones). A stream of
    # I- and P-frames only, as phones' hardware encoders mostly write, is decoded whole and only
    # its sampling thinned.
    min_dt = 0.6 / limits.analysis_max_hz if limits.analysis_max_hz > 0 else 0.0
    skip_nonref = limits.analysis_max_hz > 0 and rate >= 1.9 * limits.analysis_max_hz
    if skip_nonref:
        cc.skip_frame = "NONREF"

    # Frames go straight into one preallocated array (grown by doubling if the count was wrong),
    # so no second copy of the whole video is ever made.
    sampler = _PlaneSampler(width, height, w, h)
    stack = np.empty(0)     # allocated at the first frame, once its display rotation is known
    count = 0
    decoded = 0
    times: list[float] = []
    keys: list[bool] = []
    key_pending = False     # a key frame among those passed over since the last one kept
    last_kept = -math.inf
    rotation = 0
    matrix = BT601_LIMITED
    try:
        for frame in container.decode(stream):
            if frame.width * frame.height > limits.max_pixels:
                raise InputTooLargeError(
                    f"a video frame is {frame.width}x{frame.height}; the limit is "
                    f"{limits.max_pixels / 1e6:.1f} MP")
            t = frame.time
            if t is None:
                continue
            decoded += 1
            if decoded > limits.max_frames:
                raise InputTooLargeError(f"the video has more than {limits.max_frames} frames")
            if times and t - times[0] > limits.max_duration_s:
                raise InputTooLargeError(
                    f"the video lasts more than {limits.max_duration_s:.0f} s; trim it to the "
                    "press and the refill")
            key_pending = key_pending or bool(frame.key_frame)
            if 0.0 <= t - last_kept < min_dt:
                continue        # too close to the frame kept last (slow-motion video)
            last_kept = t
            if count == 0:
                rotation = int(round(frame.rotation or 0)) % 360
                # Frames are turned upright as they are sampled: no second pass over the video.
                sampler.turn = (rotation // 90) % 4
                stack = np.empty((max(2, min(expected, limits.max_frames)), 3) + sampler.shape,
                                 dtype=np.uint8)
                matrix = matrix_for(frame)
            if count == len(stack):
                stack = np.concatenate([stack, np.empty_like(stack)])
            sampler.sample(frame, stack[count])
            count += 1
            times.append(float(t))
            keys.append(key_pending)
            key_pending = False
    except av.error.FFmpegError as err:
        raise InputError(f"the video is truncated or corrupt ({_short(err)})") from None

    if count < limits.min_frames:
        raise UnprocessableInputError(
            f"the video has {count} decodable frame{'s' if count != 1 else ''}; "
            "a refill needs a few seconds of video")
    if skip_nonref:     # frames were skipped on purpose: the decoded span must cover the video
        span = max(times) - min(times) if times else 0.0
        if duration_s and span < 0.9 * duration_s - 2 / rate:
            raise InputError(f"the video is truncated: {span:.1f} of {duration_s:.1f} s could "
                             "be decoded")
    elif declared_frames and decoded < 0.9 * declared_frames - 2:
        raise InputError(
            f"the video is truncated: {decoded} of {declared_frames} frames could be decoded")

    t_s = np.asarray(times, dtype=np.float64)
    order = np.argsort(t_s, kind="stable")
    t_s = t_s[order]
    keep = np.concatenate([[True], np.diff(t_s) > 1e-6])   # drop duplicated timestamps
    order = order[keep]
    t_s = t_s[keep]
    if len(t_s) < limits.min_frames:
        raise UnprocessableInputError("the video has fewer than two distinct frame times")
    stack = stack[:count]
    if not np.array_equal(order, np.arange(count)):
        stack = stack[order]
    k = (rotation // 90) % 4
    up_w, up_h = (height, width) if k % 2 else (width, height)
    scale = stack.shape[3] / up_w
    return DecodedVideo(yuv=np.moveaxis(stack, 1, -1), t_s=t_s - t_s[0], width=up_w, height=up_h,
                        rotation=rotation, scale=scale, codec=cc.name, matrix=matrix,
                        key=np.asarray(keys, dtype=bool)[order])


PLANAR_8BIT = {"yuv420p": (2, 2), "yuvj420p": (2, 2), "yuv422p": (2, 1), "yuvj422p": (2, 1),
               "yuv444p": (1, 1), "yuvj444p": (1, 1)}
# 10- and 12-bit planar (HEVC Main10 from an iPhone's "HDR Video", Main 4:2:2 10 from cameras):
# pixel format -> (chroma subsampling, bits beyond 8). Their samples are read straight from the
# 16-bit planes and rounded to 8-bit codes, as swscale would, at the analysis pixels only.
PLANAR_HIGH = {f"yuv{sub}p{bits}le": (PLANAR_8BIT[f"yuv{sub}p"], bits - 8)
               for sub in ("420", "422", "444") for bits in (10, 12)}


class _PlaneSampler:
    """Reads one Y, U and V sample per analysis pixel straight from the decoder's planes.

    The grid has a whole-pixel step ``k`` in the source; the sample sits at the middle of its
    k x k cell. 10- and 12-bit planar frames are read the same way and rounded to 8 bits; other
    pixel formats (NV12, P010) go through one reused scaler to yuv444p first.
    The slices for each pixel format are worked out once, so a frame costs three strided copies.
    """

    def __init__(self, width: int, height: int, w: int, h: int) -> None:
        self.k = max(1, int(math.ceil(max(width / w, height / h) - 1e-9)))
        self.w, self.h = max(1, width // self.k), max(1, height // self.k)
        self.off = self.k // 2
        self.src = (width, height)
        self._reformatter = None
        self._plans: dict[tuple[int, int], list] = {}
        self.turn = 0       # quarter turns counterclockwise that make the frame upright

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the upright samples."""
        return (self.w, self.h) if self.turn % 2 else (self.h, self.w)

    def _plan(self, sub: tuple[int, int]) -> list:
        """Per plane: (shape, first row, first column, row step, column step) of the samples,
        or (row indices, column indices)."""
        plan = self._plans.get(sub)
        if plan is None:
            k, o, h, w = self.k, self.off, self.h, self.w
            plan = []
            for c in range(3):
                sx, sy = (1, 1) if c == 0 else sub
                if k % sx == 0 and k % sy == 0:
                    # (shape, first row, first column, row step, column step): a strided view.
                    plan.append(((h, w), o // sy, o // sx, k // sy, k // sx))
                else:   # an odd step on a subsampled plane: rows and columns picked by index
                    plan.append(((o + k * np.arange(h)) // sy, (o + k * np.arange(w)) // sx))
            self._plans[sub] = plan
        return plan

    def sample(self, frame, out: np.ndarray) -> None:
        """Write the frame's samples, upright, into ``out`` (3, *self.shape)."""
        name = frame.format.name
        sub, extra = PLANAR_8BIT.get(name), 0
        if sub is None and name in PLANAR_HIGH:
            sub, extra = PLANAR_HIGH[name]
        if sub is None or (frame.width, frame.height) != self.src:
            if self._reformatter is None:
                from av.video.reformatter import VideoReformatter

                self._reformatter = VideoReformatter()
            frame = self._reformatter.reformat(frame, format="yuv444p", width=self.src[0],
                                               height=self.src[1])
            sub, extra = (1, 1), 0
        dtype = np.uint16 if extra else np.uint8
        size = dtype().itemsize
        for c, (plane, how) in enumerate(zip(frame.planes[:3], self._plan(sub))):
            line = plane.line_size
            if len(how) == 5:   # the samples as one strided view over the plane's buffer
                shape, r0, c0, rs, cs = how
                picked = np.ndarray(shape, dtype, plane, r0 * line + c0 * size,
                                    (rs * line, cs * size))
            else:       # two plain gathers: several times faster than one np.ix_ gather
                ys, xs = how
                rows = np.frombuffer(plane, dtype)[:line // size * plane.height]
                rows = rows.reshape(plane.height, line // size)
                picked = np.take(rows.take(ys, axis=0), xs, axis=1)
            if extra:   # to 8 bits, rounded half up (1023 -> 255, never past it)
                picked = np.minimum((picked + (1 << (extra - 1))) >> extra, 255)
            out[c] = np.rot90(picked, self.turn) if self.turn else picked


def _main_video_stream(streams):
    """The track holding the recording, not a cover picture or a one-frame thumbnail track.

    Some phones and editors put a still thumbnail in the first video track; the longest track (by
    declared frames, then duration) is the one with the refill in it.
    """
    def length(stream) -> tuple[int, int, float]:
        attached = int(bool(stream.disposition & av.stream.Disposition.attached_pic)) \
            if hasattr(av.stream, "Disposition") else 0
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        return (-attached, int(stream.frames or 0), duration)

    return max(streams, key=length)


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None
