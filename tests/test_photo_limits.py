"""One pixel limit for every front end, and a lower one per format whose decoder costs more memory.

The limit used to be defined twice (the library's 64 MP, the server's 50 MP); WebP at either cost
about 750 MB to decode, because Pillow's WebP decoder holds four full-size RGBA copies. Each case
here is refused from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mottling.errors import InputTooLargeError
from mottling.photo.decode import (
    DECODE_BUDGET_BYTES,
    DECODER_FIXED_BYTES,
    DEFAULT_LIMITS,
    MAX_PIXELS,
    ImageLimits,
    decode_image,
)
from mottling.rate.media import RenderLimits
from serving.app import create_app
from serving.settings import ServerSettings
from tests.serving_support import tiny_model


def _webp(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (192, 144, 128)).save(out, format="WEBP", quality=80)
    return out.getvalue()


def test_the_pixel_limit_is_defined_once_and_the_server_reads_it(monkeypatch):
    monkeypatch.delenv("MOTTLING_MAX_IMAGE_PIXELS", raising=False)
    assert DEFAULT_LIMITS.max_pixels == MAX_PIXELS == 50_000_000
    assert ServerSettings().max_image_pixels == MAX_PIXELS
    assert RenderLimits().max_photo_pixels == MAX_PIXELS                # the rater page too
    monkeypatch.setenv("MOTTLING_MAX_IMAGE_PIXELS", "12000000")          # still configurable
    assert ServerSettings().max_image_pixels == 12_000_000


def test_every_format_fits_the_decode_budget_at_its_own_limit():
    # the measured cost model: JPEG and PNG up to the pixel limit, WebP far lower
    assert DEFAULT_LIMITS.pixel_limit("JPEG") == DEFAULT_LIMITS.pixel_limit("PNG") == MAX_PIXELS
    assert 12_000_000 < DEFAULT_LIMITS.pixel_limit("WEBP") < 13_000_000   # a 12 MP phone WebP passes
    # a format not measured counts as the worst
    assert DEFAULT_LIMITS.pixel_limit("XYZ") == DEFAULT_LIMITS.pixel_limit("WEBP")
    half = ImageLimits(max_decode_bytes=DECODE_BUDGET_BYTES // 2)
    assert half.pixel_limit("WEBP") < DEFAULT_LIMITS.pixel_limit("WEBP") / 2
    assert half.pixel_limit("PNG") < MAX_PIXELS
    with pytest.raises(ValueError):
        ImageLimits(max_decode_bytes=0)


def test_a_large_webp_is_refused_from_its_header_with_what_to_do():
    data = _webp(4200, 4000)                        # 16.8 MP: within the pixel limit, not WebP's
    t0 = time.perf_counter()
    with pytest.raises(InputTooLargeError) as err:
        decode_image(data)
    assert time.perf_counter() - t0 < 0.5          # refused before decoding (a decode takes ~1 s)
    message = str(err.value)
    assert "WebP" in message and "Re-export it as JPEG" in message and "50 megapixels" in message
    assert min(decode_image(_webp(4000, 3000)).size) >= 320    # a 12 MP phone WebP is read


def test_the_server_answers_413_for_it(tmp_path):
    settings = ServerSettings(model_path=tiny_model(tmp_path / "model"), warmup=False)
    with TestClient(create_app(settings)) as client:
        resp = client.post("/v1/mottling", files={"image": ("big.webp", _webp(4200, 4000))})
    assert resp.status_code == 413
    assert "Re-export it as JPEG" in resp.json()["error"]


def _grainy(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_the_encoded_file_counts_against_the_budget_too():
    """A grainy file is held (and copied) while it is decoded: a large one is refused where a
    one-colour file of the same pixel count passes."""
    def png(image: Image.Image) -> bytes:
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    flat, grainy = png(Image.new("RGB", (600, 400), (192, 144, 128))), png(_grainy(600, 400))
    assert len(grainy) > 600_000 > 20 * len(flat)
    limits = ImageLimits(max_decode_bytes=DECODER_FIXED_BYTES + 4 * 600 * 400 + 300_000)
    assert decode_image(flat, limits, draft_size=None).size == (600, 400)
    with pytest.raises(InputTooLargeError, match=r"0\.7 MB\) would need more than"):
        decode_image(grainy, limits, draft_size=None)


def test_jpeg_counts_the_pixels_of_its_draft_mode_decode():
    out = io.BytesIO()
    _grainy(2560, 1920).save(out, format="JPEG", quality=90)
    data = out.getvalue()
    # enough for the file and a 1/4-scale decode (640x480), far too little for a full one
    limits = ImageLimits(max_decode_bytes=DECODER_FIXED_BYTES + len(data) + 4 * 640 * 480 + 65536)
    assert decode_image(data, limits, draft_size=320).size == (640, 480)
    with pytest.raises(InputTooLargeError):
        decode_image(data, limits, draft_size=None)
