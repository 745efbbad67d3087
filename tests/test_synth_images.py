"""Generator 1 (knee photographs): reproducible bytes, labels that follow the score definition,
balanced scores, every skin tone, the manifest contract and the CLI."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mottling.scale import LegLandmarks, score_for_extent
from mottling.synth.images import (MANIFEST_COLUMNS, SynthPhoto, generate_images, plan_photos,
                                   render_photo, render_spec)

CONTRACT_COLUMNS = (
    "path", "mask_path", "score", "patient_id", "side", "skin_tone", "ita", "mottled_fraction",
    "extent", "pattern", "knee_x", "knee_y", "patella_top_x", "patella_top_y", "mid_thigh_x",
    "mid_thigh_y", "groin_x", "groin_y", "generator_version", "seed")
LANDMARKS = ("knee", "patella_top", "mid_thigh", "groin")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("photos")
    generate_images(n=48, out_dir=out, seed=11, size=384, balanced=True, workers=1)
    return out


def _rows(folder: Path) -> list[dict]:
    with (folder / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def measured_extent(mask: np.ndarray, row: dict) -> float | None:
    """Mottling extent read off the mask alone, in landmark units (knee 0, groin fold 1).

    Mask pixels are projected on the knee -> groin line of the image; the projection is turned into
    landmark units by interpolating between the four landmarks' own projections. The order along
    the axis is all that decides the score, so perspective along the leg does not matter.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    pts = {k: np.array([float(row[f"{k}_x"]), float(row[f"{k}_y"])]) for k in LANDMARKS}
    axis = pts["groin"] - pts["knee"]
    axis /= np.linalg.norm(axis)
    proj = (np.stack([xs + 0.5, ys + 0.5], 1) - pts["knee"]) @ axis
    lm_proj = [float((pts[k] - pts["knee"]) @ axis) for k in LANDMARKS]
    lm_units = [0.0, float(row["patella_top_u"]), float(row["mid_thigh_u"]), 1.0]
    top = float(proj.max())
    if top >= lm_proj[-1]:
        return 1.0 + (top - lm_proj[-1]) / (lm_proj[-1] - lm_proj[-2]) * (1.0 - lm_units[-2])
    return float(np.interp(top, lm_proj, lm_units, left=top / lm_proj[1] * lm_units[1]))


def test_manifest_has_the_contract_columns(dataset):
    rows = _rows(dataset)
    assert len(rows) == 48
    assert set(CONTRACT_COLUMNS) <= set(rows[0])
    assert set(CONTRACT_COLUMNS) <= set(MANIFEST_COLUMNS)
    for row in rows:
        assert (dataset / row["path"]).is_file() and (dataset / row["mask_path"]).is_file()
        assert row["side"] in {"left", "right"}
        assert row["pattern"] in {"", "fabric", "hair", "bruise", "veins", "red_knee", "freckles",
                                  "arm_shadow"}
        assert 0.0 <= float(row["mottled_fraction"]) <= 1.0
        assert row["generator_version"]


def test_labels_follow_the_score_definition(dataset):
    """For every image the mask's extent on the leg axis lies inside its score's bounds, and the
    landmark that decides the score is in the frame."""
    decide = {1: "patella_top", 2: "patella_top", 3: "mid_thigh", 4: "groin", 5: "groin"}
    for row in _rows(dataset):
        score = int(row["score"])
        mask = np.asarray(Image.open(dataset / row["mask_path"])) > 127
        with Image.open(dataset / row["path"]) as img:
            assert img.format == "JPEG"
            assert img.size == mask.shape[::-1]
        landmarks = LegLandmarks(float(row["coin_radius"]), float(row["patella_top_u"]),
                                 float(row["mid_thigh_u"]), 1.0)
        ext = measured_extent(mask, row)
        assert score_for_extent(ext, landmarks) == score, (row["path"], score, ext)
        if score == 0:
            assert row["extent"] == "" and not mask.any()
            continue
        name = decide[score]
        x, y = float(row[f"{name}_x"]), float(row[f"{name}_y"])
        assert 0 <= x < mask.shape[1] and 0 <= y < mask.shape[0], (row["path"], name)
        assert float(row["mottled_fraction"]) > 0


def test_the_dataset_exercises_occluders_patterns_and_framings(dataset):
    rows = _rows(dataset)
    assert any(r["occluders"] for r in rows)
    assert {r["pattern"] for r in rows} >= {"", "fabric"}
    assert {r["framing"] for r in rows} >= {"full", "thigh"}
    assert {r["side"] for r in rows} == {"left", "right"}


def test_occluders_and_framing_leave_the_deciding_landmark_in_view():
    """Just above the landmark that bounds the score (patella top for 1-2, mid-thigh for 3, groin
    fold for 4-5) there is visible skin: not out of frame, not under a dressing, lead or sheet."""
    decide = {1: "patella_top", 2: "patella_top", 3: "mid_thigh", 4: "groin", 5: "groin"}
    occluded = 0
    for spec in plan_photos(36, seed=23, size=256):
        photo = render_spec(spec)
        occluded += bool(photo.meta["occluders"])
        if spec.score == 0:
            continue
        meta = photo.meta
        knee = np.array([meta["knee_x"], meta["knee_y"]])
        groin = np.array([meta["groin_x"], meta["groin_y"]])
        step = (groin - knee) / np.linalg.norm(groin - knee)
        name = decide[spec.score]
        x, y = np.array([meta[f"{name}_x"], meta[f"{name}_y"]]) + 2 * step
        h, w = photo.skin_mask.shape
        assert 0 <= x < w and 0 <= y < h, (spec.index, name)
        yi, xi = int(y), int(x)
        near = photo.skin_mask[max(yi - 2, 0):yi + 3, max(xi - 2, 0):xi + 3]
        assert near.any(), (spec.index, name)
    assert occluded >= 3  # the check above was exercised on occluded photos


def test_landmarks_lie_in_order_along_the_leg(dataset):
    for row in _rows(dataset):
        pts = [np.array([float(row[f"{k}_x"]), float(row[f"{k}_y"])]) for k in LANDMARKS]
        axis = pts[3] - pts[0]
        proj = [float((p - pts[0]) @ axis) for p in pts]
        assert proj == sorted(proj) and proj[0] == 0.0


def test_scores_are_balanced_and_tones_covered():
    specs = plan_photos(600, seed=3, balanced=True)
    counts = np.bincount([s.score for s in specs], minlength=6)
    assert counts.tolist() == [100] * 6
    few = np.bincount([s.score for s in plan_photos(9, seed=4)], minlength=6)
    assert few.max() - few.min() <= 1
    tones = np.bincount([s.skin_tone for s in specs], minlength=11)[1:]
    assert (tones > 0).all() and tones.min() > 0.5 * tones.mean()
    per_patient = {}
    for s in specs:
        per_patient.setdefault(s.patient_id, set()).add((s.skin_tone, s.side, s.patient_seed))
    assert len(per_patient) < 300  # several photos per patient
    assert all(len(v) == 1 for v in per_patient.values())  # a patient keeps tone, side, leg


def test_unbalanced_prior_is_skewed():
    counts = np.bincount([s.score for s in plan_photos(600, seed=3, balanced=False)], minlength=6)
    assert counts[0] > 2 * counts[5]


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = generate_images(n=6, out_dir=tmp_path / "a", seed=5, size=192, workers=1)
    b = generate_images(n=6, out_dir=tmp_path / "b", seed=5, size=192, workers=2)
    c = generate_images(n=6, out_dir=tmp_path / "c", seed=6, size=192, workers=1)

    def digest(manifest: Path) -> str:
        h = hashlib.sha256(manifest.read_bytes())
        for p in sorted((manifest.parent / "images").iterdir()):
            h.update(p.read_bytes())
        for p in sorted((manifest.parent / "masks").iterdir()):
            h.update(p.read_bytes())
        return h.hexdigest()

    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


@pytest.mark.parametrize("tone", [1, 4, 7, 10])
def test_render_photo_across_skin_tones(tone):
    photo = render_photo(seed=tone, score=3, skin_tone=tone, size=256)
    assert isinstance(photo, SynthPhoto)
    assert photo.image.mode == "RGB" and max(photo.image.size) == 256
    assert photo.mask.dtype == bool and photo.mask.shape == photo.image.size[::-1]
    assert photo.meta["skin_tone"] == tone and photo.meta["score"] == 3
    assert photo.mask.any()
    again = render_photo(seed=tone, score=3, skin_tone=tone, size=256)
    assert again.jpeg == photo.jpeg


def test_ita_falls_with_darker_tones():
    itas = [render_photo(seed=1, score=0, skin_tone=t, size=96).meta["ita"] for t in (1, 5, 10)]
    assert itas[0] > itas[1] > itas[2]
    assert itas[0] > 41 and itas[2] < -30


def test_mottling_is_visible_but_fainter_on_dark_skin():
    """Same seed, same camera and light, only the tone differs: the mottled area differs from the
    patient's other skin by a visible colour difference, smaller on dark skin than on light."""
    from mottling.skin import srgb_to_lab

    delta = {}
    for tone in (2, 9):
        photo = render_photo(seed=21, score=3, skin_tone=tone, size=256)
        lab = srgb_to_lab(np.asarray(photo.image, dtype=np.float64) / 255)
        clean = photo.skin_mask & ~photo.mask
        assert photo.mask.sum() > 100 and clean.sum() > 100
        delta[tone] = float(np.linalg.norm(lab[photo.mask].mean(0) - lab[clean].mean(0)))
    assert delta[9] > 2.0, delta
    assert delta[2] > delta[9], delta


def test_cli_writes_photos(tmp_path):
    from mottling.cli import main

    out = tmp_path / "cli"
    sheet = tmp_path / "sheet.png"
    assert main(["synth", "images", "--n", "12", "--out", str(out), "--seed", "2", "--size", "128",
                 "--contact-sheet", str(sheet)]) == 0
    rows = _rows(out)
    assert len(rows) == 12 and len(list((out / "images").glob("*.jpg"))) == 12
    assert sheet.is_file() and Image.open(sheet).size[0] > 300


def test_clean_legs_carry_look_alikes_and_clutter_more_often_than_mottled_legs():
    """Renderer A 1.2 puts a look-alike (veins, red knee, freckles, an arm's shadow, ...) or a
    gloved hand on most clean legs, so "not mottling" is learnt on ward-like clutter."""
    specs = plan_photos(240, seed=31, size=128)
    clean, mottled = [], []
    for spec in specs:
        meta = render_spec(spec).meta
        (clean if spec.score == 0 else mottled).append(meta)
    share = lambda rows: np.mean([bool(r["pattern"]) for r in rows])  # noqa: E731
    assert share(clean) > 0.6 and share(mottled) < 0.5, (share(clean), share(mottled))
    seen = {r["pattern"] for r in clean + mottled}
    assert {"veins", "red_knee", "freckles", "arm_shadow"} <= seen, seen
    assert any("glove" in r["occluders"] for r in clean), "no gloved hand on a clean leg"


def test_the_leg_lies_at_any_angle_and_some_frames_are_wide():
    """The knee -> groin axis is not only near a multiple of 90 degrees (phone held at any roll),
    and some frames show the leg small among the bedding."""
    angles, framings = [], set()
    for spec in plan_photos(90, seed=41, size=128):
        meta = render_spec(spec).meta
        framings.add(meta["framing"])
        a = np.degrees(np.arctan2(meta["groin_y"] - meta["knee_y"],
                                  meta["groin_x"] - meta["knee_x"]))
        angles.append(abs(((a + 45) % 90) - 45))  # distance to the nearest multiple of 90
    assert np.mean(np.array(angles) > 25) > 0.1, sorted(angles)[-10:]
    assert "wide" in framings, framings


@pytest.mark.parametrize("pattern", ["veins", "red_knee", "freckles", "arm_shadow"])
def test_look_alikes_change_the_skin_but_never_the_label(pattern):
    """The same scene with and without a look-alike: the mottled mask is the same pixel for
    pixel (it is not mottling), the picture differs on the leg."""
    from mottling.synth.leg import sample_anatomy
    from mottling.synth.scene import render_scene

    anat = sample_anatomy(np.random.default_rng([12]), 4, "left")
    for score in (0, 3):
        plain = render_scene(np.random.default_rng([7, score]), anat, score, 192, None,
                             occluders=False)
        marked = render_scene(np.random.default_rng([7, score]), anat, score, 192, pattern,
                              occluders=False)
        assert np.array_equal(plain.mask, marked.mask)
        diff = np.abs(plain.rgb.astype(int) - marked.rgb.astype(int)).sum(-1)
        assert (diff[plain.skin] > 6).mean() > 0.002, (pattern, score)
    if pattern == "red_knee":  # redder, not darker: green falls more than red on the knee
        sel = plain.skin & (diff > 6)
        r = marked.rgb[sel].astype(float).mean(0) - plain.rgb[sel].astype(float).mean(0)
        assert r[1] < r[0] - 2, r
