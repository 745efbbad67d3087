"""Generated leg photos for the inference tests: the project's own generator when it is there."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from mottling.skin import monk_rgb


def leg_photo(seed: int, score: int, skin_tone: int, size: int = 256) -> Image.Image:
    """A generated photo of a leg with mottling score ``score`` on Monk tone ``skin_tone``."""
    try:
        from mottling.synth.images import render_photo
    except ImportError:
        return _simple_leg(seed, score, skin_tone, size)
    return render_photo(seed, score, skin_tone, size).image


def _simple_leg(seed: int, score: int, skin_tone: int, size: int) -> Image.Image:
    """Stand-in used only while the generator is missing: a skin-coloured leg on a sheet, with
    purple blotches reaching further up the longer the score."""
    rng = np.random.default_rng(seed)
    w, h = size, size
    im = Image.new("RGB", (w, h), (196, 204, 214))
    draw = ImageDraw.Draw(im)
    skin = tuple(int(v * 255) for v in monk_rgb(skin_tone))
    draw.ellipse([w * 0.25, -h * 0.2, w * 0.75, h * 1.2], fill=skin)
    reach = {0: 0.0, 1: 0.08, 2: 0.2, 3: 0.45, 4: 0.7, 5: 0.95}[score]
    for _ in range(int(60 * reach)):
        cx, cy = rng.uniform(w * 0.3, w * 0.7), rng.uniform(h * (1 - reach), h * 0.95)
        r = rng.uniform(2, 6) * size / 256
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(120, 60, 110))
    a = np.asarray(im, np.float32) + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **params)
    return buf.getvalue()
