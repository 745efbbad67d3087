"""Result dataclasses shared by the CLI, the HTTP service and the batch runner (the contract: docs/design.md).

Field names carry units. ``to_dict`` gives exactly the JSON contract; anything bulky that only a
picture needs (the area map, the recovery curve) is kept out of it unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Quality flags for photos, with the plain words the bedside page shows.
IMAGE_QUALITY_MESSAGES = {
    "too_dark": "The photo is too dark. Add light or move away from shadow.",
    "overexposed": "The photo is overexposed. Avoid direct light or flash on the skin.",
    "blurred": "The photo is blurred. Hold the phone still and let it focus.",
    "no_skin": "No leg or skin was found in the photo. Frame the leg from the knee to the groin.",
    "low_resolution": "The photo is too small to judge. Use the phone's full resolution.",
    "no_colour": "The photo has no colour (greyscale). Mottling is judged by colour: take a "
                 "colour photo.",
}

# Flags that make the score meaningless, not merely less certain: it is still reported (with the
# flag and a cut confidence) but never used as a finding, e.g. by the hypoperfusion rule.
# Mottling is a colour sign, so a photo without colour cannot show it.
UNSCORABLE_FLAGS = frozenset({"no_colour"})


@dataclass(frozen=True)
class MottlingResult:
    path: str | None
    score: int
    probabilities: tuple[float, ...]
    expected_score: float
    confidence: float
    quality: tuple[str, ...]
    model_version: str
    model_sha256: str
    # The predicted mottled-area map (H x W floats in [0, 1]) for the overlay; not part of the JSON.
    area_map: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def usable_score(self) -> int | None:
        """The score, or ``None`` when a flag in ``UNSCORABLE_FLAGS`` says it cannot be a finding."""
        return None if UNSCORABLE_FLAGS & set(self.quality) else int(self.score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "score": int(self.score),
            "probabilities": [float(p) for p in self.probabilities],
            "expected_score": float(self.expected_score),
            "confidence": float(self.confidence),
            "quality": list(self.quality),
            "model_version": self.model_version,
            "model_sha256": self.model_sha256,
        }


@dataclass(frozen=True)
class RecoveryCurve:
    """What ``--plot`` and the bedside page draw: the signal, the fit and the marks."""

    t_s: tuple[float, ...]           # presentation times of the analysed frames
    signal: tuple[float, ...]        # normalised colour signal (baseline 0, blanched extreme 1)
    fit_t_s: tuple[float, ...] = ()  # the fitted recovery, sampled for drawing
    fit: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": list(self.t_s), "signal": list(self.signal),
                "fit_t_s": list(self.fit_t_s), "fit": list(self.fit)}


@dataclass(frozen=True)
class CrtResult:
    path: str | None
    site: str
    status: str                      # "ok" | "rejected"
    reason: str | None
    crt_s: float | None
    crt_ci95: tuple[float, float] | None
    tau_s: float | None
    release_s: float | None
    threshold_s: float
    prolonged: bool | None
    fps: float | None
    frames: int
    tau_ci95: tuple[float, float] | None = None
    roi: tuple[int, int, int, int] | None = None
    curve: RecoveryCurve | None = field(default=None, repr=False, compare=False)

    def to_dict(self, include_curve: bool = False) -> dict[str, Any]:
        def opt(x):
            return None if x is None else float(x)

        out = {
            "path": self.path,
            "site": self.site,
            "status": self.status,
            "reason": self.reason,
            "crt_s": opt(self.crt_s),
            "crt_ci95": None if self.crt_ci95 is None else [float(v) for v in self.crt_ci95],
            "tau_s": opt(self.tau_s),
            "release_s": opt(self.release_s),
            "threshold_s": float(self.threshold_s),
            "prolonged": self.prolonged,
            "fps": opt(self.fps),
            "frames": int(self.frames),
            "tau_ci95": None if self.tau_ci95 is None else [float(v) for v in self.tau_ci95],
            "roi": None if self.roi is None else [int(v) for v in self.roi],
        }
        if include_curve:
            out["curve"] = None if self.curve is None else self.curve.to_dict()
        return out
