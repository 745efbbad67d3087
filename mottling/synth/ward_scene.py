"""Renderer B's bedside photograph: framing, covers, the bed, light and the camera.

A phone held over the bed at a wide field of view, often tilted, from any side: the whole thigh up
to the groin and hip, a gown or sheet over the hip, sometimes a blanket over the shin, a sheet
with creases under the leg, cables, ECG electrodes, a dressing or a gloved hand over the skin,
an arm's shadow, a flash, mixed white balance and JPEG at quality 60-95. The label is drawn first
(extent inside the score's bounds) and re-measured on the visible mask at the end; the caller
retries when occluders or framing hid what decides the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mottling.scale import score_for_extent
from mottling.skin import monk_rgb
from mottling.synth.ward_leg import Geometry, PinholeCamera, WardLeg, place_camera, trace
from mottling.synth.ward_skin import (DISTRACTORS, draw_extent, lookup, paint_skin,
                                      sample_distractors)
from mottling.synth.ward_things import (cloth_albedo, draw_cables, draw_dressing, draw_electrodes,
                                        draw_glove, arm_shadow)

F32 = np.float32
LANDMARK_NAMES = ("knee", "patella_top", "mid_thigh", "groin")


@dataclass
class WardScene:
    rgb: np.ndarray            # (H, W, 3) uint8, before sensor noise and JPEG
    mask: np.ndarray           # (H, W) bool, visible mottled skin
    skin: np.ndarray           # (H, W) bool, visible skin
    meta: dict


def srgb_to_linear(c) -> np.ndarray:
    c = np.asarray(c, dtype=F32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(F32)


def deciding_u(score: int, leg: WardLeg) -> float:
    """The landmark that must be in view for the score to be read (the bound above the extent)."""
    lm = leg.landmarks
    return {0: 1.0, 1: lm.patella_top, 2: lm.patella_top, 3: lm.mid_thigh, 4: 1.0, 5: 1.0}[score]


def frame_photo(rng: np.random.Generator, leg: WardLeg, score: int, size: int,
                safe: bool) -> tuple[PinholeCamera, str]:
    """Aspect, framing (wide to the hip, thigh, or close) and a camera that shows what decides."""
    kind = rng.choice(["portrait", "landscape", "tall"], p=[0.55, 0.3, 0.15])
    ratio = {"portrait": 0.75, "landscape": 0.75, "tall": 0.5625}[str(kind)]
    long_side, short = size, int(round(size * ratio))
    width, height = (long_side, short) if kind == "landscape" else (short, long_side)
    framing = str(rng.choice(["wide", "thigh", "close"], p=[0.5, 0.35, 0.15]))
    if score in (0, 4, 5) and framing == "close":
        framing = "thigh"
    need = deciding_u(score, leg) + 0.05
    cam = None
    for attempt in range(12):
        if safe or attempt == 11:
            framing, lo, hi, fill = "wide", -0.35, 1.35, 0.8
        elif framing == "wide":
            lo, hi, fill = rng.uniform(-0.8, -0.3), rng.uniform(1.25, 1.45), rng.uniform(0.8, 0.97)
        elif framing == "thigh":
            lo, hi, fill = rng.uniform(-0.2, -0.05), rng.uniform(1.08, 1.22), rng.uniform(0.82, 0.97)
        else:
            lo, hi, fill = rng.uniform(-0.3, -0.1), need + rng.uniform(0.1, 0.3), rng.uniform(0.8, 0.95)
        cam = place_camera(rng, leg, width, height, lo, hi, fill)
        if safe or attempt == 11:
            break
        px = cam.project(np.stack([leg.surface_point(0.0), leg.surface_point(need)]))
        m = 0.03 * size
        if not np.isnan(px).any() and np.all((px >= m) & (px <= np.array([width, height]) - m)):
            break
    return cam, framing


def _upsample(field: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)


def geometry_full(leg: WardLeg, cam: PinholeCamera) -> dict[str, np.ndarray]:
    """Trace at full resolution (exact silhouettes), with a soft one-pixel edge for the leg."""
    g: Geometry = trace(leg, cam, 1.0)
    alpha = cv2.GaussianBlur(g.hit.astype(F32), (3, 3), 0.6)
    return {"hit": g.hit, "alpha": alpha, "u": g.u, "arc": g.arc, "normal": g.normal,
            "point": g.point, "depth": g.depth}


def _covers(rng: np.random.Generator, leg: WardLeg, geo: dict, cam: PinholeCamera, score: int,
            extent: float | None) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """Gown over the hip (and sometimes a blanket over the shin): (coverage, layers, names)."""
    pt = geo["point"]
    along = (pt - leg.knee.astype(F32)) @ leg.axis.astype(F32)
    lateral = pt[..., 1]
    u_cover = float(rng.uniform(1.06, 1.3))
    if score == 5 and extent is not None:
        u_cover = max(u_cover, extent + 0.06)
    wave = F32(0.02) * np.sin(lateral * F32(rng.uniform(8, 20)) + F32(rng.uniform(0, 6)))
    edge = along - F32(u_cover) - wave - F32(rng.uniform(-0.2, 0.2)) * lateral
    px = F32(px_per_unit(leg, cam))
    cover = np.clip(edge * px + F32(0.5), 0, 1)
    layers = [(cover, cloth_albedo(rng, pt, str(rng.choice(["gown", "sheet"]))))]
    names = ["gown"]
    if rng.random() < 0.35:
        u_blank = float(rng.uniform(-0.75, -0.2))
        e2 = F32(u_blank) - np.where(along < 0, -np.abs(geo["u"]), along) - wave
        blanket = np.clip(e2 * px + F32(0.5), 0, 1)
        layers.append((blanket, cloth_albedo(rng, pt, "blanket")))
        names.append("blanket")
        cover = np.maximum(cover, blanket)
    return cover, layers, names


def px_per_unit(leg: WardLeg, cam: PinholeCamera) -> float:
    """Pixels per thigh length at mid-thigh (for one-pixel soft edges given in world units)."""
    p = cam.project(np.stack([leg.surface_point(0.45), leg.surface_point(0.55)]))
    d = float(np.linalg.norm(p[1] - p[0])) * 10 if not np.isnan(p).any() else 200.0
    return max(d, 20.0)


def _bed(rng: np.random.Generator, geo: dict) -> np.ndarray:
    """The bottom sheet under the leg: a colour, creases and sometimes stripes (linear RGB)."""
    return cloth_albedo(rng, geo["point"], "bed")


def _light(rng: np.random.Generator, geo: dict, cam: PinholeCamera, albedo: np.ndarray,
           skin: np.ndarray) -> tuple[np.ndarray, dict]:
    """Ceiling light + ambient + optional flash; glossy skin; returns linear RGB (3, H, W)."""
    n = geo["normal"]
    el, az = np.radians(rng.uniform(35, 88)), rng.uniform(0, 2 * np.pi)
    ld = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], F32)
    lam = np.clip(n @ ld, 0, 1)
    amb = F32(rng.uniform(0.25, 0.5))
    view = cam.position.astype(F32) - geo["point"]
    view /= np.maximum(np.linalg.norm(view, axis=-1, keepdims=True), F32(1e-6))
    half = view + ld
    half /= np.maximum(np.linalg.norm(half, axis=-1, keepdims=True), F32(1e-6))
    gloss = F32(rng.uniform(0.01, 0.06)) * np.clip(np.einsum("hwc,hwc->hw", n, half), 0, 1
                                                   ) ** F32(rng.uniform(12, 40))
    shade = amb + (F32(1) - amb) * lam
    flash = rng.random() < 0.3
    spec = gloss * skin
    if flash:  # a light at the lens: near things bright, glare where the skin faces the phone
        d = geo["depth"]
        near = F32(np.percentile(d[geo["hit"]], 10) if geo["hit"].any() else d.min())
        fall = (near / np.maximum(d, F32(1e-3))) ** 2
        ndv = np.clip(np.einsum("hwc,hwc->hw", n, view), 0, 1)
        shade = shade * F32(rng.uniform(0.4, 0.7)) + F32(rng.uniform(0.7, 1.2)) * fall * ndv
        spec = spec + F32(rng.uniform(0.03, 0.12)) * ndv ** F32(30) * skin * fall
    return albedo * shade[None] + spec[None], {"flash": flash}


def _white_balance(rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, float]:
    """Light colour (tungsten to daylight to LED) and an auto-exposure on the whole frame."""
    temp = float(rng.uniform(-1, 1))
    warm, cool = np.array([1.25, 1.0, 0.7], F32), np.array([0.85, 1.0, 1.2], F32)
    g = np.ones(3, F32) + (warm - 1) * max(-temp, 0) + (cool - 1) * max(temp, 0)
    g = g * np.exp(rng.normal(0, 0.05, 3)).astype(F32)  # green/magenta and sensor drift
    img = img * (g / g.mean())[:, None, None]
    lum = img.mean(axis=0)
    key = float(np.percentile(lum, 97))
    gain = F32(rng.uniform(0.75, 1.0) / max(key, 1e-3)) * F32(np.exp(rng.normal(0, 0.2)))
    return img * gain, temp


def compose(rng: np.random.Generator, leg: WardLeg, score: int, size: int, safe: bool,
            occluders: bool, force: tuple[str, ...] | None = None) -> WardScene:
    """Draw one photograph around the drawn label (see the module docstring).

    ``force`` names exactly the look-alikes and clutter to draw (e.g. ``("veins", "dressing")``)
    instead of drawing them at random: the distractor tests use it.
    """
    margin = 3.0 / (0.35 * size)
    extent = draw_extent(rng, score, leg, margin)
    cam, framing = frame_photo(rng, leg, score, size, safe)
    geo = geometry_full(leg, cam)
    h, w = geo["hit"].shape
    distractors = sample_distractors(rng, score)
    if force is not None:
        distractors = tuple(d for d in force if d in DISTRACTORS)
    base = srgb_to_linear(np.clip(monk_rgb(leg.skin_tone) + np.array(leg.tint), 0, 1))
    tex = paint_skin(rng, leg, score, extent, base, distractors)
    skin_albedo = lookup(tex.albedo, geo["u"], geo["arc"])
    crease_u = F32(1.0) + F32(leg.groin_tilt) * geo["arc"]
    crease = F32(1) - F32(0.35) * np.exp(-((geo["u"] - crease_u) / F32(0.012)) ** 2)
    skin_albedo *= crease[None]
    region = lookup(tex.region.astype(F32), geo["u"], geo["arc"]) > 0.5
    cover, layers, cover_names = _covers(rng, leg, geo, cam, score, extent)
    hit_alpha = geo["alpha"]
    albedo = _bed(rng, geo) * (F32(1) - hit_alpha)[None] + skin_albedo * hit_alpha[None]
    for cov, cloth in layers:
        albedo = albedo * (F32(1) - cov)[None] + cloth * cov[None]
    skin_vis = hit_alpha * (F32(1) - cover)
    img, light = _light(rng, geo, cam, albedo, skin_vis)
    names: list[str] = list(cover_names) + [f"look_alike:{d}" for d in distractors]
    keep = [cam.project(leg.surface_point(x))[0] for x in (0.0, deciding_u(score, leg))]
    if extent is not None:
        keep.append(cam.project(leg.surface_point(extent))[0])
    occl = np.zeros((h, w), F32)
    shadow = not safe and rng.random() < 0.35
    if shadow if force is None else "arm_shadow" in force:
        s = arm_shadow(rng, h, w)
        img *= s[None]
        names.append("arm_shadow")
    if occluders:
        for name, prob, fn in (("cables", 0.35, draw_cables), ("electrodes", 0.2, draw_electrodes),
                               ("dressing", 0.2, draw_dressing), ("glove", 0.2, draw_glove)):
            drawn = rng.random() < prob
            if not (drawn if force is None else name in force):
                continue
            for _ in range(1 if force is None else 8):  # forced clutter gets a few placements
                cov, col = fn(rng, w, h, geo["hit"])
                if _clear(cov, keep, 0.045 * size):
                    break
            if _clear(cov, keep, 0.045 * size):
                img = img * (F32(1) - cov)[None] + col * cov[None] * F32(np.clip(img.mean(), 0.2, 0.6) / 0.4)
                occl = np.maximum(occl, cov)
                names.append(name)
    img, temp = _white_balance(rng, img)
    rgb8 = (np.clip(img, 0, 1) ** F32(1 / 2.2) * F32(255) + F32(0.5)).astype(np.uint8)
    visible = (hit_alpha > 0.5) & (cover < 0.5) & (occl < 0.5)
    mask = region & visible
    lm = leg.landmarks
    pts = cam.project(np.stack([leg.surface_point(x) for x in
                                (0.0, lm.patella_top, lm.mid_thigh, lm.groin_fold)]))
    need = deciding_u(score, leg) + 0.03
    meta = dict(
        extent=extent, visible_extent=float(geo["u"][mask].max()) if mask.any() else None,
        framing=framing, mottled_fraction=float(mask.sum() / max(int(visible.sum()), 1)),
        contrast=tex.contrast, occluders=";".join(names), width=w, height=h,
        landmarks_px={k: (float(p[0]), float(p[1])) for k, p in zip(LANDMARK_NAMES, pts)},
        colour_temperature=temp, flash=light["flash"],
        _deciding_visible=_visible_at(visible, cam.project(leg.surface_point(need))[0]),
    )
    return WardScene(rgb8.transpose(1, 2, 0).copy(), mask, visible, meta)


def _clear(cov: np.ndarray, keep: list[np.ndarray], radius: float) -> bool:
    h, w = cov.shape
    for p in keep:
        if np.isnan(p).any():
            continue
        x0, x1 = int(max(p[0] - radius, 0)), int(min(p[0] + radius, w))
        y0, y1 = int(max(p[1] - radius, 0)), int(min(p[1] + radius, h))
        if x1 > x0 and y1 > y0 and cov[y0:y1, x0:x1].max() > 0.02:
            return False
    return True


def _visible_at(visible: np.ndarray, p: np.ndarray) -> bool:
    if np.isnan(p).any():
        return False
    x, y = int(np.floor(p[0])), int(np.floor(p[1]))
    h, w = visible.shape
    return 0 <= x < w and 0 <= y < h and bool(visible[y, x])


def label_holds(scene: WardScene, score: int, leg: WardLeg) -> bool:
    """The visible mask measures to the drawn score and the deciding landmark is in view."""
    return (score_for_extent(scene.meta["visible_extent"], leg.landmarks) == score
            and scene.meta["_deciding_visible"])
