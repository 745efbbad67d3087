"""Side by side with pyCRT on the same generated mono-exponential refill videos.

    nice .venv/bin/python benchmarks/crt_vs_pycrt.py --n 40

pyCRT (``pip install pycrt``) pulls the GUI build of OpenCV and its import turns every warning into
an error, so it lives in its own virtual environment (``.venv-pycrt``, created here if missing) and
runs in a subprocess. Its own 12% relative-uncertainty rule is switched off so that every fit gives a
number to compare (how many would have passed it is printed). As its users must, it gets the true ROI and a time window around the release
(0.5 s before release to the end of the video); we get the same ROI and nothing else. Compared:
our ``tau_s`` and its pCRT against the true time constant, per stratum, and end-to-end wall time per
video (decode included, interpreter start excluded on both sides), run one after the other in the
same sitting, each with every core the machine lends it (OpenCV's FFmpeg reader and our PyAV
decoder both decode with threads; the thread count each decoder ends up with, each tool's CPU
time over its wall time and the load average are printed, since on a busy machine wall time
mostly measures the neighbours). Where each spends its time is printed too: for pyCRT, OpenCV's
``read`` (decode plus the per-frame BGR conversion; it also reads up to 300 frames a second time
to estimate the frame rate), its ROI means and the rest (curve fitting); for us, the stages of
``measure_crt`` (see ``crt_speed.py``). ``--ippp`` re-encodes the same videos with I- and P-frames
only (x264 ``bframes=0``, CRF 18, timestamps kept), as phones' hardware encoders mostly write: our
decoder skips unreferenced B-frames of slow-motion video (``VideoLimits.analysis_max_hz``), and such
a stream has none to skip.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crt_accuracy import DEFAULT_SEED, ensure_videos  # noqa: E402

from mottling.skin import monk_group  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PYCRT_VENV = ROOT / ".venv-pycrt"

PYCRT_RUNNER = r"""
import json, sys, time
from pyCRT import PCRT
import pyCRT.videoReading as vr
stage = {"read": 0.0, "means": 0.0}

class TimedCapture(vr.cv.VideoCapture):
    def read(self, *args):
        t0 = time.perf_counter()
        try:
            return super().read(*args)
        finally:
            stage["read"] += time.perf_counter() - t0

vr.cv.VideoCapture = TimedCapture
def decoder_threads(path):
    cap = vr.cv.VideoCapture(path)
    try:
        return int(cap.get(vr.cv.CAP_PROP_N_THREADS))
    finally:
        cap.release()
means = vr.calcAvgInten
def timed_means(*args, **kw):
    t0 = time.perf_counter()
    try:
        return means(*args, **kw)
    finally:
        stage["means"] += time.perf_counter() - t0
vr.calcAvgInten = timed_means
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    if job.get("probe"):    # the decoder threads OpenCV's FFmpeg reader uses, not timed
        print(json.dumps({"threads": decoder_threads(job["path"]),
                          "opencv_threads": vr.cv.getNumThreads()}), flush=True)
        continue
    stage["read"] = stage["means"] = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        p = PCRT.fromVideoFile(job["path"], roi=tuple(job["roi"]), displayVideo=False,
                               livePlot=False, fromTime=job["from_s"], toTime=job["to_s"],
                               exclusionCriteria=float("inf"))
        value, unc = p.pCRT
        res = {"pcrt_s": float(value), "unc_s": float(unc), "error": None}
    except BaseException as err:
        res = {"pcrt_s": None, "unc_s": None, "error": f"{type(err).__name__}: {err}"[:200]}
    res["wall_s"] = time.perf_counter() - t0
    res["cpu_s"] = time.process_time() - c0
    res["stages"] = dict(stage)
    print(json.dumps(res), flush=True)
"""


def ensure_pycrt(venv: Path = PYCRT_VENV) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "pycrt"], check=True)
    return py


def our_decoder_threads(path: str) -> int:
    """The decoder threads FFmpeg gives our PyAV decoder with decode_video's settings."""
    import av

    from mottling.crt import VideoLimits

    with av.open(path) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        cc.thread_type = "AUTO"
        try:    # one thread on a machine with no idle core (decode_video's own choice)
            from mottling.crt.video import decoder_thread_count
            cc.thread_count = decoder_thread_count(VideoLimits())
        except ImportError:     # an older code tree: FFmpeg's choice
            cc.thread_count = max(0, int(VideoLimits().decoder_threads))
        next(container.decode(stream))
        return int(cc.thread_count)


def to_ippp(src: Path, dst: Path) -> None:
    """``src`` re-encoded with I- and P-frames only, each frame at its own timestamp."""
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format="mp4") as out:
        s = inp.streams.video[0]
        o = out.add_stream("libx264", rate=s.average_rate, options={
            "crf": "18", "preset": "veryfast", "x264-params": "bframes=0"})
        o.width, o.height = s.codec_context.width, s.codec_context.height
        o.pix_fmt = "yuv420p"
        o.time_base = o.codec_context.time_base = s.time_base
        o.thread_count = 1
        for frame in inp.decode(s):
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in o.encode(frame):
                out.mux(packet)
        for packet in o.encode():
            out.mux(packet)
    tmp.rename(dst)


def run_both(jobs: list[dict], venv: Path = PYCRT_VENV,
             max_hz: float = 0.0) -> tuple[list[dict], list[dict]]:
    """Each video through pyCRT (a long-lived subprocess in its own venv) and then through ours,
    alternately, so a change of machine load hits both alike. Wall and CPU time per video."""
    from crt_speed import install_stage_timers

    from mottling.crt import VideoLimits, measure_crt

    limits = VideoLimits(analysis_max_hz=max_hz) if max_hz else VideoLimits()
    py = ensure_pycrt(venv)
    proc = subprocess.Popen([str(py), "-c", PYCRT_RUNNER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"pyCRT runner failed:\n{proc.stderr.read()[-2000:]}")
    stages = install_stage_timers()
    ours, theirs = [], []
    try:
        proc.stdin.write(json.dumps({"probe": True, "path": jobs[0]["path"]}) + "\n")
        proc.stdin.flush()
        probe = json.loads(proc.stdout.readline())
        ours_threads = our_decoder_threads(jobs[0]["path"])
        print(f"decoder threads: ours (PyAV, FFmpeg frame/slice threading, "
              f"decoder_threads={VideoLimits().decoder_threads}: auto) {ours_threads}"
              f", pyCRT (OpenCV {probe['opencv_threads']} threads, its FFmpeg reader) "
              f"{probe['threads']}; load average before the runs "
              + " ".join(f"{x:.1f}" for x in os.getloadavg()))
        for job in jobs:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"pyCRT runner died:\n{proc.stderr.read()[-2000:]}")
            theirs.append(json.loads(line))
            stages.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            r = measure_crt(job["path"], job["site"], roi=job["roi"], limits=limits)
            ours.append({"tau_s": r.tau_s if r.status == "ok" else None, "status": r.status,
                         "reason": r.reason, "wall_s": time.perf_counter() - t0,
                         "cpu_s": time.process_time() - c0, "stages": dict(stages)})
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return ours, theirs


def where_time_goes(results: list[dict], names: dict[str, str], clock: str = "wall") -> str:
    """Share of the summed time per stage, largest first, the rest as 'other'."""
    total = sum(r[f"{clock}_s"] for r in results)

    def of(r: dict, key: str) -> float:
        v = r.get("stages", {}).get(key, 0.0)
        return v[clock] if isinstance(v, dict) else (v if clock == "wall" else 0.0)

    sums = {label: sum(of(r, key) for r in results) for key, label in names.items()}
    sums = {k: v for k, v in sums.items() if v > 0}
    sums["other"] = total - sum(sums.values())
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in
                     sorted(sums.items(), key=lambda kv: -kv[1]))


def line(rows) -> str:
    n = len(rows)
    ours = [abs(o["tau_s"] / t["tau_s"] - 1) for t, o, _ in rows if o["tau_s"] is not None]
    theirs = [abs(p["pcrt_s"] / t["tau_s"] - 1) for t, _, p in rows if p["pcrt_s"] is not None]
    passed = sum(1 for _, _, p in rows if p["pcrt_s"] and p["unc_s"] / p["pcrt_s"] <= 0.12)
    def fmt(v):
        return f"{100 * np.median(v):6.1f}%" if v else "   n/a "
    return (f"n={n:3d}  ours median|rel err| {fmt(ours)} (ok {len(ours):3d})   "
            f"pyCRT {fmt(theirs)} (fitted {len(theirs):3d}, passing its 12% rule {passed:3d})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40, help="mono-exponential clean videos to compare")
    ap.add_argument("--pool", type=int, default=100, help="videos generated to draw them from")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="same set as crt_accuracy.py")
    ap.add_argument("--out", type=Path, default=Path("/tmp/mottling-bench/crt_videos"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pycrt-venv", type=Path, default=PYCRT_VENV,
                    help="virtual environment holding pyCRT (created there if missing)")
    ap.add_argument("--max-hz", type=float, default=0.0,
                    help="our VideoLimits.analysis_max_hz (0: the default, every frame)")
    ap.add_argument("--ippp", action="store_true",
                    help="the same videos re-encoded with I- and P-frames only (no B-frames)")
    args = ap.parse_args()
    # Draw more than needed; keep clean, upright, mono-exponential ones (pyCRT's OpenCV reader
    # has its own idea of rotation metadata, which is not what is being compared).
    records = ensure_videos(args.out, args.pool, args.seed, args.workers)
    records = [r for r in records if r["broken"] is None and r["curve"]["kind"] == "mono"
               and r["rotation"] == 0][:args.n]
    jobs = [{"path": str(args.out / r["path"]), "site": r["site"], "roi": r["roi"],
             "from_s": max(0.0, r["release_s"] - 0.5), "to_s": r["duration_s"]} for r in records]
    if args.ippp:
        for job in jobs:
            dst = args.out / "ippp" / Path(job["path"]).name
            if not dst.exists():
                to_ippp(Path(job["path"]), dst)
            job["path"] = str(dst)
        print(f"I/P-only re-encodes (bframes=0, CRF 18) in {args.out / 'ippp'}")
    ours, theirs = run_both(jobs, args.pycrt_venv, args.max_hz)
    rows = list(zip(records, ours, theirs))
    print(f"{len(rows)} clean mono-exponential videos (seed {args.seed}); truth tau = crt / ln 10")
    print(f"all            {line(rows)}")
    groups = defaultdict(list)
    for t, o, p in rows:
        for key in (monk_group(t["skin_tone"]), t["site"], f"{t['fps_nominal']} fps",
                    "vfr" if t["vfr"] else "cfr"):
            groups[key].append((t, o, p))
    for key in sorted(groups):
        print(f"  {key:12s} {line(groups[key])}")
    ours_wall = sum(o["wall_s"] for o in ours)
    their_wall = sum(p["wall_s"] for p in theirs)
    ours_cpu = sum(o["cpu_s"] for o in ours)
    their_cpu = sum(p["cpu_s"] for p in theirs)
    print(f"wall time per video: ours {ours_wall / len(rows):.2f} s, pyCRT {their_wall / len(rows):.2f} s,"
          f" pyCRT/ours = {their_wall / ours_wall:.1f}x (ours is {their_wall / ours_wall:.1f}x as fast;"
          f" target >= 3, goal 10; {os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable)")
    print(f"CPU time per video (all threads): ours {ours_cpu / len(rows):.2f} s, pyCRT "
          f"{their_cpu / len(rows):.2f} s, pyCRT/ours = {their_cpu / ours_cpu:.1f}x")
    print(f"CPU / wall (above 1: threads ran in parallel; below 1: waiting for a core): ours "
          f"{ours_cpu / ours_wall:.2f}, pyCRT {their_cpu / their_wall:.2f}; load average after "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    from crt_speed import STAGES

    print("  where our time goes (wall): "
          + where_time_goes(ours, {label: label for _, _, label in STAGES}))
    print("  where our time goes (CPU):  "
          + where_time_goes(ours, {label: label for _, _, label in STAGES}, "cpu"))
    print("  where pyCRT's time goes (wall): "
          + where_time_goes(theirs, {"read": "OpenCV read (decode + BGR conversion)",
                                     "means": "ROI means"})
          + " (other: its fps estimate, curve fitting)")
    errors = defaultdict(int)
    for p in theirs:
        if p["error"]:
            errors[p["error"].split(":")[0]] += 1
    if errors:
        print("pyCRT failures: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
    rejected = defaultdict(int)
    for o in ours:
        if o["status"] != "ok":
            rejected[(o["reason"] or "").split(":")[0]] += 1
    if rejected:
        print("our rejections: " + ", ".join(f"{k} {v}" for k, v in rejected.items()))


if __name__ == "__main__":
    main()
