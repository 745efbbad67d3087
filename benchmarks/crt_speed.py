"""Speed and peak memory of ``measure_crt`` on a 15 s 1080p30 clip and a 24 s 240 fps 480x360 clip.

    nice .venv/bin/python benchmarks/crt_speed.py

Prints, per clip, side by side in one run: the bare decode (FFmpeg decoding every frame, nothing
else: the floor any tool pays), ``decode_video`` and ``measure_crt``; "analysis" is everything
``measure_crt`` spends beyond the bare decode, and its ratio to the bare decode is the issue-11
figure (target <= 0.3), in wall time and in CPU time (the process's, all threads: less sensitive
to other work on a shared machine). Each timing runs in a fresh process pinned to one core with
BLAS threads at 1 (so the decoder, which may use threads, gets one too); the runs of the modes are
interleaved, so a change of machine load hits all of them alike; the figure is the median of
``--repeat`` runs (wall and CPU each from its own median run), and peak memory is the child's
maximum resident set size. ``--core 0,1`` runs them on two cores instead: the decoder then uses
its threads, and the wall time is also set against a bare decode with FFmpeg's threads. Where the
time goes is printed too: each stage of ``measure_crt`` (decode with sampling, camera track,
automatic ROI, colour series, press/release timing, recovery fit) timed in the same runs.
``--code A --code B`` times two code trees (each a PYTHONPATH, e.g. ``git archive`` of two
commits) in the same loop, so both meet the same machine load.

With ``--max-hz 120`` slow-motion video is analysed at about 120 Hz
(``VideoLimits.analysis_max_hz``, off by default) and, from twice that rate, its unreferenced
B-frames are not decoded at all. So two more figures are printed: the
bare decode of only what ``decode_video`` decodes ("bare decode as decode_video decodes", the
analysis beyond it is the honest analysis cost) and ``measure_crt`` over the bare decode of every
frame (the end-to-end cost against the floor of a tool that decodes every frame). The 240 fps
clip is x264's usual I/P/B stream; ``240fps_ippp`` is the same scene encoded with no B-frames
(``bframes=0``), as phones' hardware encoders mostly write, where nothing can be left undecoded.
``1080p30_hevc10`` (not in the default list: x265 renders it in about half a minute) is the
1080p scene as an iPhone records it with "HDR Video" on, HEVC Main10 tagged BT.2020 HLG.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (module, function name, label): the stages of measure_crt, timed by wrapping the names
# measure.py calls; a name that is not there (renamed) is simply not reported.
STAGES = (("mottling.crt.measure", "decode_video", "decode + sampling"),
          ("mottling.crt.measure", "track_camera", "camera track"),
          ("mottling.crt.measure", "auto_roi", "automatic ROI"),
          ("mottling.crt.measure", "spot_series", "colour series"),
          ("mottling.crt.measure", "detect_press", "press/release timing"),
          ("mottling.crt.measure", "fit_recovery", "recovery fit"))


def install_stage_timers() -> dict[str, dict[str, float]]:
    """Wrap each stage so its time adds up in the returned dict: label -> {"wall": seconds,
    "cpu": seconds of CPU, all threads of the process}."""
    totals: dict[str, dict[str, float]] = {}
    for module, name, label in STAGES:
        mod = importlib.import_module(module)
        orig = getattr(mod, name, None)
        if orig is None:
            continue

        def timed(*args, _orig=orig, _label=label, **kw):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return _orig(*args, **kw)
            finally:
                acc = totals.setdefault(_label, {"wall": 0.0, "cpu": 0.0})
                acc["wall"] += time.perf_counter() - t0
                acc["cpu"] += time.process_time() - c0

        setattr(mod, name, timed)
    return totals


def stage_line(stages: dict[str, float], total: float) -> str:
    """'stage 1.23 s (45%), ...' largest first, plus what no stage accounts for."""
    parts = sorted(stages.items(), key=lambda kv: -kv[1])
    rest = total - sum(stages.values())
    parts.append(("other", rest))
    return ", ".join(f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in parts)


CHILD = r"""
import json, os, resource, sys, time
os.sched_setaffinity(0, {int(c) for c in sys.argv[3].split(",")})
sys.path.insert(0, sys.argv[5])
t0 = time.perf_counter()
from mottling.crt import measure_crt
from mottling.crt.video import decode_video
from crt_speed import install_stage_timers
stages = install_stage_timers()
t_import = time.perf_counter() - t0
mode = sys.argv[2]
from mottling.crt.video import VideoLimits
hz = float(sys.argv[6])
limits = VideoLimits(analysis_max_hz=hz) if hz and hasattr(VideoLimits(), "analysis_max_hz") \
    else VideoLimits()
t0, c0 = time.perf_counter(), time.process_time()
if mode in ("bare", "bare_threads", "bare_ours"):
    import av
    with av.open(sys.argv[1]) as c:
        s = c.streams.video[0]; s.codec_context.options = {"skip_loop_filter": "all"}
        if mode == "bare_ours":     # only the frames decode_video decodes (NONREF skipped above 2x max Hz)
            hz = getattr(limits, "analysis_max_hz", 0)
            if hz and float(s.average_rate or s.guessed_rate or 30) >= 1.9 * hz:
                s.codec_context.skip_frame = "NONREF"
        if mode in ("bare", "bare_ours"):
            s.thread_count = 1
        else:   # as decode_video decodes: FFmpeg's frame/slice threads, as many as it likes
            s.codec_context.thread_type = "AUTO"; s.codec_context.thread_count = 0
        status = sum(1 for _ in c.decode(s))
elif mode == "decode":
    v = decode_video(sys.argv[1], limits); status = len(v.t_s)
else:
    r = measure_crt(sys.argv[1], "knee", roi=json.loads(sys.argv[4]) if sys.argv[4] != "auto" else None,
                    limits=limits)
    status = (r.status, r.crt_s)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "import_s": t_import, "status": status,
                  "stages": stages,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_clip(path: Path, kind: str) -> dict:
    from mottling.synth.refill_curves import RefillCurve
    from mottling.synth.videos import RefillSpec, render_refill_video

    codec = "hevc10-hlg" if kind.endswith("_hevc10") else "h264"
    kind = kind.removesuffix("_hevc10")
    if kind.removesuffix("_ippp") == "1080p30":
        spec = RefillSpec(seed=930001, site="knee", skin_tone=5, width=1920, height=1080,
                          fps_nominal=30, pre_press_s=1.5, press_duration_s=5.0,
                          post_release_s=8.5, curve=RefillCurve("mono", tau_s=1.2),
                          noise_sigma=2.0, exposure_drift=0.01, pulse_amp=0.004, shake_px=2.0,
                          wander_px=0.7, drift_px=6.0, crf=23, preset="veryfast")
    else:
        spec = RefillSpec(seed=930002, site="finger", skin_tone=4, width=480, height=360,
                          fps_nominal=240, pre_press_s=2.0, press_duration_s=10.0,
                          post_release_s=12.0, curve=RefillCurve("mono", tau_s=1.0),
                          noise_sigma=2.0, exposure_drift=0.01, pulse_amp=0.004, shake_px=2.0,
                          wander_px=0.7, drift_px=6.0, crf=23, preset="veryfast")
    # "_ippp": the same scene, I- and P-frames only (as phones mostly write); "_hevc10": HEVC
    # Main10 tagged BT.2020 HLG, as an iPhone records with "HDR Video" on (its default)
    return render_refill_video(path, spec, b_frames=not kind.endswith("_ippp"), codec=codec)


def codec_name(truth: dict) -> str:
    return {"hevc10-hlg": "HEVC Main10 (BT.2020, HLG)", "hevc": "HEVC"}.get(truth.get("codec", ""),
                                                                             "H.264")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/mottling-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--core", default="0",
                    help="core(s) the timed processes run on, e.g. 0 or 0,1 (default: one core, "
                         "so the decoder gets one thread and wall time follows CPU time)")
    ap.add_argument("--code", action="append", default=None,
                    help="a code tree (PYTHONPATH) to time; give it twice or more to time trees "
                         "side by side in one run, e.g. a base commit's git archive and this one")
    ap.add_argument("--max-hz", type=float, default=0.0,
                    help="VideoLimits.analysis_max_hz for decode_video and measure_crt (0: the "
                         "default; 120: slow motion analysed at about 120 Hz)")
    ap.add_argument("--clips", default="240fps,240fps_ippp,1080p30",
                    help="clips to time, comma-separated (240fps, 240fps_ippp, 1080p30, and "
                         "1080p30_hevc10: the 1080p scene as an iPhone's HDR video, HEVC Main10)")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for kind in args.clips.split(","):
        clip = args.dir / f"crt_speed_{kind}.mp4"
        truth_path = clip.with_suffix(".json")
        if not clip.exists() or not truth_path.exists():
            clip.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            truth_path.write_text(json.dumps(make_clip(clip, kind)))
            print(f"rendered {clip} in {time.perf_counter() - t0:.0f} s")
        truth = json.loads(truth_path.read_text())
        print(f"\n{kind} clip: {truth['width']}x{truth['height']}, {truth['frames']} frames, "
              f"{truth['duration_s']:.1f} s, {codec_name(truth)} crf {truth['crf']}, "
              f"{clip.stat().st_size / 1e6:.1f} MB; true crt {truth['crt_s']:.2f} s")
        modes = [("bare", "auto"), ("bare_ours", "auto"), ("decode", "auto"), ("measure", json.dumps(truth["roi"])),
                 ("measure", "auto")]
        if "," in args.core:    # several cores: the threaded bare decode too, for the wall time
            modes.insert(1, ("bare_threads", "auto"))
        # Each code tree (--code, as PYTHONPATH; default: this process's) in the same loop, so
        # the trees meet the same machine load.
        trees = args.code or [os.environ.get("PYTHONPATH", "")]
        runs = {(c, m): [] for c in range(len(trees)) for m in range(len(modes))}
        for _ in range(args.repeat):
            for c, tree in enumerate(trees):
                for m, (mode, roi) in enumerate(modes):
                    proc = subprocess.run([sys.executable, "-c", CHILD, str(clip), mode,
                                           str(args.core), roi, str(HERE), str(args.max_hz)],
                                          capture_output=True, text=True, check=True,
                                          env=dict(env, PYTHONPATH=tree), cwd=HERE)
                    runs[c, m].append(json.loads(proc.stdout))
        for c, tree in enumerate(trees):
            if len(trees) > 1:
                print(f" code {tree}:")
            report(modes, [runs[c, m] for m in range(len(modes))], truth)
    print(f"(import of the package: {runs[0, 0][0]['import_s']:.2f} s, not counted)")


def report(modes, runs, truth) -> None:
    """Medians per mode, then the analysis beyond the bare decode, wall and CPU."""
    medians, cpu_medians = {}, {}
    for m, (mode, roi) in enumerate(modes):
        rs = sorted(runs[m], key=lambda r: r["wall_s"])
        mid = rs[len(rs) // 2]
        by_cpu = sorted(runs[m], key=lambda r: r["cpu_s"])
        label = {"bare": "bare FFmpeg decode",
                 "bare_ours": "bare decode as decode_video", "decode": "decode_video",
                 "bare_threads": "bare decode, auto threads"}.get(
            mode, f"measure_crt ({'auto' if roi == 'auto' else 'manual'} ROI)")
        medians[label] = mid
        # CPU figures from the run with the median CPU time (on a busy machine the run with
        # the median wall time need not be it).
        cpu_medians[label] = by_cpu[len(by_cpu) // 2]
        print(f"  {label:28s} median {mid['wall_s']:.2f} s (min {rs[0]['wall_s']:.2f}; CPU "
              f"median {cpu_medians[label]['cpu_s']:.2f} s, min {by_cpu[0]['cpu_s']:.2f}), "
              f"peak RSS {max(r['peak_rss_mb'] for r in rs):.0f} MB; result {rs[0]['status']}")
    for clock in ("wall", "cpu"):
        of = medians if clock == "wall" else cpu_medians
        every = of["bare FFmpeg decode"][f"{clock}_s"]
        bare = of["bare decode as decode_video"][f"{clock}_s"]
        for label in ("measure_crt (manual ROI)", "measure_crt (auto ROI)"):
            run = of[label]
            analysis = run[f"{clock}_s"] - bare
            print(f"  {label}, {clock} time: analysis {analysis:.2f} s = "
                  f"{analysis / bare:.2f}x the bare decode of what it decodes (target <= 0.3); "
                  f"measure_crt = {run[f'{clock}_s'] / every:.2f}x the bare decode of every "
                  f"frame; {truth['duration_s'] / run[f'{clock}_s']:.1f}x real time")
            stages = {k: v[clock] for k, v in run["stages"].items()}
            # The bare decode is the floor; what decode_video adds is the per-frame sampling.
            if "decode + sampling" in stages:
                stages["sampling beyond the bare decode"] = stages.pop("decode + sampling") - bare
            print(f"    where it goes: {stage_line(stages, analysis)}")
            if clock == "wall" and "bare decode, auto threads" in medians:
                bt = medians["bare decode, auto threads"]["wall_s"]
                print(f"    against the threaded bare decode ({bt:.2f} s): analysis "
                      f"{run['wall_s'] - bt:.2f} s = {(run['wall_s'] - bt) / bt:.2f}x")


if __name__ == "__main__":
    main()
