"""How visible is the generated mottling at the size the model sees it?

Each photo is rendered twice from the same seed: as generated, and with the mottling's absorbance
set to zero while every other random draw (leg, distractors, light, camera, noise) stays the same.
Both are letterboxed to the model's input side, and the colour difference between them (CIE76
delta E in CIELAB) is averaged over the mottled pixels. About 2.3 is one just-noticeable difference
under ideal viewing; a score whose mottling sits below that cannot be read from the picture by a
person or a model, whatever the label says.

    python benchmarks/mottling_visibility.py --n 120 --seed 4242 [--input-size 224]

Prints, per renderer and Monk group, the median delta E over mottled photos and the share below
2.3 (the label is then not recoverable at that input size).
"""

from __future__ import annotations

import argparse
import copy
from contextlib import contextmanager

import numpy as np
from PIL import Image

from mottling.photo.preprocess import letterbox
from mottling.skin import srgb_to_lab
from mottling.synth import scene as scene_a
from mottling.synth import ward_scene
from mottling.synth.images import plan_photos, render_spec
from mottling.synth.ward_skin import SkinTexture

JND = 2.3


@contextmanager
def mottling_off():
    """Render with zero mottling absorbance, consuming the random draws exactly as usual."""
    orig_a, orig_b = scene_a.mottling_absorbance, ward_scene.paint_skin

    def absorbance_zero(rng, *args, **kw):
        od, contrast = orig_a(rng, *args, **kw)
        return od * np.float32(0), contrast

    def paint_clean(rng, leg, score, extent, base, distractors):
        clean = orig_b(copy.deepcopy(rng), leg, 0, None, base, distractors)
        real = orig_b(rng, leg, score, extent, base, distractors)
        return SkinTexture(clean.albedo, real.region, real.contrast, real.distractors)

    scene_a.mottling_absorbance, ward_scene.paint_skin = absorbance_zero, paint_clean
    try:
        yield
    finally:
        scene_a.mottling_absorbance, ward_scene.paint_skin = orig_a, orig_b


def delta_e(spec, size: int) -> float:
    """Mean delta E over the mottled pixels between the photo and its mottling-free twin."""
    real = render_spec(spec)
    with mottling_off():
        clean = render_spec(spec)
    a, _ = letterbox(real.image, size)
    b, _ = letterbox(clean.image, size)
    mask, _ = letterbox(Image.fromarray(real.mask).convert("RGB"), size)
    sel = np.asarray(mask)[..., 0] > 127
    if not sel.any():
        return float("nan")
    d = np.linalg.norm(srgb_to_lab(np.asarray(a) / 255.0) - srgb_to_lab(np.asarray(b) / 255.0), axis=-1)
    return float(d[sel].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=120, help="photos per renderer (score 0 is skipped)")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--renderers", default="a,b")
    args = ap.parse_args()
    print(f"delta E (CIE76) of the mottling at {args.input_size} px, mean over mottled pixels; "
          f"'hidden' = below {JND} (one just-noticeable difference)")
    print("| renderer | Monk | photos | median dE | hidden | hidden, score 1 | hidden, score 2-5 |")
    print("|---|---|---|---|---|---|---|")
    for renderer in args.renderers.split(","):
        specs = [s for s in plan_photos(args.n, args.seed, renderer=renderer) if s.score > 0]
        rows = [(s.skin_tone, s.score, delta_e(s, args.input_size)) for s in specs]
        for name, lo, hi in (("1-3", 1, 3), ("4-7", 4, 7), ("8-10", 8, 10), ("all", 1, 10)):
            sel = [(sc, d) for t, sc, d in rows if lo <= t <= hi and np.isfinite(d)]
            if not sel:
                continue
            d = np.array([x for _, x in sel])
            one = np.array([x for sc, x in sel if sc == 1])
            more = np.array([x for sc, x in sel if sc > 1])
            share = lambda v: f"{(v < JND).mean():.0%} of {len(v)}" if len(v) else "-"
            print(f"| {renderer.upper()} | {name} | {len(d)} | {np.median(d):.1f} | "
                  f"{(d < JND).mean():.0%} | {share(one)} | {share(more)} |")


if __name__ == "__main__":
    main()
