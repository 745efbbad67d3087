"""Renderer B ("ward") end to end: one photo spec -> a JPEG, its mask and the manifest fields.

The same manifest contract as renderer A (``mottling.synth.images``); see ``ward_scene`` for what
the pictures contain. Deterministic per ``(seed, index)`` like renderer A.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from mottling.skin import ita_degrees, monk_rgb
from mottling.synth.ward_leg import sample_leg
from mottling.synth.ward_scene import compose, label_holds

GENERATOR_VERSION = "photos-ward/1.1"


def finish(rng: np.random.Generator, rgb8: np.ndarray) -> tuple[bytes, int]:
    """The phone's own processing: focus blur or sharpening, sensor noise, JPEG at 60-95."""
    img = rgb8.astype(np.float32)
    s = max(img.shape[:2]) / 384
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5) * s))
    elif rng.random() < 0.4:  # phone sharpening halos
        blur = cv2.GaussianBlur(img, (0, 0), float(1.2 * s))
        img = img + float(rng.uniform(0.3, 0.9)) * (img - blur)
    dark = 1.0 - img.mean() / 255.0
    sigma = float(rng.uniform(1.0, 4.0) * (0.6 + dark))
    luma = rng.standard_normal(img.shape[:2]).astype(np.float32) * np.float32(sigma)
    chroma = rng.standard_normal(img.shape).astype(np.float32) * np.float32(sigma * 0.5)
    out = np.clip(img + luma[..., None] + chroma + 0.5, 0, 255).astype(np.uint8)
    quality = int(rng.integers(60, 96))
    buf = io.BytesIO()
    Image.fromarray(out, "RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), quality


def render_ward(spec, decode: bool = True, force: tuple[str, ...] | None = None):
    """Render ``spec`` (a ``mottling.synth.images.PhotoSpec``) with renderer B.

    ``force``: draw exactly these look-alikes/clutter (see ``ward_scene.compose``)."""
    from mottling.synth.images import SynthPhoto, _seed_key, manifest_row

    leg = sample_leg(np.random.default_rng([spec.patient_seed, 0xB]), spec.skin_tone, spec.side)
    key = [_seed_key(spec.seed), spec.index, 0xB]
    for attempt in range(5):
        rng = np.random.default_rng(key + [attempt])
        scene = compose(rng, leg, spec.score, spec.size, safe=attempt >= 3 and force is None,
                        occluders=attempt <= 1 or force is not None, force=force)
        if label_holds(scene, spec.score, leg):
            break
    else:  # pragma: no cover - a bug, not a nuisance
        raise RuntimeError(f"photo {spec.index} (seed {spec.seed}) cannot show score {spec.score}")
    jpeg, quality = finish(np.random.default_rng(key + [99]), scene.rgb)
    lm, m = leg.landmarks, scene.meta
    clean = np.clip(monk_rgb(leg.skin_tone) + np.array(leg.tint), 0, 1)
    look_alikes = [o.split(":", 1)[1] for o in m["occluders"].split(";") if o.startswith("look_")]
    occluders = ";".join(o for o in m["occluders"].split(";") if not o.startswith("look_"))
    meta = manifest_row(spec, m, lm, GENERATOR_VERSION, ita_degrees(clean), ";".join(look_alikes),
                        occluders, quality)
    image = Image.open(io.BytesIO(jpeg)).convert("RGB") if decode else Image.fromarray(scene.rgb)
    return SynthPhoto(image, scene.mask, meta, jpeg, scene.skin)
