"""Does test-time augmentation (averaging the photo with its mirror image) pay for its latency?

    python benchmarks/tta_gain.py --model models/mottling-v0.3.0.onnx \
        --manifest A=data/test-a-s777/manifest.csv --manifest B=data/test-b-s9777/manifest.csv

Prints, per test set, QWK and exact accuracy of the plain model and of the flip-averaged one,
and the inference-time ratio (TTA runs the network twice). Mirroring is label-preserving: the
score depends on the distance along the leg, not on left/right.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from mottling.metrics import exact_accuracy, quadratic_weighted_kappa  # noqa: E402
from mottling.photo.decode import load_photo  # noqa: E402
from mottling.photo.model import load_model  # noqa: E402
from mottling.photo.preprocess import to_input  # noqa: E402
from training.data import read_manifest  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REPO / "models" / "mottling-v0.3.0.onnx"))
    ap.add_argument("--manifest", action="append", required=True, help="NAME=manifest.csv")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    model = load_model(args.model, intra_op_threads=args.threads)
    for item in args.manifest:
        name, _, path = item.partition("=")
        records = read_manifest(path)
        plain, tta, ref, t_plain, t_tta = [], [], [], 0.0, 0.0
        for r in records:
            photo = load_photo(r.path.read_bytes(), model.input_size)
            x, _ = to_input(photo.image, model.spec)
            t0 = time.perf_counter()
            p = model.run(x[None])["probabilities"][0]
            t1 = time.perf_counter()
            pf = model.run(np.ascontiguousarray(x[None, :, :, ::-1]))["probabilities"][0]
            t2 = time.perf_counter()
            t_plain += t1 - t0
            t_tta += t2 - t0
            plain.append(int(np.argmax(p)))
            tta.append(int(np.argmax(0.5 * (p + pf))))
            ref.append(r.score)
        print(f"{name} ({len(ref)} photos): plain QWK {quadratic_weighted_kappa(ref, plain):.3f} "
              f"exact {exact_accuracy(ref, plain):.3f} | flip-TTA QWK "
              f"{quadratic_weighted_kappa(ref, tta):.3f} exact {exact_accuracy(ref, tta):.3f} | "
              f"inference time x{t_tta / max(t_plain, 1e-9):.2f}")


if __name__ == "__main__":
    main()
