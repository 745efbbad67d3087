"""Camera track against the generator's true displacement, and what the track costs.

    nice .venv/bin/python benchmarks/crt_track.py --n 30 --seed 5150000 --out /tmp/crt30

For every clean generated video (``crt_accuracy.py``'s generator and set), ``track_camera`` runs on
the decoded luma and its per-frame shift is compared with the truth's ``motion_px_by_frame`` (the
distance of the view from the first frame, source pixels). Printed: per video and overall, the
median and 90th percentile of |tracked - true| in source pixels, the share of frames the track
calls lost, and the track's CPU time. The truth is a distance from the first frame while the track
is measured against the median of the first 0.5 s, so a few tenths of a pixel of the error are
that offset, the same for any tracker.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crt_accuracy import DEFAULT_SEED, ensure_videos  # noqa: E402

from mottling.crt.motion import track_camera  # noqa: E402
from mottling.crt.roi import baseline_count  # noqa: E402
from mottling.crt.video import decode_video  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=Path("/tmp/mottling-bench/crt_videos"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    records = ensure_videos(args.out, args.n, args.seed, args.workers)
    medians, p90s, cpu = [], [], 0.0
    for r in records:
        truth = r.get("motion_px_by_frame")
        if r["broken"] is not None or truth is None:
            continue
        video = decode_video(args.out / r["path"])
        t0 = time.process_time()
        track = track_camera(video.yuv[..., 0], video.t_s, baseline_count(video.t_s))
        cpu += time.process_time() - t0
        est = np.hypot(track.shifts[:, 0], track.shifts[:, 1]) / video.scale
        truth = np.asarray(truth, dtype=float)
        if len(truth) != len(est):
            continue
        err = np.abs(est - truth)
        medians.append(float(np.median(err)))
        p90s.append(float(np.percentile(err, 90)))
        print(f"  {Path(r['path']).name}  {r['width']}x{r['height']} {r['fps_nominal']} fps, "
              f"analysis {video.yuv.shape[2]}x{video.yuv.shape[1]}: |err| median "
              f"{medians[-1]:.2f} px, p90 {p90s[-1]:.2f} px (true max {truth.max():.1f} px), "
              f"lost {np.mean(track.mismatch > 4.0):.0%}")
    print(f"{len(medians)} clean videos: per-video median |tracked - true| median "
          f"{np.median(medians):.2f} px, mean {np.mean(medians):.2f} px; p90 median "
          f"{np.median(p90s):.2f} px; track CPU {cpu:.1f} s in all")


if __name__ == "__main__":
    main()
