"""Iterate on the CRT fit and gates without decoding: cache each video's track, colour series and
press timing once, then re-run everything after them (gates, signal choice, fit) in seconds.

    nice -n 5 python benchmarks/crt_fit_harness.py --set /tmp/s17-fit/dev            # cache + score
    nice -n 5 python benchmarks/crt_fit_harness.py --set /tmp/s17-fit/dev --table    # per video

``--set`` is a folder made by ``benchmarks/crt_accuracy.py`` (``truth.json``) or by
``benchmarks/crt_independent.py``. True ROI by default; ``--auto`` caches and replays the automatic
ROI's run instead (its ROI and the whole frame's exit are cached with the rest, in
``<set>/fitcache-auto``; a rejection's name may then differ from a real run's, as the checks that
name a rejection from the frames themselves see no pixels). The cache (``<set>/fitcache/*.pkl``)
holds what the decode, camera track, colour series and timing produced; the decode, track and
series are read back, press and release timing is re-run on the cached series (``timing.py`` is
cheap and may be the thing changed; ``--cached-timing`` reads the cached timing instead), so the
scores equal ``crt_accuracy.py``'s manual-ROI pass (checked).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def _cache_one(job):
    path, site, roi, cache = job
    if not _stale(cache):
        return cache
    from mottling.crt import measure as m

    store = {}
    orig_decode, orig_track, orig_series, orig_press = (m.decode_video, m.track_camera,
                                                        m.spot_series, m.detect_press)
    orig_auto, orig_exit = m.auto_roi, m.whole_frame_exit

    def decode(src, limits):
        v = orig_decode(src, limits)
        store["video"] = dict(t_s=v.t_s, width=v.width, height=v.height, rotation=v.rotation,
                              scale=v.scale, codec=v.codec, matrix=v.matrix, shape=v.yuv.shape,
                              key=v.key)
        return v

    def track(*a, **k):
        store["track"] = orig_track(*a, **k)
        return store["track"]

    def series(*a, **k):
        store["series"] = orig_series(*a, **k)
        return store["series"]

    def press(*a, **k):
        store["press"] = orig_press(*a, **k)
        return store["press"]

    def auto(*a, debug=None, **k):
        found: dict = {}
        store["auto_roi"] = orig_auto(*a, debug=found, **k)
        store["auto_found"] = {key: found.get(key) for key in ("covered", "drop_s")}
        if debug is not None:
            debug.update(found)
        return store["auto_roi"]

    def whole_exit(*a, **k):
        store["whole_frame_exit"] = orig_exit(*a, **k)
        return store["whole_frame_exit"]

    m.decode_video, m.track_camera, m.spot_series, m.detect_press = decode, track, series, press
    m.auto_roi, m.whole_frame_exit = auto, whole_exit
    try:
        m.measure_crt(path, site, roi=roi)
    finally:
        m.decode_video, m.track_camera, m.spot_series, m.detect_press = (
            orig_decode, orig_track, orig_series, orig_press)
        m.auto_roi, m.whole_frame_exit = orig_auto, orig_exit
    Path(cache).write_bytes(pickle.dumps(store))
    return cache


RETIME = True   # press/release timing re-run from the cached series (cheap; timing.py may change)


def _stale(cache: str) -> bool:
    """Missing, or made before the decoder recorded its key frames (the timing reads them), or,
    for a given ROI, before the whole frame's exit was cached (the release search is bounded by
    it since session 28; read from the zeros a cache replays, it bounded nothing), or before the
    series held the skin level with the spot (session 29)."""
    p = Path(cache)
    if not p.exists():
        return True
    store = pickle.loads(p.read_bytes())
    series = store.get("series")
    return store["video"].get("key") is None or (   # (a run refused before its track has none)
        "track" in store and "auto_roi" not in store and "whole_frame_exit" not in store) or (
        series is not None and "band_rgb" not in vars(series))   # before the level skin


class Cached:
    """Context: ``measure_crt`` reads a cached video's track, series and timing."""

    def __init__(self, cache_file: str) -> None:
        self.store = pickle.loads(Path(cache_file).read_bytes())

    def __enter__(self):
        from mottling.crt import measure as m
        from mottling.crt.video import DecodedVideo

        self.m = m
        self.saved = (m.decode_video, m.track_camera, m.spot_series, m.detect_press, m.auto_roi,
                      m.whole_frame_exit)
        s = self.store
        v = s["video"]

        def decode(src, limits):
            yuv = np.broadcast_to(np.zeros((1, 1, 1, 1), np.uint8), v["shape"])
            return DecodedVideo(yuv=yuv, t_s=v["t_s"], width=v["width"], height=v["height"],
                                rotation=v["rotation"], scale=v["scale"], codec=v["codec"],
                                matrix=v["matrix"], key=v.get("key"))

        m.decode_video = decode
        m.track_camera = lambda *a, **k: s["track"]
        def series(*a, **k):    # (a video refused before its series was read has none)
            return s["series"] if not NO_BAND else replace(s["series"], band_rgb=None)

        m.spot_series = series

        def auto(*a, debug=None, **k):
            if debug is not None:
                debug.update(s.get("auto_found") or {})
            return s.get("auto_roi")

        m.auto_roi = auto
        if "whole_frame_exit" in s:
            m.whole_frame_exit = lambda *a, **k: s["whole_frame_exit"]
        if not RETIME:
            m.detect_press = lambda *a, **k: s["press"]
        return self

    def __exit__(self, *exc):
        (self.m.decode_video, self.m.track_camera, self.m.spot_series,
         self.m.detect_press, self.m.auto_roi, self.m.whole_frame_exit) = self.saved


def run_cached(cache_file: str, site: str, roi, **kw):
    from mottling.crt import measure_crt

    with Cached(cache_file):
        return measure_crt("cached.mp4", site, roi=roi, **kw)


def load_set(root: Path) -> list[dict]:
    return json.loads((root / "truth.json").read_text())


NO_BAND = False   # --no-band: the fitted ratio against the whole ring (before session 29)
AUTO = False   # --auto: the automatic ROI's runs (cached in fitcache-auto)


def _cache_dir(root: Path) -> Path:
    return root / ("fitcache-auto" if AUTO else "fitcache")


def _roi(record: dict):
    return None if AUTO else record["roi"]


def ensure_cache(root: Path, records: list[dict], workers: int) -> list[str]:
    _cache_dir(root).mkdir(exist_ok=True)
    jobs = [(str(root / r["path"]), r["site"], _roi(r),
             str(_cache_dir(root) / (Path(r["path"]).stem + ".pkl"))) for r in records]
    todo = [j for j in jobs if _stale(j[3])]
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_cache_one, todo, chunksize=1))
    return [j[3] for j in jobs]


def evaluate(root: Path, records: list[dict], caches: list[str], **kw) -> list[dict]:
    from mottling.crt import measure as m

    out = []
    orig_fit = m.fit_recovery
    for r, c in zip(records, caches):
        seen: dict = {}

        def fit(t, y, **k):   # the fit's own amplitude and points, for the bias and oracle tables
            f = orig_fit(t, y, **k)
            seen["fit"], seen["t0"] = f, float(t[0]) if len(t) else None
            seen["t"], seen["y"] = np.array(t, dtype=float), np.array(y, dtype=float)
            return f

        m.fit_recovery = fit
        try:
            res = run_cached(c, r["site"], _roi(r), **kw)
            f = seen.get("fit")
            out.append({"status": res.status, "reason": res.reason, "category": res.reason_category,
                        "crt_s": res.crt_s, "tau_s": res.tau_s, "release_s": res.release_s,
                        "ci": res.crt_ci95, "roi": res.roi, "motion_px": res.motion_px,
                        "channel": res.channel, "wall_s": 0.0,
                        "fit_amplitude": f.amplitude if f is not None else None,
                        "fit_model": f.model if f is not None else None,
                        "fit_start_s": seen.get("t0"), "fit_t": seen.get("t"),
                        "fit_y": seen.get("y")})
        except Exception as err:  # noqa: BLE001 - a benchmark records failures
            out.append({"status": "error", "reason": f"{type(err).__name__}: {err}",
                        "crt_s": None, "wall_s": 0.0})
        finally:
            m.fit_recovery = orig_fit
    return out


def _bucket(value, edges: list[float], fmt: str = "{:g}") -> str:
    if value is None:
        return "-"
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= value < hi:
            return f"{fmt.format(lo)}-{fmt.format(hi)}"
    return f">={fmt.format(edges[-1])}" if value >= edges[-1] else f"<{fmt.format(edges[0])}"


def bias_rows(records, results) -> list[dict]:
    """One row per clean video: the strata the error is decomposed against, and the error."""
    from mottling.skin import monk_group

    rows = []
    for t, r in zip(records, results):
        if t.get("broken") or t.get("crt_s") is None:
            continue
        spec = t.get("spec") or {}
        kind = t["curve"]["kind"] if isinstance(t.get("curve"), dict) else t.get("curve", "-")
        tone = t.get("skin_tone", t.get("tone"))
        amp = None
        if t.get("roi_blanched_rgb") and t.get("roi_baseline_rgb"):
            amp = t["roi_blanched_rgb"][1] / max(t["roi_baseline_rgb"][1], 1e-6) - 1
        row = {"site": t["site"], "fps": t.get("fps_nominal", t.get("fps")),
               "crf": _bucket(t.get("crf"), [18, 22, 25, 29]),
               "monk": monk_group(tone) if tone is not None else "-",
               "lift_s": _bucket(spec.get("lift_s"), [0.1, 0.2, 0.3, 0.41], "{:.1f}"),
               "curve": kind, "blanch (green)": _bucket(amp, [0, 0.1, 0.13, 0.16, 1], "{:.2f}"),
               "ok": r["status"] == "ok", "err": None, "amp_ratio": None}
        if r.get("release_s") is not None and t.get("release_s") is not None:
            d = r["release_s"] - t["release_s"]
            row["release err"] = _bucket(d, [-0.3, -0.05, 0.0, 0.05, 0.1, 0.3], "{:+.2f}")
            if r.get("fit_start_s") is not None:
                row["fit start after true release"] = _bucket(
                    r["fit_start_s"] + d, [0, 0.2, 0.3, 0.45, 0.6, 0.8], "{:.2f}")
        if r["status"] == "ok":
            row["err"] = r["crt_s"] / t["crt_s"] - 1
        if r.get("fit_amplitude") is not None and amp:
            row["amp_ratio"] = r["fit_amplitude"] / amp
        rows.append(row)
    return rows


BIAS_KEYS = ("site", "fps", "crf", "monk", "lift_s", "curve", "blanch (green)", "release err",
             "fit start after true release")


def bias_table(records, results) -> None:
    """Signed error of the accepted CRTs (and the share refused) by each stratum."""
    rows = bias_rows(records, results)
    print(f"{'stratum':>30s} {'value':>11s} {'n':>3s} {'acc':>3s} {'median err':>10s} "
          f"{'mean err':>8s} {'|err|<10%':>9s} {'refused':>7s} {'fitA/trueA':>10s}")
    for key in BIAS_KEYS:
        values = sorted({str(r.get(key, "-")) for r in rows})
        for v in values:
            grp = [r for r in rows if str(r.get(key, "-")) == v]
            errs = np.array([r["err"] for r in grp if r["err"] is not None])
            amps = [r["amp_ratio"] for r in grp if r["amp_ratio"] is not None and r["ok"]]
            med = f"{100 * np.median(errs):+9.1f}%" if len(errs) else f"{'-':>10s}"
            mean = f"{100 * np.mean(errs):+7.1f}%" if len(errs) else f"{'-':>8s}"
            within = f"{100 * np.mean(np.abs(errs) <= 0.10):8.0f}%" if len(errs) else f"{'-':>9s}"
            refused = 100 * (1 - np.mean([r["ok"] for r in grp]))
            amp = f"{np.median(amps):10.2f}" if amps else f"{'-':>10s}"
            print(f"{key:>30s} {v:>11s} {len(grp):3d} {len(errs):3d} {med} {mean} {within} "
                  f"{refused:6.0f}% {amp}")


ORACLE_EDGES = (0.0, 0.15, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5)


def oracle_rows(records, results) -> list[dict]:
    """Per accepted clean own-generator video: the error of the fit on the decoded signal and of
    the same fit (same frames, same estimated release, same models) on the generator's noiseless
    truth ``A s(t)``, ``A`` the fit's own amplitude; and the decoded signal's residual against
    ``A' s(t)`` (``A'`` fitted to it by least squares), averaged in bins of time since the true
    release in true CRTs. Where the noiseless refit is right and the decoded one is not, the
    error is in the pixels, not in the timing, the window or the model choice."""
    from mottling.crt.refill import fit_recovery
    from mottling.skin import monk_group
    from mottling.synth.refill_frames import blanch_signal
    from mottling.synth.refill_spec import spec_from_dict

    rows = []
    for t, r in zip(records, results):
        if t.get("broken") or not t.get("spec") or r["status"] != "ok" or r.get("fit_t") is None:
            continue
        ft, fy = r["fit_t"], r["fit_y"]
        truth = blanch_signal(spec_from_dict(t["spec"]), ft + r["release_s"])
        clean = fit_recovery(ft, r["fit_amplitude"] * truth)
        den = float((truth * truth).sum())
        a = float((fy * truth).sum()) / den if den > 0 else float("nan")
        u = (ft + r["release_s"] - t["release_s"]) / t["crt_s"]
        resid = fy / a - truth
        prof = [float(resid[(u >= lo) & (u < hi)].mean()) if ((u >= lo) & (u < hi)).sum() >= 2
                else float("nan") for lo, hi in zip(ORACLE_EDGES[:-1], ORACLE_EDGES[1:])]
        rows.append({"site": t["site"], "curve": t["curve"]["kind"],
                     "monk": monk_group(t["skin_tone"]),
                     "crf": _bucket(t.get("crf"), [18, 22, 25, 29]),
                     "err": r["crt_s"] / t["crt_s"] - 1,
                     "clean_err": clean.crt_s / t["crt_s"] - 1 if clean is not None else None,
                     "profile": prof})
    return rows


def oracle_table(records, results) -> None:
    rows = oracle_rows(records, results)
    if not rows:
        print("oracle: needs an own-generator set (truth.json with 'spec') and accepted fits")
        return

    def stat(errs) -> str:
        e = np.array([x for x in errs if x is not None])
        if not len(e):
            return f"{'-':>30s}"
        return (f"{100 * np.mean(np.abs(e) <= 0.10):4.0f}% {100 * np.median(e):+6.1f}% "
                f"{100 * np.median(np.abs(e)):5.1f}%")

    print(f"{'stratum':>14s} {'value':>9s} {'n':>3s}   decoded: within, median signed, median |err|"
          f"   noiseless truth, same fit: (same)")
    for key in ("all", "site", "curve", "monk", "crf"):
        values = ["all"] if key == "all" else sorted({r[key] for r in rows})
        for v in values:
            g = rows if key == "all" else [r for r in rows if r[key] == v]
            print(f"{key:>14s} {v:>9s} {len(g):3d}   {stat([r['err'] for r in g])}"
                  f"   {stat([r['clean_err'] for r in g])}")
    bins = " ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(ORACLE_EDGES[:-1], ORACLE_EDGES[1:]))
    print("decoded signal minus the truth (units of its amplitude), by time since the true release "
          f"in true CRTs {bins}")
    for site in sorted({r["site"] for r in rows}):
        prof = np.array([r["profile"] for r in rows if r["site"] == site])
        print(f"{site:>14s} median " + " ".join(f"{x:+.3f}" for x in np.nanmedian(prof, axis=0)))


def _independent_truth(case: dict):
    """The independent renderer's noiseless colour truth of the spot centre, 1 at the release and
    0 at rest (as its ``crt_s`` is read), as a function of the time since the true release."""
    import math

    from crt_independent import Renderer, _curve

    rdr = Renderer(case)
    iy, ix = int(rdr.cy), int(rdr.cx)
    k = float(rdr.hb0[iy, ix] * rdr.blanch[iy, ix]) * 0.95   # green's haemoglobin absorbance

    def frac(t):
        t = np.asarray(t, dtype=float)
        rem = np.where(t < 0, 1.0, _curve(case["curve"], case["params"], np.maximum(t, 0.0)))
        return (np.exp(k * rem) - 1) / (math.exp(k) - 1)
    return frac


def _key_frame_jump(path: Path, t_s: np.ndarray, y: np.ndarray, lo_s: float, hi_s: float) -> float:
    """Largest step of ``y`` across a key frame between ``lo_s`` and ``hi_s`` (3 frames either
    side), or 0: the encoder codes a key frame afresh, so a step there is the drift of the
    P-frames before it."""
    import av

    with av.open(str(path)) as c:
        st = c.streams.video[0]
        keys = [float(p.pts * st.time_base) for p in c.demux(st)
                if p.is_keyframe and p.pts is not None]
    out = 0.0
    for k in keys:
        i = int(np.searchsorted(t_s, k))
        if lo_s <= k <= hi_s and 3 <= i < len(t_s) - 3:
            step = float(np.mean(y[i:i + 3]) - np.mean(y[i - 3:i]))
            out = step if abs(step) > abs(out) else out
    return out


def independent_oracle(root: Path, records, results) -> None:
    """Where the independent renderer's CRT error comes from, per video (true ROI).

    Columns: the release error; the fit's first frame after the true release; the decoded fit's
    error; the same fit (same frames, same estimated release) on the renderer's noiseless truth,
    scaled by the fit's amplitude ("same frames"); the same fit on the noiseless truth from the
    true release at the video's frame rate ("from release": the model shape alone); and the
    largest key-frame step of the fitted signal after the release, in units of the amplitude
    (the encoder's drift within a group of pictures)."""
    from mottling.crt.refill import fit_recovery

    print(f"{'video':>10s} {'site':6s} {'curve':9s} {'tone':>4s} {'crf':>3s} {'true':>5s} "
          f"{'rel err':>7s} {'start':>5s} {'decoded':>8s} {'same frames':>11s} "
          f"{'from release':>12s} {'key step':>8s} status")
    cols: dict[str, list] = {"decoded": [], "same": [], "release": []}
    for t, r in zip(records, results):
        case = t.get("case")
        if case is None or r.get("fit_t") is None or r.get("release_s") is None:
            continue
        frac = _independent_truth(case)
        d = r["release_s"] - t["release_s"]
        ft, fy, amp = r["fit_t"], r["fit_y"], r["fit_amplitude"]
        same = fit_recovery(ft, amp * frac(ft + d))
        tt = np.arange(0.0, ft[-1] + d, 1.0 / case["fps"])
        full = fit_recovery(tt, frac(tt))
        cache = pickle.loads((_cache_dir(root) / (Path(t["path"]).stem + ".pkl")).read_bytes())
        ts, se = cache["video"]["t_s"], cache["series"]
        ratio = se.roi_rgb[:, 1] / np.maximum(se.ring_rgb[:, 1], 1e-3)
        n_base = max(3, int(np.searchsorted(ts, case["pre_s"] - 0.5)))
        y = ratio / np.median(ratio[:n_base]) - 1
        jump = _key_frame_jump(root / t["path"], ts, y, t["release_s"], ts[-1]) / abs(amp or 1e-9)
        e = {"decoded": r["crt_s"] / t["crt_s"] - 1 if r["crt_s"] else None,
             "same": same.crt_s / t["crt_s"] - 1 if same else None,
             "release": full.crt_s / t["crt_s"] - 1 if full else None}
        if r["status"] == "ok":
            for k, v in e.items():
                if v is not None:
                    cols[k].append(v)

        def pct(v):
            return f"{100 * v:+.1f}%" if v is not None else "-"
        print(f"{Path(t['path']).stem:>10s} {t['site']:6s} {case['curve']:9s} {case['tone']:4d} "
              f"{case['crf']:3d} {t['crt_s']:5.2f} {d:+7.2f} {ft[0] + d:5.2f} "
              f"{pct(e['decoded']):>8s} {pct(e['same']):>11s} {pct(e['release']):>12s} "
              f"{jump:+8.2f} {r['status']} {(r['reason'] or '')[:40]}")
    for k, name in (("decoded", "decoded"), ("same", "noiseless, same frames"),
                    ("release", "noiseless, from the true release")):
        v = np.array(cols[k])
        if len(v):
            print(f"accepted, {name:33s}: median signed {100 * np.median(v):+.1f}%, median |err| "
                  f"{100 * np.median(np.abs(v)):.1f}%, within 10% {100 * np.mean(np.abs(v) <= 0.1):.0f}%"
                  f" (n={len(v)})")


def table(records, results) -> None:
    from mottling.skin import monk_group

    for t, r in zip(records, results):
        if t.get("broken"):
            continue
        kind = t["curve"]["kind"] if isinstance(t.get("curve"), dict) else t.get("curve", "-")
        tone = t.get("skin_tone", t.get("tone"))
        err = "" if r["crt_s"] is None else f"{r['crt_s'] / t['crt_s'] - 1:+6.1%}"
        crt = "" if r["crt_s"] is None else f"{r['crt_s']:.2f}"
        print(f"{Path(t['path']).stem:>12s} {t['site']:6s} monk {tone:2d} ({monk_group(tone):4s}) "
              f"{kind:10s} true {t['crt_s']:5.2f} got {crt:>5s} {err:>7s} "
              f"{r['status']:8s} {r.get('reason') or ''}")


def main() -> None:
    from crt_accuracy import report, summarise

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, action="append", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--full", action="store_true", help="crt_accuracy's full report per set")
    ap.add_argument("--cached-timing", action="store_true",
                    help="read press/release timing from the cache instead of re-running it")
    ap.add_argument("--oracle", action="store_true",
                    help="own-generator sets: the same fit on the noiseless truth, and the decoded "
                         "signal's residual against it by time since the true release")
    ap.add_argument("--indep-oracle", action="store_true",
                    help="independent-renderer sets: per video, the release error, the fit's start, "
                         "the decoded error against the same fit on the renderer's noiseless truth "
                         "(same frames; from the true release) and the key-frame steps")
    ap.add_argument("--model-crossing", action="store_true",
                    help="read the 90%% point off the global model (main before s21-indep)")
    ap.add_argument("--bias", action="store_true",
                    help="signed error of the accepted CRTs by site, fps, CRF, Monk group, lift, "
                         "curve, blanching, release error and fit start")
    ap.add_argument("--auto", action="store_true",
                    help="the automatic ROI's runs instead of the true ROI's")
    ap.add_argument("--no-band", action="store_true",
                    help="fit the spot against the whole ring, as before session 29, instead of "
                         "the skin level with the spot (signal.row_matched)")
    args = ap.parse_args()
    global RETIME, AUTO, NO_BAND
    RETIME = not args.cached_timing
    AUTO = args.auto
    NO_BAND = args.no_band
    if args.model_crossing:
        from mottling.crt import refill
        refill.LOCAL_CROSSING = False
    for root in args.set:
        records = load_set(root)
        for r in records:  # the independent renderer's truth has no "broken"/strata fields
            r.setdefault("broken", None)
        caches = ensure_cache(root, records, args.workers)
        results = evaluate(root, records, caches)
        if args.table:
            table(records, results)
        if args.bias:
            bias_table(records, results)
        if args.oracle:
            oracle_table(records, results)
        if args.indep_oracle:
            independent_oracle(root, records, results)
        if args.full and "skin_tone" in records[0]:
            report(str(root), records, results)
        print(f"{str(root):32s} {summarise(list(zip(records, results)))}")
        reasons: dict[str, int] = {}
        for t, r in zip(records, results):
            if t["broken"] is None and r["status"] != "ok":
                k = (r["reason"] or "").split(":")[0]
                reasons[k] = reasons.get(k, 0) + 1
        broken = [(t, r) for t, r in zip(records, results) if t["broken"]]
        if broken:
            right = sum(r.get("category") == t.get("expected_reason") for t, r in broken)
            print(f"{'':32s} broken right category {right}/{len(broken)}; clean rejections {reasons}")
        else:
            print(f"{'':32s} clean rejections {reasons}")


if __name__ == "__main__":
    main()
