"""Model input preparation, defined once and shared by training, export and inference.

The exported ONNX file records the spec (input size, mean, std, resize policy) in its metadata;
inference reads it back from there and calls these same functions, so the two never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

RESIZE_POLICIES = ("letterbox",)


@dataclass(frozen=True)
class PreprocessSpec:
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "letterbox"   # keep the aspect ratio, pad the short side: the whole leg stays in view
    pad_value: int = 0

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"unknown resize policy {self.resize!r}")


@dataclass(frozen=True)
class Letterbox:
    """Where the original image sits inside the square input: ``scale`` then offset by the pad."""

    scale: float
    pad_x: int
    pad_y: int
    width: int      # original size
    height: int


def letterbox(image: Image.Image, size: int, pad_value: int = 0) -> tuple[Image.Image, Letterbox]:
    """Fit ``image`` (RGB) into a ``size`` square without cropping any anatomy."""
    w, h = image.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = image.resize((nw, nh), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (pad_value,) * 3)
    pad_x, pad_y = (size - nw) // 2, (size - nh) // 2
    canvas.paste(resized, (pad_x, pad_y))
    return canvas, Letterbox(scale, pad_x, pad_y, w, h)


def normalise(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """HxWx3 uint8 -> 3xHxW float32, scaled to [0, 1] then standardised."""
    x = pixels.astype(np.float32) / 255.0
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def to_input(image: Image.Image, spec: PreprocessSpec) -> tuple[np.ndarray, Letterbox]:
    """One RGB PIL image -> (3, S, S) float32 model input and its letterbox geometry."""
    boxed, geom = letterbox(image.convert("RGB"), spec.input_size, spec.pad_value)
    return normalise(np.asarray(boxed), spec), geom


def unletterbox_map(area_map: np.ndarray, geom: Letterbox) -> np.ndarray:
    """Map an (h, w) output map over the square input back onto the original image's pixels."""
    h, w = area_map.shape
    size = max(h, w)
    # crop the padded border (in map coordinates), then resize to the original image size
    sx = area_map.shape[1] / (geom.width * geom.scale + 2 * geom.pad_x)
    x0, y0 = int(round(geom.pad_x * sx)), int(round(geom.pad_y * sx))
    x1 = int(round((geom.pad_x + geom.width * geom.scale) * sx))
    y1 = int(round((geom.pad_y + geom.height * geom.scale) * sx))
    crop = area_map[max(0, y0):min(size, y1), max(0, x0):min(size, x1)]
    img = Image.fromarray(np.clip(crop * 255.0, 0, 255).astype(np.uint8))
    return np.asarray(img.resize((geom.width, geom.height), Image.BILINEAR), np.float32) / 255.0
