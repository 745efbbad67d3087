"""Bedside photo latency while long videos are being analysed, against a real ``mottling serve``.

A clinician at the bedside posts a phone photo and waits for the score; meanwhile other users may
have posted refill videos of the maximum length, each of which keeps a core busy for many seconds.
This prints the photo round-trip latency (p50, p95, max) with 0, 1 and 2 maximum-length videos in
flight at the same time (each video client re-posts as soon as its answer comes back, so the load
never drops), plus how long the videos themselves took.

The photo is a 12-megapixel phone-sized JPEG (a generated leg photo, scaled up); the video is a
generated 1080p30 refill clip looped to just under the 60 s limit (repeated packets, no
re-encoding, so making it takes seconds). Target (issue 14): photo p95 <= 1.5 s with two videos on
2 cores.

    python benchmarks/bedside_under_load.py [--photos 20] [--levels 0,1,2] [--model PATH]
        [--server-cwd DIR]   # serve another checkout's code (e.g. the previous commit) to compare
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._server import pick_model, serve  # noqa: E402


def phone_photo(seed: int = 1, noise: float = 0.0) -> bytes:
    """A generated leg photo scaled to 4032x3024, saved as a phone would (JPEG q90). ``noise``
    (8-bit levels) adds sensor-like grain, which makes the file as large as a real phone's."""
    import numpy as np
    from PIL import Image

    from mottling.synth.images import render_photo

    image = render_photo(seed=seed, score=3, skin_tone=5, size=768).image
    big = image.resize((4032, 3024))
    if noise > 0:
        rng = np.random.default_rng(seed)
        pixels = np.asarray(big, dtype=np.float32) + rng.normal(0, noise, (3024, 4032, 1))
        big = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def long_video(folder: Path, seconds: float) -> Path:
    """A 1080p30 refill clip repeated (packets copied with shifted timestamps) to ``seconds``."""
    import av

    from mottling.synth.refill_spec import RefillSpec
    from mottling.synth.videos import render_refill_video

    out = folder / f"refill-1080p-{seconds:g}s.mp4"
    if out.exists():
        return out
    clip = folder / "refill-1080p-clip.mp4"
    if not clip.exists():
        render_refill_video(clip, RefillSpec(seed=5, width=1920, height=1080, pre_press_s=2.0,
                                             press_duration_s=3.0, post_release_s=4.8, crf=23))
    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        clip_ticks = max(p.pts + (p.duration or 0) for p in packets) - min(p.pts for p in packets)
        clip_s = float(clip_ticks * stream.time_base)
        repeats = max(1, int(seconds // clip_s))
        tmp = out.with_suffix(".tmp.mp4")
        with av.open(str(tmp), "w", format="mp4") as dst:
            ostream = dst.add_stream_from_template(stream)
            for k in range(repeats):
                for p in packets:
                    p.stream = ostream
                    p.pts = None if p.pts is None else p.pts + (clip_ticks if k else 0)
                    p.dts = None if p.dts is None else p.dts + (clip_ticks if k else 0)
                    dst.mux(p)
        os.replace(tmp, out)
    return out


class VideoLoad:
    """``n`` clients, each posting the video again as soon as its answer arrives."""

    def __init__(self, url: str, video: bytes, n: int) -> None:
        self.url, self.video, self.n = url, video, n
        self.stop = threading.Event()
        self.durations: list[float] = []
        self.statuses: list[int] = []
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(n)]

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=600) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                resp = client.post("/v1/crt", files={"video": ("long.mp4", self.video, "video/mp4")},
                                   data={"site": "knee"})
                self.durations.append(time.perf_counter() - started)
                self.statuses.append(resp.status_code)

    def __enter__(self) -> "VideoLoad":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(600)


def photo_latencies(url: str, photo: bytes, n: int, gap_s: float) -> tuple[list[float], list[int]]:
    out, statuses = [], []
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(n):
            started = time.perf_counter()
            resp = client.post("/v1/mottling", files={"image": ("bedside.jpg", photo, "image/jpeg")})
            out.append(time.perf_counter() - started)
            statuses.append(resp.status_code)
            time.sleep(gap_s)
    return out, statuses


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=20, help="photos per load level")
    ap.add_argument("--levels", default="0,1,2", help="videos in flight, comma-separated")
    ap.add_argument("--video-s", type=float, default=59.0, help="video length (limit: 60 s)")
    ap.add_argument("--photo-noise", type=float, default=0.0,
                    help="sensor grain in 8-bit levels (6 gives a 4-5 MB file, like a phone's)")
    ap.add_argument("--gap-s", type=float, default=0.3, help="pause between photos")
    ap.add_argument("--warm-s", type=float, default=3.0, help="let the videos start before photos")
    ap.add_argument("--model", default=None)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "mottling-bench-cache"))
    ap.add_argument("--server-cwd", default=None, help="run the server from this checkout")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra server setting, e.g. MOTTLING_VIDEO_CONCURRENCY=2")
    args = ap.parse_args()

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    print("making the photo and the video...", flush=True)
    photo = phone_photo(noise=args.photo_noise)
    video_path = long_video(cache, args.video_s)
    video = video_path.read_bytes()
    model = pick_model(args.model)
    env = dict(kv.split("=", 1) for kv in args.env)
    levels = [int(x) for x in args.levels.split(",")]
    print(f"photo: 4032x3024 JPEG, {len(photo) / 1e6:.1f} MB; video: {video_path.name}, "
          f"{len(video) / 1e6:.1f} MB; model {model.name}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; server settings {env or 'default'}"
          f"{'; server from ' + args.server_cwd if args.server_cwd else ''}", flush=True)

    rows = []
    with serve(model, extra_env=env, cwd=Path(args.server_cwd) if args.server_cwd else None) as (url, _):
        photo_latencies(url, photo, 3, 0.0)                     # warm the path
        for n_videos in levels:
            with VideoLoad(url, video, n_videos) as load:
                time.sleep(args.warm_s if n_videos else 0.0)
                latencies, statuses = photo_latencies(url, photo, args.photos, args.gap_s)
            bad = [s for s in statuses if s != 200]
            rows.append((n_videos, latencies, bad, load.durations, load.statuses))
            print(f"  {n_videos} video(s) in flight: photo p50 {statistics.median(latencies):.3f} s, "
                  f"p95 {pct(latencies, 0.95):.3f} s, max {max(latencies):.3f} s"
                  f"{f', {len(bad)} non-200' if bad else ''}"
                  + (f"; videos answered {len(load.durations)} in {statistics.mean(load.durations):.1f} s "
                     f"mean (statuses {sorted(set(load.statuses))})" if load.durations else ""),
                  flush=True)

    print("\nvideos  photo_p50_s  photo_p95_s  photo_max_s  n")
    for n_videos, latencies, bad, _, _ in rows:
        print(f"{n_videos:>6d}  {statistics.median(latencies):>11.3f}  {pct(latencies, 0.95):>11.3f}  "
              f"{max(latencies):>11.3f}  {len(latencies)}")
    worst = max(pct(r[1], 0.95) for r in rows)
    print(f"target: photo p95 <= 1.5 s at every level -> {'met' if worst <= 1.5 else 'MISSED'} "
          f"(worst p95 {worst:.3f} s)")


if __name__ == "__main__":
    main()
