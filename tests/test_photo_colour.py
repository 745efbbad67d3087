"""A photo without colour is flagged, never scored as if it were colour (mottling is a colour sign).

Greyscale arrives in many forms (an 8-bit or 16-bit greyscale file, a grey picture stored as RGB
JPEG); each must raise ``no_colour`` through the whole pipeline, and no colour photo of any skin
tone, in dim light, under a tinted light or from the generator, may raise it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mottling.photo.decode import decode_image
from mottling.photo.model import load_model, score_files
from mottling.photo.quality import DEFAULT_POLICY, assess_quality
from mottling.skin import MONK_TONES
from tests.photos import encode, leg_photo
from tests.tiny_model import build_tiny_model

SIZE = 320


def _greyscale_files(colour: Image.Image) -> dict[str, bytes]:
    grey = colour.convert("L")
    wide = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    return {"jpeg_L": encode(grey, "JPEG", quality=90),
            "jpeg_rgb_of_grey": encode(grey.convert("RGB"), "JPEG", quality=90),
            "png_L": encode(grey, "PNG"),
            "png_16bit": encode(wide, "PNG")}


@pytest.fixture(scope="module")
def legs() -> dict[int, Image.Image]:
    """A clean, unmottled leg per Monk tone, from seeds nothing was tuned on."""
    return {tone: leg_photo(9_100 + tone, 0, tone, SIZE).convert("RGB") for tone in MONK_TONES}


@pytest.mark.parametrize("tone", [1, 5, 10])
def test_every_kind_of_greyscale_file_is_flagged(legs, tone):
    for kind, data in _greyscale_files(legs[tone]).items():
        report = assess_quality(decode_image(data))
        assert "no_colour" in report.flags, (kind, report)


def test_colour_photos_of_every_tone_and_light_are_not_flagged(legs):
    lights = {"plain": (1.0, 1.0, 1.0), "dim": (0.35, 0.35, 0.35), "very dim": (0.2, 0.2, 0.2),
              "warm": (1.1, 1.0, 0.75),
              "cool": (0.85, 0.95, 1.1)}
    for tone, leg in legs.items():
        for name, gain in lights.items():
            lit = Image.fromarray(np.clip(np.asarray(leg, np.float32) * gain, 0, 255).astype(np.uint8))
            report = assess_quality(decode_image(encode(lit, "JPEG", quality=85)))
            assert "no_colour" not in report.flags, (tone, name, report.saturation_p90)
            assert report.saturation_p90 > 2 * DEFAULT_POLICY.colour_min_saturation, (tone, name)


def test_photos_from_a_second_renderer_keep_their_colour():
    """``tests.photos._simple_leg`` draws legs quite differently from the training generator."""
    from tests.photos import _simple_leg

    for tone in MONK_TONES:
        photo = _simple_leg(seed=31_000 + tone, score=tone % 6, skin_tone=tone, size=256)
        report = assess_quality(photo)
        assert "no_colour" not in report.flags, (tone, report.saturation_p90)


def test_a_black_frame_is_too_dark_not_colourless():
    report = assess_quality(Image.new("RGB", (400, 300), (3, 3, 3)))
    assert "too_dark" in report.flags and "no_colour" not in report.flags


def test_a_greyscale_photo_scores_with_the_flag_and_a_cut_confidence(legs, tmp_path):
    model = load_model(build_tiny_model(tmp_path / "model", input_size=64))
    colour_path, grey_path = tmp_path / "colour.jpg", tmp_path / "grey.jpg"
    colour_path.write_bytes(encode(legs[4], "JPEG", quality=90))
    grey_path.write_bytes(_greyscale_files(legs[4])["jpeg_L"])
    colour, grey = score_files([colour_path, grey_path], model)
    assert "no_colour" not in colour.quality
    assert "no_colour" in grey.quality
    top = max(grey.probabilities)
    assert grey.confidence == pytest.approx(top * DEFAULT_POLICY.penalties["no_colour"])
    assert grey.to_dict()["quality"] == list(grey.quality)


def test_a_greyscale_photo_never_fires_the_hypoperfusion_rule(legs, tmp_path):
    """Its score is reported, flagged, but the mottling criterion is not evaluated at all."""
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.settings import ServerSettings

    model_path = build_tiny_model(tmp_path / "model", input_size=64)
    red = Image.fromarray(np.clip(np.asarray(legs[4], np.int16) + (90, -40, -40), 0, 255)
                          .astype(np.uint8))              # the tiny model reads red as mottled
    answers = {}
    with TestClient(create_app(ServerSettings(model_path=model_path, warmup=False))) as client:
        for name, image in {"colour": red, "grey": red.convert("L")}.items():
            res = client.post("/v1/assess", files={"image": ("leg.jpg", encode(image, "JPEG"),
                                                             "image/jpeg")})
            assert res.status_code == 200, res.text
            answers[name] = res.json()
    colour, grey = answers["colour"], answers["grey"]
    assert colour["mottling"]["score"] >= 1 and "no_colour" not in colour["mottling"]["quality"]
    assert colour["hypoperfusion"]["evaluated"] == ["mottling_score>=1"]
    assert "no_colour" in grey["mottling"]["quality"]
    assert grey["hypoperfusion"] == {"hypoperfusion": False, "criteria": [], "evaluated": []}
