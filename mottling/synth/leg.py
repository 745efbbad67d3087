"""Leg anatomy, its shading, and the camera geometry for the photo generator.

The leg lives in *landmark units*: ``u`` runs along the leg axis, 0 at the centre of the knee and
1 at the groin fold; ``v`` runs across it, positive towards the midline (medial). The camera is a
homography from output pixels to this plane, so every pixel knows its (u, v) exactly and the
label follows the score definition without any warping step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.scale import LegLandmarks

# Frontal outline of an adult leg lying on a bed: (u, half-width) control points for the medial
# and lateral edges, knee-groin length 1. The calf bulges below the knee, the femoral condyles
# make the knee wide, the vastus medialis fills the medial side just above it.
_U_CTRL = np.array([-0.8, -0.55, -0.35, -0.15, -0.04, 0.06, 0.16, 0.3, 0.5, 0.7, 0.88, 1.0,
                    1.15, 1.5], dtype=np.float32)
_MEDIAL = np.array([0.115, 0.125, 0.145, 0.13, 0.15, 0.16, 0.17, 0.17, 0.185, 0.205, 0.22,
                    0.225, 0.25, 0.3], dtype=np.float32)
_LATERAL = np.array([0.11, 0.12, 0.135, 0.125, 0.145, 0.15, 0.145, 0.16, 0.185, 0.21, 0.235,
                     0.25, 0.31, 0.45], dtype=np.float32)


@dataclass(frozen=True)
class Anatomy:
    """One synthetic patient's leg: proportions, side and skin."""

    side: str  # "left" | "right"
    skin_tone: int
    landmarks: LegLandmarks
    width_scale: float  # whole-leg girth
    thigh_fullness: float  # extra girth of the upper thigh
    patella_ru: float  # kneecap semi-axis along the leg
    patella_rv: float  # kneecap semi-axis across the leg
    patella_height: float  # how much the kneecap stands out (shading)
    fold_tilt: float  # slope of the groin crease (u per unit of medial v)
    skin_jitter: tuple[float, float, float]  # per-patient tint on the Monk swatch
    texture_seed: int

    @property
    def side_sign(self) -> float:
        """+1 when the medial side is towards image +x (a right leg seen from the feet)."""
        return 1.0 if self.side == "right" else -1.0

    @property
    def hw_knee(self) -> float:
        return 0.15 * self.width_scale


def sample_anatomy(rng: np.random.Generator, skin_tone: int, side: str) -> Anatomy:
    coin = float(rng.uniform(0.038, 0.046))
    patella_top = float(rng.uniform(0.085, 0.105))
    landmarks = LegLandmarks(coin_radius=coin, patella_top=patella_top,
                             mid_thigh=float(rng.uniform(0.48, 0.52)), groin_fold=1.0)
    return Anatomy(
        side=side, skin_tone=skin_tone, landmarks=landmarks,
        width_scale=float(rng.uniform(0.85, 1.12)),
        thigh_fullness=float(rng.uniform(0.9, 1.3)),
        patella_ru=float(patella_top * rng.uniform(0.95, 1.08)),
        patella_rv=float(rng.uniform(0.065, 0.085)),
        patella_height=float(rng.uniform(0.7, 1.2)),
        fold_tilt=float(rng.uniform(0.25, 0.5)),
        skin_jitter=tuple(float(x) for x in rng.normal(0.0, 0.02, 3)),
        texture_seed=int(rng.integers(2**31)),
    )


def half_widths(anat: Anatomy, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Medial and lateral half-widths of the leg outline at ``u`` (float32 arrays)."""
    full = np.float32(1.0) + np.float32(anat.thigh_fullness - 1.0) * np.clip(u - 0.2, 0, 0.8)
    s = np.float32(anat.width_scale) * full
    return (np.interp(u, _U_CTRL, _MEDIAL).astype(np.float32) * s,
            np.interp(u, _U_CTRL, _LATERAL).astype(np.float32) * s)


def bump_gradient(anat: Anatomy, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes (d/du, d/dv) of the leg's relief: kneecap, the hollows beside the patellar tendon,
    the soft fullness above the kneecap, the tibial tuberosity, the long ridge of the rectus
    femoris and the bulge of the vastus medialis. Units: height per landmark unit."""
    ru, rv, ph = anat.patella_ru, anat.patella_rv, anat.patella_height
    bumps = (  # (u0, v0, su, sv, height)
        (0.0, 0.0, ru, rv, 0.045 * ph),
        (-1.5 * ru, 0.55 * rv, 0.5 * ru, 0.35 * rv, -0.02 * ph),
        (-1.5 * ru, -0.55 * rv, 0.5 * ru, 0.35 * rv, -0.02 * ph),
        (1.9 * ru, 0.5 * rv, 1.0 * ru, 1.2 * rv, 0.02),
        (-2.6 * ru, 0.0, 0.6 * ru, 0.5 * rv, 0.008 * ph),  # tibial tuberosity
        (0.6, -0.02, 0.3, 0.08, 0.015),  # rectus femoris
        (0.22, 0.09, 0.12, 0.07, 0.012),  # vastus medialis
    )
    gu = np.zeros_like(u)
    gv = np.zeros_like(u)
    for u0, v0, su, sv, hgt in bumps:
        du = (u - np.float32(u0)) * np.float32(1 / su)
        dv = (v - np.float32(v0)) * np.float32(1 / sv)
        g = np.exp(-np.minimum(du * du + dv * dv, 80)) * np.float32(hgt)
        gu -= np.float32(2 / su) * du * g
        gv -= np.float32(2 / sv) * dv * g
    return gu, gv


def shade_leg(rng: np.random.Generator, anat: Anatomy, u: np.ndarray, v: np.ndarray,
              med: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Diffuse shading and a specular sheen of the leg, lit from a random direction.

    The leg is a flattened cylinder carrying the knee's relief. Returns (shade, gloss, azimuth of
    the light); call it on a subsampled grid, these fields are smooth.
    """
    f = np.float32
    centre = f(0.5) * (med - lat)
    nx = np.clip((v - centre) / (f(0.5) * (med + lat)), -0.995, 0.995)
    nzc = np.sqrt(f(1) - nx * nx)
    gu, gv = bump_gradient(anat, u, v)
    n_v, n_u, n_z = nx - gv * nzc, -gu * nzc, nzc
    inv = f(1) / np.sqrt(n_v * n_v + n_u * n_u + n_z * n_z)
    el, az = rng.uniform(0.75, 1.45), rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    ndl = (n_v * f(light[0]) + n_u * f(light[1]) + n_z * f(light[2])) * inv
    half_vec = light + np.array([0.0, 0.0, 1.0])
    half_vec /= np.linalg.norm(half_vec)
    ndh = (n_v * f(half_vec[0]) + n_u * f(half_vec[1]) + n_z * f(half_vec[2])) * inv
    ambient = f(rng.uniform(0.2, 0.4))
    shade = ambient + (f(1) - ambient) * np.maximum(ndl, 0)
    nx2 = nx * nx
    shade *= f(1) - f(0.3) * nx2 * nx2  # the skin turns away at the leg's edges
    fold_u = f(1.0) - f(anat.fold_tilt) * v - f(1.5) * v * v
    d1 = (u - fold_u) * f(1 / 0.01)
    d2 = (u - fold_u + f(0.02)) * f(1 / 0.03)
    groin = f(0.12) * np.exp(-np.minimum(d1 * d1, 80)) + f(0.1) * np.exp(-np.minimum(d2 * d2, 80))
    shade *= f(1) - groin * np.clip(v * f(8) + f(0.5), 0, 1)  # a crease on the medial side
    # no denormals: powf on tiny values is very slow
    gloss = f(rng.uniform(0.02, 0.12)) * np.maximum(ndh, f(0.65)) ** f(rng.uniform(12, 40))
    return shade, gloss, float(az)


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
        xs = np.arange(self.width, dtype=np.float32)[None, :] + np.float32(0.5)
        ys = np.arange(self.height, dtype=np.float32)[:, None] + np.float32(0.5)
        h = self.pix_to_leg.astype(np.float32)
        w = np.float32(1.0) / (h[2, 0] * xs + h[2, 1] * ys + h[2, 2])
        qx = (h[0, 0] * xs + h[0, 1] * ys + h[0, 2]) * w
        qy = (h[1, 0] * xs + h[1, 1] * ys + h[1, 2]) * w
        return -qy, qx * np.float32(self.side_sign)

    def to_pixels(self, u: float, v: float = 0.0) -> tuple[float, float]:
        inv = np.linalg.inv(self.pix_to_leg)
        p = inv @ np.array([self.side_sign * v, -u, 1.0])
        return float(p[0] / p[2]), float(p[1] / p[2])

    def inside(self, u: float, v: float = 0.0, margin: float = 0.0) -> bool:
        x, y = self.to_pixels(u, v)
        m = margin * max(self.width, self.height)
        return m <= x <= self.width - m and m <= y <= self.height - m

    def axis_angle(self) -> float:
        """Direction (radians, image coordinates) from the knee towards the groin."""
        (x0, y0), (x1, y1) = self.to_pixels(0.0), self.to_pixels(1.0)
        return float(np.arctan2(y1 - y0, x1 - x0))


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
