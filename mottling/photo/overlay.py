"""Draw a result on its photo: the predicted mottled area and the score, readable on a phone.

The area is tinted cyan and outlined in yellow over a dark edge: mottling is purple-red, so cyan
and yellow stand out from it and from every skin tone. The score sits in a dark banner along the
top (or the bottom, when the mottled area lies at the top), in type sized to the picture, with the
quality warnings under it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from mottling.results import IMAGE_QUALITY_MESSAGES, MottlingResult

FILL_RGB = (0, 215, 255)
EDGE_RGB = (255, 230, 0)
MAX_SIDE = 1600   # larger photos are drawn at this long side: plenty for a phone screen


def draw_overlay(image: Image.Image, result: MottlingResult, threshold: float = 0.5,
                 alpha: float = 0.3) -> Image.Image:
    """A new RGB image: ``image`` with the area where ``result.area_map >= threshold`` tinted
    and outlined, and the score, confidence and quality flags written on it."""
    canvas = image.convert("RGB")
    if max(canvas.size) > MAX_SIDE:
        scale = MAX_SIDE / max(canvas.size)
        canvas = canvas.resize((round(canvas.width * scale), round(canvas.height * scale)),
                               Image.BILINEAR)
    else:
        canvas = canvas.copy()
    w, h = canvas.size
    line = max(2, round(min(w, h) / 250))
    banner_at_bottom = False

    if result.area_map is not None:
        area = Image.fromarray(np.clip(np.asarray(result.area_map, np.float32) * 255, 0, 255)
                               .astype(np.uint8)).resize((w, h), Image.BILINEAR)
        mask = area.point(lambda v: 255 if v >= threshold * 255 else 0)
        if mask.getbbox() is not None:
            # keep the banner off the mottled area: top unless the top quarter holds more of it
            marked = np.asarray(mask) > 0
            quarter = max(1, h // 4)
            banner_at_bottom = marked[:quarter].mean() > marked[-quarter:].mean()
            tint = Image.new("RGB", (w, h), FILL_RGB)
            canvas = Image.composite(Image.blend(canvas, tint, alpha), canvas, mask)
            grown = mask.filter(ImageFilter.MaxFilter(2 * line + 1))
            edge = Image.composite(Image.new("L", (w, h), 0), grown, mask)  # ring outside the area
            dark_edge = edge.filter(ImageFilter.MaxFilter(3))
            canvas.paste((0, 0, 0), mask=dark_edge)
            canvas.paste(EDGE_RGB, mask=edge)

    _draw_banner(canvas, result, at_bottom=banner_at_bottom)
    return canvas


def _draw_banner(canvas: Image.Image, result: MottlingResult, at_bottom: bool = False) -> None:
    w, h = canvas.size
    big = max(14, round(min(w, h) * 0.055))
    small = max(11, round(big * 0.5))
    font_big = _font(big)
    font_small = _font(small)
    title = f"Mottling score {result.score}/5"
    detail = (f"expected {result.expected_score:.1f} · confidence {result.confidence:.0%}"
              f" · model {result.model_version}")
    warnings = [IMAGE_QUALITY_MESSAGES.get(f, f) for f in result.quality]
    lines = [(title, font_big, (255, 255, 255)), (detail, font_small, (220, 220, 220))]
    lines += [(text, font_small, (255, 200, 80)) for text in warnings]
    lines.append(("Research use only; not a medical device.", font_small, (180, 180, 180)))

    pad = max(4, big // 4)
    draw = ImageDraw.Draw(canvas, "RGBA")
    heights = [_text_height(draw, text, font) for text, font, _ in lines]
    banner_h = sum(heights) + pad * (len(lines) + 1)
    top = max(0, h - banner_h) if at_bottom else 0
    draw.rectangle([0, top, w, min(h, top + banner_h)], fill=(0, 0, 0, 170))
    y = top + pad
    for (text, font, colour), th in zip(lines, heights):
        draw.text((pad, y), _fit(draw, text, font, w - 2 * pad), font=font, fill=colour)
        y += th + pad


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_height(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    box = draw.textbbox((0, 0), text, font=font)
    return int(box[3] - min(0, box[1]))


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
