"""Renderer B ("ward"): reproducible bytes, labels that follow the score definition, the manifest
contract, the conditions it is built for (clutter, look-alikes, framings) and the CLI option."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mottling.scale import LegLandmarks, extent_bounds, score_for_extent
from mottling.synth.images import MANIFEST_COLUMNS, generate_images, plan_photos, render_photo
from mottling.synth.ward_photo import GENERATOR_VERSION, render_ward

LANDMARKS = ("knee", "patella_top", "mid_thigh", "groin")
DECIDE = {1: "patella_top", 2: "patella_top", 3: "mid_thigh", 4: "groin", 5: "groin"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ward")
    generate_images(n=24, out_dir=out, seed=31, size=256, workers=1, renderer="b")
    return out


def _rows(folder: Path) -> list[dict]:
    with (folder / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_manifest_contract_and_labels(dataset):
    rows = _rows(dataset)
    assert len(rows) == 24 and list(rows[0]) == list(MANIFEST_COLUMNS)
    for row in rows:
        score = int(row["score"])
        assert row["generator_version"] == GENERATOR_VERSION
        mask = np.asarray(Image.open(dataset / row["mask_path"])) > 127
        with Image.open(dataset / row["path"]) as img:
            assert img.format == "JPEG" and img.size == mask.shape[::-1]
        lm = LegLandmarks(float(row["coin_radius"]), float(row["patella_top_u"]),
                          float(row["mid_thigh_u"]), 1.0)
        if score == 0:
            assert row["extent"] == "" and row["visible_extent"] == "" and not mask.any()
            continue
        assert mask.any() and float(row["mottled_fraction"]) > 0
        # the drawn extent and the extent still visible after clutter both give the score
        assert score_for_extent(float(row["extent"]), lm) == score
        assert score_for_extent(float(row["visible_extent"]), lm) == score
        lo, hi = extent_bounds(score, lm)
        assert lo < float(row["visible_extent"]) <= hi
        name = DECIDE[score]
        x, y = float(row[f"{name}_x"]), float(row[f"{name}_y"])
        assert 0 <= x < mask.shape[1] and 0 <= y < mask.shape[0], (row["path"], name)


def test_landmarks_lie_in_order_along_the_leg(dataset):
    """Points on one 3-D line keep their order in a perspective view."""
    for row in _rows(dataset):
        pts = [np.array([float(row[f"{k}_x"]), float(row[f"{k}_y"])]) for k in LANDMARKS]
        axis = pts[3] - pts[0]
        proj = [float((p - pts[0]) @ axis) for p in pts]
        assert proj == sorted(proj)


def test_the_set_has_clutter_look_alikes_and_framings(dataset):
    rows = _rows(dataset)
    occl = ";".join(r["occluders"] for r in rows)
    assert "gown" in occl and any(k in occl for k in ("cables", "electrodes", "dressing", "glove"))
    assert any(r["pattern"] for r in rows if r["score"] == "0")
    assert {r["framing"] for r in rows} >= {"wide", "thigh"}
    assert {r["width"] > r["height"] for r in rows} == {True, False}  # portrait and landscape


def test_same_seed_same_bytes_and_unlike_renderer_a(tmp_path):
    a = generate_images(n=4, out_dir=tmp_path / "a", seed=5, size=160, renderer="b")
    b = generate_images(n=4, out_dir=tmp_path / "b", seed=5, size=160, renderer="b", workers=2)
    c = generate_images(n=4, out_dir=tmp_path / "c", seed=6, size=160, renderer="b")

    def digest(manifest: Path) -> str:
        h = hashlib.sha256(manifest.read_bytes())
        for p in sorted((manifest.parent / "images").iterdir()):
            h.update(p.read_bytes())
        return h.hexdigest()

    assert digest(a) == digest(b) != digest(c)
    ra = render_photo(seed=3, score=3, skin_tone=4, size=160, renderer="a")
    rb = render_photo(seed=3, score=3, skin_tone=4, size=160, renderer="b")
    assert ra.jpeg != rb.jpeg and rb.meta["generator_version"] == GENERATOR_VERSION


def test_mottling_is_visible_but_fainter_on_dark_skin():
    from mottling.skin import srgb_to_lab

    delta = {2: 0.0, 9: 0.0}
    for tone in (2, 9):
        for seed in (21, 22, 23):  # light falls differently on the mottled part: average seeds
            photo = render_photo(seed=seed, score=4, skin_tone=tone, size=256, renderer="b")
            lab = srgb_to_lab(np.asarray(photo.image, dtype=np.float64) / 255)
            clean = photo.skin_mask & ~photo.mask
            assert photo.mask.sum() > 50 and clean.sum() > 50
            delta[tone] += float(np.linalg.norm(lab[photo.mask].mean(0) - lab[clean].mean(0))) / 3
    assert delta[9] > 2.0, delta
    assert delta[2] > delta[9], delta


@pytest.mark.parametrize("thing", ["veins", "bruise", "red_knee", "arm_shadow", "dressing"])
def test_forced_look_alikes_on_a_clean_leg(thing):
    """The distractor tests' inputs: a score-0 leg with exactly one look-alike, no mottled mask,
    and the look-alike changes the picture."""
    spec = plan_photos(1, seed=40, size=192, renderer="b")[0]
    spec = type(spec)(**{**spec.__dict__, "score": 0})
    plain = render_ward(spec, force=())
    photo = render_ward(spec, force=(thing,))
    assert not photo.mask.any() and photo.meta["score"] == 0
    assert thing in photo.meta["pattern"] + ";" + photo.meta["occluders"]
    diff = np.abs(np.asarray(photo.image, float) - np.asarray(plain.image, float)).mean()
    assert diff > 0.3, diff


def test_cli_renderer_option(tmp_path):
    from mottling.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "images", "--n", "3", "--out", str(out), "--seed", "2", "--size", "128",
                 "--renderer", "b"]) == 0
    rows = _rows(out)
    assert len(rows) == 3 and rows[0]["generator_version"] == GENERATOR_VERSION
