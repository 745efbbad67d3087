"""Decision calibration measured on the protocol: per-rank offsets of the CORN head chosen on each
run's validation patients, then scored on fresh test sets, by Monk group, and on look-alikes.

    python benchmarks/calibration.py --cache /tmp/calib \
        --model w-A2B-s1=runs/w-A2B-s1/best.pt \
        --model v0.2.0=models/mottling-v0.2.0.pt --splits v0.2.0=runs/w-A2B/splits.csv \
            --val-data v0.2.0=data/train-a2-s1/manifest.csv,data/train-b-s101/manifest.csv \
        --test A2=data/test-a2-s777/manifest.csv --test B=data/test-b-s9777/manifest.csv

Each model's head logits (plain and mirrored input) are computed once per set and cached under
``--cache``; the offsets (``training/calibrate.py``) see only the validation rows. Look-alikes are
``benchmarks/look_alikes.py``'s 7 x ``--patients`` photos (clean renderer-B legs, its seeds); a
second look-alike set from another seed (``LOOKALIKE_VAL_SEED``, never the benchmark's) is the
validation look-alike set for the ``+look-alikes`` variant and for checkpoint choice.
Prints one markdown table per model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from mottling import metrics as M  # noqa: E402
from training import calibrate as C  # noqa: E402
from training.data import read_manifest  # noqa: E402
from training.evaluate import tone_group  # noqa: E402

LOOKALIKE_VAL_SEED = 9_400_041
GROUPS = ("monk_1-3", "monk_4-7", "monk_8-10")


def lookalike_images(cache: Path, name: str, patients: int, seed: int | None):
    """(images, thing per image); seed None: the benchmark's own photos."""
    from PIL import Image

    sys.path.insert(0, str(REPO / "benchmarks"))
    import look_alikes as LA

    folder = cache / f"photos-{name}-{patients}"
    things = [t for t in LA.THINGS for _ in range(patients)]
    files = [folder / f"{t}-{i:02d}.png" for t in LA.THINGS for i in range(patients)]
    if not all(f.is_file() for f in files):
        folder.mkdir(parents=True, exist_ok=True)
        for t in LA.THINGS:
            for i, im in enumerate(LA.photos(t, patients, seed)):
                im.save(folder / f"{t}-{i:02d}.png")
    return [Image.open(f).convert("RGB") for f in files], np.array(things)


def image_logits(net, spec, images, flip=False):
    from mottling.photo.preprocess import to_input

    out = []
    for s in range(0, len(images), 32):
        x = np.stack([to_input(im, spec)[0] for im in images[s:s + 32]]).astype(np.float32)
        out.append(C.head_logits(net, x[:, :, :, ::-1] if flip else x))
    return np.concatenate(out)


def cached(path: Path, fn):
    if path.is_file():
        return np.load(path)
    arr = fn()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)
    return arr


def set_row(y, pred, groups):
    clean = y == 0
    row = {"n": int(len(y)), "qwk": M.quadratic_weighted_kappa(y, pred),
           "exact": M.exact_accuracy(y, pred),
           "clean0": float((pred[clean] == 0).mean()) if clean.any() else None}
    for g in GROUPS:
        m = groups == g
        row[g] = M.quadratic_weighted_kappa(y[m], pred[m]) if m.any() else None
    return row


def f(x):
    return "-" if x is None else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--model", action="append", required=True, help="NAME=checkpoint.pt")
    ap.add_argument("--splits", action="append", default=[], help="NAME=splits.csv")
    ap.add_argument("--val-data", action="append", default=[], help="NAME=manifest[,manifest]")
    ap.add_argument("--test", action="append", required=True, help="NAME=manifest[,manifest]")
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ffw", type=float, default=3.0, help="false-finding weight of 'cost'")
    ap.add_argument("--json", default=None, help="write every row here")
    ap.add_argument("--no-tta", action="store_true", help="skip the mirrored-input rows")
    args = ap.parse_args()
    import torch

    from training.checkpoint import model_from_checkpoint, spec_from_config

    torch.set_num_threads(args.threads)
    cache = Path(args.cache)
    splits = dict(s.split("=", 1) for s in args.splits)
    vdata = dict(s.split("=", 1) for s in args.val_data)
    tests = dict(s.split("=", 1) for s in args.test)
    la_bench, la_things = lookalike_images(cache, "bench", args.patients, None)
    la_val, _ = lookalike_images(cache, "val", args.patients, LOOKALIKE_VAL_SEED)
    everything = {}
    for item in args.model:
        name, _, ckpt = item.partition("=")
        net, cfg, _ = model_from_checkpoint(ckpt)
        spec = spec_from_config(cfg)
        d = cache / name
        sp = splits.get(name, str(Path(ckpt).parent / "splits.csv"))
        vrec = C.validation_records(vdata.get(name, cfg.data), sp)
        vl = cached(d / "val.npy", lambda: C.logits_for_records(net, spec, vrec))
        vy = np.array([r.score for r in vrec])
        vg = np.array([C.renderer_of(r) for r in vrec])
        test_l, test_y, test_g = {}, {}, {}
        for tname, man in tests.items():
            recs, parts = [], {False: [], True: []}
            for m in man.split(","):
                mrecs = read_manifest(m)
                recs += mrecs
                tag = Path(m).parent.name          # one cache file per manifest, shared by sets
                for fl in (False,) if args.no_tta else (False, True):
                    parts[fl].append(cached(
                        d / f"test-{tag}{'-flip' if fl else ''}.npy",
                        lambda: C.logits_for_records(net, spec, mrecs, flip=fl)))
            test_l[tname] = np.concatenate(parts[False])
            test_l[tname + "-flip"] = (np.concatenate(parts[True]) if parts[True]
                                        else test_l[tname])   # --no-tta: "TTA" = plain
            test_y[tname] = np.array([r.score for r in recs])
            test_g[tname] = np.array([tone_group(r) for r in recs])
        lb = cached(d / "la-bench.npy", lambda: image_logits(net, spec, la_bench))
        lbf = lb if args.no_tta else cached(d / "la-bench-flip.npy",
                                            lambda: image_logits(net, spec, la_bench, True))
        lv = cached(d / "la-val.npy", lambda: image_logits(net, spec, la_val))
        # variants: offsets chosen on validation only
        la_y = np.zeros(len(lv), int)
        variants = {
            "uncalibrated": np.zeros(vl.shape[1]),
            "d0 only, clean90": C.fit_offsets(vl, vy, vg, "clean90", ranks=[0]),
            "all ranks, clean90": C.fit_offsets(vl, vy, vg, "clean90"),
            f"all ranks, cost (false finding x{args.ffw:g})": C.fit_offsets(
                vl, vy, vg, "cost", false_finding_weight=args.ffw),
            "all ranks, clean90 + look-alike val": C.fit_offsets(
                np.concatenate([vl, lv]), np.concatenate([vy, la_y]),
                np.concatenate([vg, np.array(["lookalike-val"] * len(lv))]), "clean90"),
        }
        rows = {}
        print(f"\n### {name} (`{ckpt}`; validation: {len(vy)} photos of "
              f"{len({r.patient_id for r in vrec})} patients, {sp})\n")
        print("| decision | offsets d0..d4 | val QWK | val clean0 (per renderer) | test set | "
              "QWK | "
              "Monk 1-3 | Monk 4-7 | Monk 8-10 | exact | clean called 0 | look-alikes > 0 "
              "(bench / val) |")
        print("|---" * 12 + "|")
        for vname, off in variants.items():
            vs = C.summary(vl, vy, vg, off)
            la_b = int((C.decide(lb, off) > 0).sum())
            la_v = int((C.decide(lv, off) > 0).sum())
            per = {}
            for tname in tests:
                per[tname] = set_row(test_y[tname], C.decide(test_l[tname], off), test_g[tname])
                # flip TTA: average the probabilities of the photo and its mirror image
                pt = 0.5 * (C.corn_probabilities(test_l[tname], off)
                            + C.corn_probabilities(test_l[tname + "-flip"], off))
                per[tname + " (flip TTA)"] = set_row(test_y[tname], pt.argmax(1), test_g[tname])
            pb = 0.5 * (C.corn_probabilities(lb, off) + C.corn_probabilities(lbf, off))
            la_b_tta = int((pb.argmax(1) > 0).sum())
            by_thing = {t: int((C.decide(lb, off)[la_things == t] > 0).sum())
                        for t in dict.fromkeys(la_things)}
            rows[vname] = {"offsets": off.tolist(), "val": vs, "tests": per,
                           "lookalikes_bench": la_b, "lookalikes_bench_tta": la_b_tta,
                           "lookalikes_val": la_v, "lookalikes_by_thing": by_thing}
            vclean = " / ".join(f"{g} {v:.2f}" for g, v in vs["clean_called_0"].items())
            for i, (tname, r) in enumerate(per.items()):
                if "flip" in tname:
                    continue
                lead = (f"| {vname} | {' '.join(f'{x:+.2f}' for x in off)} | {vs['qwk']:.3f} | "
                        f"{vclean} " if i == 0 else "| | | | ")
                tail = f"{la_b}/{len(lb)} / {la_v}/{len(lv)}" if i == 0 else ""
                print(f"{lead}| {tname} | {f(r['qwk'])} | {f(r['monk_1-3'])} | "
                      f"{f(r['monk_4-7'])} | {f(r['monk_8-10'])} | {f(r['exact'])} | "
                      f"{f(r['clean0'])} | {tail} |")
        everything[name] = {"checkpoint": ckpt, "splits": sp, "variants": rows}
        sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
