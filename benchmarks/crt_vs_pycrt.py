"""Side by side with pyCRT on the same generated mono-exponential refill videos.

    nice .venv/bin/python benchmarks/crt_vs_pycrt.py --n 40

pyCRT (``pip install pycrt``) pulls the GUI build of OpenCV and its import turns every warning into
an error, so it lives in its own virtual environment (``.venv-pycrt``, created here if missing) and
runs in a subprocess. Its own 12% relative-uncertainty rule is switched off so that every fit gives a
number to compare (how many would have passed it is printed). As its users must, it gets the true ROI and a time window around the release
(0.5 s before release to the end of the video); we get the same ROI and nothing else. Compared:
our ``tau_s`` and its pCRT against the true time constant, per stratum, and end-to-end wall time per
video (decode included, interpreter start excluded on both sides).
"""

from __future__ import annotations

import argparse
import json
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
jobs = json.load(sys.stdin)
from pyCRT import PCRT
out = []
for job in jobs:
    t0 = time.perf_counter()
    try:
        p = PCRT.fromVideoFile(job["path"], roi=tuple(job["roi"]), displayVideo=False,
                               livePlot=False, fromTime=job["from_s"], toTime=job["to_s"],
                               exclusionCriteria=float("inf"))
        value, unc = p.pCRT
        res = {"pcrt_s": float(value), "unc_s": float(unc), "error": None}
    except BaseException as err:
        res = {"pcrt_s": None, "unc_s": None, "error": f"{type(err).__name__}: {err}"[:200]}
    res["wall_s"] = time.perf_counter() - t0
    out.append(res)
json.dump(out, sys.stdout)
"""


def ensure_pycrt() -> Path:
    py = PYCRT_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run(["python3", "-m", "venv",
                        str(PYCRT_VENV)], check=True)
        subprocess.run([str(PYCRT_VENV / "bin" / "pip"), "install", "-q", "pycrt"], check=True)
    return py


def run_pycrt(jobs: list[dict]) -> list[dict]:
    py = ensure_pycrt()
    proc = subprocess.run([str(py), "-c", PYCRT_RUNNER], input=json.dumps(jobs),
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"pyCRT runner failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def run_ours(jobs: list[dict]) -> list[dict]:
    from mottling.crt import measure_crt

    out = []
    for job in jobs:
        t0 = time.perf_counter()
        r = measure_crt(job["path"], job["site"], roi=job["roi"])
        out.append({"tau_s": r.tau_s if r.status == "ok" else None, "status": r.status,
                    "reason": r.reason, "wall_s": time.perf_counter() - t0})
    return out


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
    args = ap.parse_args()
    # Draw more than needed; keep clean, upright, mono-exponential ones (pyCRT's OpenCV reader
    # has its own idea of rotation metadata, which is not what is being compared).
    records = ensure_videos(args.out, args.pool, args.seed, args.workers)
    records = [r for r in records if r["broken"] is None and r["curve"]["kind"] == "mono"
               and r["rotation"] == 0][:args.n]
    jobs = [{"path": str(args.out / r["path"]), "site": r["site"], "roi": r["roi"],
             "from_s": max(0.0, r["release_s"] - 0.5), "to_s": r["duration_s"]} for r in records]
    ours = run_ours(jobs)
    theirs = run_pycrt(jobs)
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
    print(f"wall time per video: ours {ours_wall / len(rows):.2f} s, pyCRT {their_wall / len(rows):.2f} s,"
          f" pyCRT/ours = {their_wall / ours_wall:.1f}x")
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
