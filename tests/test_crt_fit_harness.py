"""benchmarks/crt_fit_harness.py --oracle: the same fit on the generator's noiseless truth, and the
decoded signal's residual against it (where the error of an accepted CRT comes from)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mottling.synth.refill_curves import RefillCurve
from mottling.synth.refill_frames import blanch_signal
from mottling.synth.refill_spec import sample_spec
from mottling.synth.videos import _spec_dict
from tests.bench_support import load_benchmark


@pytest.fixture(scope="module")
def harness():
    return load_benchmark("crt_fit_harness")


def _record_and_result(offset: float):
    """A clean mono-exponential video's truth record and an accepted result whose fitted signal is
    the truth plus a held (lagging) level ``offset`` (units of the amplitude) after the release."""
    spec = sample_spec(np.random.default_rng([20, 1]), 1, site="knee")
    spec = replace(spec, curve=RefillCurve(kind="mono", tau_s=1.0), broken=None, broken_at_s=None)
    crt = spec.curve.crt_s
    record = {"path": "videos/x.mp4", "site": spec.site, "skin_tone": spec.skin_tone,
              "crf": spec.crf, "curve": spec.curve.to_dict(), "release_s": spec.release_s,
              "crt_s": crt, "broken": None, "spec": _spec_dict(spec)}
    t = np.arange(0.3, 2.2 * crt, 1 / 30)
    amp = 0.15
    y = amp * (blanch_signal(spec, t + spec.release_s) + offset)
    result = {"status": "ok", "crt_s": crt * (1 + 4 * offset), "release_s": spec.release_s,
              "fit_amplitude": amp, "fit_t": t, "fit_y": y}
    return record, result


def test_oracle_refits_the_noiseless_truth_and_shows_a_held_level(harness):
    rec, res = _record_and_result(0.0)
    row = harness.oracle_rows([rec], [res])[0]
    assert abs(row["clean_err"]) < 0.01
    assert np.nanmax(np.abs(row["profile"])) < 1e-6
    rec, res = _record_and_result(0.03)
    row = harness.oracle_rows([rec], [res])[0]
    assert abs(row["clean_err"]) < 0.01          # the noiseless refit does not see the offset
    prof = np.array(row["profile"])
    assert prof[-1] > prof[0] + 0.02             # the decoded tail sits above the truth
