"""The blocking work behind the endpoints: decoding, inference, overlays and CRT measurement.

The work itself is synchronous and never runs on the event loop. The model is loaded once
(``load``) and shared: one ONNX Runtime session is safe for concurrent use.

Photos and videos have separate capacity. A maximum-length video keeps a core busy for many
seconds while a bedside photo needs a fraction of one, so sharing one queue made photos wait behind
videos (p95 9 s with two videos running). Photos run in the threadpool, at most
``photo_concurrency`` at once; videos run in their own small pool of ``video_concurrency`` threads
whose CPU priority is lowered (``video_nice``), so a photo gets the CPU first and answers in about
its own time whatever the video load. At most ``max_videos_in_flight`` videos are accepted at once
(running or waiting), so waiting videos never hold every upload slot. The caps also bound memory
when large uploads pile up.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from PIL import Image
from starlette.concurrency import run_in_threadpool

from mottling.errors import ModelError, MottlingError
from mottling.results import CrtResult, MottlingResult
from serving.settings import ServerSettings
from serving.uploads import ServerBusyError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredPhoto:
    result: MottlingResult
    overlay_png: str | None  # base64 PNG of the overlay on the photo, for the bedside page


def _image_limits(settings: ServerSettings):
    from mottling.photo.decode import ImageLimits

    return ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)


def _video_limits(settings: ServerSettings):
    from mottling.crt.video import VideoLimits

    return VideoLimits(max_bytes=settings.max_video_bytes, max_duration_s=settings.max_video_s)


def _png_base64(image: Image.Image, max_side: int) -> str:
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=3)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class Analyzer:
    """Holds the model and runs the analyses; one per app."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.model: Any = None
        self.model_error: str | None = None
        self.ready = False
        self._photo_slots = threading.BoundedSemaphore(settings.photo_concurrency)
        self.videos_in_flight = 0
        self._video_pool = ThreadPoolExecutor(
            max_workers=settings.video_concurrency, thread_name_prefix="mottling-video",
            initializer=_lower_thread_priority, initargs=(settings.video_nice,))

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        """Load and warm up the model. A failure is kept (503 on what needs it), not raised, so
        the process stays alive for /healthz and for CRT, which needs no model."""
        try:
            from mottling.photo.model import load_model

            self.model = load_model(self.settings.model_path)
            if self.settings.warmup:
                blank = Image.new("RGB", (256, 256), (180, 140, 120))
                self.model.predict([blank])
            self.ready = True
            log.info("model %s loaded and warmed up", self.model.version)
        except (MottlingError, ImportError, OSError, ValueError, RuntimeError) as err:
            self.model = None
            self.ready = False
            self.model_error = str(err) or type(err).__name__
            log.error("model not loaded: %s", self.model_error)

    def close(self) -> None:
        """Stop the video threads (at shutdown; a video still running is left to finish)."""
        self._video_pool.shutdown(wait=False, cancel_futures=True)

    @property
    def model_version(self) -> str | None:
        return None if self.model is None else str(self.model.version)

    def require_model(self):
        if self.model is None or not self.ready:
            raise ModelError(f"the model is not available: {self.model_error or 'still loading'}")
        return self.model

    # -- analyses, from the event loop ------------------------------------------------------
    async def score_photo_async(self, data: bytes, filename: str | None, overlay: bool) -> ScoredPhoto:
        return await run_in_threadpool(self.score_photo, data, filename, overlay)

    async def measure_video_async(self, data: bytes, site: str, roi, filename: str | None) -> CrtResult:
        if self.videos_in_flight >= self.settings.max_videos_in_flight:
            raise ServerBusyError(f"{self.videos_in_flight} videos are being analysed or waiting; "
                                  "retry in a moment")
        self.videos_in_flight += 1      # only the event loop counts, so no lock
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._video_pool,
                                              partial(self.measure_video, data, site, roi, filename))
        finally:
            self.videos_in_flight -= 1

    # -- analyses (blocking; never call on the event loop) ---------------------------------
    def score_photo(self, data: bytes, filename: str | None, overlay: bool) -> ScoredPhoto:
        from mottling.photo.decode import load_photo

        model = self.require_model()
        with self._photo_slots:
            image = load_photo(data, model.input_size, _image_limits(self.settings)).image
            result = model.predict([image], paths=[filename])[0]
            overlay_png = None
            if overlay:
                from mottling.photo.overlay import draw_overlay

                overlay_png = _png_base64(draw_overlay(image, result), self.settings.overlay_max_side)
        return ScoredPhoto(result, overlay_png)

    def measure_video(self, data: bytes, site: str, roi, filename: str | None) -> CrtResult:
        from mottling.crt import measure_crt

        # Runs on a video-pool thread, which is the video cap: no semaphore needed.
        return measure_crt(data, site, roi=roi, path=filename, thresholds=self.settings.thresholds,
                           limits=_video_limits(self.settings))

    def model_info(self) -> dict[str, Any]:
        model = self.require_model()
        return {"version": str(model.version), "sha256": model.sha256,
                "card": model.card, "metadata": model.metadata}


def _lower_thread_priority(nice: int) -> None:
    """Raise this thread's nice value (Linux schedules threads one by one), so video work yields
    the CPU to photos. Elsewhere, or when refused, the videos simply run at normal priority."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as err:
        log.warning("could not lower the priority of a video thread: %s", err)
