"""Generator 1: knee-and-thigh photographs whose mottling score is known exactly.

``generate_images`` writes ``images/*.jpg``, ``masks/*.png`` (255 = visible mottled skin) and
``manifest.csv``; ``render_photo`` makes one photo in memory for tests. Every image is drawn from a
seed derived from ``(seed, index)`` alone, so the output is byte-identical whatever the number of
worker processes.

Manifest columns beyond the obvious ones:

- ``extent``: how far the mottling reaches from the knee centre along the leg axis, in landmark
  units (knee centre 0, groin fold 1); empty for score 0. Drawn uniformly inside the score's
  bounds (``mottling.scale.extent_bounds``), keeping ~2 px clear of each bound.
- ``visible_extent``: the furthest *visible* mottled point (after occluders and framing); it
  gives the same score as ``extent``, which every photo is checked for before it is written.
- ``mottled_fraction``: mottled share of the visible skin.
- ``knee_x`` ... ``groin_y``: landmark pixels in the output image (after rotation, scale and
  perspective); ``coin_radius``, ``patella_top_u``, ``mid_thigh_u``: the patient's landmarks in
  landmark units, so the label can be re-derived from the mask alone.
- ``framing``: ``wide`` (the leg small in a frame of sheet), ``full`` (below the knee to above
  the groin), ``thigh`` (knee to just above the groin), ``close`` (knee to above mid-thigh; used
  only for scores 0-3, whose deciding landmark stays in view).
- ``pattern``: a look-alike that is not mottling (``fabric`` print, leg ``hair``, a ``bruise``,
  ``veins``, a ``red_knee``, ``freckles``, an ``arm_shadow`` (an arm's or the phone's shadow));
  about three clean legs in four carry one, mottled legs two in five.
- ``occluders``: ``ecg_leads``, ``dressing``, ``glove`` (a gloved hand), ``sheet_edge``
  (";"-joined); never over the landmark or the part of the mottled edge that decides the score.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from mottling.skin import MONK_TONES, ita_degrees
from mottling.synth import nuisances as nz
from mottling.synth.leg import sample_anatomy
from mottling.synth.scene import PATTERNS, clean_skin_srgb, label_holds, render_scene

log = logging.getLogger(__name__)

# 1.0: first cut (flat tube leg, crisp mesh); 1.2: ward look-alikes, gloves, flash, stronger
# white balance, any roll of the leg in the frame and wider framings
GENERATOR_VERSION = "photos/1.2"
# A skewed prior for an ICU population in shock: most patients score 0-2.
ICU_PRIOR = (0.32, 0.18, 0.18, 0.14, 0.11, 0.07)
# One look-alike per photo at most; clean legs get them far more often (they are what a clean leg
# must not be called mottled for), mottled legs sometimes (they must not change the score).
PATTERN_PROB = {"fabric": 0.09, "hair": 0.08, "bruise": 0.08, "veins": 0.14, "red_knee": 0.12,
                "freckles": 0.1, "arm_shadow": 0.12}
PATTERN_PROB_MOTTLED = {"fabric": 0.08, "hair": 0.06, "bruise": 0.05, "veins": 0.06,
                        "red_knee": 0.05, "freckles": 0.05, "arm_shadow": 0.07}

MANIFEST_COLUMNS = (
    "path", "mask_path", "score", "patient_id", "side", "skin_tone", "ita", "mottled_fraction",
    "extent", "pattern",
    "knee_x", "knee_y", "patella_top_x", "patella_top_y", "mid_thigh_x", "mid_thigh_y",
    "groin_x", "groin_y", "generator_version", "seed",
    # beyond the shared contract: useful for checks and breakdowns
    "index", "width", "height", "framing", "occluders", "coin_radius", "patella_top_u",
    "mid_thigh_u", "visible_extent", "jpeg_quality", "mottling_contrast",
)


@dataclass(frozen=True)
class PhotoSpec:
    """Everything that decides one photo: patient, score and the seed for the rest."""

    seed: int
    index: int
    score: int
    patient_id: str
    patient_seed: int
    skin_tone: int
    side: str
    size: int = 384
    renderer: str = "a"  # "a": flat leg through a homography; "b": 3-D ward scene (ward_*.py)


@dataclass
class SynthPhoto:
    image: Image.Image  # RGB, decoded from ``jpeg`` (the pre-JPEG image when decode=False)
    mask: np.ndarray  # (H, W) bool, visible mottled skin
    meta: dict  # the manifest fields, landmarks in pixels
    jpeg: bytes = field(default=b"", repr=False)
    skin_mask: np.ndarray | None = field(default=None, repr=False)  # visible skin, bool


def _seed_key(seed: int) -> int:
    return int(seed) % (2**63)


def manifest_row(spec, m: dict, lm, generator_version: str, ita: float, pattern: str,
                 occluders: str, quality: int) -> dict:
    """One photo's manifest row: the one format both renderers write (column order included)."""
    row = {
        "score": spec.score, "patient_id": spec.patient_id, "side": spec.side,
        "skin_tone": spec.skin_tone, "ita": round(ita, 3),
        "mottled_fraction": round(m["mottled_fraction"], 5),
        "extent": "" if m["extent"] is None else round(m["extent"], 5),
        "pattern": pattern,
    }
    for name, (x, y) in m["landmarks_px"].items():
        row[f"{name}_x"] = round(x, 2)
        row[f"{name}_y"] = round(y, 2)
    row.update({
        "generator_version": generator_version, "seed": spec.seed, "index": spec.index,
        "width": m["width"], "height": m["height"], "framing": m["framing"],
        "occluders": occluders, "coin_radius": round(lm.coin_radius, 5),
        "patella_top_u": round(lm.patella_top, 5), "mid_thigh_u": round(lm.mid_thigh, 5),
        "visible_extent": "" if m["visible_extent"] is None else round(m["visible_extent"], 5),
        "jpeg_quality": quality, "mottling_contrast": round(m["contrast"], 4),
    })
    return row


def render_spec(spec: PhotoSpec, decode: bool = True) -> SynthPhoto:
    """Render one photo; the label is re-checked on the visible mask before it is returned."""
    if spec.renderer == "b":
        from mottling.synth.ward_photo import render_ward

        return render_ward(spec, decode)
    if spec.renderer != "a":
        raise ValueError(f"renderer must be 'a' or 'b', got {spec.renderer!r}")
    anat = sample_anatomy(np.random.default_rng([spec.patient_seed]), spec.skin_tone, spec.side)
    key = [_seed_key(spec.seed), spec.index]
    prng = np.random.default_rng(key + [7])
    draw = prng.random()
    pattern, acc = "", 0.0
    probs = PATTERN_PROB if spec.score == 0 else PATTERN_PROB_MOTTLED
    for name in PATTERNS:
        acc += probs[name]
        if draw < acc:
            pattern = name
            break
    for attempt in range(4):
        rng = np.random.default_rng(key + [attempt])
        scene = render_scene(rng, anat, spec.score, spec.size, pattern or None,
                             safe=attempt >= 2, occluders=attempt == 0)
        if label_holds(scene, spec.score, anat):
            break
    else:  # pragma: no cover - a bug, not a nuisance
        raise RuntimeError(f"photo {spec.index} (seed {spec.seed}) cannot show score {spec.score}")
    finish_rng = np.random.default_rng(key + [99])
    img, quality = nz.camera_finish(finish_rng, scene.rgb)
    jpeg = nz.jpeg_bytes(img, quality)
    lm = anat.landmarks
    m = scene.meta
    meta = manifest_row(spec, m, lm, GENERATOR_VERSION, ita_degrees(clean_skin_srgb(anat)),
                        pattern, m["occluders"], quality)
    decoded = Image.open(io.BytesIO(jpeg)).convert("RGB") if decode else img
    return SynthPhoto(decoded, scene.mask, meta, jpeg, scene.skin)


def render_photo(seed: int, score: int, skin_tone: int, size: int = 384, *,
                 side: str | None = None, renderer: str = "a") -> SynthPhoto:
    """One photo of a synthetic patient drawn from ``seed`` with the given score and Monk tone."""
    if score not in range(6):
        raise ValueError(f"score must be 0-5, got {score!r}")
    if skin_tone not in MONK_TONES:
        raise ValueError(f"skin_tone must be a Monk tone 1-10, got {skin_tone!r}")
    rng = np.random.default_rng([_seed_key(seed), 0x5EED])
    side = side or ("left" if rng.random() < 0.5 else "right")
    spec = PhotoSpec(seed=seed, index=0, score=score, patient_id=f"s{seed}-p0",
                     patient_seed=int(rng.integers(2**62)), skin_tone=skin_tone, side=side,
                     size=size, renderer=renderer)
    return render_spec(spec)


def plan_photos(n: int, seed: int, size: int = 384, balanced: bool = True,
                renderer: str = "a") -> list[PhotoSpec]:
    """Scores, patients (2-4 photos each), tones and sides for ``n`` photos, from ``seed`` alone."""
    rng = np.random.default_rng([_seed_key(seed), 0x91A4])
    if balanced:  # shuffled blocks of all six scores: counts never differ by more than one
        scores = np.concatenate([rng.permutation(6) for _ in range((n + 5) // 6)])[:n]
    else:
        scores = rng.choice(6, size=n, p=ICU_PRIOR)
    specs: list[PhotoSpec] = []
    tones: list[int] = []
    patient = 0
    i = 0
    while i < n:
        if not tones:
            tones = list(rng.permutation(MONK_TONES))
        tone = int(tones.pop())
        side = "left" if rng.random() < 0.5 else "right"
        pseed = int(rng.integers(2**62))
        for _ in range(int(rng.integers(2, 5))):
            if i >= n:
                break
            specs.append(PhotoSpec(seed=seed, index=i, score=int(scores[i]),
                                   patient_id=f"s{seed}-p{patient:05d}", patient_seed=pseed,
                                   skin_tone=tone, side=side, size=size, renderer=renderer))
            i += 1
        patient += 1
    return specs


def _write_one(args: tuple[PhotoSpec, str]) -> dict:
    spec, out = args
    photo = render_spec(spec, decode=False)
    name = f"{spec.index:06d}"
    out_dir = Path(out)
    (out_dir / "images" / f"{name}.jpg").write_bytes(photo.jpeg)
    Image.fromarray(photo.mask.astype(np.uint8) * 255, "L").save(
        out_dir / "masks" / f"{name}.png", compress_level=1)
    return {"path": f"images/{name}.jpg", "mask_path": f"masks/{name}.png", **photo.meta}


def generate_images(n: int, out_dir: Path, seed: int = 0, size: int = 384, balanced: bool = True,
                    workers: int = 1, progress: bool = True, renderer: str = "a") -> Path:
    """Write ``n`` photographs, their masks and ``manifest.csv`` under ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    if renderer not in ("a", "b"):
        raise ValueError(f"renderer must be 'a' or 'b', got {renderer!r}")
    specs = plan_photos(n, seed, size, balanced, renderer)
    jobs = [(s, str(out_dir)) for s in specs]
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        def tqdm(x, **_):
            return x
    if workers > 1:
        with get_context().Pool(workers) as pool:
            rows = list(tqdm(pool.imap(_write_one, jobs, chunksize=4), total=n,
                             disable=not progress or n < 50, desc="photos"))
    else:
        rows = [_write_one(j) for j in tqdm(jobs, disable=not progress or n < 50, desc="photos")]
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in MANIFEST_COLUMNS})
    version = GENERATOR_VERSION if renderer == "a" else rows[0]["generator_version"]
    config = {"generator_version": version, "renderer": renderer, "n": n, "seed": seed, "size": size,
              "balanced": balanced, "workers": workers}
    (out_dir / "synth_config.json").write_text(json.dumps(config, indent=2) + "\n")
    log.info("wrote %d photos to %s", n, out_dir)
    return manifest
