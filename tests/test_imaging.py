"""Photo decoding: formats, EXIF orientation, metadata stripping, draft mode and every bad input."""

from __future__ import annotations

import io
import zlib
import struct

import numpy as np
import pytest
from PIL import Image, ImageFile

from mottling.errors import (
    InputError,
    InputTooLargeError,
    UnprocessableInputError,
    UnsupportedMediaError,
)
from mottling.photo.decode import ImageLimits, decode_image
from tests.photos import encode, leg_photo

ORIENTATION = 0x0112
GPS_IFD = 0x8825


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return leg_photo(seed=3, score=2, skin_tone=6, size=192)


def _close(a: Image.Image, b: Image.Image, tol: float) -> bool:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean()) < tol


@pytest.mark.parametrize("fmt,params,tol", [
    ("JPEG", {"quality": 95}, 4.0),
    ("PNG", {}, 0.01),
    ("WEBP", {"lossless": True}, 0.01),
    ("HEIF", {"quality": 95}, 6.0),
])
def test_decodes_phone_formats(photo, fmt, params, tol):
    data = encode(photo, fmt, **params)
    image = decode_image(data)
    assert image.mode == "RGB"
    assert image.size == photo.size
    assert _close(image, photo, tol)


def test_bytes_path_and_file_object_agree(photo, tmp_path):
    data = encode(photo, "PNG")
    path = tmp_path / "leg.png"
    path.write_bytes(data)
    a, b, c = decode_image(data), decode_image(path), decode_image(io.BytesIO(data))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(np.asarray(a), np.asarray(c))
    assert np.array_equal(np.asarray(a), np.asarray(decode_image(str(path))))


def _oriented_photo_with_gps(fmt: str = "JPEG") -> bytes:
    """60x40 stored picture, left half red and right half blue, with EXIF Orientation 6 (display
    rotated 90 degrees clockwise) and a GPS position."""
    stored = Image.new("RGB", (60, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 30, 40))
    stored = stored.resize((600, 400), Image.NEAREST)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"          # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return encode(stored, fmt, exif=exif.tobytes(), quality=95)


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF"])
def test_exif_orientation_applied_and_metadata_dropped(fmt):
    data = _oriented_photo_with_gps(fmt)
    # the file really carries the GPS block (and, for JPEG, the orientation tag; HEIF moves it
    # into the container's rotation, which libheif applies)
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.getexif().get_ifd(GPS_IFD)
        if fmt == "JPEG":
            assert raw.getexif()[ORIENTATION] == 6
    image = decode_image(data)
    assert image.size == (400, 600)                      # upright: portrait
    px = np.asarray(image, np.float32)
    assert px[:250, :, 0].mean() > 200 and px[:250, :, 2].mean() < 50    # red on top
    assert px[350:, :, 2].mean() > 200 and px[350:, :, 0].mean() < 50    # blue below
    assert image.info == {}
    assert len(image.getexif()) == 0
    for fmt in ("JPEG", "PNG"):
        reencoded = encode(image, fmt)
        assert b"Exif" not in reencoded and b"PhoneMaker" not in reencoded


def test_jpeg_draft_mode_decodes_big_photos_small():
    big = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    data = encode(big, "JPEG", quality=85)
    small = decode_image(data, draft_size=512)
    assert small.size == (1000, 750)                     # libjpeg scaled by 1/4 while decoding
    assert decode_image(data).size == (500, 375)         # the default: 1/8
    assert min(small.size) >= 512
    full = decode_image(data, draft_size=None)
    assert full.size == (4000, 3000)


# --- bad inputs --------------------------------------------------------------------------


def _bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A genuine decompression bomb: a valid 1-bit PNG of 900 megapixels in ~100 kB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    comp = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    rows_per_piece = 256
    piece = row * rows_per_piece
    parts = [comp.compress(piece) for _ in range(height // rows_per_piece)]
    parts.append(comp.compress(row * (height % rows_per_piece)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _bomb_png()


def _truncated(photo: Image.Image, fmt: str) -> bytes:
    data = encode(photo, fmt)
    return data[: len(data) // 2]


BAD_INPUTS = {
    "zero bytes": (lambda p, b: b"", InputError),
    "truncated jpeg": (lambda p, b: _truncated(p, "JPEG"), InputError),
    "truncated png": (lambda p, b: _truncated(p, "PNG"), InputError),
    "truncated webp": (lambda p, b: _truncated(p, "WEBP"), InputError),
    "truncated heic": (lambda p, b: _truncated(p, "HEIF"), InputError),
    "jpeg header only": (lambda p, b: encode(p, "JPEG")[:200], InputError),
    "text": (lambda p, b: b"this is not a photo\n" * 20, UnsupportedMediaError),
    "random bytes": (lambda p, b: np.random.default_rng(0).bytes(5000), UnsupportedMediaError),
    "pdf": (lambda p, b: b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n", UnsupportedMediaError),
    "gif (not a phone format)": (lambda p, b: encode(p, "GIF"), UnsupportedMediaError),
    "decompression bomb": (lambda p, b: b, InputTooLargeError),
    "1x1 pixel": (lambda p, b: encode(Image.new("RGB", (1, 1), (200, 150, 120)), "PNG"),
                  UnprocessableInputError),
    "1x1 pixel jpeg": (lambda p, b: encode(Image.new("RGB", (1, 1)), "JPEG"),
                       UnprocessableInputError),
    "a thin strip": (lambda p, b: encode(Image.new("RGB", (2000, 3)), "PNG"),
                     UnprocessableInputError),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_every_bad_image_gets_one_clear_error(kind, photo, bomb):
    make, expected = BAD_INPUTS[kind]
    data = make(photo, bomb)
    with pytest.raises(InputError) as info:
        decode_image(data)
    err = info.value
    assert type(err) is expected, f"{kind}: {type(err).__name__}: {err}"
    message = str(err)
    assert message and "\n" not in message and len(message) < 200
    assert "Traceback" not in message and "PIL" not in message


def test_bomb_guard_does_not_depend_on_pillow_global(monkeypatch, bomb):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)     # someone switched Pillow's check off
    with pytest.raises(InputTooLargeError, match="megapixels"):
        decode_image(bomb)


def test_pixel_limit_is_configurable(photo):
    data = encode(photo, "PNG")
    with pytest.raises(InputTooLargeError):
        decode_image(data, ImageLimits(max_pixels=photo.width * photo.height - 1))
    assert decode_image(data, ImageLimits(max_pixels=photo.width * photo.height)).size == photo.size


def test_byte_limit(photo, tmp_path):
    data = encode(photo, "PNG")
    limits = ImageLimits(max_bytes=len(data) - 1)
    path = tmp_path / "leg.png"
    path.write_bytes(data)
    for source in (data, path, io.BytesIO(data)):
        with pytest.raises(InputTooLargeError, match="too large"):
            decode_image(source, limits)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="No such file"):
        decode_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="not a file|directory"):
        decode_image(tmp_path)


def test_truncated_images_stay_errors(photo):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(InputError):
        decode_image(_truncated(photo, "JPEG"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("mode", ["I;16", "RGBA", "P", "LA", "L", "1"])
def test_other_pixel_formats_become_faithful_rgb(mode):
    grey = Image.linear_gradient("L").resize((200, 150))
    if mode == "I;16":
        source = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    else:
        source = grey.convert(mode)
    image = decode_image(encode(source, "PNG"))
    assert image.mode == "RGB" and image.size == (200, 150)
    assert abs(float(np.asarray(image).mean()) - float(np.asarray(grey).mean())) < 3


@pytest.mark.parametrize("fmt", ["PNG", "HEIF"])
def test_big_photos_in_other_formats_are_reduced_like_jpeg(fmt):
    big = Image.linear_gradient("L").resize((1300, 975)).convert("RGB")
    data = encode(big, fmt)
    image = decode_image(data, draft_size=320)
    assert image.size == (-(-1300 // 3), -(-975 // 3))    # reduce(3) rounds up
    assert min(image.size) >= 320
    assert decode_image(data, draft_size=None).size == (1300, 975)


def test_a_stricter_pillow_global_still_gives_a_clean_error(monkeypatch, photo):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)     # Pillow raises above 2x this
    with pytest.raises(InputTooLargeError, match="too many pixels"):
        decode_image(encode(photo, "PNG"))
