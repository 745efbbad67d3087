"""Every result of ``measure_crt`` on a fixed set of generated videos, as JSON, and its md5.

    nice .venv/bin/python benchmarks/crt_results_dump.py --out /tmp/crt_results.json

A speed change must not change a single bit of any result: run this before and after and compare
the md5 it prints (curves included; floats are written with ``repr``, so they round-trip exactly).
The set is the first ``--n`` videos of the accuracy benchmark's generator (seed 910000), each
measured with the true ROI and with the automatic ROI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crt_accuracy import DEFAULT_SEED, ensure_videos  # noqa: E402


def _one(job: tuple[str, str, list | None]) -> dict:
    from mottling.crt import measure_crt

    path, site, roi = job
    try:
        return measure_crt(path, site, roi=roi).to_dict(include_curve=True)
    except Exception as err:  # recorded, so a change in what fails shows up too
        return {"error": f"{type(err).__name__}: {err}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/s17-timing/vids"))
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    records = ensure_videos(args.dir, args.n, args.seed, args.workers)
    jobs = []
    for r in records:
        path = str(args.dir / r["path"])
        jobs += [(path, r["site"], r["roi"]), (path, r["site"], None)]
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(_one, jobs, chunksize=1))
    else:
        results = [_one(j) for j in jobs]
    out = [{"video": Path(p).name, "roi": "manual" if roi is not None else "auto", "result": res}
           for (p, _, roi), res in zip(jobs, results)]
    text = json.dumps(out, sort_keys=True, indent=1)
    digest = hashlib.md5(text.encode()).hexdigest()
    if args.out is not None:
        args.out.write_text(text)
    ok = sum(1 for o in out if o["result"].get("status") == "ok")
    print(f"{len(out)} results ({ok} ok) md5 {digest}")


if __name__ == "__main__":
    main()
