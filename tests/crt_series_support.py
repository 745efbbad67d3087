"""Synthetic colour series for ``timing.detect_press``: the ring's deviation in its own units,
and each series' frame noise."""

from __future__ import annotations

import numpy as np

RING_SD = 0.001                  # the ring's frame noise (log units)
RING_UNIT = 6 * RING_SD + 0.006  # one unit of ``timing._ring_deviation`` at that noise
SPOT_SD = 0.003                  # the spot's and the raw feature's frame noise


def ring_covered(level_units: np.ndarray) -> np.ndarray:
    """(N, 4) ring series whose deviation is ``level_units`` (one channel moved)."""
    ring = np.zeros((len(level_units), 4))
    ring[:, 0] = level_units * RING_UNIT
    return ring


def with_noise(rng: np.random.Generator, t: np.ndarray, spot: np.ndarray, ring: np.ndarray,
               raw: np.ndarray):
    """(t, spot, ring, raw) as ``detect_press`` takes them, each with its frame noise (drawn in
    this order: spot, ring, raw)."""
    return (t, spot + rng.normal(0.0, SPOT_SD, spot.shape),
            ring + rng.normal(0.0, RING_SD, ring.shape), raw + rng.normal(0.0, SPOT_SD, raw.shape))
