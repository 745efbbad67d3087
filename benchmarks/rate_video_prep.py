"""How long a rater waits before stepping through a phone video: PyAV decode -> per-frame JPEGs.

Renders one refill video with the project's generator at the size asked for, then times
``mottling.rate.media.decode_frames`` on it (the work the rater server does once per video, ahead
of the rater while the previous video is being marked). Prints what it measured.

    python benchmarks/rate_video_prep.py --width 1920 --height 1080 --seconds 10 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mottling.rate.media import decode_frames
from mottling.synth.videos import RefillSpec, render_refill_video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        pre, press = 1.0, 3.0
        spec = RefillSpec(seed=1, width=args.width, height=args.height, fps_nominal=args.fps,
                          pre_press_s=pre, press_duration_s=press,
                          post_release_s=max(1.0, args.seconds - pre - press), crf=23)
        render_refill_video(path, spec)
        data = path.read_bytes()
    wall, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        frames = decode_frames(data)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"{args.width}x{args.height} {args.fps} fps, {len(frames.t_s)} frames "
          f"({len(data) / 1e6:.1f} MB): ready to step through in {statistics.median(wall):.2f} s "
          f"wall, {statistics.median(cpu):.2f} s CPU (median of {args.repeats}); "
          f"{frames.nbytes / 1e6:.1f} MB of {frames.width}x{frames.height} JPEG frames held")


if __name__ == "__main__":
    main()
