"""Batch throughput: photos/s and videos/s with 1 and 2 workers, Ray against local, peak memory.

    python benchmarks/batch_throughput.py [--photos 48] [--videos 8] [--repeats 3] [--model PATH]

Prints medians over ``--repeats`` runs of the engines themselves (no shards, no Parquet), both as
wall time including start-up and as the rate after the first file came back:
- photos/s and videos/s with the local engine at 1 and 2 workers, and the scaling ratio 2w/1w;
- the Ray engine (2 actors) against the local engine (2 workers) on the same mixed archive, as
  an overhead ratio, with Ray's start-up counted and, separately, with Ray already running;
- peak resident memory of each worker process (or Ray actor), sampled every 50 ms.

The model is ``--model``, else the shipped ``models/mottling-v0.3.0.onnx``, else the tiny test graph
of ``tests/tiny_model.py`` (then photo figures measure decoding and plumbing, not the network).
The data comes from the project's generators. Figures are for this machine at this moment: the
cores are shared, so read the ratios, which were measured side by side, rather than the absolutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


class PeakMemory:
    """Samples the RSS of every descendant process; keeps each one's peak."""

    def __init__(self, interval_s: float = 0.05):
        import psutil

        self._me = psutil.Process()
        self.interval_s = interval_s
        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = self._me.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    rss, name = p.memory_info().rss, " ".join(p.cmdline()) or p.name()
                except psutil.Error:
                    continue
                if rss > self.peaks.get(p.pid, ("", 0))[1]:
                    self.peaks[p.pid] = (name, rss)
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def workers(self, engine: str) -> list[int]:
        """Peaks of the scoring processes only (pool workers, or Ray's MapWorker actors)."""
        if engine == "ray":
            return [rss for name, rss in self.peaks.values() if "MapWorker" in name
                    or "ScoreActor" in name]
        return [rss for name, rss in self.peaks.values() if "spawn_main" in name]


def make_archives(root: Path, n_photos: int, n_videos: int) -> dict[str, Path]:
    from mottling.synth.images import generate_images
    from mottling.synth.videos import generate_videos

    photos, videos = root / "photos", root / "videos"
    generate_images(n=n_photos, out_dir=photos, seed=1, size=384, workers=2)
    (videos / "videos").mkdir(parents=True)
    if n_videos:
        generate_videos(n=n_videos, out_dir=videos, seed=1, broken_fraction=0.0, site="finger",
                        workers=2)
    mixed = root / "mixed"
    (mixed / "videos").mkdir(parents=True)
    shutil.copytree(photos / "images", mixed / "images")
    for v in (videos / "videos").iterdir():
        shutil.copy(v, mixed / "videos" / v.name)
    return {"photos": photos / "images", "videos": videos / "videos", "mixed": mixed}


def pick_model(arg: str | None, scratch: Path) -> tuple[str, str]:
    if arg:
        return arg, Path(arg).name
    shipped = REPO / "models" / "mottling-v0.3.0.onnx"
    if shipped.is_file():
        return str(shipped), shipped.name
    from tests.tiny_model import build_tiny_model

    return str(build_tiny_model(scratch / "model", name="tiny-bench")), \
        "tiny test graph (the shipped model is not there yet)"


def one_run(inputs: Path, model: str, workers: int, engine: str, scratch: Path,
            site: str = "finger") -> tuple[float, float, int, list[int]]:
    """Score ``inputs`` with one engine, no shards, no output: (wall s, s after the first file,
    files, peak RSS of each worker)."""
    from mottling.batch.runner import BatchConfig, plan_tasks
    from mottling.batch.worker import ScoringConfig

    out = Path(tempfile.mkdtemp(dir=scratch)) / "results.parquet"
    config = BatchConfig(inputs=(str(inputs),), out=str(out), workers=workers, engine=engine,
                         model=model, site=site)
    tasks = plan_tasks(config)
    scoring = ScoringConfig(model_path=model, intra_op_threads=1 if workers > 1 else None)
    if engine == "ray":
        from mottling.batch.ray_engine import score_ray as run
    else:
        from mottling.batch.local_engine import score_local as run
    errors = 0
    with PeakMemory() as mem:
        started = time.perf_counter()
        first = None
        for _, row in run(tasks, scoring, workers=workers):
            first = first or time.perf_counter()
            errors += row["status"] == "error"
        ended = time.perf_counter()
    if errors:
        print(f"  warning: {errors} error rows")
    peaks = mem.workers(engine)
    if engine == "local" and workers == 1:
        import resource

        peaks = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]
    return ended - started, ended - (first or started), len(tasks), peaks


def measure(label: str, inputs: Path, model: str, workers: int, engine: str, repeats: int,
            scratch: Path) -> dict:
    walls, steadies, peaks, n = [], [], [], 0
    for _ in range(repeats):
        wall, steady, n, p = one_run(inputs, model, workers, engine, scratch)
        walls.append(wall)
        steadies.append(steady)
        peaks.extend(p)
    wall, steady = statistics.median(walls), statistics.median(steadies)
    peak = max(peaks) / 2**20 if peaks else float("nan")
    print(f"  {label:34s} {n:4d} files  wall {wall:6.2f} s = {n / wall:6.2f} files/s; "
          f"after the first file {(n - 1) / steady:6.2f} files/s; "
          f"peak RSS/worker {peak:5.0f} MiB")
    return {"seconds": wall, "rate": n / wall, "steady": (n - 1) / steady, "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=None)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")   # keep Ray on 127.0.0.1

    with tempfile.TemporaryDirectory(prefix="batch_bench_") as tmp:
        scratch = Path(tmp)
        model, model_name = pick_model(args.model, scratch)
        print(f"model: {model_name}; cpus: {os.cpu_count()}; repeats: {args.repeats}")
        t0 = time.perf_counter()
        arch = make_archives(scratch, args.photos, args.videos)
        print(f"generated {args.photos} photos (384 px) and {args.videos} refill videos "
              f"in {time.perf_counter() - t0:.1f} s")
        r = {}
        print("local engine:")
        kinds = ("photos", "videos") if args.videos else ("photos",)
        for kind in kinds:
            for w in (1, 2):
                r[kind, w] = measure(f"{kind}, {w} worker(s)", arch[kind], model, w, "local",
                                     args.repeats, scratch)
        for kind in kinds:
            print(f"  scaling {kind}: 2 workers / 1 worker = "
                  f"{r[kind, 2]['rate'] / r[kind, 1]['rate']:.2f}x wall, "
                  f"{r[kind, 2]['steady'] / r[kind, 1]['steady']:.2f}x after start-up")
        if args.no_ray:
            return
        print("Ray engine against local, mixed archive, 2 workers/actors:")
        local = measure("local, 2 workers", arch["mixed"], model, 2, "local", args.repeats,
                        scratch)
        cold = measure("ray, 2 actors, incl. ray start", arch["mixed"], model, 2, "ray",
                       args.repeats, scratch)
        import ray

        ray.init(address=None, include_dashboard=False, num_cpus=2,
                 _node_ip_address="127.0.0.1", log_to_driver=False, logging_level="WARNING")
        try:
            warm = measure("ray, 2 actors, ray running", arch["mixed"], model, 2, "ray",
                           args.repeats, scratch)
        finally:
            ray.shutdown()
        print(f"  overhead ratio ray/local (wall time): {cold['seconds'] / local['seconds']:.2f}x "
              f"with Ray's start-up, {warm['seconds'] / local['seconds']:.2f}x with Ray running, "
              f"{local['steady'] / warm['steady']:.2f}x after the first file")


if __name__ == "__main__":
    main()
