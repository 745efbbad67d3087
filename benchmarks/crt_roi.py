"""Automatic ROI alone: ``auto_roi`` on every clean video of a cached set against the true spot.

    python benchmarks/crt_roi.py /tmp/mottling-bench/crt_videos --png /tmp/roi_misses

Decodes each video, follows the camera (cached under ``$CRT_ROI_CACHE``, default
``/tmp/crt_roi_track_cache``, per set and per version of ``motion.py``), runs ``auto_roi``
as ``measure_crt`` calls it (with the track's lost frames) and prints the share whose centre lies
within half the spot radius of the truth (the same count as ``crt_accuracy.py``), with every
miss; ``--png`` saves, per miss, the first frame, a frame after the exit and the map the spot was
chosen on, with the true spot (cyan) and the ROI (green). Works on both generators' sets.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mottling.crt.gates import DEFAULT_GATES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crt_accuracy import _spot  # noqa: E402

def _where(v, nb, roi, d):
    """Where a ROI landed: on the spot, its rim (within 1.5 radii), other skin, or off the skin
    (the pre-press colour at the ROI is not reddish: a sheet, the background)."""
    if d <= 0.5:
        return 'spot'
    if d <= 1.5:
        return 'rim'
    from mottling.crt import roi as R
    x, y, w, h = roi
    rgb = v.matrix.to_rgb(np.median(v.yuv[:nb, y:y + h, x:x + w], axis=0).astype(np.float32))
    red = float(np.log(max(rgb[..., 0].mean(), 1) / max(rgb[..., 1].mean(), 1)))
    return 'other skin' if red >= R.MIN_REDNESS else 'off skin'


def one(job):
    root, rec, png_dir = job
    from mottling.crt.video import decode_video, VideoLimits
    from mottling.crt.motion import track_camera
    from mottling.crt import roi as R
    v = decode_video(str(Path(root) / rec['path']), VideoLimits())
    nb = R.baseline_count(v.t_s)
    # Cached per set and version of the camera track (a stale track would measure another ROI),
    # outside the set's folder (sets may be read-only).
    import hashlib
    import mottling.crt.motion as M
    key = hashlib.md5(Path(M.__file__).read_bytes()).hexdigest()[:10]
    where = hashlib.md5(str(Path(root).resolve()).encode()).hexdigest()[:8]
    cache = Path(os.environ.get('CRT_ROI_CACHE', '/tmp/crt_roi_track_cache')) / where / key
    cache.mkdir(parents=True, exist_ok=True)
    cf = cache / (Path(rec['path']).stem + '.npz')
    if cf.exists():
        z = np.load(cf); shifts, mism = z['shifts'], z['mismatch']
    else:
        tr = track_camera(v.yuv[..., 0], v.t_s, nb); shifts, mism = tr.shifts, tr.mismatch
        np.savez(cf, shifts=shifts, mismatch=mism)
    dbg = {}
    t0 = time.perf_counter()
    roi = R.auto_roi(v.yuv, v.matrix, v.t_s, shifts, nb, debug=dbg,
                     lost=~(mism <= DEFAULT_GATES.max_mismatch))
    dt = time.perf_counter() - t0
    sx, sy, sr = _spot(rec)
    s = v.scale
    out = {'path': rec['path'], 'site': rec['site'], 'tone': rec.get('skin_tone', rec.get('tone')),
           'fps': rec.get('fps_nominal', rec.get('fps')), 'roi_s': dt, 'drop_s': dbg.get('drop_s'),
           'release_s': rec.get('release_s'), 'radius_a': sr * s}
    if roi is None:
        out.update(hit=False, dist=None)
    else:
        x, y, w, h = roi
        cx, cy = (x + w / 2) / s, (y + h / 2) / s
        d = float(np.hypot(cx - sx, cy - sy)) / sr
        out.update(hit=bool(d <= 0.5), dist=d, roi=list(roi), where=_where(v, nb, roi, d))
    if png_dir and not out['hit']:
        import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 3, figsize=(12, 4))
        ax[0].imshow(v.frames[0]); ax[0].set_title('first frame')
        rel = out.get('release_s') or 0
        k = int(np.searchsorted(v.t_s, (dbg.get('drop_s') or rel) + 0.5))
        ax[1].imshow(v.frames[min(k, len(v.t_s)-1)]); ax[1].set_title(f"drop+0.5 ({dbg.get('drop_s')}, true rel {rel:.2f})")
        if 'score' in dbg:
            im = ax[2].imshow(dbg['score'], cmap='magma'); plt.colorbar(im, ax=ax[2])
        for a in ax:
            a.add_patch(plt.Circle((sx * s - 0.5, sy * s - 0.5), sr * s, fill=False, color='cyan'))
            if roi is not None:
                a.add_patch(plt.Rectangle((x - 0.5, y - 0.5), w, h, fill=False, color='lime'))
        fig.suptitle(f"{rec['path']} {rec['site']} tone {out['tone']} fps {out['fps']} dist {out['dist']}")
        fig.savefig(Path(png_dir) / (Path(rec['path']).stem + '.png'), dpi=70); plt.close(fig)
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('root'); ap.add_argument('--png'); ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--out'); ap.add_argument('--n', type=int, default=1000)
    a = ap.parse_args()
    recs = [r for r in json.load(open(Path(a.root) / 'truth.json')) if r.get('broken') is None][:a.n]
    if a.png: os.makedirs(a.png, exist_ok=True)
    jobs = [(a.root, r, a.png) for r in recs]
    with ProcessPoolExecutor(a.workers) as ex:
        res = list(ex.map(one, jobs))
    hits = sum(r['hit'] for r in res)
    print(f"{a.root}: ROI hit {hits}/{len(res)} = {100*hits/len(res):.1f}%  none {sum(r['dist'] is None for r in res)}")
    for r in res:
        if not r['hit']:
            exit_err = (None if r['drop_s'] is None or r['release_s'] is None
                        else round(r['drop_s'] - r['release_s'], 2))
            dist = None if r['dist'] is None else round(r['dist'], 2)
            print(f"  MISS {r['path']} {r['site']} tone {r['tone']} fps {r['fps']} dist {dist} "
                  f"({r.get('where', 'no ROI')}) exit - release {exit_err} s rad_a {r['radius_a']:.1f}")
    where = {}
    for r in res:
        if not r['hit']:
            where[r.get('where', 'no ROI')] = where.get(r.get('where', 'no ROI'), 0) + 1
    print('misses by where the ROI landed:', where)
    print('roi time median', np.median([r['roi_s'] for r in res]))
    if a.out: json.dump(res, open(a.out, 'w'))
main()
