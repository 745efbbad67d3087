"""How fast the generators make data, single process: photos/s (and videos/s once added).

    .venv/bin/python benchmarks/synth_speed.py [--n 60] [--size 384]

Prints the median of three timed rounds of rendering plus JPEG/PNG encoding and writing to disk,
because that is what ``mottling synth images`` does per photo: wall-clock photos/s, and photos per
CPU-second of this process (the fairer figure when the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def bench_photos(n: int = 60, size: int = 384, rounds: int = 3) -> dict:
    from mottling.synth.images import generate_images, render_photo

    render_photo(0, 3, 5, size)  # warm-up: imports, first allocations
    rates, cpu_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            generate_images(n=n, out_dir=Path(tmp) / f"r{r}", seed=r, size=size, workers=1,
                            progress=False)
            rates.append(n / (time.perf_counter() - t0))
            cpu_rates.append(n / (time.process_time() - c0))
    return {"photos_per_s": statistics.median(rates), "rates": rates,
            "photos_per_cpu_s": statistics.median(cpu_rates), "n": n, "size": size}


def bench_videos(n: int = 4, rounds: int = 3) -> dict:
    """Refill videos/s as ``mottling synth videos`` makes them (sampled specs, H.264, truth).

    The per-frame breakdown and the 1080p clip timing live in ``synth_videos_speed.py``.
    """
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth_videos_speed import bench_videos as _bench_videos

    return _bench_videos(n=n, rounds=rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--videos", type=int, default=4, help="refill videos per round (0: skip)")
    args = ap.parse_args()
    res = bench_photos(args.n, args.size)
    print(f"photos: {res['photos_per_s']:.1f} photos/s at {res['size']} px, one process "
          f"(median of {len(res['rates'])} rounds of {res['n']}: "
          + ", ".join(f"{r:.1f}" for r in res["rates"]) + ")")
    # on a shared machine wall time includes other people's work; CPU time is this process's own
    print(f"photos: {res['photos_per_cpu_s']:.1f} photos per CPU-second (process time, same runs)")

    if args.videos:
        vid = bench_videos(args.videos)
        print(f"videos: {vid['videos_per_s']:.2f} videos/s, one process (median of "
              f"{len(vid['rates'])} rounds of {vid['n']}: "
              + ", ".join(f"{r:.2f}" for r in vid["rates"]) + f"); "
              f"{vid['videos_per_cpu_s']:.2f} videos per CPU-second")


if __name__ == "__main__":
    main()
