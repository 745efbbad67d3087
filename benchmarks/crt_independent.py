"""A second, differently built refill-video renderer, so CRT accuracy is not judged on its own maker.

Nothing here is shared with ``mottling.synth``: a different skin model (Beer-Lambert absorbance of
melanin and haemoglobin per channel instead of tinted Monk colours), a different blanch shape (an
oriented super-Gaussian ellipse, partial blanching), different recovery curves (stretched
exponentials and a logistic, defined on haemoglobin, so the colour curve is not exactly any model
the fitter knows), a different presser (a thumb that rolls off sideways and grows as it lifts
towards the lens), a different camera path (Brownian wander without reversion, plus a jolt) and
different noise (signal-dependent shot noise, 50/60 Hz banding, x264 "fast" without macroblock
tree at CRF 20-28, BT.709 flagged HD clips). Truth ``crt_s`` is read off the rendered, noise-free
colour of the spot centre.

    python benchmarks/crt_independent.py --n 40 --out /tmp/crt_indep   # writes videos + truth.json
"""

from __future__ import annotations

import argparse
import json
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from scipy import ndimage

# 2: x264 without the macroblock tree, so the same case encodes to the same file in any run.
RENDER_VERSION = 2

MU_MEL = np.array([0.55, 0.95, 1.45])   # melanin absorbance per unit, R G B
MU_HB = np.array([0.18, 0.95, 0.62])    # haemoglobin absorbance per unit, R G B


def _curve(kind: str, p: dict, t: np.ndarray) -> np.ndarray:
    """Remaining blanching of haemoglobin, 1 at release and 0 when refilled."""
    t = np.maximum(t, 0.0)
    if kind == "stretched":
        return np.exp(-(t / p["tau"]) ** p["beta"])
    return (1 + math.exp(-p["t50"] / p["k"])) / (1 + np.exp((t - p["t50"]) / p["k"]))


def _crt_of(c: dict) -> float:
    """Where the haemoglobin curve itself reaches 0.1 (the colour truth is computed later)."""
    tt = np.arange(0.0, 40.0, 0.001)
    return float(tt[np.argmax(_curve(c["curve"], c["params"], tt) <= 0.1)])


def draw_case(rng: np.random.Generator, i: int) -> dict:
    site = ("finger", "knee")[i % 2]
    fps = int(rng.choice([30, 60, 120, 240], p=[0.4, 0.3, 0.15, 0.15]))
    size = [(640, 360), (360, 640), (480, 480)][int(rng.integers(3))] if fps <= 60 else (320, 240)
    kind = str(rng.choice(["stretched", "logistic"]))
    target = float(np.exp(rng.uniform(np.log(1.2), np.log(6.5))))
    if kind == "stretched":
        beta = float(rng.uniform(0.75, 1.4))
        p = {"beta": beta, "tau": target / (math.log(10) ** (1 / beta))}
    else:
        k = target * float(rng.uniform(0.12, 0.22))
        p = {"k": k, "t50": max(0.05, target - k * math.log(9))}
    return {"index": i, "seed": int(rng.integers(2**31)), "site": site, "fps": fps,
            "width": size[0], "height": size[1], "tone": int(rng.integers(1, 11)),
            "curve": kind, "params": p, "pre_s": float(rng.uniform(1.0, 2.0)),
            "press_s": float(rng.uniform(3.0, 6.0 if fps > 60 else 12.0)),
            "lift_s": float(rng.uniform(0.1, 0.4)), "depth": float(rng.uniform(0.45, 0.8)),
            "walk_px": float(rng.uniform(0.0, 0.8)), "crf": int(rng.integers(20, 29)),
            "band": float(rng.uniform(0.0, 0.025)), "exposure": float(rng.uniform(0.8, 1.05)),
            "drop": float(rng.uniform(0.0, 0.04)) if fps >= 120 else 0.0}


def draw_case_keyframes(rng: np.random.Generator, i: int) -> dict:
    """``draw_case`` and then, drawn last (so the rest is what earlier sets drew), the key-frame
    interval: a phone's, 0.5-2 s, three times in four; else x264's default (None)."""
    case = draw_case(rng, i)
    case["gop_s"] = round(float(rng.uniform(0.5, 2.0)), 2) if rng.random() < 0.75 else None
    return case


class Renderer:
    """Draws the frames of one case; ``truth`` is filled in on construction."""

    def __init__(self, c: dict) -> None:
        self.c = c
        rng = np.random.default_rng(c["seed"])
        w, h = c["width"], c["height"]
        # Camera: Brownian wander (never pulled back) and one small jolt during the refill.
        dt = 1.0 / c["fps"]
        self.release_s = c["pre_s"] + c["press_s"]
        dur = self.release_s + 2.5 * _crt_of(c) + 1.5
        t = np.arange(0, dur, dt)
        keep = rng.random(len(t)) >= c["drop"]
        keep[0] = True
        self.t = t[keep]
        steps = rng.standard_normal((len(t), 2)) * c["walk_px"] * math.sqrt(dt * 30)
        path = np.cumsum(steps, axis=0)[keep]
        jolt_at = self.release_s + rng.uniform(1.0, 3.0)
        path += np.outer(1 / (1 + np.exp(-(self.t - jolt_at) / 0.05)), rng.uniform(-4, 4, 2))
        self.path = np.round(path - path[0]).astype(int)
        self.margin = int(np.abs(self.path).max()) + 2
        hc, wc = h + 2 * self.margin, w + 2 * self.margin
        # Skin: melanin and haemoglobin maps with Gaussian-filtered texture.
        mel = 0.08 + 0.22 * (c["tone"] - 1)
        self.mel = mel * (1 + 0.08 * ndimage.gaussian_filter(rng.standard_normal((hc, wc)), 6) * 6)
        self.hb0 = 0.55 * (1 + 0.15 * ndimage.gaussian_filter(rng.standard_normal((hc, wc)), 3) * 3)
        yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float64)
        short = min(w, h)
        self.cy = self.margin + h * rng.uniform(0.4, 0.6)
        self.cx = self.margin + w * rng.uniform(0.4, 0.6)
        if c["site"] == "finger":
            self.shade = np.clip(1.05 - ((xx - self.cx) / (0.75 * w)) ** 2
                                 - ((yy - self.cy) / (0.9 * h)) ** 2, 0.55, 1.0)
            radius = short * rng.uniform(0.16, 0.22)
        else:
            self.shade = np.clip(1.0 - 0.25 * np.hypot(yy - self.cy, xx - self.cx) / short, 0.6, 1)
            radius = short * rng.uniform(0.10, 0.14)
        aspect, ang = rng.uniform(1.0, 1.5), rng.uniform(0, np.pi)
        u = (xx - self.cx) * math.cos(ang) + (yy - self.cy) * math.sin(ang)
        v = -(xx - self.cx) * math.sin(ang) + (yy - self.cy) * math.cos(ang)
        r_ell = np.hypot(u / (radius * aspect), v / radius)
        self.blanch = c["depth"] * np.exp(-r_ell ** 6)          # flat top, soft edge
        self.radius = radius
        half = int(radius * 0.45)
        self.roi = [int(self.cx - self.margin) - half, int(self.cy - self.margin) - half,
                    2 * half, 2 * half]
        self.white = 255 * c["exposure"] * np.array([1.0, 0.98, 0.93])
        # Thumb of a different tone: a disc with a nail, rolling off sideways as it lifts.
        self.thumb_mel = 0.08 + 0.22 * int(rng.integers(1, 11))
        self.thumb_dir = rng.uniform(0, 2 * np.pi)
        self.thumb_r = radius * rng.uniform(1.5, 1.9)
        self.flick_hz = float(rng.choice([100.0, 120.0]))
        self.rng = rng
        self.truth = self._truth()

    def colour(self, hb: np.ndarray, mel: np.ndarray) -> np.ndarray:
        absorb = mel[..., None] * MU_MEL + hb[..., None] * MU_HB
        return self.white * np.exp(-absorb)

    def _remaining(self, t: np.ndarray) -> np.ndarray:
        c = self.c
        press_in = np.clip((t - c["pre_s"]) / 0.25, 0, 1)
        after = t >= self.release_s
        out = press_in.astype(float)
        out[after] = _curve(c["curve"], c["params"], t[after] - self.release_s)
        return out

    def _truth(self) -> dict:
        c = self.c
        iy, ix = int(self.cy), int(self.cx)
        tt = np.arange(0.0, 30.0, 0.0005)
        rem = _curve(c["curve"], c["params"], tt)
        hb = self.hb0[iy, ix] * (1 - self.blanch[iy, ix] * rem)
        g = self.colour(hb, np.full_like(hb, self.mel[iy, ix]))[:, 1] * self.shade[iy, ix]
        frac = (g - g[-1]) / (g[0] - g[-1])
        crt = float(tt[np.argmax(frac <= 0.1)])
        motion = np.hypot(self.path[:, 0], self.path[:, 1])
        return {"path": None, "site": c["site"], "skin_tone": c["tone"], "fps_nominal": c["fps"],
                "vfr": c["drop"] > 0, "width": c["width"], "height": c["height"],
                "release_s": self.release_s, "crt_s": crt, "curve": {"kind": c["curve"]},
                "roi": self.roi, "spot_radius_px": self.radius,
                "spot_centre": [self.cx - self.margin, self.cy - self.margin],
                "motion_px": float(motion.max()), "broken": None, "expected_status": "ok",
                "renderer": "independent-0.1", "case": c}

    def frames(self):
        c = self.c
        w, h, m = c["width"], c["height"], self.margin
        rem = self._remaining(self.t)
        # Skin colour at rest, and the factor blanching applies per unit of remaining blanch,
        # over the bounding box of the blanched patch only.
        base = self.colour(self.hb0, self.mel) * self.shade[..., None]
        ys, xs = np.nonzero(self.blanch > 1e-4)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        k = (self.hb0 * self.blanch)[y0:y1, x0:x1, None] * MU_HB
        lift = np.clip((self.t - self.release_s) / c["lift_s"], 0, 1)
        arrive = np.clip((self.t - (c["pre_s"] - 0.3)) / 0.3, 0, 1)
        yy, xx = np.mgrid[0:h + 2 * m, 0:w + 2 * m].astype(np.float64)
        tc = self.colour(np.full(1, 0.5), np.full(1, self.thumb_mel))[0]
        for i, t in enumerate(self.t):
            img = base.copy()
            if rem[i] > 0:
                img[y0:y1, x0:x1] *= np.exp(k * rem[i])
            present = min(arrive[i], 1.0) * (1.0 - lift[i] ** 2) if t < self.release_s + c["lift_s"] else 0
            if present > 0 or (c["pre_s"] - 0.3 < t < self.release_s + c["lift_s"]):
                off = (1 - arrive[i]) * 3 * self.thumb_r + lift[i] * 3.5 * self.thumb_r
                ty = self.cy + off * math.sin(self.thumb_dir)
                tx = self.cx + off * math.cos(self.thumb_dir)
                scale = 1 + 0.6 * lift[i]                       # nearer the lens as it lifts
                reach = 1.2 * self.thumb_r * scale
                by0, by1 = max(0, int(ty - reach)), max(0, int(ty + reach) + 1)
                bx0, bx1 = max(0, int(tx - reach)), max(0, int(tx + reach) + 1)
                if by1 > by0 and bx1 > bx0:
                    d = np.hypot(yy[by0:by1, bx0:bx1] - ty, xx[by0:by1, bx0:bx1] - tx) / (
                        self.thumb_r * scale)
                    alpha = np.clip((1.15 - d) / 0.15, 0, 1)[..., None]
                    if c["site"] == "finger":                   # a slide: mostly transparent
                        alpha = alpha * 0.25
                    sub = img[by0:by1, bx0:bx1]
                    img[by0:by1, bx0:bx1] = sub * (1 - alpha) + tc * (
                        0.8 + 0.2 * np.clip(1 - d, 0, 1))[..., None] * alpha
            oy, ox = m + self.path[i, 0], m + self.path[i, 1]
            frame = img[oy:oy + h, ox:ox + w]
            band = 1 + c["band"] * np.sin(2 * np.pi * (self.flick_hz * t + np.arange(h) / h * 0.7))
            frame = frame * band[:, None, None]
            frame = frame + self.rng.standard_normal(frame.shape) * np.sqrt(np.maximum(frame, 1) * 0.05)
            yield t, np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def render(case: dict, path: Path) -> dict:
    """Encode the case to ``path``. ``case["gop_s"]``: a key frame every this many seconds and
    none elsewhere, as a phone's encoder does (about 1 s); None or absent keeps x264's own (every
    250 frames, and where the picture cuts)."""
    r = Renderer(case)
    gop_s = case.get("gop_s")
    if path.exists():          # rendered before (files appear only once complete)
        return r.truth
    tmp = path.with_suffix(".part")
    container = av.open(str(tmp), mode="w", format="mp4")
    # x264's macroblock tree (on in "fast") made the encode differ between runs of the same
    # frames (one of two or three encodings per process, even single-threaded; checked on a
    # 360x640 clip), so a set or a test video was not the same video twice. It is off: a
    # phone's hardware encoder has none either.
    params = ["no-mbtree=1"]
    if gop_s is not None:
        keyint = max(1, int(round(gop_s * case["fps"])))
        params += [f"keyint={keyint}", f"min-keyint={keyint}", "scenecut=0"]
    options = {"crf": str(case["crf"]), "preset": "fast", "x264-params": ":".join(params)}
    stream = container.add_stream("libx264", rate=case["fps"], options=options)
    stream.width, stream.height = case["width"], case["height"]
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, 90000)
    stream.codec_context.time_base = Fraction(1, 90000)
    stream.thread_count = 1
    try:
        for t, px in r.frames():
            vf = av.VideoFrame.from_ndarray(px, format="rgb24")
            vf.pts = int(round(t * 90000))
            vf.time_base = Fraction(1, 90000)
            for pkt in stream.encode(vf):
                container.mux(pkt)
        for pkt in stream.encode():
            container.mux(pkt)
    finally:
        container.close()
    tmp.rename(path)
    return r.truth


def _render_one(job) -> dict:
    from mottling.synth.videos import parse_keyframes

    out, seed, i, keyframes = job
    case = draw_case_keyframes(np.random.default_rng([seed, i]), i)
    gop = parse_keyframes(keyframes)
    if gop != "mixed":
        case["gop_s"] = gop
    rel = f"videos/indep_{i:04d}.mp4"
    rec = render(case, out / rel)
    rec["path"] = rel
    rec["gop_s"] = case["gop_s"]
    return rec


def ensure_independent(out: Path, n: int, seed: int, workers: int = 1,
                       keyframes: str = "mixed") -> list[dict]:
    """The set's truth records, rendering it first unless ``out`` already holds it (same seed).
    Each video is drawn from its own seed, so ``workers`` changes nothing but the wall time.
    ``keyframes``: "mixed" (each case's drawn interval), "x264" (x264's default for all, as sets
    made before the draw existed) or seconds between key frames for all."""
    from crt_accuracy import cached_records

    from mottling.synth.videos import parse_keyframes

    parse_keyframes(keyframes)          # the same three forms as the own generator's
    key = {"renderer": "crt_independent", "seed": seed, "encode": RENDER_VERSION}
    if keyframes != "x264":
        key["keyframes"] = keyframes
    records = cached_records(out, n, key)
    if records is not None:
        return records
    truth = out / "truth.json"
    (out / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(out, seed, i, keyframes) for i in range(n)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            records = list(pool.map(_render_one, jobs))
    else:
        records = [_render_one(j) for j in jobs]
    truth.write_text(json.dumps(records, indent=1) + "\n")
    (out / "cache_key.json").write_text(json.dumps(key) + "\n")
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=4242000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/mottling-bench/crt_independent"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--keyframes", default="mixed",
                    help="'mixed' (each case's draw: a phone's 0.5-2 s three times in four, else "
                         "x264's default), 'x264' (x264's default: every 250 frames and at cuts) "
                         "or seconds between key frames for every video")
    args = ap.parse_args()
    records = ensure_independent(args.out, args.n, args.seed, args.workers, args.keyframes)
    print(f"{len(records)} independent videos in {args.out}")


if __name__ == "__main__":
    main()
