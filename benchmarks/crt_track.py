"""Camera track against the generator's true camera path, and what the track costs.

    nice python benchmarks/crt_track.py --set /tmp/s17-fit/dev --set /tmp/s17-fit/indep
    nice python benchmarks/crt_track.py --set /tmp/s17-fit/dev --measure      # + oracle runs
    nice python benchmarks/crt_track.py --n 30 --seed 5150000 --out /tmp/crt30

``--set`` is a folder made by ``crt_accuracy.py`` (own generator, ``truth.json`` with ``spec``) or
by ``crt_independent.py`` (``case``); without it the own-generator set of ``--n/--seed/--out`` is
made or reused. For every clean video, ``track_camera`` runs on the decoded luma and its per-frame
(dy, dx) shift is compared with the true camera path, re-drawn from the truth record (own:
``synth.refill_frames.camera_path`` from the spec; independent: the renderer's ``path``), in
analysis pixels. Both are taken against the reference the track uses (the median of the first
0.5 s), so the error is the tracker's alone. Printed: per phase (before the press, during the
press, after the release; "settled" = from 0.4 s after the release) and per Monk group, the
median over videos of each video's median and 90th-percentile |tracked - true| and the share of
frames more than 1 analysis pixel off; and the track's CPU time.

``--measure`` also runs the rest of ``measure_crt`` on each decoded video four times: with the
track and with the true camera path in its place (the oracle; the track's own mismatch, i.e. its
"lost" frames, is kept), each with the true and the automatic ROI, and prints clean rejections,
the median absolute CRT error and the share within +-10% (of the accepted and of all clean).
``--save FILE`` writes every row as JSON.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crt_accuracy import DEFAULT_SEED, ensure_videos  # noqa: E402

PHASES = ("before", "during", "after", "settled")


def true_path(rec: dict, t_s: np.ndarray) -> np.ndarray | None:
    """(N, 2) true (dy, dx) of the view in source pixels for the decoded frames, or None."""
    if "spec" in rec:
        from mottling.synth.refill_frames import TICKS_PER_S, camera_path, frame_pts
        from mottling.synth.refill_spec import spec_from_dict

        spec = spec_from_dict(rec["spec"])
        t = frame_pts(spec) / TICKS_PER_S
        dy, dx = camera_path(spec, t, np.random.default_rng([spec.seed, 4]))
        path = np.stack([dy, dx], axis=1).astype(float)
    elif "case" in rec:
        from crt_independent import Renderer

        r = Renderer(rec["case"])
        t, path = r.t, r.path.astype(float)
    else:
        return None
    if len(t) != len(t_s) or np.max(np.abs(t - t_s)) > 1e-3:
        return None
    return path


def _phases(rec: dict, t: np.ndarray) -> dict[str, np.ndarray]:
    press = rec.get("press_start_s") or rec.get("case", {}).get("pre_s")
    release = rec["release_s"]
    return {"before": t < press, "during": (t >= press) & (t < release), "after": t >= release,
            "settled": t >= release + 0.4}


def _job(job) -> dict:
    root, rec, measure = job
    from mottling.crt import measure as m
    from mottling.crt.motion import CameraTrack, track_camera
    from mottling.crt.roi import baseline_count
    from mottling.crt.video import decode_video
    from mottling.skin import monk_group

    video = decode_video(Path(root) / rec["path"])
    t = video.t_s
    n_base = baseline_count(t)
    t0 = time.process_time()
    track = track_camera(video.yuv[..., 0], t, n_base)
    cpu = time.process_time() - t0
    out = {"set": str(root), "path": rec["path"], "group": monk_group(rec["skin_tone"]),
           "site": rec["site"], "track_cpu_s": cpu, "frames": len(t)}
    path = true_path(rec, t)
    if path is None:
        return out
    # Frame pixel q shows the scene at q + d: reference content at p appears at p - d.
    true = -path * video.scale
    true -= np.median(true[:n_base], axis=0)
    est = track.shifts - np.median(track.shifts[:n_base], axis=0)
    err = np.hypot(*(est - true).T)
    out["true_max_px"] = float(np.hypot(*true.T).max())
    out["phase"] = {}
    for name, sel in _phases(rec, t).items():
        if sel.any():
            e = err[sel]
            out["phase"][name] = {"median": float(np.median(e)), "p90": float(np.percentile(e, 90)),
                                  "over1": float(np.mean(e > 1.0))}
    if measure:
        oracle = CameraTrack(shifts=true, mismatch=track.mismatch)
        out["measure"] = {}
        saved = m.track_camera
        try:
            for mode, tr in (("track", track), ("oracle", oracle)):
                m.track_camera = lambda *a, _tr=tr, **k: _tr
                for roi_mode in ("true", "auto"):
                    roi = rec["roi"] if roi_mode == "true" else None
                    try:
                        r = m.analyse(video, rec["site"], roi, None, m.DEFAULT_THRESHOLDS,
                                      m.g.DEFAULT_GATES, m.DEFAULT_SIGNAL)
                        res = {"status": r.status, "reason": r.reason, "crt_s": r.crt_s}
                    except Exception as err_:  # a benchmark records failures
                        res = {"status": "error", "reason": repr(err_), "crt_s": None}
                    out["measure"][f"{mode}/{roi_mode}"] = res
        finally:
            m.track_camera = saved
    out["crt_true"] = rec["crt_s"]
    return out


def _track_table(rows: list[dict]) -> None:
    by = defaultdict(list)
    for r in rows:
        for ph, v in r.get("phase", {}).items():
            by[("all", ph)].append(v)
            by[(r["group"], ph)].append(v)
    print(f"{'group':10s} {'phase':8s} {'n':>3s}  median|err| px  p90 px  frames >1 px")
    for key in sorted(by, key=lambda k: (k[0] != "all", k[0], PHASES.index(k[1]))):
        v = by[key]
        print(f"{key[0]:10s} {key[1]:8s} {len(v):3d}  {np.median([x['median'] for x in v]):12.2f}"
              f"  {np.median([x['p90'] for x in v]):6.2f}  {100 * np.mean([x['over1'] for x in v]):9.1f}%")


def _measure_summary(rows: list[dict]) -> None:
    keys = ("track/true", "oracle/true", "track/auto", "oracle/auto")
    for group in ("all", "monk_1-3", "monk_4-7", "monk_8-10"):
        sub = [r for r in rows if "measure" in r and (group == "all" or r["group"] == group)]
        if not sub:
            continue
        print(f"-- {group} ({len(sub)} clean)")
        for k in keys:
            res = [(r["crt_true"], r["measure"][k]) for r in sub]
            ok = [(t, x["crt_s"]) for t, x in res if x["status"] == "ok"]
            rej = 1 - len(ok) / len(res)
            if ok:
                err = np.array([abs(c - t) for t, c in ok])
                w10 = np.array([abs(c / t - 1) <= 0.10 for t, c in ok])
                print(f"   {k:12s} rejected {100 * rej:5.1f}%  median|err| {np.median(err):.3f} s  "
                      f"within10% {100 * w10.mean():5.1f}% of accepted, "
                      f"{100 * w10.sum() / len(res):5.1f}% of all")
            else:
                print(f"   {k:12s} rejected {100 * rej:5.1f}%")
        if group == "all":
            for k in keys:
                reasons = defaultdict(int)
                for r in sub:
                    x = r["measure"][k]
                    if x["status"] != "ok":
                        reasons[(x["reason"] or "").split(":")[0]] += 1
                print(f"   {k:12s} rejections: " + ", ".join(f"{a} {b}" for a, b in sorted(reasons.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, action="append", default=[])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=Path("/tmp/mottling-bench/crt_videos"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--measure", action="store_true", help="also measure_crt: track vs oracle")
    ap.add_argument("--limit", type=int, default=0, help="first N clean videos of each set")
    ap.add_argument("--save", type=Path)
    args = ap.parse_args()
    sets = []
    if args.set:
        for root in args.set:
            sets.append((root, json.loads((root / "truth.json").read_text())))
    else:
        sets.append((args.out, ensure_videos(args.out, args.n, args.seed, args.workers)))
    jobs = []
    for root, records in sets:
        clean = [r for r in records if r["broken"] is None]
        if args.limit:
            clean = clean[:args.limit]
        jobs += [(str(root), r, args.measure) for r in clean]
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            rows = list(pool.map(_job, jobs, chunksize=1))
    else:
        rows = [_job(j) for j in jobs]
    if args.save:
        args.save.write_text(json.dumps(rows, indent=1) + "\n")
    for root, _ in sets:
        sub = [r for r in rows if r["set"] == str(root)]
        print(f"\n=== {root}: {len(sub)} clean videos, track CPU {sum(r['track_cpu_s'] for r in sub):.1f} s "
              f"in all ({1000 * sum(r['track_cpu_s'] for r in sub) / sum(r['frames'] for r in sub):.3f} "
              f"ms per frame); true camera motion median {np.median([r.get('true_max_px', np.nan) for r in sub]):.1f} "
              f"analysis px")
        _track_table(sub)
        if args.measure:
            _measure_summary(sub)


if __name__ == "__main__":
    main()
