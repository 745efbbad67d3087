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
from mottling.synth import lookalikes as la
from mottling.synth import nuisances as nz
from mottling.synth.leg import Anatomy, Camera, half_widths, make_camera, shade_leg
from mottling.synth.mottle import mottled_region, mottling_absorbance, mottling_density
from mottling.synth.patterns import smooth_noise, upsample

LANDMARK_NAMES = ("knee", "patella_top", "mid_thigh", "groin")
PATTERNS = ("fabric", "hair", "bruise", "veins", "red_knee", "freckles", "arm_shadow")


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
    framing = str(rng.choice(["full", "thigh", "close", "wide"], p=[0.5, 0.24, 0.11, 0.15]))
    if score > 3 or score == 0 and rng.random() < 0.5:
        framing = "full" if framing == "close" else framing
    any_roll = rng.random() < 0.4  # the phone held at any angle to the leg
    for attempt in range(16):
        if safe or attempt == 15:
            framing = "full"
            u_bot, u_top, rot, key, cv = -0.3, 1.32, 0.0, 0.0, 0.0
        elif framing == "full":
            u_bot, u_top = rng.uniform(-0.45, -0.12), rng.uniform(1.12, 1.42)
        elif framing == "wide":  # the leg small in the frame, much of the bed around it
            u_bot, u_top = rng.uniform(-0.75, -0.35), rng.uniform(1.4, 1.85)
        elif framing == "thigh":
            u_bot, u_top = rng.uniform(-0.14, -0.06), rng.uniform(1.08, 1.2)
        else:
            u_bot, u_top = rng.uniform(-0.3, -0.1), lm.mid_thigh + rng.uniform(0.1, 0.3)
        if not (safe or attempt == 15):
            base = 90.0 * rng.choice([-1, 1]) if aspect_kind == "landscape" else (
                180.0 if rng.random() < 0.1 else 0.0)
            rot = float(rng.uniform(-180, 180)) if any_roll else base + rng.normal(0, 8)
            key = rng.uniform(0.0, 0.22) if rng.random() < 0.7 else 0.0
            cv = rng.normal(0, 0.06)
        span = (u_top - u_bot) * (1.08 + 0.03 * attempt)
        th = np.radians(rot)  # the leg's axis needs span * |cos| of the height, span * |sin| of
        span *= max(abs(np.cos(th)), abs(np.sin(th)) * height / width)  # the width
        cam = make_camera(width, height, anat.side_sign, 0.5 * (u_bot + u_top), cv, span, rot, key)
        need = deciding_u(score, anat) if framing != "close" else lm.mid_thigh
        if score == 5:
            need = max(need, 1.0)
        if (cam.inside(-0.05, 0, 0.02) and cam.inside(need + 0.05, 0, 0.02)
                and cam.inside(0.0, 0, 0.03)):
            return cam, framing
    return cam, framing


def _f(x) -> np.float32:
    return np.float32(x)


def _gauss(x: np.ndarray, width: float) -> np.ndarray:
    t = x * _f(1 / width)
    return np.exp(-np.minimum(t * t, _f(80)))  # no denormals: they are 20x slower


def _outline(rng: np.random.Generator, anat: Anatomy, score: int, extent: float | None,
             size: int, u: np.ndarray, v: np.ndarray, ppu: np.float32):
    """Leg outline and the gown/sheet over the body above the groin (coverages in [0, 1])."""
    med, lat = half_widths(anat, u)
    inside = np.minimum(med - v, v + lat)  # landmark units, > 0 on the leg
    leg_alpha = np.clip(inside * ppu + _f(0.5), 0, 1)
    u_cover = float(rng.uniform(1.06, 1.3))
    if score == 5:
        u_cover = max(u_cover, min(extent, 1.0 + 2 * margin_units(size)) + 0.05)
    cover_edge = (u - _f(u_cover) - _f(0.02) * np.sin(v * _f(rng.uniform(6, 14))
                                                     + _f(rng.uniform(0, 6)))
                  + _f(rng.uniform(-0.15, 0.15)) * v)
    cover_alpha = np.clip(cover_edge * ppu + _f(0.5), 0, 1)
    return med, lat, leg_alpha, cover_edge, cover_alpha


def _skin_albedo(rng: np.random.Generator, anat: Anatomy, score: int, extent: float | None,
                 u: np.ndarray, v: np.ndarray, leg_alpha: np.ndarray, cover_alpha: np.ndarray,
                 pattern: str | None, cam: Camera):
    """Linear skin albedo (3, H, W) with mottling and look-alikes; the mottled region."""
    h, w = u.shape
    tex = np.random.default_rng(anat.texture_seed)
    skin = nz.srgb_to_linear(clean_skin_srgb(anat))
    lum = (_f(1) + _f(0.08) * (smooth_noise(tex, h, w, 6.0) - _f(0.5))
           + _f(0.05) * (tex.random((h, w), dtype=np.float32) - _f(0.5)))
    albedo = skin[:, None, None] * lum[None]
    knee_red = _gauss(np.sqrt(u * u + v * v), 0.12) + _f(0.5) * (smooth_noise(tex, h, w, 9.0)
                                                                - _f(0.5))
    albedo[0] *= _f(1) + _f(0.05) * knee_red
    albedo[1:] *= _f(1) - _f(0.03) * knee_red
    mask_region = np.zeros((h, w), dtype=bool)
    contrast, v_top = 0.0, 0.0
    if score > 0:
        region, envelope, v_top = mottled_region(rng, score, extent, anat, u, v)
        sel = region & (leg_alpha > 0) & (cover_alpha < 1)
        dens = mottling_density(rng, anat, score, extent, u, v, envelope, sel)
        od, contrast = mottling_absorbance(rng, anat, dens, envelope, region)
        albedo *= np.exp(-od)
        mask_region = region
    # look-alikes draw from their own stream: with or without one, the rest of the photo is the same
    look = np.random.default_rng(int(rng.integers(2**62)))
    if pattern == "bruise":
        bu, bv = look.uniform(0.05, 0.9), look.uniform(-0.6, 0.6) * anat.hw_knee
        r = look.uniform(0.05, 0.11)
        d = np.sqrt((u - _f(bu)) ** 2 + ((v - _f(bv)) * _f(1.3)) ** 2) * _f(1 / r)
        d = d + _f(0.5) * (smooth_noise(look, h, w, 14.0) - _f(0.5))
        core, halo = _gauss(d, 0.7), _gauss(d, 1.2)
        old = float(look.uniform(0, 1))  # a fresh bruise is purple, an old one yellow-green
        fresh = np.array([0.5, 1.0, 0.3], np.float32)[:, None, None] * _f(1 - old)
        yellow = np.array([0.1, 0.15, 0.8], np.float32)[:, None, None] * _f(0.5 + old)
        od_b = fresh * core[None] + yellow * halo[None]
        albedo *= np.exp(-od_b * _f(look.uniform(0.8, 1.5)))
    if pattern == "hair":
        hair = nz.draw_hair(look, w, h, cam.axis_angle(), float(look.uniform(0.4, 1.0)))
        albedo *= (_f(1) - _f(0.55) * hair)[None]
    if pattern == "veins":
        albedo *= np.exp(-la.veins(look, cam, anat, h, w))
    if pattern == "red_knee":
        albedo *= np.exp(-la.red_knee(look, u, v))
    if pattern == "freckles":
        albedo *= np.exp(-la.freckles(look, cam, anat, h, w))
    return albedo, skin, mask_region, contrast, v_top


def _shading(rng: np.random.Generator, anat: Anatomy, u: np.ndarray, v: np.ndarray,
             med: np.ndarray, lat: np.ndarray):
    """A flattened cylinder with the knee's relief, a glossy sheen and skin folds above the
    kneecap: (shade, gloss, light azimuth)."""
    h, w = u.shape
    lm = anat.landmarks
    s2 = np.s_[::2, ::2]
    shade_h, gloss_h, az = shade_leg(rng, anat, u[s2], v[s2], med[s2], lat[s2])
    shade = upsample(shade_h, h, w)
    gloss = upsample(gloss_h, h, w)
    near_knee = (u > _f(lm.patella_top)) & (u < _f(3 * lm.patella_top))
    for k in range(int(rng.integers(1, 4))):
        uk = _f(lm.patella_top * (1.2 + 0.35 * k)) + _f(rng.uniform(0.5, 2.0)) * v[near_knee] ** 2
        shade[near_knee] *= _f(1) - _f(0.06) * _gauss(u[near_knee] - uk, 0.004) * _gauss(
            v[near_knee], 0.09)
    return shade, gloss, az


def _composite(rng: np.random.Generator, u, v, med, lat, az, skin_lin, leg_alpha, cover_edge,
               cover_alpha, pattern: str | None, h: int, w: int) -> np.ndarray:
    """Background sheet with the leg's shadow, then the leg, then the cover over the hip."""
    print_kind = str(rng.choice(["dots", "checks", "net"])) if pattern == "fabric" else None
    bg = nz.sheet(rng, u, v, print_kind)
    sv = _f(0.06 * np.cos(az) * rng.uniform(0.3, 1.0))
    shifted = np.minimum(med - (v - sv), (v - sv) + lat)
    bg *= ((_f(1) - _f(0.35) * np.clip(shifted * _f(25) + _f(1), 0, 1)) * (_f(1) - leg_alpha))[None]
    skin_lin *= leg_alpha[None]
    img = bg
    img += skin_lin  # in place: fresh 3-channel temporaries cost more than the arithmetic
    if cover_alpha.max() > 0:  # a gown or sheet over the hip: plain cloth with soft folds
        cloth = nz.srgb_to_linear(nz.SHEET_COLOURS[rng.integers(len(nz.SHEET_COLOURS))])
        cloth_shade = _f(0.8) + _f(0.2) * smooth_noise(rng, h, w, 3.0, aspect=3.0)
        cover_shadow = _f(1) - _f(0.3) * np.exp(np.clip(cover_edge * _f(35), -80, 0))
        img *= (cover_shadow * (_f(1) - cover_alpha))[None]
        img += cloth[:, None, None] * (cloth_shade * cover_alpha)[None]
    return img


def _occluders(rng: np.random.Generator, img: np.ndarray, anat: Anatomy, cam: Camera, score: int,
               extent: float | None, v_top: float, shade: np.ndarray, u: np.ndarray,
               v: np.ndarray, lat: np.ndarray, ppu: np.float32, occluders: bool):
    """ECG leads, a dressing, a gloved hand and the sheet's edge, each kept off the spots that
    decide the score."""
    h, w = u.shape
    occl = np.zeros((h, w), dtype=np.float32)
    names: list[str] = []
    keep_out = [cam.to_pixels(deciding_u(score, anat)), cam.to_pixels(0.0)]
    if score > 0:
        keep_out.append(cam.to_pixels(extent, 0.0 if score < 3 else v_top))
    keep_r = 0.08 * cam.px_per_unit

    def clear_of_keep_out(cov: np.ndarray) -> bool:
        for (x, y) in keep_out:
            x0, x1 = int(max(x - keep_r, 0)), int(min(x + keep_r, w))
            y0, y1 = int(max(y - keep_r, 0)), int(min(y + keep_r, h))
            if x1 > x0 and y1 > y0 and cov[y0:y1, x0:x1].max() > 0.02:
                return False
        return True

    def lay(cov: np.ndarray, col: np.ndarray, light, name: str) -> None:
        """Lay an occluder (colour ``col``, coverage ``cov``, lit by ``light``) over the picture."""
        nonlocal img, occl
        img = img * (_f(1) - cov)[None] + col * (cov * light)[None]
        occl = np.maximum(occl, cov)
        names.append(name)

    mean_shade = _f(float(shade.mean()))
    clean = score == 0  # clutter on a clean leg is what must not be read as mottling
    if occluders and rng.random() < 0.3:
        pads = [cam.to_pixels(rng.uniform(0.15, 1.0), rng.uniform(-0.7, 0.7) * anat.hw_knee)
                for _ in range(int(rng.integers(1, 3)))]
        cov, col = nz.draw_ecg_leads(rng, w, h, pads)
        if clear_of_keep_out(cov):
            lay(cov, col, mean_shade, "ecg_leads")
    if occluders and rng.random() < (0.3 if clean else 0.2):
        c = cam.to_pixels(rng.uniform(-0.2, 0.9), rng.uniform(-0.5, 0.5) * anat.hw_knee)
        cov, col = nz.draw_dressing(rng, w, h, c, rng.uniform(0.05, 0.1) * cam.px_per_unit)
        if clear_of_keep_out(cov):
            lay(cov, col, (_f(0.8) + _f(0.2) * shade), "dressing")
    if occluders and rng.random() < (0.25 if clean else 0.12):  # a gloved hand on the leg
        for _ in range(3):
            tip = cam.to_pixels(rng.uniform(-0.3, 0.9), rng.uniform(-0.6, 0.6) * anat.hw_knee)
            cov, col = la.draw_glove(rng, w, h, tip, rng.uniform(0.3, 0.45) * cam.px_per_unit)
            if clear_of_keep_out(cov):
                lay(cov, col, _f(0.7) + _f(0.3) * shade, "glove")
                break
    if occluders and rng.random() < 0.2:  # the sheet pulled over the outer side of the thigh
        reach = _f(rng.uniform(0.1, 0.7))
        edge = (-v) - lat * (_f(1) - reach) - _f(0.015) * np.sin(u * _f(rng.uniform(8, 20)))
        cov = np.clip(edge * ppu + _f(0.5), 0, 1)
        if clear_of_keep_out(cov):
            cloth = nz.srgb_to_linear(nz.SHEET_COLOURS[rng.integers(len(nz.SHEET_COLOURS))])
            tuck = _f(1) - _f(0.3) * np.exp(np.clip(edge * _f(40), -80, 0))  # shadow at the fold
            img *= (tuck * (_f(1) - cov))[None]
            img += cloth[:, None, None] * ((_f(0.85) + _f(0.1) * shade) * cov)[None]
            occl = np.maximum(occl, cov)
            names.append("sheet_edge")
    return img, occl, names


def _light(rng: np.random.Generator, img: np.ndarray, skin: np.ndarray, h: int, w: int,
           pattern: str | None, skin_cov: np.ndarray):
    """Colour temperature (tungsten to blue LED, with a green/magenta tint), exposure (metered
    partly on the leg), a flash in 30 % of photos, a soft shadow or an arm's, vignetting."""
    look = np.random.default_rng(int(rng.integers(2**62)))  # the arm's shadow's own stream
    temp = float(rng.uniform(-1.6, 1.6))
    tint = np.exp(rng.normal(0, 0.06, 3)).astype(np.float32)  # fluorescent green, sensor drift
    flash = rng.random() < 0.3
    if flash:  # light falling off from the phone, glare on the (shiny, damp) skin
        fgain, glare = la.flash_glare(rng, h, w, skin_cov)
        img *= fgain[None]
        img += glare[None]
    # phones meter partly on the subject: a dark leg on a white sheet gets a longer exposure
    skin_lum = float(skin @ np.array([0.2126, 0.7152, 0.0722], np.float32))
    exposure = float(np.exp(rng.normal(-0.1, 0.25)) * np.clip((0.25 / skin_lum) ** 0.3, 1.0, 2.0))
    field = nz.soft_shadow(rng, h, w) if rng.random() < 0.35 else np.ones((h, w), np.float32)
    if pattern == "arm_shadow":
        field = field * la.cast_shadow(look, h, w)
    yy = (np.arange(h, dtype=np.float32)[:, None] / _f(h) - _f(0.5)) ** 2
    xx = (np.arange(w, dtype=np.float32)[None, :] / _f(w) - _f(0.5)) ** 2
    field = field * (_f(1) - _f(rng.uniform(0, 0.6)) * (xx + yy))
    g = nz.colour_temperature_gains(temp) * tint
    gain = g / _f(g.mean()) * _f(exposure)
    img *= field[None]
    img *= gain[:, None, None]
    return nz.linear_to_srgb8(img), temp, exposure, flash


def render_scene(rng: np.random.Generator, anat: Anatomy, score: int, size: int,
                 pattern: str | None, safe: bool = False, occluders: bool = True) -> Scene:
    """Draw one photo around its label: outline, skin, shading, bed and cover, clutter, light."""
    lm = anat.landmarks
    extent = draw_extent(rng, score, anat, size)
    cam, framing = choose_camera(rng, score, anat, size, safe)
    h, w = cam.height, cam.width
    ppu = _f(cam.px_per_unit)
    u, v = cam.leg_coords()
    med, lat, leg_alpha, cover_edge, cover_alpha = _outline(rng, anat, score, extent, size, u, v,
                                                            ppu)
    albedo, skin, mask_region, contrast, v_top = _skin_albedo(
        rng, anat, score, extent, u, v, leg_alpha, cover_alpha, pattern, cam)
    shade, gloss, az = _shading(rng, anat, u, v, med, lat)
    skin_lin = albedo
    skin_lin *= shade[None]
    skin_lin += gloss[None]
    img = _composite(rng, u, v, med, lat, az, skin_lin, leg_alpha, cover_edge, cover_alpha,
                     pattern, h, w)
    img, occl, occluder_names = _occluders(rng, img, anat, cam, score, extent, v_top, shade, u, v,
                                           lat, ppu, occluders)
    rgb8, temp, exposure, flash = _light(rng, img, skin, h, w, pattern,
                                         leg_alpha * (_f(1) - cover_alpha) * (_f(1) - occl))

    visible = (leg_alpha > 0.5) & (cover_alpha < 0.5) & (occl < 0.5)
    mask = mask_region & visible
    landmarks_px = {name: cam.to_pixels(val) for name, val in zip(
        LANDMARK_NAMES, (0.0, lm.patella_top, lm.mid_thigh, lm.groin_fold))}
    decide = deciding_u(score, anat) + 0.03
    meta = dict(
        extent=extent, visible_extent=float(u[mask].max()) if mask.any() else None,
        framing=framing, mottled_fraction=float(mask.sum() / max(int(visible.sum()), 1)),
        contrast=contrast, occluders=";".join(occluder_names), landmarks_px=landmarks_px,
        width=w, height=h, px_per_unit=cam.px_per_unit, colour_temperature=temp,
        exposure=exposure, flash=flash, _deciding_visible=_visible_at(visible, cam, decide),
    )
    return Scene(rgb8, mask, meta, visible)


def _visible_at(skin_visible: np.ndarray, cam: Camera, u: float) -> bool:
    x, y = cam.to_pixels(u)
    xi, yi = int(np.floor(x)), int(np.floor(y))
    return 0 <= xi < cam.width and 0 <= yi < cam.height and bool(skin_visible[yi, xi])


def label_holds(scene: Scene, score: int, anat: Anatomy) -> bool:
    """The visible mask measures to the drawn score and what decides it is in view."""
    measured = score_for_extent(scene.meta["visible_extent"], anat.landmarks)
    return measured == score and scene.meta["_deciding_visible"]
