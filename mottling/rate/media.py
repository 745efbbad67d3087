"""What the rating page is shown: photos without their metadata, videos as frames with their times.

Photos are decoded (``mottling.photo.decode``), turned upright (EXIF orientation) and re-encoded, so no EXIF field (a name, a
date, a ward, GPS) reaches the rater, and HEIC photos display in any browser.

Videos are decoded here with PyAV into one JPEG per frame plus the list of the frames' own
presentation timestamps. A browser's ``<video>`` seeks to the nearest keyframe or rounds times on
variable-rate footage, so stepping it "one frame" is not reliable; showing frame ``k`` as an image
and reading its time from ``t_s[k]`` is exact by construction. Times start at 0 at the first frame,
as in ``mottling crt``, so the rater's marks and the CRT module's ``release_s`` share one clock.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image

from mottling.errors import InputError, InputTooLargeError, UnsupportedMediaError
from mottling.media import HEAD_BYTES, VIDEO_DEMUXERS, sniff_format
from mottling.photo.decode import ImageLimits, decode_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderLimits:
    max_photo_bytes: int = 60 * 2**20
    max_photo_pixels: int = 60_000_000
    photo_long_side: int = 2048        # enough detail to zoom into the skin
    max_video_bytes: int = 300 * 2**20
    max_video_s: float = 60.0
    max_frames: int = 7200
    max_video_pixels: int = 2560 * 1440
    frame_long_side: int = 640         # a frame as the rater steps through it
    jpeg_quality: int = 88


@dataclass(frozen=True)
class VideoFrames:
    """Frame ``k`` is ``jpegs[k]``, shown at ``t_s[k]`` seconds after the first frame."""

    jpegs: tuple[bytes, ...]
    t_s: tuple[float, ...]
    width: int
    height: int

    @property
    def nbytes(self) -> int:
        return sum(len(j) for j in self.jpegs)


def render_photo(data: bytes, limits: RenderLimits = RenderLimits()) -> bytes:
    """A metadata-free, upright JPEG of the photo, at most ``photo_long_side`` pixels long.

    Decoding goes through ``mottling.photo.decode`` (the one road from a file to pixels), so the
    rater sees the photo turned exactly as the model and the training pipeline see it."""
    image = decode_image(data, ImageLimits(max_bytes=limits.max_photo_bytes,
                                           max_pixels=limits.max_photo_pixels),
                         draft_size=limits.photo_long_side)
    image.thumbnail((limits.photo_long_side, limits.photo_long_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=limits.jpeg_quality)   # no exif= : nothing carried over
    return out.getvalue()


def _frame_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    s = min(1.0, long_side / max(width, height))
    return max(2, int(round(width * s / 2)) * 2), max(2, int(round(height * s / 2)) * 2)


def decode_frames(data: bytes, limits: RenderLimits = RenderLimits()) -> VideoFrames:
    """Every frame of the video's main track, upright, as JPEG, in presentation order."""
    if not data:
        raise InputError("the video is empty (zero bytes)")
    if len(data) > limits.max_video_bytes:
        raise InputTooLargeError("the video is larger than the rating limit")
    demuxer = VIDEO_DEMUXERS.get(sniff_format(data[:HEAD_BYTES]) or "")
    if demuxer is None:
        raise UnsupportedMediaError("not a video file we read: MP4, MOV, WebM or Matroska")
    try:
        # A file object and a forced demuxer: nothing in the bytes can make FFmpeg open another file.
        container = av.open(io.BytesIO(data), mode="r", format=demuxer,
                            options={"enable_drefs": "0", "use_absolute_path": "0"})
    except (av.error.FFmpegError, ValueError, OSError) as err:
        raise UnsupportedMediaError(f"not a readable video ({type(err).__name__})") from None
    try:
        return _decode(container, limits)
    finally:
        container.close()


def _decode(container, limits: RenderLimits) -> VideoFrames:
    if not container.streams.video:
        raise UnsupportedMediaError("the file holds no video stream")
    stream = max(container.streams.video, key=lambda s: int(s.frames or 0))
    cc = stream.codec_context
    if (cc.width or 0) * (cc.height or 0) > limits.max_video_pixels:
        raise InputTooLargeError(f"the video frame is {cc.width}x{cc.height}; too large to rate")
    stream.thread_type = "AUTO"
    times: list[float] = []
    jpegs: list[bytes] = []
    size = (0, 0)
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if len(times) >= limits.max_frames or (times and frame.time - times[0] > limits.max_video_s):
                raise InputTooLargeError(f"the video is longer than {limits.max_video_s:.0f} s "
                                         f"or {limits.max_frames} frames; trim it to the refill")
            w, h = _frame_size(frame.width, frame.height, limits.frame_long_side)
            rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
            k = (int(round(frame.rotation or 0)) % 360) // 90 if hasattr(frame, "rotation") else 0
            if k:
                rgb = np.ascontiguousarray(np.rot90(rgb, k=k))
            size = (rgb.shape[1], rgb.shape[0])
            out = io.BytesIO()
            Image.fromarray(rgb).save(out, format="JPEG", quality=limits.jpeg_quality)
            times.append(float(frame.time))
            jpegs.append(out.getvalue())
    except av.error.FFmpegError as err:
        if not times:
            raise InputError(f"the video is corrupt ({type(err).__name__})") from None
        log.warning("video truncated after %d frames: %s", len(times), err)
    if len(times) < 2:
        raise InputError("the video has fewer than two frames")
    order = sorted(range(len(times)), key=lambda i: times[i])
    kept, t_kept = [], []
    for i in order:                                  # drop duplicated timestamps
        if t_kept and times[i] - t_kept[-1] <= 1e-6:
            continue
        kept.append(jpegs[i])
        t_kept.append(times[i])
    t0 = t_kept[0]
    return VideoFrames(jpegs=tuple(kept), t_s=tuple(round(t - t0, 6) for t in t_kept),
                       width=size[0], height=size[1])
