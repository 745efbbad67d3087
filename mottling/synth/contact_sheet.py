"""A score x skin-tone grid of generated photos, so a person can see what the generator makes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mottling.synth.images import render_photo

DEFAULT_TONES = (1, 3, 5, 7, 9)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_contact_sheet(path: Path, seed: int = 0, size: int = 384, *,
                       tones: tuple[int, ...] = DEFAULT_TONES, tile: int = 150,
                       outline: bool = True, renderer: str = "a") -> Path:
    """Rows are scores 0-5, columns Monk tones; each tile is one photo at ``size`` px, shrunk.

    With ``outline`` the mask edge is traced in thin yellow and the landmarks are ticked on the
    leg axis (knee, patella top, mid-thigh, groin), so the extent can be checked by eye.
    """
    path = Path(path)
    label_w, head_h, foot_h = 70, 24, 14
    tile_h = int(round(tile * 4 / 3))
    cols, rows = len(tones), 6
    sheet = Image.new("RGB", (label_w + cols * (tile + 4), head_h + rows * (tile_h + foot_h + 4)),
                      (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = _font(13)
    small = _font(10)
    for c, tone in enumerate(tones):
        draw.text((label_w + c * (tile + 4) + tile // 2 - 22, 5), f"Monk {tone}", fill=(0, 0, 0),
                  font=font)
    for score in range(rows):
        y0 = head_h + score * (tile_h + foot_h + 4)
        draw.text((6, y0 + tile_h // 2 - 8), f"score {score}", fill=(0, 0, 0), font=font)
        for c, tone in enumerate(tones):
            photo = render_photo(seed * 1000 + score * 10 + tone, score, tone, size,
                                 renderer=renderer)
            img = photo.image.copy()
            if outline:
                img = _trace(img, photo)
            scale = min(tile / img.width, tile_h / img.height)
            img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))),
                             Image.LANCZOS)
            x0 = label_w + c * (tile + 4)
            sheet.paste(img, (x0 + (tile - img.width) // 2, y0 + (tile_h - img.height) // 2))
            meta = photo.meta
            ext = "-" if meta["extent"] == "" else f"{meta['extent']:.2f}"
            note = f"ext {ext} {meta['framing']} {meta['pattern']}".strip()[:28]
            draw.text((x0 + 2, y0 + tile_h + 1), note, fill=(60, 60, 60), font=small)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return path


def _trace(img: Image.Image, photo) -> Image.Image:
    """Mask edge in yellow and landmark ticks in cyan/red on a copy of the photo."""
    arr = np.asarray(img).copy()
    m = photo.mask
    edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    edge = edge | np.roll(edge, 1, 0) | np.roll(edge, 1, 1)
    arr[edge] = (255, 230, 0)
    out = Image.fromarray(arr)
    d = ImageDraw.Draw(out)
    r = max(2, img.width // 80)
    meta = photo.meta
    colours = {"knee": (0, 220, 255), "patella_top": (0, 120, 255), "mid_thigh": (255, 60, 200),
               "groin": (255, 40, 40)}
    for name, col in colours.items():
        x, y = meta[f"{name}_x"], meta[f"{name}_y"]
        d.ellipse((x - r, y - r, x + r, y + r), outline=col, width=max(1, r // 2))
    return out
