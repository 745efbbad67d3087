"""Renderer B ("ward"): a leg in 3-D seen through a wide-angle phone camera.

Built independently of renderer A (which maps a flat leg outline through a homography): the thigh
and shin are round cones joined at a kneecap, lying on a bed plane, and every pixel's ray is
sphere-traced against that solid. A wide field of view (58-72 degrees) and a camera close to the
leg give real perspective: the near end of the thigh looks bigger, and a tilted camera
foreshortens the leg. Only the clinical rule is shared with renderer A: distances along the thigh
axis from the knee centre, in units of the knee-to-groin length (``mottling.scale``).

World frame: the bed is the plane z = 0, z points up, the knee centre is near the origin and the
thigh runs along +x. Lengths are in units of the knee-to-groin length ``L = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.scale import LegLandmarks

F32 = np.float32


@dataclass(frozen=True)
class WardLeg:
    """One patient's leg: landmarks (in thigh lengths), girths, knee bend and skin."""

    skin_tone: int
    side: str
    landmarks: LegLandmarks
    r_knee: float      # thigh radius at the knee centre
    r_hip: float       # radius at u = 1.4 (past the groin fold)
    r_calf: float
    r_ankle: float
    shin_len: float
    knee_lift: float   # radians the thigh rises from hip to knee (a flexed knee)
    flatten: float     # vertical squash of a leg lying on a mattress
    patella_r: float
    groin_tilt: float  # slope of the groin crease across the thigh
    tint: tuple[float, float, float]
    texture_seed: int

    @property
    def knee(self) -> np.ndarray:
        z = self.r_hip * self.flatten + 1.4 * np.sin(self.knee_lift)
        return np.array([0.0, 0.0, z])

    @property
    def axis(self) -> np.ndarray:
        """Unit vector from the knee centre towards the groin."""
        a = self.knee_lift
        return np.array([np.cos(a), 0.0, -np.sin(a)])

    @property
    def anterior(self) -> np.ndarray:
        """Unit vector across the thigh towards the front of the leg (up, off the bed)."""
        a = self.knee_lift
        return np.array([np.sin(a), 0.0, np.cos(a)])

    @property
    def ankle(self) -> np.ndarray:
        k = self.knee
        drop = max(k[2] - self.r_ankle, 0.0)
        sin_b = min(drop / self.shin_len, 0.95)
        return k + self.shin_len * np.array([-np.sqrt(1 - sin_b ** 2), 0.0, -sin_b])

    def radius_at(self, u: float) -> float:
        t = float(np.clip(u / 1.4, 0, 1))
        return self.r_knee + (self.r_hip - self.r_knee) * t

    def surface_point(self, u: float) -> np.ndarray:
        """The front of the thigh at ``u`` (the kneecap's front at u = 0)."""
        r = self.radius_at(u)
        if abs(u) < 0.5 * self.patella_r:  # the kneecap stands out of the knee's round cone
            r = max(r, self.r_knee + 0.55 * self.patella_r)
        return self.knee + u * self.axis + r * self.flatten * self.anterior


def sample_leg(rng: np.random.Generator, skin_tone: int, side: str) -> WardLeg:
    """A patient: a 38-48 cm thigh, a coin of 1.2-1.8 cm radius, a kneecap 5-6 cm tall."""
    thigh_cm = rng.uniform(38, 48)
    coin = rng.uniform(1.2, 1.8) / thigh_cm
    patella_top = rng.uniform(2.6, 3.6) / thigh_cm
    mid = rng.uniform(0.47, 0.53)
    return WardLeg(
        skin_tone=skin_tone, side=side,
        landmarks=LegLandmarks(float(coin), float(patella_top), float(mid), 1.0),
        r_knee=float(rng.uniform(0.11, 0.14)), r_hip=float(rng.uniform(0.17, 0.24)),
        r_calf=float(rng.uniform(0.10, 0.13)), r_ankle=float(rng.uniform(0.05, 0.065)),
        shin_len=float(rng.uniform(0.9, 1.05)), knee_lift=float(np.radians(rng.uniform(0, 16))),
        flatten=float(rng.uniform(0.82, 0.95)), patella_r=float(rng.uniform(0.055, 0.07)),
        groin_tilt=float(rng.uniform(-0.25, 0.25)),
        tint=tuple(float(x) for x in rng.normal(0, 0.025, 3)),
        texture_seed=int(rng.integers(2**31)),
    )


# --- signed distances ------------------------------------------------------------------------

def _round_cone(p: np.ndarray, a: np.ndarray, b: np.ndarray, r1: float, r2: float) -> np.ndarray:
    """Exact distance to a cone with spherical caps (radius r1 at a, r2 at b); p is (N, 3)."""
    ba = (b - a).astype(F32)
    l2 = F32(ba @ ba)
    rr = F32(r1 - r2)
    a2 = l2 - rr * rr
    il2 = F32(1.0) / l2
    pa = p - a.astype(F32)
    y = pa @ ba
    z = y - l2
    q = pa * l2 - ba[None, :] * y[:, None]
    x2 = np.einsum("ij,ij->i", q, q)
    y2 = y * y * l2
    z2 = z * z * l2
    k = np.sign(rr) * rr * rr * x2
    d_b = np.sqrt(x2 + z2) * il2 - F32(r2)
    d_a = np.sqrt(x2 + y2) * il2 - F32(r1)
    d_m = (np.sqrt(np.maximum(x2 * a2 * il2, 0)) + y * rr) * il2 - F32(r1)
    return np.where(np.sign(z) * a2 * z2 > k, d_b, np.where(np.sign(y) * a2 * y2 < k, d_a, d_m))


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.maximum(F32(k) - np.abs(a - b), 0) / F32(k)
    return np.minimum(a, b) - h * h * F32(k * 0.25)


def leg_sdf(leg: WardLeg, p: np.ndarray) -> np.ndarray:
    """Distance from points (N, 3) to the leg (negative inside); the leg is squashed vertically."""
    q = p.copy()
    q[:, 2] = (q[:, 2] - F32(leg.knee[2])) / F32(leg.flatten) + F32(leg.knee[2])
    k = leg.knee
    hip = k + 1.45 * leg.axis
    calf = k + 0.35 * (leg.ankle - k)
    d = _round_cone(q, k, hip, leg.r_knee, leg.r_hip)
    d = _smin(d, _round_cone(q, k, calf, leg.r_knee * 0.97, leg.r_calf), 0.04)
    d = _smin(d, _round_cone(q, calf, leg.ankle, leg.r_calf, leg.r_ankle), 0.04)
    pat = k + leg.anterior * (leg.r_knee - leg.patella_r * 0.45)
    d_pat = np.linalg.norm(q - pat.astype(F32), axis=1) - F32(leg.patella_r)
    return _smin(d, d_pat, 0.03) * F32(min(leg.flatten, 1.0))


# --- the camera ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PinholeCamera:
    """A phone camera: position, rotation (rows = right, down, forward), focal length in px."""

    position: np.ndarray
    rotation: np.ndarray
    focal_px: float
    width: int
    height: int

    def project(self, pts: np.ndarray) -> np.ndarray:
        """World points (N, 3) to pixel coordinates (N, 2); points behind get NaN."""
        c = (np.atleast_2d(pts) - self.position) @ self.rotation.T
        z = np.where(c[:, 2] > 1e-6, c[:, 2], np.nan)
        return np.stack([self.focal_px * c[:, 0] / z + self.width / 2,
                         self.focal_px * c[:, 1] / z + self.height / 2], axis=1)

    def rays(self, scale: float = 1.0) -> tuple[np.ndarray, int, int]:
        """Unit ray directions (N, 3) for pixel centres of the image shrunk by ``scale``."""
        w, h = int(round(self.width * scale)), int(round(self.height * scale))
        xs = (np.arange(w, dtype=F32) + F32(0.5)) / F32(scale) - F32(self.width / 2)
        ys = (np.arange(h, dtype=F32) + F32(0.5)) / F32(scale) - F32(self.height / 2)
        gx, gy = np.meshgrid(xs, ys)
        d = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, self.focal_px, F32)], 1)
        d = d @ self.rotation.astype(F32)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return d.astype(F32), h, w


def look_at(position: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """Rotation whose forward axis points at ``target``, turned by ``roll`` about that axis."""
    fwd = target - position
    fwd = fwd / np.linalg.norm(fwd)
    up_hint = np.array([1.0, 0.0, 0.0]) if abs(fwd[2]) > 0.95 else np.array([0.0, 0.0, 1.0])
    right = np.cross(fwd, up_hint)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = np.cos(roll), np.sin(roll)
    r2, d2 = c * right + s * down, -s * right + c * down
    return np.stack([r2, d2, fwd])


def place_camera(rng: np.random.Generator, leg: WardLeg, width: int, height: int,
                 u_lo: float, u_hi: float, fill: float) -> PinholeCamera:
    """A camera above the bed that frames the front of the thigh from ``u_lo`` to ``u_hi``.

    The horizontal field of view (long side) is 58-72 degrees; the camera looks down at 35-90
    degrees of elevation from any side, with any roll: the leg can run any way across the frame.
    """
    fov = np.radians(rng.uniform(58, 72))
    focal = 0.5 * max(width, height) / np.tan(fov / 2)
    target = 0.5 * (leg.surface_point(u_lo) + leg.surface_point(u_hi))
    target = target + np.array([0.0, rng.normal(0, 0.04), 0.0])
    elev = np.radians(rng.uniform(35, 90))
    azim = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    roll = rng.uniform(0, 2 * np.pi)
    ends = np.stack([leg.surface_point(u_lo), leg.surface_point(u_hi)])
    dist = 1.5
    for _ in range(6):  # the projection scales as 1/distance: a few fixed-point steps settle it
        pos = target + dist * direction
        cam = PinholeCamera(pos, look_at(pos, target, roll), focal, width, height)
        px = cam.project(ends)
        if np.isnan(px).any():
            dist *= 1.5
            continue
        half = np.array([width / 2, height / 2])
        reach = np.max(np.abs(px - half) / half)
        dist *= reach / fill
    pos = target + dist * direction
    return PinholeCamera(pos, look_at(pos, target, roll), focal, width, height)


@dataclass
class Geometry:
    """Per-pixel results of tracing the (reduced-size) image: what each ray hit and where."""

    hit: np.ndarray      # (h, w) bool, the ray hit the leg
    u: np.ndarray        # thigh-axis coordinate of the hit (negative on the shin)
    arc: np.ndarray      # distance around the leg from its front line (thigh lengths)
    normal: np.ndarray   # (h, w, 3) surface normal (leg) or +z (bed)
    point: np.ndarray    # (h, w, 3) world point hit (leg or bed)
    depth: np.ndarray    # (h, w) distance from the camera


def trace(leg: WardLeg, cam: PinholeCamera, scale: float, steps: int = 56) -> Geometry:
    """Sphere-trace every ray against the leg and intersect the rest with the bed plane."""
    d, h, w = cam.rays(scale)
    o = cam.position.astype(F32)
    n = d.shape[0]
    t_bed = np.where(d[:, 2] < -1e-4, -o[2] / np.minimum(d[:, 2], F32(-1e-4)), F32(50)).astype(F32)
    t = np.zeros(n, F32)
    hit = np.zeros(n, bool)
    active = np.arange(n)
    eps = F32(2e-4)
    for _ in range(steps):
        if active.size == 0:
            break
        p = o + d[active] * t[active, None]
        dist = leg_sdf(leg, p)
        t[active] += dist * F32(0.9)
        done = dist < eps
        hit[active[done]] = True
        gone = t[active] > t_bed[active]
        active = active[~done & ~gone]
    hit &= t < t_bed
    t = np.where(hit, t, t_bed)
    pts = o + d * t[:, None]
    normal = np.tile(np.array([0, 0, 1], F32), (n, 1))
    if hit.any():
        ph = pts[hit]
        e = F32(1e-3)
        grad = np.stack([leg_sdf(leg, ph + np.array(v, F32) * e) - leg_sdf(leg, ph - np.array(v, F32) * e)
                         for v in ((1, 0, 0), (0, 1, 0), (0, 0, 1))], 1)
        normal[hit] = grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), F32(1e-6))
    rel = pts - leg.knee.astype(F32)
    along = rel @ leg.axis.astype(F32)
    shin_dir = (leg.ankle - leg.knee) / np.linalg.norm(leg.ankle - leg.knee)
    u = np.where(along >= 0, along, -np.maximum(rel @ shin_dir.astype(F32), 0)).astype(F32)
    side = np.array([0.0, 1.0, 0.0], F32) * F32(1 if leg.side == "right" else -1)
    radial_up = rel @ leg.anterior.astype(F32)
    radial_side = rel @ side
    theta = np.arctan2(radial_side, radial_up * F32(1 / leg.flatten))
    r_u = F32(leg.r_knee) + F32(leg.r_hip - leg.r_knee) * np.clip(u / F32(1.4), 0, 1)
    arc = (theta * r_u).astype(F32)
    return Geometry(hit.reshape(h, w), u.reshape(h, w), arc.reshape(h, w),
                    normal.reshape(h, w, 3), pts.reshape(h, w, 3), t.reshape(h, w))
