"""Accuracy of ``measure_crt`` on generated refill videos whose answer is known exactly.

    nice .venv/bin/python benchmarks/crt_accuracy.py --n 100 --workers 2 --independent 30

Two check sets, side by side: the project's own generator (``mottling.synth.videos``, seeds
910000+, never used by the tests, with the real-phone conditions mixed in) and a differently built
renderer (``benchmarks/crt_independent.py``, seeds 4242000+). Prints the median absolute error of
crt_s, its 90th percentile, the share within +-10% of truth, the rejection rate and how often the
reported 95% interval holds the truth, overall and by
skin-tone group, frame rate, site, frame timing and curve kind, for automatic and manual ROI; the
automatic ROI's centre against the true spot (within half its radius); the reported camera motion
against the true displacement; and whether every deliberately broken video was rejected with the
reason category it should get. ``--colours`` also compares the other colour signals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mottling.crt.signal import DEFAULT_SIGNAL, SIGNALS
from mottling.skin import monk_group

DEFAULT_SEED = 910000


def cached_records(out: Path, n: int, key: dict) -> list[dict] | None:
    """The first ``n`` truth records of a cached video set, if it was made with exactly ``key``
    (seed, generator options); None when it must be (re)generated. A cache made with another seed
    is never silently reused."""
    truth, stamp = out / "truth.json", out / "cache_key.json"
    if not (truth.exists() and stamp.exists()) or json.loads(stamp.read_text()) != key:
        return None
    records = json.loads(truth.read_text())
    return records[:n] if len(records) >= n else None


def ensure_videos(out: Path, n: int, seed: int, workers: int, broken_fraction: float = 0.15,
                  site: str = "both", keyframes: str = "mixed", codec: str = "h264",
                  bits_per_pixel: float | None = None, min_side: int | None = None
                  ) -> list[dict]:
    from mottling.synth.videos import GENERATOR_VERSION, generate_videos

    key = {"generator": GENERATOR_VERSION, "seed": seed, "broken_fraction": broken_fraction,
           "site": site, "keyframes": keyframes}
    if codec != "h264":     # so the H.264 sets made before the option keep their cache key
        key["codec"] = codec
    if bits_per_pixel is not None:
        key["bits_per_pixel"] = bits_per_pixel
    if min_side is not None:
        key["min_side"] = min_side
    records = cached_records(out, n, key)
    if records is not None:
        return records
    truth = out / "truth.json"

    t0 = time.perf_counter()
    generate_videos(n=n, out_dir=out, seed=seed, broken_fraction=broken_fraction, site=site,
                    workers=workers, keyframes=keyframes, codec=codec,
                    bits_per_pixel=bits_per_pixel, min_side=min_side)
    print(f"generated {n} videos in {time.perf_counter() - t0:.0f} s -> {out}")
    (out / "cache_key.json").write_text(json.dumps(key) + "\n")
    return json.loads(truth.read_text())


def _run(job):
    path, site, roi, colour = job
    from mottling.crt import measure_crt

    t0 = time.perf_counter()
    try:
        r = measure_crt(path, site, roi=roi, colour=colour)
        out = {"status": r.status, "reason": r.reason, "category": r.reason_category,
               "crt_s": r.crt_s, "tau_s": r.tau_s, "release_s": r.release_s, "ci": r.crt_ci95,
               "roi": r.roi, "motion_px": r.motion_px, "channel": r.channel}
    except Exception as err:  # a benchmark records failures rather than stopping
        out = {"status": "error", "reason": f"{type(err).__name__}: {err}", "crt_s": None}
    out["wall_s"] = time.perf_counter() - t0
    return out


def evaluate(records, root: Path, manual: bool, colour: str, workers: int) -> list[dict]:
    jobs = [(str(root / r["path"]), r["site"], r["roi"] if manual else None, colour)
            for r in records]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(_run, jobs, chunksize=2))
    return [_run(j) for j in jobs]


def summarise(rows: list[tuple[dict, dict]]) -> str:
    clean = [(t, r) for t, r in rows if t["broken"] is None]
    if not clean:
        return "n=0"
    ok = [(t, r) for t, r in clean if r["status"] == "ok"]
    rej = 1 - len(ok) / len(clean)
    if not ok:
        return f"n={len(clean):3d}  rejected {100 * rej:5.1f}%"
    err = np.array([abs(r["crt_s"] - t["crt_s"]) for t, r in ok])
    rel = np.array([abs(r["crt_s"] / t["crt_s"] - 1) for t, r in ok])
    # Does the reported 95% interval hold the truth? An honest interval does about 95% of the time.
    cover = [r["ci"][0] <= t["crt_s"] <= r["ci"][1] for t, r in ok if r.get("ci")]
    return (f"n={len(clean):3d}  median|err| {np.median(err):.3f} s  p90 {np.percentile(err, 90):.3f} s"
            f"  within10% {100 * np.mean(rel <= 0.10):5.1f}%  rejected {100 * rej:5.1f}%"
            f"  ci95 holds truth {100 * np.mean(cover) if cover else float('nan'):5.1f}%")


def _spot(t: dict) -> tuple[float, float, float] | None:
    """True spot centre (x, y) and radius in source pixels."""
    if "spot_radius_px" in t:
        return (*t["spot_centre"], t["spot_radius_px"])
    x, y, w, h = t["roi"]
    shake = t.get("spec", {}).get("shake_px", 0.0)
    # The generator's ROI half-side is (0.8 r - ceil(shake) - 1.5) / sqrt(2) around the spot.
    radius = (w / 2 * np.sqrt(2) + np.ceil(shake) + 1.5) / 0.8
    return x + w / 2, y + h / 2, radius


def _roi_hit(t: dict, r: dict) -> bool | None:
    spot = _spot(t)
    if spot is None:
        return None
    x, y, w, h = r["roi"]
    return bool(np.hypot(x + w / 2 - spot[0], y + h / 2 - spot[1]) <= 0.5 * spot[2])


def strata(t: dict) -> dict[str, str]:
    return {
        "skin tone": monk_group(t["skin_tone"]),
        "fps": f"{t['fps_nominal']} fps",
        "site": t["site"],
        "timing": "variable" if t["vfr"] else "constant",
        "curve": t["curve"]["kind"] if t["curve"] else "-",
        # Sets made before generator 0.3 carry no gop_s: they all had x264's default.
        "key frames": ("x264 default" if not t.get("gop_s") else
                       "every <= 1 s" if t["gop_s"] <= 1 else "every 1-2 s"),
    }


def report(name: str, records: list[dict], results: list[dict]) -> None:
    rows = list(zip(records, results))
    print(f"\n=== {name} ===")
    print(f"all clean videos        {summarise(rows)}")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for t, r in rows:
        for k, v in strata(t).items():
            groups[(k, v)].append((t, r))
    for (k, v) in sorted(groups):
        print(f"  {k:9s} {v:10s}  {summarise(groups[(k, v)])}")
    broken = [(t, r) for t, r in rows if t["broken"]]
    caught = sum(r["status"] == "rejected" for _, r in broken)
    right = sum(r.get("category") == t.get("expected_reason") for t, r in broken)
    print(f"broken videos rejected  {caught}/{len(broken)}, with the right reason category "
          f"{right}/{len(broken)}")
    for t, r in broken:
        if r["status"] != "rejected" or r.get("category") != t.get("expected_reason"):
            print(f"  MISSED {t['path']} {t['broken']} (want {t.get('expected_reason')}): "
                  f"{r['status']} {r.get('reason')}")
    roi_hits = [_roi_hit(t, r) for t, r in rows if t["broken"] is None and r.get("roi")]
    roi_hits = [h for h in roi_hits if h is not None]
    if roi_hits:
        print(f"ROI centre within half the spot radius: {sum(roi_hits)}/{len(roi_hits)} "
              f"({100 * np.mean(roi_hits):.1f}%)")
    motion = [(t["motion_px"], r["motion_px"]) for t, r in rows
              if t["broken"] is None and r["status"] == "ok" and r.get("motion_px") is not None
              and t.get("motion_px") is not None]
    if motion:
        err = np.array([abs(a - b) for a, b in motion])
        print(f"camera motion: true median {np.median([a for a, _ in motion]):.1f} px, max "
              f"{max(a for a, _ in motion):.1f} px; reported - true |err| median "
              f"{np.median(err):.1f} px, p90 {np.percentile(err, 90):.1f} px")
    reasons = defaultdict(int)
    for t, r in rows:
        if t["broken"] is None and r["status"] != "ok":
            reasons[(r["reason"] or "").split(":")[0]] += 1
    if reasons:
        print("clean rejections by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    walls = [r["wall_s"] for r in results]
    print(f"analysis time per video: median {np.median(walls):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=Path("/tmp/mottling-bench/crt_videos"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--colours", action="store_true", help="also compare green and a* signals")
    ap.add_argument("--manual-only", action="store_true", help="skip the automatic-ROI pass")
    ap.add_argument("--auto-only", action="store_true", help="skip the manual-ROI pass")
    ap.add_argument("--independent", type=int, default=30,
                    help="videos from the independent renderer (0: skip)")
    ap.add_argument("--independent-out", type=Path,
                    default=Path("/tmp/mottling-bench/crt_independent"))
    ap.add_argument("--independent-seed", type=int, default=4242000)
    ap.add_argument("--keyframes", default="mixed",
                    help="both renderers: 'mixed' (each video's drawn key-frame interval, mostly "
                         "a phone's 0.5-2 s), 'x264' (x264's default, every 250 frames, as every "
                         "set before generator 0.3) or seconds between key frames")
    ap.add_argument("--codec", default="h264",
                    help="own generator: how its frames are encoded, 'h264' (as always), 'hevc' "
                         "(8-bit, BT.709) or 'hevc10-hlg' (Main10, BT.2020, HLG: an iPhone's "
                         "default); the same seed in two codecs is the same cases side by side")
    ap.add_argument("--bits-per-pixel", type=float, default=None,
                    help="own generator: encode at a phone's bit rate, this many bits per pixel "
                         "and frame (0.13: an iPhone's original; 0.08: a messaging app's copy), "
                         "instead of each video's drawn constant rate factor")
    ap.add_argument("--min-side", type=int, default=None,
                    help="own generator: film every video with at least this many pixels on its "
                         "shorter side, as phones do (720 and up), instead of the drawn 180-640")
    ap.add_argument("--results", type=Path,
                    help="also write every video's result, one JSON line each (set, roi_pass, "
                         "path, true crt_s, what was measured), to compare runs case by case")
    args = ap.parse_args()
    if args.results:
        args.results.write_text("")
    sets = []
    if args.n:      # --n 0: the independent renderer only
        records = ensure_videos(args.out, args.n, args.seed, args.workers,
                                keyframes=args.keyframes, codec=args.codec,
                                bits_per_pixel=args.bits_per_pixel, min_side=args.min_side)
        print(f"own generator: {len(records)} videos, {sum(r['broken'] is None for r in records)} "
              f"clean, {sum(r['broken'] is not None for r in records)} broken (seed {args.seed}, "
              f"key frames {args.keyframes}, codec {args.codec}"
              + (f", {args.bits_per_pixel} bits per pixel" if args.bits_per_pixel else "")
              + (f", at least {args.min_side} px on the shorter side" if args.min_side else "")
              + ")")
        clean = [r for r in records if r["broken"] is None and r["duration_s"] > 0]
        kbps = np.array([8e-3 * (args.out / r["path"]).stat().st_size / r["duration_s"]
                         for r in clean])
        # Bits per pixel and frame: a phone's original spends about 0.13-0.26, a messaging app's
        # copy about 0.08 (mottling.synth.videos.PHONE_BITS_PER_PIXEL).
        bpp = 1e3 * kbps / [r["width"] * r["height"] * r["fps_nominal"] for r in clean]
        print(f"  bit rate of the clean videos: median {np.median(kbps):.0f} kbit/s "
              f"(quartiles {np.percentile(kbps, 25):.0f}-{np.percentile(kbps, 75):.0f}), "
              f"{np.median(bpp):.3f} bits per pixel and frame (quartiles "
              f"{np.percentile(bpp, 25):.3f}-{np.percentile(bpp, 75):.3f})")
        sets.append(("own generator", records, args.out))
    if args.independent:
        sys.path.insert(0, str(Path(__file__).parent))
        from crt_independent import ensure_independent

        indep = ensure_independent(args.independent_out, args.independent, args.independent_seed,
                                   args.workers, args.keyframes)
        print(f"independent renderer: {len(indep)} clean videos (seed {args.independent_seed}, "
              f"key frames {args.keyframes})")
        sets.append(("independent renderer", indep, args.independent_out))
    summary = []
    for name, recs, root in sets:
        passes = (True,) if args.manual_only else (False,) if args.auto_only else (True, False)
        for manual in passes:
            res = evaluate(recs, root, manual, DEFAULT_SIGNAL, args.workers)
            label = f"{name}: {'manual' if manual else 'automatic'} ROI"
            if args.results:
                with args.results.open("a") as f:
                    for t, r in zip(recs, res):
                        f.write(json.dumps({**r, "set": name,
                                            "roi_pass": "manual" if manual else "automatic",
                                            "path": t["path"], "broken": t["broken"],
                                            "true_crt_s": t["crt_s"]}) + "\n")
            report(f"{label}, {DEFAULT_SIGNAL} signal (default)", recs, res)
            summary.append((label, summarise(list(zip(recs, res)))))
    print("\n=== side by side (clean videos) ===")
    for label, line in summary:
        print(f"{label:40s} {line}")
    if args.colours and args.n:
        for colour in (c for c in SIGNALS if c != DEFAULT_SIGNAL):
            res = evaluate(records, args.out, True, colour, args.workers)
            report(f"manual ROI, {colour} signal", records, res)


if __name__ == "__main__":
    main()
