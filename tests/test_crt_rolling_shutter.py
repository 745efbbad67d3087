"""Rolling-shutter flicker: the spot is read against the ring's pixels level with it, row for row.

A phone's sensor reads its rows one after the other, so mains light (100 or 120 Hz) lays moving
bands across the picture. The generator draws them along the sensor's rows (the stored frame's),
so a video stored turned shows them along the upright picture's columns. Against the whole ring,
which reaches rows far above and below the spot, the spot-over-ring ratio keeps part of the bands;
against the skin level with the spot, row for row (``signal.row_matched``), it keeps none.
"""

from __future__ import annotations

import numpy as np
import pytest

from mottling.crt.measure import _to_analysis
from mottling.crt.motion import track_camera
from mottling.crt.roi import baseline_count, spot_geometry
from mottling.crt.signal import relative_colour, row_matched, spot_series
from mottling.crt.video import decode_video
from mottling.synth.refill_curves import RefillCurve
from mottling.synth.refill_spec import RefillSpec
from mottling.synth.videos import render_refill_video


def test_row_matched_keeps_as_many_pixels_in_every_row_of_the_spot():
    ring = np.zeros((40, 60), dtype=bool)
    ring[5:35, 5:15] = True            # left side: 10 a row
    ring[5:35, 45:52] = True           # right side: 7 a row
    ring[12, 45:47] = False            # one row of the spot has fewer (15)
    box = (25, 10, 10, 8)              # x, y, w, h
    band = row_matched(ring, box)
    counts = band.sum(axis=1)
    assert set(counts[10:18]) == {15} and counts[:10].sum() == counts[18:].sum() == 0
    assert not (band & ~ring).any()
    # columns instead, for a video stored turned by 90 or 270 degrees
    assert (row_matched(ring.T.copy(), (10, 25, 8, 10), axis=1) == band.T).all()
    ring[14, :] = False                # a row of the spot with nothing beside it: no band
    assert row_matched(ring, box) is None


def _spec(rotation: int) -> RefillSpec:
    return RefillSpec(seed=5, site="knee", skin_tone=4, width=320, height=240, rotation=rotation,
                      fps_nominal=30, pre_press_s=2.0, press_duration_s=1.5, post_release_s=3.0,
                      curve=RefillCurve("mono", tau_s=0.8), noise_sigma=0.8, flicker_amp=0.03,
                      flicker_hz=100.0, crf=10)


@pytest.mark.parametrize("rotation", [0, 90])
def test_flicker_bands_cancel_against_the_ring_level_with_the_spot(tmp_path, rotation):
    path = tmp_path / "flicker.mp4"
    rec = render_refill_video(path, _spec(rotation))
    video = decode_video(str(path))
    t = video.t_s
    nb = baseline_count(t)
    track = track_camera(video.yuv[..., 0], t, nb)
    geom = spot_geometry(video.yuv.shape[1:3], _to_analysis(tuple(rec["roi"]), video))
    steady = np.nonzero(t < rec["press_start_s"] - 0.4)[0]   # before the press: only the light

    def wobble(axis: int) -> tuple[float, float]:
        s = spot_series(video.yuv, video.matrix, geom, nb, track.shifts, readout_axis=axis)
        whole = relative_colour(s.roi_rgb, s.ring_rgb, steady)[steady, 1]
        level = relative_colour(s.roi_rgb, s.band_rgb, steady)[steady, 1]
        return float(np.std(whole)), float(np.std(level))

    right = 1 if rotation in (90, 270) else 0
    whole, level = wobble(right)
    assert whole > 0.004             # the bands are there against the whole ring...
    assert level < 0.35 * whole      # ...and gone against the ring level with the spot
    _, wrong = wobble(1 - right)     # matched along the other axis, they stay
    assert wrong > 2 * level


def test_the_fit_reads_against_whichever_reference_holds_the_unpressed_spot_steadier():
    """Bands in the spot's rows: the level skin carries them and the ratio against it is flat;
    no bands: the ring, with more pixels, is the quieter reference and stays."""
    from mottling.crt.measure import _steadier_reference

    rng = np.random.default_rng(3)
    n, base = 60, np.arange(15)
    skin = np.array([180.0, 120.0, 100.0])
    bands = 1 + 0.02 * np.sin(2 * np.pi * 10 * np.arange(n) / 30)[:, None]   # 10 Hz beat
    spot = skin * bands + rng.normal(0, 0.05, (n, 3))
    ring = skin + rng.normal(0, 0.05, (n, 3))          # the whole ring averages the bands away
    level = skin * bands + rng.normal(0, 0.1, (n, 3))  # fewer pixels: noisier, but in step
    rel = _steadier_reference(spot, ring, level, base, channel=1)
    assert np.std(rel[base, 1]) < 0.002
    quiet = skin + rng.normal(0, 0.05, (n, 3))
    rel = _steadier_reference(quiet, ring, level / bands, base, channel=1)
    ratio = quiet / ring
    assert np.allclose(rel, ratio / np.median(ratio[base], axis=0) - 1)
    assert _steadier_reference(quiet, ring, None, base, 1) == pytest.approx(rel)
