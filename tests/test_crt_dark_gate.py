"""The dark-frame gate judges a frame against the frames around it: a light dimmed to a third
after a long, bright press is a lighting change, not "dark" (own seed 9292000 video 59 was read
`dark` by the whole video's median), while a frame that goes black for a moment still is."""

from __future__ import annotations

import numpy as np

from mottling.crt import gates as g


def _luma(fps: float = 30.0):
    t = np.arange(0, 20, 1 / fps)
    luma = np.full(len(t), 60.0)
    luma[(t >= 2) & (t < 13)] = 90.0      # the examiner's pale hand fills the picture
    luma[t >= 14] = 33.0                  # the light dims to a little over a third
    luma += 0.3 * np.sin(7 * t)
    return t, luma


def test_a_light_dimmed_after_a_bright_press_is_not_dark():
    t, luma = _luma()
    idx = np.arange(len(t))
    assert g.dark_frames(luma, idx, g.DEFAULT_GATES) is not None   # the whole video's median
    assert g.dark_frames(luma, idx, g.DEFAULT_GATES, t) is None


def test_a_frame_that_goes_black_is_dark_at_any_rate():
    for fps in (30.0, 240.0):
        t, luma = _luma(fps)
        i = int(np.searchsorted(t, 16.0))
        luma[i:i + 2] *= 0.05
        reason = g.dark_frames(luma, np.arange(len(t)), g.DEFAULT_GATES, t)
        assert reason is not None and reason.startswith("dark: 2 frame(s)")
        assert g.reason_category(reason) == "dark"
