"""Quality flags on generated photos of every Monk tone: clean photos raise none, spoilt ones do."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from mottling.photo.quality import (
    DEFAULT_POLICY,
    QUALITY_FLAGS,
    QualityReport,
    adjusted_confidence,
    assess_quality,
    skin_mask,
)
from mottling.results import IMAGE_QUALITY_MESSAGES
from mottling.skin import MONK_TONES, monk_rgb
from tests.photos import leg_photo

SIZE = 320


@pytest.fixture(scope="module")
def clean_photos() -> dict[tuple[int, int], Image.Image]:
    """One photo per Monk tone and score 0 / 5, from seeds not used to set the thresholds."""
    return {(tone, score): leg_photo(7_000 + 10 * tone + score, score, tone, SIZE)
            for tone in MONK_TONES for score in (0, 5)}


def test_flags_are_the_documented_ones():
    assert QUALITY_FLAGS == tuple(IMAGE_QUALITY_MESSAGES)
    assert set(DEFAULT_POLICY.penalties) == set(QUALITY_FLAGS)


# Renderer A 1.2 lights some photos with a deep blue-magenta LED cast; on this one (Monk 1, a thin
# leg across a blue sheet) the lenient CIELAB skin test finds too few skin-coloured pixels and says
# ``no_skin`` although the leg is in view: a known weakness of the colour test under strong casts,
# found when the renderer was widened, not yet fixed (white-balancing first would make a sheet-only
# frame grey, which the test counts as possible skin).
_CAST_WEAK = {(1, 5)}


@pytest.mark.parametrize("key", [
    pytest.param(k, marks=pytest.mark.xfail(strict=False, reason="no_skin under a deep blue cast "
                                            "(renderer A 1.2): the colour test's known weakness"))
    if k in _CAST_WEAK else k
    for k in [(tone, score) for tone in MONK_TONES for score in (0, 5)]], ids=str)
def test_clean_photos_of_every_tone_raise_no_flag(clean_photos, key):
    assert assess_quality(clean_photos[key]).flags == ()


def test_dark_skin_is_never_called_no_skin_or_too_dark(clean_photos):
    for tone in (8, 9, 10):
        for score in (0, 5):
            report = assess_quality(clean_photos[(tone, score)])
            assert "no_skin" not in report.flags and "too_dark" not in report.flags
            assert report.skin_fraction > 1.5 * DEFAULT_POLICY.skin_min_fraction


@pytest.mark.parametrize("gain", [(1.0, 1.0, 1.0), (1.15, 1.0, 0.8), (0.92, 1.0, 1.1)],
                         ids=["neutral", "warm", "cool"])
def test_every_monk_swatch_counts_as_skin(gain):
    swatches = np.stack([np.clip(monk_rgb(t) * 255 * np.array(gain), 0, 255) for t in MONK_TONES])
    assert skin_mask(swatches[None, :, :]).all()


def test_too_dark(clean_photos):
    for (tone, score), im in clean_photos.items():
        dark = Image.eval(im, lambda v: v // 8)
        assert "too_dark" in assess_quality(dark).flags, (tone, score)


def test_blurred(clean_photos):
    for (tone, score), im in clean_photos.items():
        soft = im.filter(ImageFilter.GaussianBlur(5 * SIZE / 384))
        assert "blurred" in assess_quality(soft).flags, (tone, score)


def test_overexposed(clean_photos):
    for tone in (1, 2, 3, 4, 5, 6):
        washed = Image.eval(clean_photos[(tone, 0)], lambda v: min(255, v * 4))
        assert "overexposed" in assess_quality(washed).flags, tone
    assert "overexposed" in assess_quality(Image.new("RGB", (400, 300), (255, 255, 255))).flags


@pytest.mark.parametrize("colour", [(170, 190, 222), (150, 205, 180), (60, 140, 60), (4, 4, 6)],
                         ids=["blue sheet", "mint sheet", "green", "black"])
def test_no_skin(colour):
    rng = np.random.default_rng(0)
    px = np.array(colour, np.float32) * np.linspace(0.8, 1.1, 400)[None, :, None]
    px = px + rng.normal(0, 3, (300, 400, 3))
    frame = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8))
    assert "no_skin" in assess_quality(frame).flags


def test_low_resolution(clean_photos):
    small = clean_photos[(5, 0)].resize((160, 120))
    assert "low_resolution" in assess_quality(small).flags
    assert "low_resolution" not in assess_quality(clean_photos[(5, 0)]).flags


def test_confidence_is_lowered_by_each_flag():
    probs = np.array([0.05, 0.1, 0.6, 0.15, 0.05, 0.05])
    clean = QualityReport((), 200.0, 0.0, 0.2, 0.4, 400)
    assert adjusted_confidence(probs, clean) == pytest.approx(0.6)
    spoilt = QualityReport(("too_dark", "blurred"), 20.0, 0.0, 0.8, 0.4, 400)
    expected = 0.6 * DEFAULT_POLICY.penalties["too_dark"] * DEFAULT_POLICY.penalties["blurred"]
    assert adjusted_confidence(probs, spoilt) == pytest.approx(expected)
    assert all(0 < p < 1 for p in DEFAULT_POLICY.penalties.values())


def test_box_blur_matches_scipy():
    from scipy.ndimage import uniform_filter1d

    from mottling.photo.quality import _box_blur

    f = np.random.default_rng(0).random((37, 53)).astype(np.float32) * 255
    for axis in (0, 1):
        np.testing.assert_allclose(_box_blur(f, 9, axis),
                                   uniform_filter1d(f, 9, axis=axis, mode="nearest"), atol=1e-3)
