"""Look-alikes on clean legs: how often does a model call a score-0 leg with veins, a bruise, a red
knee, an arm's shadow, a dressing or a gloved hand mottled?

Renderer B draws each look-alike on its own (``force=``) on clean legs of Monk 2/5/7/9. The first
four patients are exactly ``tests/test_inference.py``'s (seed 9_200_003); ``--patients N`` adds
more from another seed, never a training or test-set seed.

    python benchmarks/look_alikes.py --model models/mottling-v0.2.0.onnx --model runs/x.onnx
"""

from __future__ import annotations

import argparse

from mottling.photo.model import load_model
from mottling.synth.images import plan_photos
from mottling.synth.ward_photo import render_ward

THINGS = ("bruise", "red_knee", "arm_shadow", "veins", "dressing", "glove", "freckles")
TONES = (2, 5, 7, 9)


def photos(thing: str, patients: int, seed: int | None = None):
    """Clean renderer-B legs with ``thing`` drawn on them; ``seed``: another set of patients (all
    from that seed) instead of the benchmark's own."""
    if seed is not None:
        specs = plan_photos(patients, seed=seed, size=384, renderer="b")
    else:
        specs = plan_photos(4, seed=9_200_003, size=384, renderer="b")
        if patients > 4:
            specs += plan_photos(patients - 4, seed=9_300_017, size=384, renderer="b")
    return [render_ward(type(s)(**{**s.__dict__, "score": 0, "skin_tone": TONES[i % 4]}),
                        force=(thing,)).image for i, s in enumerate(specs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--patients", type=int, default=4)
    args = ap.parse_args()
    models = [load_model(m) for m in args.model]
    print("| look-alike | " + " | ".join(args.model) + " |")
    print("|---" * (len(models) + 1) + "|")
    totals = [0] * len(models)
    for thing in THINGS:
        imgs = photos(thing, args.patients)
        cells = []
        for k, m in enumerate(models):
            scores = [r.score for r in m.predict(imgs)]
            bad = sum(s > 0 for s in scores)
            totals[k] += bad
            shown = " ".join(map(str, scores[:4]))  # the test's four patients
            if len(scores) > 4:
                shown += f" ({bad}/{len(scores)} > 0)"
            cells.append(shown)
        print(f"| {thing} | " + " | ".join(cells) + " |", flush=True)
    n = len(THINGS) * args.patients
    print("| called > 0, all | " + " | ".join(f"{t}/{n}" for t in totals) + " |")


if __name__ == "__main__":
    main()
