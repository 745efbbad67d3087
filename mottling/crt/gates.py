"""Quality gates: when a refill measurement must be rejected rather than reported.

A rejection is never turned into a number (docs/design.md, "CRT"); each gate returns the reason a person reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.crt.refill import RefillFit


@dataclass(frozen=True)
class QualityGates:
    min_baseline_s: float = 0.3          # unpressed skin before the press
    min_post_frames: int = 12            # frames after the slide or fingertip has gone
    dark_luma: float = 12.0              # a frame darker than this (0..255) is unusable
    dark_drop: float = 0.4               # ...or darker than this share of the median frame
    max_saturated_share: float = 0.05    # ROI pixels clipped at 250+
    max_light_step: float = 0.10         # log-brightness step of the skin between two windows
    max_light_shift: float = 0.15        # log-brightness after the refill against before the press
    max_shift_share: float = 0.2         # camera translation, share of the frame's short side
    max_crt_rel_uncertainty: float = 0.25  # half-width of the 95% interval / crt, over 1.96
    min_snr: float = 6.0                 # blanching amplitude over baseline noise
    min_r2: float = 0.8
    crt_range_s: tuple[float, float] = (0.15, 20.0)


DEFAULT_GATES = QualityGates()


def dark_or_saturated(frame_luma: np.ndarray, roi_sat: np.ndarray, idx: np.ndarray,
                      gates: QualityGates) -> str | None:
    luma = frame_luma[idx]
    if len(luma) == 0:
        return None
    ref = float(np.median(luma))
    dark = (luma < gates.dark_luma) | (luma < gates.dark_drop * ref)
    if dark.any():
        return f"dark frames: {int(dark.sum())} frame(s) too dark to read the skin colour"
    sat = roi_sat[idx]
    if float(np.median(sat)) > gates.max_saturated_share or float(sat.max()) > 0.5:
        return "saturated pixels: the spot is overexposed; reduce the light or avoid the flash"
    return None


def lighting_step(log_light: np.ndarray, t_s: np.ndarray, gates: QualityGates,
                  half_window_s: float = 0.15) -> str | None:
    """A sudden change of the scene's brightness (a lamp switched, the phone's light toggled)."""
    n = len(log_light)
    if n < 6:
        return None
    # Compare the medians of short windows before and after each frame.
    k = max(2, int(round(half_window_s * n / max(t_s[-1] - t_s[0], 1e-6))))
    worst = 0.0
    for i in range(k, n - k + 1):
        step = abs(float(np.median(log_light[i:i + k]) - np.median(log_light[i - k:i])))
        worst = max(worst, step)
    if worst > gates.max_light_step:
        return f"lighting changed during the refill (a {100 * (np.exp(worst) - 1):.0f}% step)"
    return None


def lighting_shift(log_light: np.ndarray, log_light_base: np.ndarray,
                   gates: QualityGates) -> str | None:
    """The light after the refill is far from the light before the press (slow drift is small)."""
    post = float(np.median(log_light[-max(3, len(log_light) // 4):]))
    shift = abs(post - float(np.median(log_light_base)))
    if shift > gates.max_light_shift:
        return f"lighting changed during the refill ({100 * (np.exp(shift) - 1):.0f}% brighter or darker)"
    return None


def camera_motion(shifts: np.ndarray, short_side_px: float, gates: QualityGates) -> str | None:
    if len(shifts) == 0:
        return None
    moved = float(np.max(np.hypot(shifts[:, 0], shifts[:, 1])))
    if moved > gates.max_shift_share * short_side_px:
        return (f"motion: the camera moved {100 * moved / short_side_px:.0f}% of the frame "
                "during the refill; hold the phone still")
    return None


def fit_quality(fit: RefillFit | None, snr: float, t_end_s: float, gates: QualityGates) -> str | None:
    if fit is None:
        return "poor fit: the recovery could not be fitted"
    if snr < gates.min_snr:
        return f"no clear blanching: the colour change is only {snr:.1f}x the noise"
    lo, hi = gates.crt_range_s
    if not lo <= fit.crt_s <= hi:
        return f"poor fit: a refill of {fit.crt_s:.2f} s is outside the plausible {lo}-{hi} s"
    if t_end_s < fit.crt_s:
        return "too few frames after release: the video ends before the colour has come back"
    if fit.r2 < gates.min_r2:
        return f"poor fit: the recovery does not follow a refill curve (R2 {fit.r2:.2f})"
    rel = fit.crt_rel_uncertainty
    if not np.isfinite(rel) or rel > gates.max_crt_rel_uncertainty:
        return f"poor fit: the refill time is uncertain to +-{100 * 1.96 * rel:.0f}%"
    return None
