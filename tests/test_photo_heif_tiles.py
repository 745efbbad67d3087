"""HEIC grids (how phones store large HEIC photos) are read a row of tiles at a time through
libheif's tile API; the pixels must be exactly those of libheif's whole-image decode, for every
HEIF rotation and mirroring, and anything the tile path cannot place is read whole instead."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mottling.errors import InputError, InputTooLargeError
from mottling.photo import decode
from mottling.photo.decode import DECODER_FIXED_BYTES, ImageLimits, decode_image
from mottling.photo.heif_tiles import heif_tiling

pytest.importorskip("pillow_heif")


def _picture(mode: str = "RGB") -> Image.Image:
    """450x350, not symmetric in any direction, so a wrong turn or a misplaced tile shows."""
    y, x = np.mgrid[0:350, 0:450]
    a = np.stack([x * 255 // 450, y * 255 // 350, (x * y) % 251], -1).astype(np.uint8)
    a[25:75, 25:150] = (255, 0, 0)
    return Image.fromarray(a).convert(mode)


def _heic(image: Image.Image, orientation: int = 1, tile: int | None = 128) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation        # pillow-heif turns it into the HEIF rotation / mirroring
    out = io.BytesIO()
    image.save(out, format="HEIF", quality=90, exif=exif.tobytes(),
               enc_params={"preset": "ultrafast"}, **({"tile_size": tile} if tile else {}))
    return out.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiles_give_the_whole_decode_pixel_for_pixel(orientation):
    raw = _heic(_picture(), orientation)
    tiling = heif_tiling(raw)
    assert tiling is not None and tiling.columns * tiling.rows == 12
    with Image.open(io.BytesIO(raw)) as im:
        size = im.size
    assert size == ((350, 450) if orientation >= 5 else (450, 350))
    for draft in (None, 160):
        whole = decode._heif_to_rgb(raw, draft, None, size)     # libheif's own full decode
        tiled = decode_image(raw, draft_size=draft)              # what every front end gets
        assert tiled.size == whole.size
        assert np.array_equal(np.asarray(tiled), np.asarray(whole)), (orientation, draft)


def test_single_pictures_and_alpha_grids_are_read_whole():
    assert heif_tiling(_heic(_picture(), tile=None)) is None
    rgba = _heic(_picture("RGBA"))
    assert heif_tiling(rgba) is None       # libheif cannot decode its alpha tile by tile
    assert decode_image(rgba, draft_size=None).size == (450, 350)


def test_a_grid_costs_less_so_it_passes_where_a_single_picture_is_refused():
    pixels, grid = 450 * 350, _heic(_picture())
    # a budget that a whole decode of 0.16 MP does not fit, but a tile-wise one does
    limits = ImageLimits(max_decode_bytes=DECODER_FIXED_BYTES + pixels * 3 + 3 * len(grid))
    with pytest.raises(InputTooLargeError, match="Re-export it as JPEG"):
        decode_image(_heic(_picture(), tile=None), limits)
    assert decode_image(grid, limits, draft_size=None).size == (450, 350)


def test_a_truncated_grid_is_a_clean_error():
    raw = _heic(_picture())
    with pytest.raises(InputError):
        decode_image(raw[: len(raw) * 3 // 4])


def test_a_grid_of_few_huge_tiles_is_not_read_tile_by_tile():
    raw = _heic(_picture(), tile=256)                   # 2x2 tiles of 256x256
    tiling = heif_tiling(raw)
    assert tiling is not None
    cost = tiling.decode_bytes(decode.DECODER_BYTES_PER_PIXEL["HEIF"]) + DECODER_FIXED_BYTES
    assert decode._affordable_grid(raw, ImageLimits(max_decode_bytes=int(cost) + 1)) == tiling
    assert decode._affordable_grid(raw, ImageLimits(max_decode_bytes=int(cost) - 1)) is None
