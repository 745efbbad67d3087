"""Server configuration, read once from the environment (prefix ``MOTTLING_``).

Every limit the server enforces lives here, so an operator can see and change them in one place:
``MOTTLING_MAX_IMAGE_BYTES=10000000 mottling serve``. Lists (CORS origins) are JSON in the
environment: ``MOTTLING_CORS_ORIGINS='["https://ward.example.org"]'``.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mottling.scale import DEFAULT_THRESHOLDS, CrtThresholds

MB = 1_000_000


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOTTLING_", frozen=True, extra="ignore")

    # MOTTLING_MODEL_PATH: the ONNX model; None means the library's default (docs/design.md).
    model_path: Path | None = None
    # Run one prediction on a blank image at start-up; /readyz stays 503 until it has passed.
    warmup: bool = True

    # Upload limits, enforced while the body streams in (never on Content-Length alone).
    max_image_bytes: int = Field(20 * MB, gt=0)
    max_video_bytes: int = Field(100 * MB, gt=0)
    max_video_s: float = Field(60.0, gt=0)
    # Decoded pixels: a 200-megapixel photo or a decompression bomb is refused before it is expanded.
    max_image_pixels: int = Field(50_000_000, gt=0)

    # CRT thresholds of the hypoperfusion rule (ANDROMEDA-SHOCK finger, I-MICRO knee).
    crt_finger_s: float = Field(DEFAULT_THRESHOLDS.finger_s, gt=0)
    crt_knee_s: float = Field(DEFAULT_THRESHOLDS.knee_s, gt=0)

    # When set, every /v1/* request needs it in ``X-API-Key`` or ``Authorization: Bearer <key>``.
    api_key: SecretStr | None = None
    # Browser origins allowed to call the API from another site; empty = same-origin only.
    cors_origins: list[str] = []

    # Back-pressure: uploads in progress at once and the bytes they hold (past either, 503 +
    # Retry-After), and decodes or inferences running at once. Together they bound the server's
    # memory (benchmarks/upload_storm.py measures it).
    max_concurrent_uploads: int = Field(64, gt=0)
    # Upload bytes held in memory at once by one process (50 maximum-size photos fit).
    max_buffered_bytes: int = Field(1200 * MB, gt=0)
    # A body that sends nothing for this long, or (after the grace period) averages less than the
    # minimum rate, is cut off with a 408 so a stalled client frees its slot (0 turns the rate off).
    upload_idle_timeout_s: float = Field(10.0, gt=0)
    upload_min_rate_bytes_s: float = Field(16_000.0, ge=0)
    upload_rate_grace_s: float = Field(10.0, ge=0)

    # Photos and videos have separate capacity, so a long video never makes a bedside photo wait.
    # Photos: one per core, at most 4 (a decoded 50 MP photo is 150 MB); on 2 cores, 2 beat 4.
    photo_concurrency: int = Field(default_factory=lambda: min(4, max(2, os.cpu_count() or 2)), gt=0)
    # Videos: half the cores (one on 2 cores); more wait their turn, holding only their upload.
    video_concurrency: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), gt=0)
    # Video threads run at this lower CPU priority (Linux nice, per thread), so photos come first.
    video_nice: int = Field(10, ge=0, le=19)
    # Videos accepted at once (analysed or waiting their turn); past it a video gets a 503, so
    # queued videos can never take all the upload slots and memory away from the photos.
    max_videos_in_flight: int = Field(8, gt=0)
    # The overlay PNG the bedside page shows is drawn at most this many pixels on its long side.
    overlay_max_side: int = Field(1024, gt=0)

    @cached_property
    def thresholds(self) -> CrtThresholds:
        return CrtThresholds(finger_s=self.crt_finger_s, knee_s=self.crt_knee_s)
