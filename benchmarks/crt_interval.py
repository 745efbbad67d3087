"""Does the reported 95% interval of ``crt_s`` hold the truth 95% of the time, on videos it was
not chosen on?

    nice python benchmarks/crt_interval.py --dev OWN_DEV_SET --test OWN_FRESH_SET \\
        --test INDEPENDENT_SET --auto --workers 2

Sets are folders made by ``benchmarks/crt_accuracy.py`` (own generator, ``truth.json``) or by
``benchmarks/crt_independent.py``. Every clean video is measured once with the true ROI (through
``crt_fit_harness``'s cache) and, with ``--auto``, once with the automatic ROI (full decode); the
fit's own standard error of ``crt_s`` is kept beside the result (``<set>/interval_*.json``, remade
when ``mottling/crt`` changes). Then:

- the widening ``refill.reported_interval`` applies (``INTERVAL_SCALE`` times the fit's relative
  standard error, ``INTERVAL_FLOOR`` added in quadrature, on the log scale) is chosen on the
  ``--dev`` sets alone: the smallest median width whose intervals hold the truth in at least 95%
  of the accepted videos, both ROIs pooled;
- each set is reported with the fit's own interval, the shipped constants and the chosen ones:
  how often the interval holds the truth, and its median half-width (%), by ROI, skin-tone group
  and site; ``tau_s`` too where the set has its truth.

Acceptance and ``crt_s`` do not depend on the widening (the gates judge the fit's own error), so
one measurement serves every pair of constants.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

Z95 = 1.959964
SCALES = np.round(np.arange(1.0, 4.01, 0.1), 2)
FLOORS = np.round(np.arange(0.0, 0.501, 0.01), 3)


def _code_key() -> str:
    """Digest of the CRT code, the widening constants left out (they do not change the fit)."""
    import mottling.crt as pkg

    h = hashlib.sha256()
    for f in sorted(Path(pkg.__file__).parent.glob("*.py")):
        lines = [ln for ln in f.read_text().splitlines()
                 if not ln.startswith(("INTERVAL_SCALE", "INTERVAL_FLOOR"))]
        h.update("\n".join(lines).encode())
    return h.hexdigest()[:16]


def _row(res, fit) -> dict:
    row = {"status": res.status, "category": res.reason_category, "crt_s": res.crt_s,
           "tau_s": res.tau_s, "crt_sd": None, "tau_sd": None}
    if res.status == "ok" and fit is not None:
        row["crt_sd"], row["tau_sd"] = fit.crt_sd_s, fit.tau_sd_s
    return row


class _KeepFit:
    """Context: remember the last fit ``measure`` made (the one its result reports)."""

    def __enter__(self):
        from mottling.crt import measure as m

        self.m, self.orig, self.fit = m, m.fit_recovery, None

        def fit(*a, **k):
            self.fit = self.orig(*a, **k)
            return self.fit

        m.fit_recovery = fit
        return self

    def __exit__(self, *exc):
        self.m.fit_recovery = self.orig


def _auto_one(job) -> dict:
    path, site = job
    from mottling.crt import measure_crt

    with _KeepFit() as keep:
        try:
            res = measure_crt(path, site)
        except Exception as err:  # noqa: BLE001 - a benchmark records failures
            return {"status": "error", "category": type(err).__name__, "crt_s": None}
        return _row(res, keep.fit)


def _true_one(job) -> dict:
    cache, site, roi = job
    from crt_fit_harness import run_cached

    with _KeepFit() as keep:
        res = run_cached(cache, site, roi)
        return _row(res, keep.fit)


def measure_set(root: Path, auto: bool, workers: int) -> dict[str, list[tuple[dict, dict]]]:
    """{"true"|"auto": [(truth record, row)]} for the set's clean videos, cached beside it."""
    from crt_fit_harness import ensure_cache

    records = [r for r in json.loads((root / "truth.json").read_text()) if not r.get("broken")]
    key = _code_key()
    out = {}
    for mode in ("true", "auto") if auto else ("true",):
        cache = root / f"interval_{mode}.json"
        if cache.exists():
            stored = json.loads(cache.read_text())
            if stored.get("key") == key and len(stored["rows"]) == len(records):
                out[mode] = list(zip(records, stored["rows"]))
                continue
        if mode == "true":
            caches = ensure_cache(root, records, workers)
            jobs = [(c, r["site"], r["roi"]) for c, r in zip(caches, records)]
            fn = _true_one
        else:
            jobs = [(str(root / r["path"]), r["site"]) for r in records]
            fn = _auto_one
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(fn, jobs, chunksize=1))
        cache.write_text(json.dumps({"key": key, "rows": rows}) + "\n")
        out[mode] = list(zip(records, rows))
    return out


def accepted(pairs, what: str = "crt") -> list[dict]:
    """Per accepted video: truth, value, the fit's own sd and the strata."""
    from mottling.skin import monk_group

    rows = []
    for t, r in pairs:
        if r["status"] != "ok" or r.get(f"{what}_sd") is None or t.get(f"{what}_s") is None:
            continue
        tone = t.get("skin_tone", t.get("tone"))
        rows.append({"truth": t[f"{what}_s"], "value": r[f"{what}_s"], "sd": r[f"{what}_sd"],
                     "monk": monk_group(tone), "site": t["site"]})
    return rows


def fit_only_interval(value: float, sd: float) -> tuple[float, float]:
    """The fit's own interval (what ``crt_ci95`` was before the widening)."""
    return max(0.0, value - Z95 * sd), value + Z95 * sd


def score(rows: list[dict], interval) -> tuple[float, float]:
    """(share of intervals holding the truth, median half-width as % of the value)."""
    if not rows:
        return float("nan"), float("nan")
    hold, half = [], []
    for r in rows:
        lo, hi = interval(r["value"], r["sd"])
        hold.append(lo <= r["truth"] <= hi)
        half.append(50 * (hi - lo) / r["value"])
    return float(np.mean(hold)), float(np.median(half))


def choose(rows: list[dict], target: float = 0.95) -> tuple[float, float, float, float]:
    """The (scale, floor) of smallest median width whose coverage on ``rows`` reaches ``target``.

    Vectorised over the grid: coverage is |log(truth / value)| <= half-width."""
    value = np.array([r["value"] for r in rows])
    rel = np.array([r["sd"] for r in rows]) / value
    err = np.abs(np.log(np.array([r["truth"] for r in rows]) / value))
    best = None
    for s in SCALES:
        for f in FLOORS:
            half = Z95 * np.hypot(s * rel, f)
            cover = float(np.mean(err <= half))
            width = 50 * float(np.median(np.exp(half) - np.exp(-half)))   # (hi - lo) / 2 / value
            if cover >= target and (best is None or width < best[3]):
                best = (float(s), float(f), cover, width)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", type=Path, action="append", default=[],
                    help="own-generator set the widening is chosen on (repeatable)")
    ap.add_argument("--test", type=Path, action="append", default=[],
                    help="set it is only checked on (repeatable)")
    ap.add_argument("--auto", action="store_true", help="also the automatic ROI (decodes)")
    ap.add_argument("--also", action="append", default=[], metavar="SCALE,FLOOR",
                    help="report these constants too (repeatable)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from mottling.crt import refill

    sets = {p: measure_set(p, args.auto, args.workers) for p in args.dev + args.test}
    dev = [row for p in args.dev for pairs in sets[p].values() for row in accepted(pairs)]
    shipped = (refill.INTERVAL_SCALE, refill.INTERVAL_FLOOR)
    chosen = choose(dev) if dev else None
    print(f"CRT code {_code_key()}; shipped: scale {shipped[0]}, floor {shipped[1]}")
    if chosen:
        print(f"chosen on the dev sets ({len(dev)} accepted reads, both ROIs): scale {chosen[0]}, "
              f"floor {chosen[1]} (dev coverage {100 * chosen[2]:.1f}%, median half-width "
              f"{chosen[3]:.0f}%)")
    ivs = {"fit's own": fit_only_interval,
           "shipped": lambda v, sd: refill.reported_interval(v, sd, *shipped)}
    if chosen and (chosen[0], chosen[1]) != shipped:
        ivs["chosen"] = lambda v, sd: refill.reported_interval(v, sd, chosen[0], chosen[1])
    for pair in args.also:
        s, f = (float(x) for x in pair.split(","))
        ivs[f"{s:g}, {f:g}"] = lambda v, sd, s=s, f=f: refill.reported_interval(v, sd, s, f)
    head = "".join(f" | {k}: holds / half-width" for k in ivs)
    print(f"\n| set | ROI | value | accepted{head} |")
    print("|---|---|---|---" + "|---" * len(ivs) + "|")
    for p in args.dev + args.test:
        role = "dev" if p in args.dev else "test"
        for mode, pairs in sets[p].items():
            for what in ("crt", "tau"):
                rows = accepted(pairs, what)
                if not rows:
                    continue
                cells = "".join(f" | {100 * c:.0f}% / ±{w:.0f}%"
                                for c, w in (score(rows, iv) for iv in ivs.values()))
                print(f"| {p.name} ({role}) | {mode} | {what}_s | {len(rows)}{cells} |")
    print("\nBy group (crt_s; test sets pooled, both ROIs):")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for p in args.test:
        for pairs in sets[p].values():
            for r in accepted(pairs):
                groups["Monk", r["monk"]].append(r)
                groups["site", r["site"]].append(r)
    for (kind, name), rows in sorted(groups.items()):
        cells = "".join(f"  {k} {100 * c:.0f}% / ±{w:.0f}%"
                        for k, (c, w) in ((k, score(rows, iv)) for k, iv in ivs.items()))
        print(f"  {kind} {name:6s} n={len(rows):3d}{cells}")


if __name__ == "__main__":
    main()
