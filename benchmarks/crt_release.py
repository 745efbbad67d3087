"""Release timing of ``measure_crt`` against the generator's true release, video by video.

    nice .venv/bin/python benchmarks/crt_release.py --n 30 --seed 777000 --out /tmp/crt30

Generates clean videos (fresh seeds, not the accuracy benchmark's) if ``--out`` has none, measures
each with the true ROI, and prints per video the release error (found - true), the status and
reason category and the CRT against truth; then how many releases are off by more than 0.3 s, the
rejection rate, the median absolute CRT error and the share within +-10%. A release found inside
the press shows here as a large negative error before it shows as a poor fit.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def _job(args):
    root, rec = args
    from mottling.crt import measure_crt

    res = measure_crt(str(Path(root) / rec["path"]), rec["site"], roi=rec["roi"])
    return rec, res.status, res.reason_category, res.release_s, res.crt_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=777000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/mottling-bench/crt_release"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    truth = args.out / "truth.json"
    if not truth.exists():
        from mottling.synth.videos import generate_videos

        generate_videos(n=args.n, out_dir=args.out, seed=args.seed, broken_fraction=0.0,
                        site="both", workers=args.workers)
    records = [r for r in json.loads(truth.read_text())[:args.n] if r["broken"] is None]
    with ProcessPoolExecutor(args.workers) as ex:
        rows = list(ex.map(_job, [(str(args.out), r) for r in records]))
    errs, rel, within, rejected = [], [], 0, 0
    for rec, status, cat, release_s, crt_s in rows:
        d_rel = None if release_s is None else release_s - rec["release_s"]
        print(f"{rec['path']:28s} monk {rec['skin_tone']:2d} {rec['site']:6s} {status:8s} "
              f"{str(cat):12s} release {'-' if d_rel is None else f'{d_rel:+6.2f} s'}  crt "
              f"{'-' if crt_s is None else f'{crt_s:5.2f}'} (true {rec['crt_s']:5.2f})")
        if d_rel is not None:
            rel.append(abs(d_rel))
        if status == "ok":
            errs.append(abs(crt_s - rec["crt_s"]))
            within += abs(crt_s - rec["crt_s"]) <= 0.1 * rec["crt_s"]
        else:
            rejected += 1
    n = len(rows)
    print(f"clean videos {n}: release found {len(rel)}, off by > 0.3 s {sum(x > 0.3 for x in rel)}"
          f", median |release error| {np.median(rel):.3f} s; rejected {rejected} "
          f"({100 * rejected / n:.1f}%); accepted median |crt error| "
          f"{np.median(errs) if errs else float('nan'):.3f} s, within +-10% "
          f"{100 * within / max(len(errs), 1):.1f}%")


if __name__ == "__main__":
    main()
