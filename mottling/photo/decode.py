"""Photo decoding with hard limits: bytes or a path in, one clean upright RGB image out.

Why each step is here:
- Only the formats phones produce are opened (JPEG/MPO, PNG, WebP, HEIC/HEIF), which keeps the rest
  of Pillow's decoders, and their attack surface, out of reach of an upload.
- The pixel limit is checked on the header, before a single pixel is decoded, and it is ours: it does
  not depend on Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` (which anyone may have set to
  ``None``). Pillow's own bomb check still runs first and is mapped to the same error.
- JPEG draft mode lets libjpeg decode a 12-megapixel phone photo straight at 1/2, 1/4 or 1/8 scale
  (DCT scaling), several times faster than a full decode followed by a resize.
- Shrink before widening: other formats are converted to 8-bit RGB and box-reduced strip by strip,
  so the only full-size buffer is the decoder's own (a 49 MP 16-bit greyscale PNG once cost 1.3 GB
  through int64 and RGB copies; now about 110 MB; ``benchmarks/photo_decode_memory.py``). HEIC is
  read from libheif's own buffer rather than through pillow-heif's full-size Pillow copy.
- EXIF orientation is applied (after shrinking, to the small picture), and every piece of metadata
  (EXIF, GPS, ICC, XMP, comments) is dropped: nothing returned from here can leak where or when a
  photo was taken.
- ``load_photo`` is the one entry point front ends use; it fixes the draft size from the model's
  input size, so training, evaluation and inference see the same pixels.
- ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never touched, so a truncated file is an error, not a
  silently grey-padded picture.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from mottling.errors import (
    InputError,
    InputTooLargeError,
    UnprocessableInputError,
    UnsupportedMediaError,
)

log = logging.getLogger(__name__)

try:  # HEIC/HEIF (iPhone photos). Registering an opener only adds a format to Pillow.
    import pillow_heif

    pillow_heif.register_heif_opener()
    _HEIF_FORMATS: tuple[str, ...] = ("HEIF",)
except ImportError:  # pragma: no cover - pillow-heif is a base dependency
    _HEIF_FORMATS = ()

# Pillow format names we open. MPO (the multi-picture JPEG many phones write) is opened through the
# JPEG entry in recent Pillow and has its own entry in older ones.
Image.init()
ACCEPTED_FORMATS = tuple(f for f in ("JPEG", "MPO", "PNG", "WEBP") + _HEIF_FORMATS if f in Image.OPEN)
FORMATS_IN_WORDS = "JPEG, PNG, WebP or HEIC"

# Both sides stay at least this many pixels when JPEG draft mode shrinks a photo while decoding: a
# 12 MP phone photo (4032x3024) then decodes at 1/8 scale, 504x378, more than the model and the
# quality checks look at.
DEFAULT_DRAFT_SIZE = 320
ORIENTATION_TAG = 0x0112

ImageSource = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]


@dataclass(frozen=True)
class ImageLimits:
    """Hard limits on a photo. Exceeding one raises an ``InputError`` subclass."""

    max_bytes: int = 64 * 1024 * 1024     # the encoded file
    max_pixels: int = 64_000_000          # width x height from the header: 48/50 MP phones pass, 200 MP does not
    min_side: int = 32                    # fewer pixels than this on a side cannot show a leg

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.min_side <= 0:
            raise ValueError("image limits must be positive")


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class Photo:
    """A decoded photo: the pixels every measurement sees, and the size the camera stored.

    ``full_size`` is the upright size before any shrinking; anything drawn on the original photo
    (a mask, landmark pixels in a manifest) is scaled by ``image.size / full_size``.
    """

    image: Image.Image            # upright 8-bit RGB, no metadata
    full_size: tuple[int, int]    # upright (width, height) of the stored photo


def draft_size_for(input_size: int) -> int:
    """The draft-size rule: shrink no further than the model's input side, nor below 320 px."""
    return max(DEFAULT_DRAFT_SIZE, int(input_size))


def load_photo(data: ImageSource, input_size: int, limits: ImageLimits = DEFAULT_LIMITS) -> Photo:
    """Bytes, a path or a file object -> the upright photo a model of ``input_size`` scores.

    This is the one road from a file to the model: training, evaluation, the CLI, batch and the
    HTTP service all call it, so a photo stored sideways (EXIF orientation) or at 12 MP is seen
    the same way when a model learns from it and when it is scored. Errors as ``decode_image``.
    """
    return decode_photo(data, limits, draft_size=draft_size_for(input_size))


def decode_image(data: ImageSource, limits: ImageLimits = DEFAULT_LIMITS,
                 draft_size: int | None = DEFAULT_DRAFT_SIZE) -> Image.Image:
    """Decode a photo to an upright RGB image with no metadata (``decode_photo(...).image``)."""
    return decode_photo(data, limits, draft_size).image


def decode_photo(data: ImageSource, limits: ImageLimits = DEFAULT_LIMITS,
                 draft_size: int | None = DEFAULT_DRAFT_SIZE) -> Photo:
    """Decode a photo to an upright RGB image with no metadata, and its stored size.

    ``data`` is the encoded bytes, a path or a binary file object. ``draft_size`` shrinks the photo
    by an integer factor as long as both sides stay at least that many pixels: JPEG while decoding
    (draft mode), other formats by box reduction right after it, before any conversion widens the
    pixels; ``None`` keeps the full size. Raises ``InputError`` (empty, truncated, corrupt),
    ``UnsupportedMediaError`` (not an image we read), ``InputTooLargeError`` (bytes or pixels over
    the limit, decompression bomb) or ``UnprocessableInputError`` (too small to analyse).
    """
    raw = _read_bytes(data, limits)
    if not raw:
        raise InputError("The file is empty (0 bytes).")

    try:
        with Image.open(io.BytesIO(raw), formats=ACCEPTED_FORMATS) as im:
            _check_size(im.size, limits)
            stored_size = im.size
            if im.format == "HEIF":
                # libheif applies the HEIF rotation and mirroring itself (and pillow-heif resets the
                # EXIF tag to 1 so that nothing turns the picture twice)
                orientation = 1
                rgb = _heif_to_rgb(raw, draft_size)
            else:
                if draft_size and im.format in ("JPEG", "MPO"):
                    im.draft("RGB", (draft_size, draft_size))
                im.load()
                orientation = _orientation(im)
                rgb = _shrink_to_rgb(im, draft_size)
        del raw
        upright = _upright(rgb, orientation)
    except UnidentifiedImageError as err:
        raise UnsupportedMediaError(
            f"This is not an image Mottling can read; send a {FORMATS_IN_WORDS} photo.") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own process-wide check fired first (someone set it below our limit)
        raise InputTooLargeError(
            "The image has too many pixels to decode safely (a decompression bomb?).") from err
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error, zlib.error,
            IndexError, TypeError) as err:
        # Pillow and libheif report truncation and corruption through all of these.
        log.debug("decode failed: %r", err)
        raise InputError(
            "The image file is truncated or corrupt and cannot be decoded.") from err

    _check_min_side(upright.size, limits)
    full_size = stored_size[::-1] if orientation in _SWAPS_SIDES else stored_size
    return Photo(upright, (int(full_size[0]), int(full_size[1])))


def _read_bytes(data: ImageSource, limits: ImageLimits) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    elif isinstance(data, (str, os.PathLike)):
        path = Path(data)
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise InputError(f"{path} is not a file.")
            if size > limits.max_bytes:
                raise InputTooLargeError(_too_many_bytes(size, limits))
            raw = path.read_bytes()
        except FileNotFoundError as err:
            raise InputError(f"No such file: {path}") from err
        except PermissionError as err:
            raise InputError(f"Cannot read {path}: permission denied.") from err
        except IsADirectoryError as err:
            raise InputError(f"{path} is a directory, not an image file.") from err
    elif hasattr(data, "read"):
        raw = data.read(limits.max_bytes + 1)
        if not isinstance(raw, (bytes, bytearray)):
            raise TypeError("the file object must be opened in binary mode")
        raw = bytes(raw)
    else:
        raise TypeError(f"cannot decode an image from {type(data).__name__}")
    if len(raw) > limits.max_bytes:
        raise InputTooLargeError(_too_many_bytes(len(raw), limits))
    return raw


def _too_many_bytes(size: int, limits: ImageLimits) -> str:
    return (f"The image file is too large ({size / 2**20:.1f} MiB; "
            f"the limit is {limits.max_bytes / 2**20:.0f} MiB).")


def _check_size(size: tuple[int, int], limits: ImageLimits) -> None:
    w, h = size
    if w * h > limits.max_pixels:
        raise InputTooLargeError(
            f"The image is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{limits.max_pixels / 1e6:.0f} megapixels.")
    _check_min_side(size, limits)


def _check_min_side(size: tuple[int, int], limits: ImageLimits) -> None:
    w, h = size
    if min(w, h) < limits.min_side:
        raise UnprocessableInputError(
            f"The image is only {w}x{h} pixels; at least {limits.min_side} pixels on each side "
            "are needed to see the leg.")


# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = (5, 6, 7, 8)
# Source pixels widened to RGB at a time: ~1 M pixels keeps the conversion's extra memory to a
# few MB, whatever the photo's size.
_STRIP_PIXELS = 1 << 20


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8), read after ``load`` (a PNG may store EXIF after its pixels)."""
    try:
        value = int(image.getexif().get(ORIENTATION_TAG, 1))
    except (TypeError, ValueError):
        return 1
    return value if value in _TRANSPOSE else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image if method is None else image.transpose(method)


def _reduce_factor(size: tuple[int, int], draft_size: int | None) -> int:
    """What draft mode does for JPEG, for the other formats: the integer box reduction that keeps
    both sides at least ``draft_size``, so a 12 MP HEIC or PNG costs no more downstream than a JPEG."""
    if not draft_size:
        return 1
    return max(1, min(size[0] // draft_size, size[1] // draft_size))


def _shrink_to_rgb(image: Image.Image, draft_size: int | None) -> Image.Image:
    """A new 8-bit RGB image holding only pixels, shrunk by the draft rule.

    Shrink before widening: the decoded picture is cut into horizontal strips whose height is a
    multiple of the reduction factor, and each strip is converted to RGB and box-reduced on its
    own, so a 49 MP 16-bit greyscale PNG never exists as a 49 MP RGB (or int64) array. The
    result is pixel for pixel what converting and then reducing the whole picture gives. Being a
    new image it carries no EXIF, GPS, ICC profile, XMP or comments.
    """
    grey_top = _grey_top(image)
    return _shrink_strips(image.size, draft_size, lambda top, bottom: _to_rgb(
        image.crop((0, top, image.width, bottom)), grey_top))


def _heif_to_rgb(raw: bytes, draft_size: int | None) -> Image.Image:
    """HEIC/HEIF straight from libheif's decoded buffer, strip by strip.

    pillow-heif's Pillow plugin copies libheif's whole RGB buffer into a second, 4-byte-per-pixel
    Pillow image before anything can be shrunk (about 340 MB at 49 MP); reading the buffer as an
    array and widening a strip at a time keeps the peak to libheif's own decode (about 220 MB).
    """
    heif = pillow_heif.open_heif(io.BytesIO(raw), convert_hdr_to_8bit=True)
    pixels = np.asarray(heif[heif.primary_index])          # a view of libheif's buffer
    mode = "RGBA" if pixels.shape[-1] == 4 else "RGB"
    height, width = pixels.shape[:2]
    return _shrink_strips((width, height), draft_size, lambda top, bottom: Image.fromarray(
        np.ascontiguousarray(pixels[top:bottom]), mode).convert("RGB"))


def _shrink_strips(size: tuple[int, int], draft_size: int | None, strip_rgb) -> Image.Image:
    """Assemble the shrunk RGB picture from ``strip_rgb(top, bottom)``, whose rows are a multiple
    of the reduction factor (so the result equals reducing the whole picture at once)."""
    factor = _reduce_factor(size, draft_size)
    width, height = size
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = max(1, _STRIP_PIXELS // (width * factor)) * factor
    for top in range(0, height, rows):
        strip = strip_rgb(top, min(height, top + rows))
        if factor > 1:
            strip = strip.reduce(factor)
        out.paste(strip, (0, top // factor))
    out.info.clear()
    return out


def _grey_top(image: Image.Image) -> int:
    """The white point of a wide greyscale picture: 65535 for 16-bit, else 255 unless brighter."""
    if image.mode.startswith("I;16"):
        return 65535
    if image.mode == "I":
        low, high = image.getextrema()
        return 65535 if high > 255 else 255
    return 255


def _to_rgb(image: Image.Image, grey_top: int = 255) -> Image.Image:
    """8-bit RGB. Wide greyscale (16-bit PNG) is scaled down rather than clipped to white, in a
    32-bit integer type that is just wide enough (``65535 * 255`` fits)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(image)
        if wide.dtype.kind == "u":
            scaled = wide.astype(np.uint32) * 255 // max(grey_top, 1)
        else:
            scaled = np.clip(wide.astype(np.int64) * 255 // max(grey_top, 1), 0, 255)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")
