"""Known capillary-refill recovery curves for the synthetic videos.

The signal is the *blanching fraction* ``s(t)``: 1 at the moment of release (fully blanched) and 0
at the baseline colour measured before the press. A pixel of the pressed skin is
``baseline + s(t) * (blanched - baseline)``, so any linear colour feature of the ROI (mean R, G, B,
a projection on the blanching direction) follows ``s`` exactly, before noise and compression.

Definitions (docs/design.md):
- ``crt_s``: time from release until ``s`` falls to 0.1 (90% recovery).
- ``tau_s``: mono and delayed curves: their time constant. Bi-exponential curves have two; we report
  the time constant of the single exponential with the *same* CRT, ``crt_s / ln 10``, so a fitter
  that reports ``crt = tau * ln 10`` is judged on the same footing for every curve kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LN10 = math.log(10.0)
RECOVERY_LEVEL = 0.1  # s(t) at which 90% of the colour has come back

CURVE_KINDS = ("mono", "bi", "delayed")


@dataclass(frozen=True)
class RefillCurve:
    """One recovery curve. ``kind`` picks which parameters matter.

    mono:    s = exp(-t / tau_s)
    delayed: s = 1 for t < delay_s, then exp(-(t - delay_s) / tau_s)
    bi:      s = fast_weight * exp(-t / tau_fast_s) + (1 - fast_weight) * exp(-t / tau_s)
             (``tau_s`` is the slow constant here; ``tau_fast_s`` < ``tau_s``)
    """

    kind: str
    tau_s: float
    delay_s: float = 0.0
    tau_fast_s: float = 0.0
    fast_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in CURVE_KINDS:
            raise ValueError(f"curve kind must be one of {CURVE_KINDS}, got {self.kind!r}")
        if self.tau_s <= 0:
            raise ValueError("tau_s must be positive")
        bi_ok = 0 < self.tau_fast_s < self.tau_s and 0 < self.fast_weight < 1
        if self.kind == "bi" and not bi_ok:
            raise ValueError("bi curve needs 0 < tau_fast_s < tau_s and 0 < fast_weight < 1")
        if self.kind == "delayed" and self.delay_s < 0:
            raise ValueError("delay_s must be >= 0")

    def blanch_fraction(self, t_since_release: np.ndarray | float) -> np.ndarray:
        """s(t) for times after release (t < 0 gives 1: still blanched)."""
        t = np.maximum(np.asarray(t_since_release, dtype=np.float64), 0.0)
        if self.kind == "mono":
            return np.exp(-t / self.tau_s)
        if self.kind == "delayed":
            return np.exp(-np.maximum(t - self.delay_s, 0.0) / self.tau_s)
        w = self.fast_weight
        return w * np.exp(-t / self.tau_fast_s) + (1.0 - w) * np.exp(-t / self.tau_s)

    @property
    def crt_s(self) -> float:
        """Time from release to s = 0.1, exact for mono/delayed, bisection to 1e-9 s for bi."""
        if self.kind == "mono":
            return self.tau_s * LN10
        if self.kind == "delayed":
            return self.delay_s + self.tau_s * LN10
        lo, hi = 0.0, self.tau_s * LN10  # s(hi) > 0.1 is impossible past the slow-only bound
        while float(self.blanch_fraction(hi)) > RECOVERY_LEVEL:
            hi *= 2.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if float(self.blanch_fraction(mid)) > RECOVERY_LEVEL:
                lo = mid
            else:
                hi = mid
            if hi - lo < 1e-10:
                break
        return 0.5 * (lo + hi)

    @property
    def equivalent_tau_s(self) -> float:
        """The ``tau_s`` written to the truth file (see module docstring)."""
        if self.kind == "bi":
            return self.crt_s / LN10
        return self.tau_s

    def to_dict(self) -> dict:
        if self.kind == "mono":
            params = {"tau_s": self.tau_s}
        elif self.kind == "delayed":
            params = {"tau_s": self.tau_s, "delay_s": self.delay_s}
        else:
            params = {"tau_fast_s": self.tau_fast_s, "tau_slow_s": self.tau_s,
                      "fast_weight": self.fast_weight}
        return {"kind": self.kind, **params}


def curve_for_crt(kind: str, crt_s: float, rng: np.random.Generator) -> RefillCurve:
    """A curve of the given kind whose 90% recovery time is exactly ``crt_s``."""
    if kind == "mono":
        return RefillCurve("mono", tau_s=crt_s / LN10)
    if kind == "delayed":
        delay = float(rng.uniform(0.15, min(0.8, 0.35 * crt_s)))
        return RefillCurve("delayed", tau_s=(crt_s - delay) / LN10, delay_s=delay)
    if kind == "bi":
        weight = float(rng.uniform(0.3, 0.7))
        ratio = float(rng.uniform(0.12, 0.4))  # tau_fast / tau_slow
        unit = RefillCurve("bi", tau_s=1.0, tau_fast_s=ratio, fast_weight=weight)
        scale = crt_s / unit.crt_s  # s(t) of a scaled-time curve crosses 0.1 at scale * crt
        return RefillCurve("bi", tau_s=scale, tau_fast_s=ratio * scale, fast_weight=weight)
    raise ValueError(f"curve kind must be one of {CURVE_KINDS}, got {kind!r}")


def curve_from_dict(d: dict) -> RefillCurve:
    """Inverse of ``RefillCurve.to_dict`` (the ``curve`` field of a truth record)."""
    if d["kind"] == "bi":
        return RefillCurve("bi", tau_s=d["tau_slow_s"], tau_fast_s=d["tau_fast_s"],
                           fast_weight=d["fast_weight"])
    return RefillCurve(d["kind"], tau_s=d["tau_s"], delay_s=d.get("delay_s", 0.0))
