"""HEIC grid images read one row of tiles at a time, through libheif's tile API.

Why this exists: a phone stores a large HEIC photo as a grid of small HEVC pictures (an iPhone's
48 MP photo is 16x12 tiles of 512x512). Decoding the whole grid, which is all pillow-heif offers,
holds libheif's YCbCr picture and its RGB copy at once: about 223 MiB at 48 MP, over the decode
budget. libheif (1.19 and later) decodes any one tile on its own, with the HEIF rotation and
mirroring already applied, but pillow-heif does not expose that, so it is called here through
``ctypes`` on the libheif that pillow-heif itself loaded. Only one row of tiles (8064x512 RGB,
12 MB) exists at a time; ``decode.py`` shrinks it strip by strip as it does every other format.

When that libheif cannot be found or has no tile API, ``heif_tiling`` answers ``None`` and the photo
is decoded whole, under that path's (lower) pixel limit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

import numpy as np

log = logging.getLogger(__name__)

_COLORSPACE_RGB = 1          # enum heif_colorspace
_CHROMA_RGB, _CHROMA_RGBA = 10, 11   # enum heif_chroma: 8-bit interleaved
_CHANNEL_INTERLEAVED = 10    # enum heif_channel


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]


class _Tiling(ctypes.Structure):
    _fields_ = [("version", ctypes.c_int), ("num_columns", ctypes.c_uint32),
                ("num_rows", ctypes.c_uint32), ("tile_width", ctypes.c_uint32),
                ("tile_height", ctypes.c_uint32), ("image_width", ctypes.c_uint32),
                ("image_height", ctypes.c_uint32), ("top_offset", ctypes.c_uint32),
                ("left_offset", ctypes.c_uint32), ("extra_dimensions", ctypes.c_uint8),
                ("extra_dimension_size", ctypes.c_uint32 * 8)]


@dataclass(frozen=True)
class Tiling:
    """The grid as seen after rotation and mirroring; tile (0, 0) starts at (-left, -top)."""

    columns: int
    rows: int
    tile_width: int
    tile_height: int
    width: int
    height: int
    left: int
    top: int
    alpha: bool

    def decode_bytes(self, whole_bytes_per_pixel: float) -> float:
        """Peak bytes of reading this grid: one tile decoded as libheif decodes a whole picture,
        plus a row of tiles as RGB(A) and its copy while strips are cut from it."""
        tile = self.tile_width * self.tile_height * whole_bytes_per_pixel
        return tile + 2 * self.width * self.tile_height * (4 if self.alpha else 3)


# Tiles in a grid read tile by tile; an iPhone's 48 MP photo has 192. Beyond this, the whole decode.
MAX_TILES = 4096

_P = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[object, list]] = {
    "heif_context_alloc": (_P, []),
    "heif_context_free": (None, [_P]),
    "heif_context_read_from_memory_without_copy": (_Error, [_P, _P, ctypes.c_size_t, _P]),
    "heif_context_get_primary_image_handle": (_Error, [_P, ctypes.POINTER(_P)]),
    "heif_image_handle_release": (None, [_P]),
    "heif_image_handle_has_alpha_channel": (ctypes.c_int, [_P]),
    "heif_image_handle_get_image_tiling": (_Error, [_P, ctypes.c_int, ctypes.POINTER(_Tiling)]),
    "heif_decoding_options_alloc": (_P, []),
    "heif_decoding_options_free": (None, [_P]),
    "heif_image_handle_decode_image_tile": (_Error, [_P, ctypes.POINTER(_P), ctypes.c_int,
                                                     ctypes.c_int, _P, ctypes.c_uint32,
                                                     ctypes.c_uint32]),
    "heif_image_get_width": (ctypes.c_int, [_P, ctypes.c_int]),
    "heif_image_get_height": (ctypes.c_int, [_P, ctypes.c_int]),
    "heif_image_get_plane_readonly": (ctypes.POINTER(ctypes.c_uint8),
                                      [_P, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]),
    "heif_image_release": (None, [_P]),
}


@lru_cache(maxsize=1)
def _libheif() -> ctypes.CDLL | None:
    """pillow-heif's own libheif (so both see one library), or None without a tile API."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - pillow-heif is a base dependency
        return None
    here = os.path.dirname(pillow_heif.__file__)
    candidates = sorted(glob.glob(os.path.join(here + ".libs", "libheif*.so*"))
                        + glob.glob(os.path.join(here, ".dylibs", "libheif*.dylib")))
    candidates += [p for p in [ctypes.util.find_library("heif")] if p]   # a source build
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
            return lib
        except (OSError, AttributeError) as err:
            log.debug("libheif at %s has no tile API: %r", path, err)
    return None


def _check(err: _Error, what: str) -> None:
    if err.code != 0:
        raise OSError(f"libheif {what}: {(err.message or b'').decode(errors='replace')}")


class _Primary:
    """The primary image of an in-memory HEIF file; the bytes must outlive it (no copy)."""

    def __init__(self, lib: ctypes.CDLL, raw: bytes) -> None:
        self.lib, self.raw = lib, raw
        self.ctx = lib.heif_context_alloc()
        self.handle = _P()
        try:
            _check(lib.heif_context_read_from_memory_without_copy(
                self.ctx, ctypes.cast(ctypes.c_char_p(raw), _P), len(raw), None), "read")
            _check(lib.heif_context_get_primary_image_handle(self.ctx, ctypes.byref(self.handle)),
                   "primary image")
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.handle:
            self.lib.heif_image_handle_release(self.handle)
            self.handle = _P()
        if self.ctx:
            self.lib.heif_context_free(self.ctx)
            self.ctx = None


def heif_tiling(raw: bytes) -> Tiling | None:
    """The primary image's grid, or None where it is one picture or libheif has no tile API."""
    lib = _libheif()
    if lib is None:
        return None
    primary = _Primary(lib, raw)
    try:
        stored, t = _Tiling(), _Tiling()
        _check(lib.heif_image_handle_get_image_tiling(primary.handle, 0, ctypes.byref(stored)),
               "tiling")
        _check(lib.heif_image_handle_get_image_tiling(primary.handle, 1, ctypes.byref(t)), "tiling")
        alpha = bool(lib.heif_image_handle_has_alpha_channel(primary.handle))
    finally:
        primary.close()
    if not 1 < t.num_columns * t.num_rows <= MAX_TILES or t.extra_dimensions:
        return None      # one picture, or so many tiny tiles that calling per tile would crawl
    if sorted((stored.image_width, stored.image_height)) != sorted((t.image_width, t.image_height)):
        return None      # cropped (clean aperture): read whole, libheif places nothing wrong then
    # Rotation or mirroring can bring the grid's overhanging right or bottom tiles to the left or
    # top. libheif 1.23 reports that shift as (tile size - overhang) where its header promises the
    # overhang, so only whether there is a shift is taken from it, and anything else is refused.
    over_x = t.num_columns * t.tile_width - t.image_width
    over_y = t.num_rows * t.tile_height - t.image_height
    if not (0 <= over_x < t.tile_width and 0 <= over_y < t.tile_height):
        raise OSError("libheif: the grid's tiles do not cover the image")
    for shift, over, tile in ((t.left_offset, over_x, t.tile_width),
                              (t.top_offset, over_y, t.tile_height)):
        if shift not in (0, over, tile - over):
            return None
    return Tiling(int(t.num_columns), int(t.num_rows), int(t.tile_width), int(t.tile_height),
                  int(t.image_width), int(t.image_height), int(over_x if t.left_offset else 0),
                  int(over_y if t.top_offset else 0), alpha)


def tile_rows(raw: bytes, tiling: Tiling) -> Iterator[np.ndarray]:
    """Each row of tiles in turn, as an upright (rows, width, 3 or 4) uint8 array clipped to the
    image: ``tiling.height`` rows in all, top to bottom."""
    lib = _libheif()
    assert lib is not None
    primary = _Primary(lib, raw)
    options = lib.heif_decoding_options_alloc()
    channels = 4 if tiling.alpha else 3
    try:
        for ty in range(tiling.rows):
            y0 = ty * tiling.tile_height - tiling.top
            top, bottom = max(0, y0), min(tiling.height, y0 + tiling.tile_height)
            if bottom <= top:
                continue
            row = np.zeros((bottom - top, tiling.width, channels), np.uint8)
            for tx in range(tiling.columns):
                x0 = tx * tiling.tile_width - tiling.left
                _paste_tile(lib, primary.handle, options, tiling, tx, ty, row,
                            (x0, y0), (top, bottom))
            yield row
    finally:
        lib.heif_decoding_options_free(options)
        primary.close()


def _paste_tile(lib: ctypes.CDLL, handle: _P, options: _P, tiling: Tiling, tx: int, ty: int,
                row: np.ndarray, origin: tuple[int, int], span: tuple[int, int]) -> None:
    """Decode tile (tx, ty) and copy the part of it inside the image into ``row``."""
    image = _P()
    chroma = _CHROMA_RGBA if tiling.alpha else _CHROMA_RGB
    _check(lib.heif_image_handle_decode_image_tile(handle, ctypes.byref(image), _COLORSPACE_RGB,
                                                   chroma, options, tx, ty), "tile decode")
    try:
        width = lib.heif_image_get_width(image, _CHANNEL_INTERLEAVED)
        height = lib.heif_image_get_height(image, _CHANNEL_INTERLEAVED)
        stride = ctypes.c_int()
        plane = lib.heif_image_get_plane_readonly(image, _CHANNEL_INTERLEAVED, ctypes.byref(stride))
        channels = row.shape[2]
        if not plane or width <= 0 or height <= 0 or stride.value < width * channels:
            raise OSError("libheif: a tile decoded to no pixels")
        tile = np.ctypeslib.as_array(plane, shape=(height, stride.value))
        tile = tile[:, :width * channels].reshape(height, width, channels)
        (x0, y0), (top, bottom) = origin, span
        left, right = max(0, x0), min(tiling.width, x0 + width)
        last = min(bottom, y0 + height)
        if right > left and last > top:
            row[:last - top, left:right] = tile[top - y0:last - y0, left - x0:right - x0]
    finally:
        lib.heif_image_release(image)


def strip_reader(rows: Iterator[np.ndarray]) -> Callable[[int, int], np.ndarray]:
    """``read(top, bottom)`` over rows that arrive a tile row at a time; tops must only grow."""
    state = {"buf": np.zeros((0, 0, 0), np.uint8), "buf_top": 0}

    def read(top: int, bottom: int) -> np.ndarray:
        buf, buf_top = state["buf"], state["buf_top"]
        buf = buf[max(0, top - buf_top):] if buf.size else buf
        buf_top = max(buf_top, top)
        while buf_top + len(buf) < bottom:
            nxt = next(rows)
            buf = nxt if not buf.size else np.concatenate([buf, nxt])
        state["buf"], state["buf_top"] = buf, buf_top
        return buf[top - buf_top:bottom - buf_top]

    return read
