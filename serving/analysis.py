"""The blocking work behind the endpoints: decoding, inference, overlays and CRT measurement.

Everything here is synchronous and runs in the threadpool, never on the event loop. The model is
loaded once (``load``) and shared: one ONNX Runtime session is safe for concurrent use. A
semaphore caps how many photos or videos are decoded and analysed at once, which bounds memory
when many large uploads arrive together.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from dataclasses import dataclass
from typing import Any

from PIL import Image

from mottling.errors import ModelError, MottlingError
from mottling.results import CrtResult, MottlingResult
from serving.settings import ServerSettings

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
        self._slots = threading.BoundedSemaphore(settings.analysis_concurrency)

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

    @property
    def model_version(self) -> str | None:
        return None if self.model is None else str(self.model.version)

    def require_model(self):
        if self.model is None or not self.ready:
            raise ModelError(f"the model is not available: {self.model_error or 'still loading'}")
        return self.model

    # -- analyses (blocking; call through the threadpool) ----------------------------------
    def score_photo(self, data: bytes, filename: str | None, overlay: bool) -> ScoredPhoto:
        from mottling.photo.decode import load_photo

        model = self.require_model()
        with self._slots:
            image = load_photo(data, model.input_size, _image_limits(self.settings)).image
            result = model.predict([image], paths=[filename])[0]
            overlay_png = None
            if overlay:
                from mottling.photo.overlay import draw_overlay

                overlay_png = _png_base64(draw_overlay(image, result), self.settings.overlay_max_side)
        return ScoredPhoto(result, overlay_png)

    def measure_video(self, data: bytes, site: str, roi, filename: str | None) -> CrtResult:
        from mottling.crt import measure_crt

        with self._slots:
            return measure_crt(data, site, roi=roi, path=filename,
                               thresholds=self.settings.thresholds,
                               limits=_video_limits(self.settings))

    def model_info(self) -> dict[str, Any]:
        model = self.require_model()
        return {"version": str(model.version), "sha256": model.sha256,
                "card": model.card, "metadata": model.metadata}
