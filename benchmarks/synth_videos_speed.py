"""How fast the refill-video generator works, single process: videos/s and frames/s.

    .venv/bin/python benchmarks/synth_videos_speed.py [--n 6] [--duration-scale 1.0] [--hd]

Renders ``n`` videos exactly as ``mottling synth videos`` does (sampled specs, H.264 encode,
written to disk), three rounds with different seeds, and prints the median wall-clock videos/s,
videos per CPU-second of this process (the fairer figure on a shared machine), frames/s, and the
share of time spent in x264. ``--hd`` also times one 15 s, 1920x1080, 30 fps clip: the size the
CRT speed benchmark uses.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def bench_videos(n: int = 6, duration_scale: float = 1.0, rounds: int = 3) -> dict:
    import json

    from mottling.synth.videos import generate_videos

    rates, cpu_rates, frame_rates = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            truth = generate_videos(n=n, out_dir=Path(tmp) / f"r{r}", seed=100 + r,
                                    broken_fraction=0.15, site="both", workers=1,
                                    duration_scale=duration_scale, progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            frames = sum(rec["frames"] for rec in json.loads(truth.read_text()))
            rates.append(n / wall)
            cpu_rates.append(n / cpu)
            frame_rates.append(frames / wall)
    return {"videos_per_s": statistics.median(rates), "rates": rates,
            "videos_per_cpu_s": statistics.median(cpu_rates),
            "frames_per_s": statistics.median(frame_rates), "n": n,
            "duration_scale": duration_scale}


def bench_render_vs_encode(width: int = 640, height: int = 480, seconds: float = 6.0) -> dict:
    """Per-frame cost of drawing a frame versus encoding it, for one mid-size video."""
    from mottling.synth.refill_curves import RefillCurve
    from mottling.synth.videos import RefillSpec, RenderedFrames, render_refill_video

    spec = RefillSpec(seed=1, site="knee", width=width, height=height, fps_nominal=30,
                      pre_press_s=1.0, press_duration_s=seconds / 2,
                      post_release_s=seconds / 2 - 1.0, curve=RefillCurve("mono", tau_s=0.8),
                      noise_sigma=2.0, flicker_amp=0.02, pulse_amp=0.005, shake_px=2.0)
    c0 = time.process_time()
    frames = RenderedFrames(spec)
    for _ in frames:
        pass
    render = time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp:
        c0 = time.process_time()
        render_refill_video(Path(tmp) / "v.mp4", spec)
        total = time.process_time() - c0
    n = len(frames)
    return {"frames": n, "render_ms": 1000 * render / n, "total_ms": 1000 * total / n,
            "width": width, "height": height}


def bench_hd_clip() -> dict:
    """One 15 s 1080p 30 fps knee clip (the CRT speed benchmark's input)."""
    from mottling.synth.refill_curves import RefillCurve
    from mottling.synth.videos import RefillSpec, render_refill_video

    spec = RefillSpec(seed=2, site="knee", width=1920, height=1080, fps_nominal=30,
                      pre_press_s=2.0, press_duration_s=5.0, post_release_s=8.0,
                      curve=RefillCurve("mono", tau_s=1.3), noise_sigma=2.0, crf=23)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        rec = render_refill_video(Path(tmp) / "hd.mp4", spec)
        size = (Path(tmp) / "hd.mp4").stat().st_size
        return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                "frames": rec["frames"], "mb": size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--duration-scale", type=float, default=1.0)
    ap.add_argument("--hd", action="store_true", help="also time one 15 s 1080p clip")
    args = ap.parse_args()
    res = bench_videos(args.n, args.duration_scale)
    print(f"videos: {res['videos_per_s']:.2f} videos/s, one process, sampled specs at "
          f"duration_scale {res['duration_scale']} (median of {len(res['rates'])} rounds of "
          f"{res['n']}: " + ", ".join(f"{r:.2f}" for r in res["rates"]) + ")")
    print(f"videos: {res['videos_per_cpu_s']:.2f} videos per CPU-second; "
          f"{res['frames_per_s']:.0f} frames/s wall")
    split = bench_render_vs_encode()
    print(f"videos: {split['width']}x{split['height']}: {split['render_ms']:.1f} ms/frame to draw, "
          f"{split['total_ms']:.1f} ms/frame to draw + encode (CPU time, {split['frames']} frames)")
    if args.hd:
        hd = bench_hd_clip()
        print(f"videos: 15 s 1080p 30 fps clip: {hd['wall_s']:.1f} s wall, "
              f"{hd['cpu_s']:.1f} s CPU, "
              f"{hd['frames']} frames, {hd['mb']:.1f} MB")


if __name__ == "__main__":
    main()
