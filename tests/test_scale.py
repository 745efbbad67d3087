import math

import pytest

from mottling.scale import (DEFAULT_THRESHOLDS, CrtThresholds, LegLandmarks, assess_hypoperfusion,
                            describe_score, extent_bounds, is_crt_prolonged, score_for_extent)
from mottling.skin import MONK_TONES, ita_class, ita_degrees, monk_group, monk_rgb

LEG = LegLandmarks(coin_radius=0.05, patella_top=0.12, mid_thigh=0.45, groin_fold=0.85)


@pytest.mark.parametrize("extent,score", [
    (None, 0), (0.01, 1), (0.05, 1), (0.051, 2), (0.12, 2), (0.2, 3), (0.45, 3),
    (0.46, 4), (0.85, 4), (0.86, 5), (5.0, 5),
])
def test_score_for_extent_follows_the_definition(extent, score):
    assert score_for_extent(extent, LEG) == score


@pytest.mark.parametrize("score", range(1, 6))
def test_extent_bounds_round_trip(score):
    lo, hi = extent_bounds(score, LEG)
    assert score_for_extent(lo + 1e-9, LEG) == score
    if math.isfinite(hi):
        assert score_for_extent(hi, LEG) == score
        assert score_for_extent(hi + 1e-9, LEG) == score + 1
    assert extent_bounds(0, LEG) is None


def test_landmarks_must_increase():
    with pytest.raises(ValueError):
        LegLandmarks(0.05, 0.5, 0.4, 0.9)


def test_describe_score_rejects_out_of_range():
    assert describe_score(5).name == "extremely severe"
    with pytest.raises(ValueError):
        describe_score(6)


def test_crt_thresholds_are_site_specific_and_configurable():
    assert not is_crt_prolonged(3.0, "finger")
    assert is_crt_prolonged(3.01, "finger")
    assert not is_crt_prolonged(3.5, "knee")
    assert is_crt_prolonged(4.2, "knee")
    assert is_crt_prolonged(2.6, "finger", CrtThresholds(finger_s=2.5))
    with pytest.raises(ValueError):
        DEFAULT_THRESHOLDS.for_site("toe")


def test_hypoperfusion_reports_which_criteria_fired():
    flag = assess_hypoperfusion(mottling_score=0, crt_s=4.5, site="knee")
    assert flag.hypoperfusion and flag.criteria == ("knee_crt>4s",)
    assert flag.evaluated == ("mottling_score>=1", "knee_crt>4s")
    flag = assess_hypoperfusion(mottling_score=2, crt_s=3.5, site="finger")
    assert flag.criteria == ("mottling_score>=1", "finger_crt>3s")
    flag = assess_hypoperfusion(mottling_score=0, crt_s=2.0, site="finger")
    assert not flag.hypoperfusion and flag.criteria == ()
    # Nothing measured is not the same as normal: nothing is evaluated.
    assert assess_hypoperfusion().evaluated == ()
    with pytest.raises(ValueError):
        assess_hypoperfusion(crt_s=3.0)


def test_monk_tones_get_darker_and_ita_falls():
    itas = [ita_degrees(monk_rgb(t)) for t in MONK_TONES]
    assert itas[0] > 55 and itas[-1] < -30
    assert all(a > b for a, b in zip(itas[:4], itas[5:]))
    assert ita_class(itas[0]) == "very_light" and ita_class(itas[-1]) == "dark"
    assert [monk_group(t) for t in (1, 4, 8)] == ["monk_1-3", "monk_4-7", "monk_8-10"]
