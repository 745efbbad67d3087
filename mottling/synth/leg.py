"""Leg anatomy and camera geometry for the photo generator.

The leg lives in *landmark units*: ``u`` runs along the leg axis, 0 at the centre of the knee and
1 at the groin fold; ``v`` runs across it, positive towards the midline (medial). The camera is a
homography from output pixels to this plane, so every pixel knows its (u, v) exactly and the
label follows the score definition without any warping step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.scale import LegLandmarks


@dataclass(frozen=True)
class Anatomy:
    """One synthetic patient's leg: proportions, side and skin."""

    side: str  # "left" | "right"
    skin_tone: int
    landmarks: LegLandmarks
    hw_knee: float  # half-width of the leg at the knee
    hw_groin: float  # half-width of the thigh at the groin fold
    hw_calf: float  # half-width below the knee
    patella_ru: float  # patella semi-axis along the leg
    patella_rv: float  # patella semi-axis across the leg
    patella_height: float  # how much the kneecap stands out (shading)
    fold_tilt: float  # slope of the groin crease (u per unit of lateral v)
    hip_flare: float  # how fast the lateral outline widens above the groin
    skin_jitter: tuple[float, float, float]  # per-patient tint on the Monk swatch
    texture_seed: int

    @property
    def side_sign(self) -> float:
        """+1 when the medial side is towards image +x (a right leg seen from the feet)."""
        return 1.0 if self.side == "right" else -1.0


def sample_anatomy(rng: np.random.Generator, skin_tone: int, side: str) -> Anatomy:
    coin = float(rng.uniform(0.038, 0.046))
    patella_top = float(rng.uniform(0.085, 0.105))
    mid = float(rng.uniform(0.48, 0.52))
    landmarks = LegLandmarks(coin_radius=coin, patella_top=patella_top, mid_thigh=mid,
                             groin_fold=1.0)
    hw_knee = float(rng.uniform(0.15, 0.19))
    return Anatomy(
        side=side, skin_tone=skin_tone, landmarks=landmarks,
        hw_knee=hw_knee,
        hw_groin=float(hw_knee * rng.uniform(1.25, 1.6)),
        hw_calf=float(hw_knee * rng.uniform(0.82, 0.95)),
        patella_ru=float(patella_top * rng.uniform(0.95, 1.1)),
        patella_rv=float(hw_knee * rng.uniform(0.45, 0.6)),
        patella_height=float(rng.uniform(0.5, 1.0)),
        fold_tilt=float(rng.uniform(0.25, 0.5)),
        hip_flare=float(rng.uniform(0.3, 0.8)),
        skin_jitter=tuple(float(x) for x in rng.normal(0.0, 0.025, 3)),
        texture_seed=int(rng.integers(2**31)),
    )


def half_widths(anat: Anatomy, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Medial and lateral half-widths of the leg outline at ``u``."""
    t = np.clip(u, 0.0, 1.0)
    thigh = anat.hw_knee + (anat.hw_groin - anat.hw_knee) * t ** 0.8
    # a little fullness above the kneecap (vastus medialis) and along the thigh
    thigh = thigh + 0.012 * np.exp(-((u - 0.22) / 0.1) ** 2) + 0.01 * np.sin(np.pi * t)
    below = anat.hw_calf + (anat.hw_knee - anat.hw_calf) * np.exp(-((u / 0.12) ** 2))
    hw = np.where(u < 0, below, thigh)
    above = np.maximum(u - 1.0, 0.0)
    lateral = hw + anat.hip_flare * above
    medial = hw + 0.15 * above
    return medial.astype(np.float32), lateral.astype(np.float32)


@dataclass(frozen=True)
class Camera:
    """A homography between output pixels (x, y) and the leg plane (u, v)."""

    width: int
    height: int
    pix_to_leg: np.ndarray  # 3x3, maps (x, y, 1) -> (qx, qy, w) with qx = side*v, qy = -u
    side_sign: float
    px_per_unit: float

    def leg_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) for every pixel centre, each (height, width) float32."""
        ys, xs = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        xs += 0.5
        ys += 0.5
        h = self.pix_to_leg.astype(np.float32)
        w = h[2, 0] * xs + h[2, 1] * ys + h[2, 2]
        qx = (h[0, 0] * xs + h[0, 1] * ys + h[0, 2]) / w
        qy = (h[1, 0] * xs + h[1, 1] * ys + h[1, 2]) / w
        return -qy, qx * np.float32(self.side_sign)

    def to_pixels(self, u: float, v: float = 0.0) -> tuple[float, float]:
        inv = np.linalg.inv(self.pix_to_leg)
        p = inv @ np.array([self.side_sign * v, -u, 1.0])
        return float(p[0] / p[2]), float(p[1] / p[2])

    def inside(self, u: float, v: float = 0.0, margin: float = 0.0) -> bool:
        x, y = self.to_pixels(u, v)
        m = margin * max(self.width, self.height)
        return m <= x <= self.width - m and m <= y <= self.height - m


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with dst ~ H @ src for four point pairs (direct linear transform)."""
    rows = []
    for (x, y), (X, Y) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -X * x, -X * y])
        rows.append([0, 0, 0, x, y, 1, -Y * x, -Y * y])
    a = np.array(rows, dtype=np.float64)
    b = dst.reshape(-1).astype(np.float64)
    h = np.linalg.solve(a, b)
    return np.append(h, 1.0).reshape(3, 3)


def make_camera(width: int, height: int, side_sign: float, centre_u: float, centre_v: float,
                span_u: float, rotation_deg: float, keystone: float) -> Camera:
    """Camera whose frame spans ``span_u`` landmark units along its vertical side.

    ``rotation_deg`` turns the frame about its centre (0: knee at the bottom, groin at the top);
    ``keystone`` > 0 makes the far (top) edge of the frame cover more leg, as when the photo is
    taken from the foot of the bed with the phone tilted.
    """
    span_v = span_u * width / height
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)  # tl, tr, br, bl
    corners = half * np.array([span_v / 2, span_u / 2])
    corners[:2, 0] *= 1 + keystone  # top corners (qy < 0 is towards the groin)
    corners[2:, 0] *= 1 - keystone
    th = np.radians(rotation_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    corners = corners @ rot.T + np.array([side_sign * centre_v, -centre_u])
    pix = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    return Camera(width, height, _homography(pix, corners), side_sign, height / span_u)
