"""Photo decoding with hard limits: bytes or a path in, one clean upright RGB image out.

Why each step is here:
- Only the formats phones produce are opened (JPEG/MPO, PNG, WebP, HEIC/HEIF), which keeps the rest
  of Pillow's decoders, and their attack surface, out of reach of an upload.
- The pixel limit is checked on the header, before a single pixel is decoded, and it is ours: it does
  not depend on Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` (which anyone may have set to
  ``None``). Pillow's own bomb check still runs first and is mapped to the same error.
- JPEG draft mode lets libjpeg decode a 12-megapixel phone photo straight at 1/2, 1/4 or 1/8 scale
  (DCT scaling), several times faster than a full decode followed by a resize.
- EXIF orientation is applied, then every piece of metadata (EXIF, GPS, ICC, XMP, comments) is
  dropped: nothing returned from here can leak where or when a photo was taken.
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
from PIL import Image, ImageOps, UnidentifiedImageError

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


def decode_image(data: ImageSource, limits: ImageLimits = DEFAULT_LIMITS,
                 draft_size: int | None = DEFAULT_DRAFT_SIZE) -> Image.Image:
    """Decode a photo to an upright RGB image with no metadata.

    ``data`` is the encoded bytes, a path or a binary file object. ``draft_size`` shrinks the photo
    by an integer factor as long as both sides stay at least that many pixels: JPEG while decoding
    (draft mode), other formats by box reduction after it; ``None`` keeps the full size. Raises ``InputError`` (empty, truncated, corrupt),
    ``UnsupportedMediaError`` (not an image we read), ``InputTooLargeError`` (bytes or pixels over
    the limit, decompression bomb) or ``UnprocessableInputError`` (too small to analyse).
    """
    raw = _read_bytes(data, limits)
    if not raw:
        raise InputError("The file is empty (0 bytes).")

    try:
        with Image.open(io.BytesIO(raw), formats=ACCEPTED_FORMATS) as im:
            _check_size(im.size, limits)
            if draft_size and im.format in ("JPEG", "MPO"):
                im.draft("RGB", (draft_size, draft_size))
            im.load()
            upright = ImageOps.exif_transpose(im)
            rgb = _shrink_to_draft(_to_rgb(upright), draft_size)
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

    _check_min_side(rgb.size, limits)
    return _without_metadata(rgb)


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


def _shrink_to_draft(image: Image.Image, draft_size: int | None) -> Image.Image:
    """What draft mode does for JPEG, for the other formats: an integer box reduction that keeps
    both sides at least ``draft_size``, so a 12 MP HEIC or PNG costs no more downstream than a JPEG."""
    if not draft_size:
        return image
    factor = min(image.width // draft_size, image.height // draft_size)
    return image.reduce(factor) if factor >= 2 else image


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit greyscale (PNG) is scaled down rather than clipped to white."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(image).astype(np.int64)
        top = 65535 if image.mode.startswith("I;16") or wide.max() > 255 else 255
        grey = np.clip(wide * 255 // max(top, 1), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGB")


def _without_metadata(image: Image.Image) -> Image.Image:
    """A fresh RGB image holding only pixels: no EXIF, GPS, ICC profile, XMP or comments."""
    clean = Image.frombytes("RGB", image.size, image.tobytes())
    clean.info.clear()
    return clean
