"""Is every deliberately broken video refused with its own reason category, on any seed?

    python benchmarks/crt_broken.py DIR [DIR ...]

Each DIR is a video set written by ``mottling synth videos`` (or ``benchmarks/crt_accuracy.py``'s
cache) with its ``truth.json``. Every broken video is measured with the true ROI and with the
automatic one; prints each miss (the reason given against the category wanted) and the count named
right.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _run(job):
    root, rec, manual = job
    from mottling.crt import measure_crt

    r = measure_crt(str(Path(root) / rec["path"]), rec["site"],
                    roi=tuple(rec["roi"]) if manual else None)
    return root, rec, manual, r.reason_category, r.reason


def main() -> None:
    roots = sys.argv[1:]
    if not roots:
        sys.exit(__doc__)
    jobs = [(root, rec, manual) for root in roots
            for rec in json.loads((Path(root) / "truth.json").read_text()) if rec.get("broken")
            for manual in (True, False)]
    right = 0
    with ProcessPoolExecutor(2) as ex:
        for root, rec, manual, got, reason in ex.map(_run, jobs):
            if got == rec["expected_reason"]:
                right += 1
            else:
                print(f"MISS {Path(root).name} {rec['path']} {rec['broken']} "
                      f"({'true' if manual else 'automatic'} ROI, want {rec['expected_reason']}): "
                      f"{reason}")
    print(f"broken videos named right: {right}/{len(jobs)} (true and automatic ROI, "
          f"{len(jobs) // 2} videos)")


if __name__ == "__main__":
    main()
