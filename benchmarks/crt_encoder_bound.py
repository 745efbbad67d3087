"""What the encoder costs the CRT: the same videos measured as they were encoded and re-encoded.

    nice python benchmarks/crt_encoder_bound.py --set DIR --crf 0 --limit 40 --workers 2

``--set`` is an own-generator folder made by ``benchmarks/crt_accuracy.py`` (its ``truth.json``
holds each video's full spec). Every clean video among the first ``--limit`` is rendered again
from its spec, frame for frame the same (same scene, light, noise, camera and examiner), changing
only the encoder's constant rate factor (``--crf``, repeatable; 0 is lossless) into
``<set>/rerender_crf<k>/``, or encoding at a phone's bit rate instead (``--bits-per-pixel``,
repeatable: bits per pixel and frame, see ``mottling.synth.videos.PHONE_BITS_PER_PIXEL``) into
``<set>/rerender_bpp<b>/``, and measured with the true ROI (and the automatic one with ``--auto``).
The set's own videos are measured alongside, so every line compares the same videos. Where the
lossless re-encoding is right and the set's encoding is not, the error or the refusal is in the
pixels the encoder kept, not in the analysis.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from crt_accuracy import evaluate, summarise  # noqa: E402

from mottling.skin import monk_group  # noqa: E402


def _render(job) -> None:
    spec_dict, crf, bpp, codec, out = job
    from mottling.synth.refill_spec import spec_from_dict
    from mottling.synth.videos import render_refill_video

    if not Path(out).exists():
        tmp = Path(out).with_suffix(".part.mp4")
        spec = spec_from_dict(spec_dict)
        render_refill_video(tmp, spec if crf is None else replace(spec, crf=crf),
                            codec=codec, bits_per_pixel=bpp)
        tmp.rename(out)


def rerender(root: Path, records: list[dict], crf: int | None, workers: int,
             bits_per_pixel: float | None = None) -> Path:
    """Render ``records`` again at ``crf`` into ``<root>/rerender_crf<crf>/``, or at
    ``bits_per_pixel`` into ``<root>/rerender_bpp<b>/`` (kept between runs)."""
    dest = root / (f"rerender_crf{crf}" if bits_per_pixel is None
                   else f"rerender_bpp{bits_per_pixel:g}")
    (dest / "videos").mkdir(parents=True, exist_ok=True)
    # The set's own codec (H.264 unless its records name another)
    jobs = [(r["spec"], crf, bits_per_pixel, r.get("codec", "h264"), str(dest / r["path"]))
            for r in records]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_render, jobs, chunksize=1))
    else:
        for job in jobs:
            _render(job)
    return dest


def _line(label: str, rows: list[tuple[dict, dict]]) -> None:
    print(f"  {label:26s} {summarise(rows)}")
    by: dict[str, list] = defaultdict(list)
    for t, r in rows:
        by[monk_group(t["skin_tone"])].append((t, r))
        by[t["site"]].append((t, r))
    for k in sorted(by):
        print(f"    {k:24s} {summarise(by[k])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, required=True)
    ap.add_argument("--crf", type=int, action="append", default=None,
                    help="re-encode at this CRF (repeatable; 0 = lossless; default 0)")
    ap.add_argument("--bits-per-pixel", type=float, action="append", default=None,
                    help="re-encode at a phone's bit rate instead, this many bits per pixel and "
                         "frame (repeatable)")
    ap.add_argument("--limit", type=int, default=40, help="clean videos from the start of the set")
    ap.add_argument("--videos", default=None,
                    help="only these videos of the set, by index (comma-separated: 10,16,26)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--auto", action="store_true", help="also measure with the automatic ROI")
    args = ap.parse_args()
    records = [r for r in json.loads((args.set / "truth.json").read_text())
               if not r.get("broken") and r.get("spec")]
    if args.videos:
        wanted = {f"videos/refill_{int(i):05d}.mp4" for i in args.videos.split(",")}
        records = [r for r in records if r["path"] in wanted]
    records = records[:args.limit]
    if not records:
        sys.exit(f"{args.set}: no clean own-generator videos with a spec in truth.json")
    variants = [("as in the set", args.set)]
    for crf in args.crf or ([] if args.bits_per_pixel else [0]):
        variants.append((f"re-encoded at CRF {crf}" + (" (lossless)" if crf == 0 else ""),
                         rerender(args.set, records, crf, args.workers)))
    for bpp in args.bits_per_pixel or []:
        variants.append((f"re-encoded at {bpp:g} bpp",
                         rerender(args.set, records, None, args.workers, bpp)))
    crfs = sorted(r["crf"] for r in records)
    how = (f"{records[0]['bits_per_pixel']:g} bits per pixel" if records[0].get("bits_per_pixel")
           else f"CRF {crfs[0]}-{crfs[-1]} (median {crfs[len(crfs) // 2]})")
    print(f"{args.set}: {len(records)} clean videos, the set encoded at {how}")
    # How much there is to keep: the spot's whole blanching in green codes (truth, before noise
    # and encoding); the 90 % point asks for a tenth of it.
    green = sorted(r["roi_blanched_rgb"][1] - r["roi_baseline_rgb"][1] for r in records)
    print(f"  blanching of the spot: {green[0]:.1f}-{green[-1]:.1f} green codes "
          f"(median {green[len(green) // 2]:.1f})")
    passes = [("true ROI", True)] + ([("automatic ROI", False)] if args.auto else [])
    for roi_label, manual in passes:
        print(f"\n{roi_label}:")
        per_variant = []
        for label, root in variants:
            results = evaluate(records, root, manual, "green", args.workers)
            per_variant.append(results)
            _line(label, list(zip(records, results)))
        base, *others = per_variant
        for (label, _), res in zip(variants[1:], others):
            fixed = sum(b["status"] != "ok" and r["status"] == "ok" for b, r in zip(base, res))
            lost = sum(b["status"] == "ok" and r["status"] != "ok" for b, r in zip(base, res))
            print(f"  {label}: {fixed} refused as encoded are measured, {lost} the other way")


if __name__ == "__main__":
    main()
