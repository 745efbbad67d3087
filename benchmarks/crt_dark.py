"""Why clean videos on dark skin are refused: per video, each colour channel's fit, and the fit the
gates judged (its CRT, interval and which side of the site's threshold the interval lies on).

    nice -n 5 python benchmarks/crt_dark.py --set /tmp/s17-fit/dev --set /tmp/s17-roi/b910

Uses ``crt_fit_harness.py``'s cache (``<set>/fitcache``: decode, camera track and colour series
once; true ROI only). ``--all`` lists every refused clean video, not only Monk 8-10 ones. Per
channel (G, R, B: the channel the fit reads, forced) it prints the gates' verdict, the error of
the CRT when accepted, the fitted blanching amplitude ``A`` and the 95% interval's half-width; the
truth's blanching per channel is ``roi_blanched_rgb / roi_baseline_rgb - 1``. The last columns are
the default (green) fit before the gates: CRT, error, interval, the per-frame SNR the
``no blanching`` floor reads, and ``BELOW`` / ``ABOVE`` / ``spans`` for the interval against the
site's threshold (what ``QualityGates.decide_by_threshold`` would use).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def _run(cache: str, rec: dict, order: list[int] | None = None):
    import crt_fit_harness as h
    from mottling.crt import gates as gg
    from mottling.crt import measure as m

    seen: dict = {}
    of, ou, oq = m.fit_recovery, m.usable_channels, gg.fit_quality

    def fit(t, y, **k):
        seen["fit"] = of(t, y, **k)
        return seen["fit"]

    def quality(f, snr, *a, **k):
        seen["snr"] = snr
        return oq(f, snr, *a, **k)

    m.fit_recovery, gg.fit_quality = fit, quality
    if order is not None:
        m.usable_channels = lambda *a, **k: [c for c in order if c in ou(*a, **k)]
    try:
        res = h.run_cached(cache, rec["site"], rec["roi"])
    finally:
        m.fit_recovery, m.usable_channels, gg.fit_quality = of, ou, oq
    return res, seen


def main() -> None:
    import crt_fit_harness as h
    from mottling.scale import DEFAULT_THRESHOLDS
    from mottling.skin import monk_group

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, action="append", required=True)
    ap.add_argument("--all", action="store_true", help="every refused clean video, any skin")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    for root in args.set:
        records = h.load_set(root)
        for r in records:
            r.setdefault("broken", None)
        caches = h.ensure_cache(root, records, args.workers)
        for r, c in zip(records, caches):
            tone = r.get("skin_tone", r.get("tone"))
            if r["broken"]:
                continue
            res, seen = _run(c, r)
            if monk_group(tone) != "monk_8-10" and not (args.all and res.status != "ok"):
                continue
            kind = r["curve"]["kind"] if isinstance(r.get("curve"), dict) else r.get("curve", "-")
            line = (f"{root.name} {Path(r['path']).stem} {r['site'][:4]} m{tone:<2d} "
                    f"crf{r.get('crf', r.get('case', {}).get('crf', '?'))} {kind:9s} "
                    f"true {r['crt_s']:5.2f}")
            if r.get("roi_blanched_rgb"):
                a = np.array(r["roi_blanched_rgb"]) / np.array(r["roi_baseline_rgb"]) - 1
                line += f" trueA rgb {a[0]:+.3f} {a[1]:+.3f} {a[2]:+.3f}"
            line += " |"
            for name, order in (("G", [1, 2, 0]), ("R", [0, 1, 2]), ("B", [2, 1, 0])):
                rc, sc = _run(c, r, order)
                f = sc.get("fit")
                err = "" if rc.crt_s is None else f"{rc.crt_s / r['crt_s'] - 1:+.0%}"
                half = (f"+-{100 * 1.96 * f.crt_rel_uncertainty:.0f}%"
                        if f is not None and math.isfinite(f.crt_rel_uncertainty) else "")
                amp = f"{f.amplitude:+.3f}" if f is not None else "  -   "
                verdict = (rc.reason_category or "ok")[:8]
                line += f" {name}:{verdict:8s}{err:>6s} A{amp} {half:>7s} |"
            f = seen.get("fit")
            if f is not None:
                thr = DEFAULT_THRESHOLDS.for_site(r["site"])
                lo, hi = f.crt_ci95
                side = "BELOW" if hi < thr else ("ABOVE" if lo > thr else "spans")
                line += (f" fit {f.crt_s:6.2f} ({f.crt_s / r['crt_s'] - 1:+.0%})"
                         f" [{lo:.2f},{hi:.2f}]"
                         f" snr {seen.get('snr', 0):.1f} {side} (truth "
                         f"{'above' if r['crt_s'] > thr else 'below'})")
            print(line, flush=True)


if __name__ == "__main__":
    main()
