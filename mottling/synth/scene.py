"""One photograph: camera framing, leg, mottling, sheet, occluders and light.

The label is decided first (score -> extent drawn inside the score's bounds), the picture is drawn
around it, and the visible mask is then re-measured: if an occluder or the framing hid what decides
the score, the occluders go and, failing that, the framing is made safe. So every photo this module
returns carries a label that follows the definition in ``mottling.scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mottling.scale import extent_bounds, score_for_extent
from mottling.skin import monk_rgb
from mottling.synth import nuisances as nz
from mottling.synth.leg import Anatomy, Camera, half_widths, make_camera
from mottling.synth.patterns import WorleyNet, smooth_noise

LANDMARK_NAMES = ("knee", "patella_top", "mid_thigh", "groin")
ABSORB = np.array([0.78, 1.15, 0.42], dtype=np.float32)  # violaceous: takes green and red, spares blue
PATTERNS = ("fabric", "hair", "bruise")


@dataclass
class Scene:
    rgb: np.ndarray  # (H, W, 3) uint8 sRGB, before camera blur/noise/JPEG
    mask: np.ndarray  # (H, W) bool, visible mottled skin
    meta: dict
    skin: np.ndarray | None = None  # (H, W) bool, visible skin


def clean_skin_srgb(anat: Anatomy) -> np.ndarray:
    """The patient's skin colour before light and mottling: the Monk swatch with a small tint."""
    return np.clip(monk_rgb(anat.skin_tone) + np.array(anat.skin_jitter), 0, 1)


def margin_units(size: int) -> float:
    """How far the drawn extent keeps from a score boundary: ~2 px at the most zoomed-out frame."""
    return 2.0 / (0.42 * size)


def draw_extent(rng: np.random.Generator, score: int, anat: Anatomy, size: int) -> float | None:
    lm = anat.landmarks
    m = margin_units(size)
    if score == 0:
        return None
    if score == 1:
        a, b = max(0.45 * lm.coin_radius, 1.5 * m), lm.coin_radius - m
        return float(rng.uniform(a, b)) if b > a else 0.8 * lm.coin_radius
    lo, hi = extent_bounds(score, lm)
    if score == 5:
        return float(rng.uniform(lo + 1.5 * m, lo + 0.3))
    a, b = lo + m, hi - m
    return float(rng.uniform(a, b)) if b > a else 0.5 * (lo + hi)


def deciding_u(score: int, anat: Anatomy) -> float:
    """The landmark that has to be in view for this score to be read off the photo."""
    lm = anat.landmarks
    return {0: lm.groin_fold, 1: lm.patella_top, 2: lm.patella_top, 3: lm.mid_thigh,
            4: lm.groin_fold, 5: lm.groin_fold}[score]


def choose_camera(rng: np.random.Generator, score: int, anat: Anatomy, size: int,
                  safe: bool) -> tuple[Camera, str]:
    lm = anat.landmarks
    aspect_kind = rng.choice(["portrait", "square", "landscape"], p=[0.65, 0.2, 0.15])
    if aspect_kind == "portrait":
        width, height = int(round(size * 0.75)), size
    elif aspect_kind == "square":
        width, height = size, size
    else:
        width, height = size, int(round(size * 0.75))
    framing = str(rng.choice(["full", "thigh", "close"], p=[0.6, 0.28, 0.12]))
    if score > 3 or score == 0 and rng.random() < 0.5:
        framing = "full" if framing == "close" else framing
    for attempt in range(16):
        if safe or attempt == 15:
            framing = "full"
            u_bot, u_top, rot, key, cv = -0.3, 1.32, 0.0, 0.0, 0.0
        elif framing == "full":
            u_bot, u_top = rng.uniform(-0.45, -0.12), rng.uniform(1.12, 1.42)
        elif framing == "thigh":
            u_bot, u_top = rng.uniform(-0.14, -0.06), rng.uniform(1.08, 1.2)
        else:
            u_bot, u_top = rng.uniform(-0.3, -0.1), lm.mid_thigh + rng.uniform(0.1, 0.3)
        if not (safe or attempt == 15):
            base = 90.0 * rng.choice([-1, 1]) if aspect_kind == "landscape" else (
                180.0 if rng.random() < 0.1 else 0.0)
            rot = base + rng.normal(0, 8)
            key = rng.uniform(0.0, 0.22) if rng.random() < 0.7 else 0.0
            cv = rng.normal(0, 0.06)
        span = (u_top - u_bot) * (1.08 + 0.03 * attempt)
        if abs(((rot + 90) % 180) - 90) > 45:  # leg runs along the frame's width
            span *= height / width
        cam = make_camera(width, height, anat.side_sign, 0.5 * (u_bot + u_top), cv, span, rot, key)
        need = deciding_u(score, anat) if framing != "close" else lm.mid_thigh
        if score == 5:
            need = max(need, 1.0)
        if (cam.inside(-0.05, 0, 0.02) and cam.inside(need + 0.05, 0, 0.02)
                and cam.inside(0.0, 0, 0.03)):
            return cam, framing
    return cam, framing


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def mottled_region(rng: np.random.Generator, score: int, extent: float, anat: Anatomy,
                   u: np.ndarray, v: np.ndarray, ppu: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Where the skin is mottled: (hard bool region, soft weight in [0, 1], v of the top point).

    The region's furthest point along the axis is exactly ``extent``, reached at ``v_top``.
    """
    if score == 1:
        rv = extent * rng.uniform(0.75, 1.0)
        d = (u / extent) ** 2 + (v / rv) ** 2
        return d <= 1.0, _smoothstep((1.0 - d) * extent * ppu / 2), 0.0
    if score == 2:
        au = extent * rng.uniform(0.9, 1.6)
        uc = extent - au
        av = anat.hw_knee * rng.uniform(0.6, 1.2)
        d = ((u - uc) / au) ** 2 + (v / av) ** 2
        return d <= 1.0, _smoothstep((1.0 - d) * min(au, av) * ppu / 2), 0.0
    # 3-5: from below the knee up to an irregular front that peaks at (extent, v_top)
    v_top = float(rng.uniform(-0.4, 0.4) * anat.hw_knee)
    amp = float(rng.uniform(0.01, 0.07))
    f1, f2 = rng.uniform(8, 20, 2)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)

    def wob(x):
        return 0.5 * (np.sin(f1 * x + p1) + 1) + 0.3 * (np.sin(f2 * x + p2) + 1)

    grid = np.linspace(-0.6, 0.6, 241)
    g0 = wob(grid)
    g0 -= g0.min()
    scale = 1.0 / max(float(g0.max()), 1e-6)
    dip = wob(np.float32(v_top))  # value at v_top becomes the minimum: top exactly at extent there
    wv = np.maximum((wob(v) - dip) * scale, 0.0) + 2.0 * ((v - v_top) ** 2)
    top = extent - amp * wv
    bottom = -float(rng.uniform(0.05, 0.5))
    region = (u <= top) & (u >= bottom)
    soft = _smoothstep((top - u) * ppu / 3) * _smoothstep((u - bottom) * ppu / 20)
    return region, soft, v_top


def render_scene(rng: np.random.Generator, anat: Anatomy, score: int, size: int,
                 pattern: str | None, safe: bool = False, occluders: bool = True) -> Scene:
    lm = anat.landmarks
    extent = draw_extent(rng, score, anat, size)
    cam, framing = choose_camera(rng, score, anat, size, safe)
    h, w = cam.height, cam.width
    ppu = cam.px_per_unit
    u, v = cam.leg_coords()

    # --- leg outline and the gown/sheet covering the body above the groin
    med, lat = half_widths(anat, u)
    inside = np.minimum(med - v, v + lat)
    leg_alpha = np.clip(inside * ppu + 0.5, 0, 1)
    u_cover = float(rng.uniform(1.06, 1.35))
    if score == 5:
        u_cover = max(u_cover, min(extent, 1.0 + 2 * margin_units(size) + 0.04))
    cover_wob = 0.02 * np.sin(v * rng.uniform(6, 14) + rng.uniform(0, 6)) + 0.12 * anat.fold_tilt * v
    cover_alpha = np.clip((u - u_cover - cover_wob) * ppu + 0.5, 0, 1)

    # --- skin: Monk swatch with a patient tint, blotchiness and pores
    tex = np.random.default_rng(anat.texture_seed)
    skin = nz.srgb_to_linear(clean_skin_srgb(anat))
    blotch = smooth_noise(tex, h, w, 6.0) - 0.5
    pores = tex.random((h, w), dtype=np.float32) - 0.5
    albedo = skin[None, None, :] * (1 + 0.10 * blotch + 0.05 * pores)[..., None]
    knee_red = np.exp(-(u * u + v * v) / 0.02).astype(np.float32)
    albedo = albedo * (1 + 0.06 * knee_red[..., None] * np.array([0.5, -0.6, -0.6], np.float32))

    # --- mottling
    mask_region = np.zeros((h, w), dtype=bool)
    contrast = 0.0
    if score > 0:
        region, soft, v_top = mottled_region(rng, score, extent, anat, u, v, ppu)
        cell = float(rng.uniform(0.022, 0.05))
        melanin = (anat.skin_tone - 1) / 9
        contrast = float(rng.uniform(0.55, 1.4) * (1 - 0.5 * melanin))
        net = WorleyNet(np.random.default_rng(anat.texture_seed + 1), cell)
        warp_u = (smooth_noise(rng, h, w, 5.0) - 0.5) * cell * 0.8
        warp_v = (smooth_noise(rng, h, w, 5.0) - 0.5) * cell * 0.8
        line_w = float(rng.uniform(0.12, 0.32))
        sel = soft > 0
        pattern_val = np.zeros((h, w), dtype=np.float32)
        if sel.any():
            uu, vv = u[sel] + warp_u[sel], v[sel] + warp_v[sel]
            pattern_val[sel] = net.net(uu, vv, line_w)
        patch = 0.55 + 0.9 * smooth_noise(rng, h, w, 7.0)
        dens = np.clip(pattern_val * patch, 0, 1.2) * soft
        dusky = 0.25 * soft  # the islands are pale-dusky too, not normal skin
        albedo = albedo * np.exp(-contrast * (dens + dusky)[..., None] * ABSORB)
        mask_region = region

    # --- non-mottling patterns on the skin
    if pattern == "bruise":
        bu, bv = rng.uniform(0.05, 0.9), rng.uniform(-0.6, 0.6) * anat.hw_knee
        r = rng.uniform(0.03, 0.07)
        bl = np.exp(-(((u - bu) ** 2 + ((v - bv) * 1.3) ** 2) / (r * r)))
        bl = bl * (0.7 + 0.6 * smooth_noise(rng, h, w, 10.0))
        tint = np.array([1.0, 1.25, 0.9] if rng.random() < 0.6 else [0.4, 0.3, 0.9], np.float32)
        albedo = albedo * np.exp(-rng.uniform(0.6, 1.2) * bl[..., None] * tint)
    if pattern == "hair":
        angle = np.arctan2(*(np.subtract(cam.to_pixels(1.0), cam.to_pixels(0.0))[::-1]))
        hair = nz.draw_hair(rng, w, h, float(angle), float(rng.uniform(0.3, 1.0)))
        albedo = albedo * (1 - 0.6 * hair[..., None])

    # --- shading: a cylinder with a kneecap bump, and creases
    nx = np.clip((v + 0.5 * (lat - med)) / (0.5 * (med + lat)), -0.999, 0.999)
    nz_ = np.sqrt(1 - nx * nx)
    pb = np.exp(-((u / anat.patella_ru) ** 2 + (v / anat.patella_rv) ** 2))
    gu = -2 * u / anat.patella_ru ** 2 * pb * anat.patella_height * 0.05
    gv = -2 * v / anat.patella_rv ** 2 * pb * anat.patella_height * 0.05
    n_v, n_u, n_z = nx - gv * nz_, -gu, nz_
    norm = np.sqrt(n_v * n_v + n_u * n_u + n_z * n_z)
    el, az = rng.uniform(0.5, 1.2), rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    lambert = np.maximum((n_v * light[0] + n_u * light[1] + n_z * light[2]) / norm, 0)
    ambient = float(rng.uniform(0.25, 0.5))
    shade = ambient + (1 - ambient) * lambert
    fold_u = 1.0 + anat.fold_tilt * (-v) * 0.5
    crease = np.exp(-(((u - fold_u) / 0.012) ** 2)) * (v > -0.5 * lat)
    shade = shade * (1 - 0.35 * crease)
    skin_lin = albedo * shade[..., None]

    # --- background sheet, leg shadow on it, compose, gown/sheet over the hip
    print_kind = None
    if pattern == "fabric":
        print_kind = str(rng.choice(["dots", "checks", "net"]))
    bg = nz.sheet(rng, u, v, print_kind)
    outside = np.maximum(-inside, 0)
    bg = bg * (1 - 0.35 * np.exp(-outside / 0.05))[..., None]
    img = bg * (1 - leg_alpha[..., None]) + skin_lin * leg_alpha[..., None]
    cover_lin = nz.sheet(rng, u, v, None)
    img = img * (1 - 0.3 * np.exp(-np.maximum(u_cover - u, 0) / 0.03))[..., None] * (
        1 - cover_alpha[..., None]) + cover_lin * cover_alpha[..., None]

    # --- occluders, kept off the spots that decide the score
    occl = np.zeros((h, w), dtype=np.float32)
    occluder_names: list[str] = []
    keep_out = [cam.to_pixels(deciding_u(score, anat)), cam.to_pixels(0.0)]
    if score > 0:
        keep_out.append(cam.to_pixels(extent, 0.0 if score < 3 else v_top))
    keep_r = 0.08 * ppu

    def clear_of_keep_out(cov: np.ndarray) -> bool:
        for (x, y) in keep_out:
            x0, x1 = int(max(x - keep_r, 0)), int(min(x + keep_r, w))
            y0, y1 = int(max(y - keep_r, 0)), int(min(y + keep_r, h))
            if x1 > x0 and y1 > y0 and cov[y0:y1, x0:x1].max() > 0.02:
                return False
        return True

    if occluders and rng.random() < 0.3:
        pads = [cam.to_pixels(rng.uniform(0.15, 1.0), rng.uniform(-0.7, 0.7) * anat.hw_knee)
                for _ in range(int(rng.integers(1, 3)))]
        cov, col = nz.draw_ecg_leads(rng, w, h, pads)
        if clear_of_keep_out(cov):
            img = img * (1 - cov[..., None]) + col * shade.mean() * cov[..., None]
            occl = np.maximum(occl, cov)
            occluder_names.append("ecg_leads")
    if occluders and rng.random() < 0.2:
        c = cam.to_pixels(rng.uniform(-0.2, 0.9), rng.uniform(-0.5, 0.5) * anat.hw_knee)
        cov, col = nz.draw_dressing(rng, w, h, c, rng.uniform(0.05, 0.1) * ppu)
        if clear_of_keep_out(cov):
            img = img * (1 - cov[..., None]) + col * (0.8 + 0.2 * shade[..., None]) * cov[..., None]
            occl = np.maximum(occl, cov)
            occluder_names.append("dressing")

    # --- light: colour temperature, exposure, a soft shadow, vignetting
    temp = float(rng.uniform(-1, 1))
    exposure = float(np.exp(rng.normal(0, 0.3)))
    light_field = nz.soft_shadow(rng, h, w) if rng.random() < 0.35 else 1.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vig = 1 - rng.uniform(0, 0.35) * (((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2)
    gain = nz.colour_temperature_gains(temp) * exposure
    img = img * (light_field * vig)[..., None] * gain
    rgb8 = nz.linear_to_srgb8(img)

    visible = (leg_alpha > 0.5) & (cover_alpha < 0.5) & (occl < 0.5)
    mask = mask_region & visible
    landmarks_px = {name: cam.to_pixels(val) for name, val in zip(
        LANDMARK_NAMES, (0.0, lm.patella_top, lm.mid_thigh, lm.groin_fold))}
    visible_extent = float(u[mask].max()) if mask.any() else None
    skin_px = int(visible.sum())
    meta = dict(
        extent=extent, visible_extent=visible_extent, framing=framing,
        mottled_fraction=float(mask.sum() / max(skin_px, 1)), contrast=contrast,
        occluders=";".join(occluder_names), landmarks_px=landmarks_px,
        width=w, height=h, px_per_unit=ppu, colour_temperature=temp, exposure=exposure,
        _deciding_visible=bool(cam.inside(deciding_u(score, anat) + 0.03, 0, 0.0))
        and _visible_at(visible, cam, deciding_u(score, anat) + 0.03),
    )
    return Scene(rgb8, mask, meta, visible)


def _visible_at(skin_visible: np.ndarray, cam: Camera, u: float) -> bool:
    x, y = cam.to_pixels(u)
    xi, yi = int(x), int(y)
    return 0 <= xi < cam.width and 0 <= yi < cam.height and bool(skin_visible[yi, xi])


def label_holds(scene: Scene, score: int, anat: Anatomy) -> bool:
    """The visible mask measures to the drawn score and what decides it is in view."""
    measured = score_for_extent(scene.meta["visible_extent"], anat.landmarks)
    return measured == score and scene.meta["_deciding_visible"]
