"""Speed and peak memory of ``measure_crt`` on a 15 s 1080p 30 fps H.264 refill clip, on one core.

    nice .venv/bin/python benchmarks/crt_speed.py

Target (issue 3): <= 1.5 s, i.e. 10x faster than real time. Each timing runs in a fresh process
pinned to one core (``taskset``-like affinity) with BLAS threads at 1; the figure is the median of
``--repeat`` runs, and peak memory is the child's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
os.sched_setaffinity(0, {int(sys.argv[3])})
t0 = time.perf_counter()
from mottling.crt import measure_crt
from mottling.crt.video import decode_video
t_import = time.perf_counter() - t0
mode = sys.argv[2]
t0 = time.perf_counter()
if mode == "decode":
    v = decode_video(sys.argv[1]); status = len(v.t_s)
else:
    r = measure_crt(sys.argv[1], "knee", roi=json.loads(sys.argv[4]) if sys.argv[4] != "auto" else None)
    status = (r.status, r.crt_s)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "import_s": t_import, "status": status,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_clip(path: Path) -> dict:
    from mottling.synth.refill_curves import RefillCurve
    from mottling.synth.videos import RefillSpec, render_refill_video

    spec = RefillSpec(seed=930001, site="knee", skin_tone=5, width=1920, height=1080,
                      fps_nominal=30, pre_press_s=1.5, press_duration_s=5.0, post_release_s=8.5,
                      curve=RefillCurve("mono", tau_s=1.2), noise_sigma=2.0, exposure_drift=0.01,
                      pulse_amp=0.004, shake_px=2.0, crf=23, preset="veryfast")
    return render_refill_video(path, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path, default=Path("/tmp/mottling-bench/crt_1080p_15s.mp4"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--core", type=int, default=0)
    args = ap.parse_args()
    truth_path = args.clip.with_suffix(".json")
    if not args.clip.exists() or not truth_path.exists():
        t0 = time.perf_counter()
        truth = make_clip(args.clip)
        truth_path.write_text(json.dumps(truth))
        print(f"rendered {args.clip} in {time.perf_counter() - t0:.0f} s")
    truth = json.loads(truth_path.read_text())
    print(f"clip: {truth['width']}x{truth['height']}, {truth['frames']} frames, "
          f"{truth['duration_s']:.1f} s, H.264 crf {truth['crf']}, {args.clip.stat().st_size / 1e6:.1f} MB;"
          f" true crt {truth['crt_s']:.2f} s")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for mode, roi in (("decode", "auto"), ("measure", json.dumps(truth["roi"])), ("measure", "auto")):
        runs = []
        for _ in range(args.repeat):
            proc = subprocess.run([sys.executable, "-c", CHILD, str(args.clip), mode, str(args.core), roi],
                                  capture_output=True, text=True, env=env, check=True)
            runs.append(json.loads(proc.stdout))
        walls = sorted(r["wall_s"] for r in runs)
        label = "decode only" if mode == "decode" else f"measure_crt ({'auto' if roi == 'auto' else 'manual'} ROI)"
        print(f"{label:28s} median {walls[len(walls) // 2]:.2f} s (min {walls[0]:.2f}), "
              f"peak RSS {max(r['peak_rss_mb'] for r in runs):.0f} MB, "
              f"{truth['duration_s'] / walls[len(walls) // 2]:.1f}x real time; result {runs[0]['status']}")
    print(f"(import of the package: {runs[0]['import_s']:.2f} s, not counted)")


if __name__ == "__main__":
    main()
