"""ONNX Runtime against PyTorch eager on the same inputs: medians and the speed ratio.

    python benchmarks/onnx_vs_torch.py [--onnx models/mottling-v0.3.0.onnx]
                                       [--weights models/mottling-v0.3.0.pt] [--repeats 15]

Both run the exported model's network on the same preprocessed generated photos, side by side in
one process, at batch 1 and batch 32, on 1 and 2 threads. Prints one line per setting; no
assertions (the machines are shared and noisy, so only the ratio is meaningful).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--onnx", default="models/mottling-v0.3.0.onnx")
    ap.add_argument("--weights", default=None, help="checkpoint (default: NAME.pt beside the onnx)")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from mottling.photo.preprocess import to_input
    from mottling.synth.images import render_photo
    from training.checkpoint import model_from_checkpoint, spec_from_config
    from training.model import ExportWrapper

    onnx_path = Path(args.onnx)
    weights = Path(args.weights) if args.weights else onnx_path.with_suffix(".pt")
    net, cfg, _ = model_from_checkpoint(weights)
    wrapper = ExportWrapper(net).eval()
    spec = spec_from_config(cfg)
    photos = [render_photo(seed=5000 + i, score=i % 6, skin_tone=1 + i % 10, size=384).image
              for i in range(32)]
    batch32 = np.stack([to_input(p, spec)[0] for p in photos]).astype(np.float32)
    print(f"model {onnx_path} ({cfg.backbone}, {cfg.input_size}px), repeats {args.repeats}")
    print(f"{'threads':>7} {'batch':>5} {'torch ms':>9} {'onnx ms':>8} {'torch/onnx':>10} "
          f"{'onnx img/s':>10}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        for bs in (1, 32):
            x = batch32[:bs]
            xt = torch.from_numpy(x)

            def run_torch():
                with torch.inference_mode():
                    wrapper(xt)

            def run_onnx():
                sess.run(None, {"image": x})

            t_ms = _median_ms(run_torch, args.repeats)
            o_ms = _median_ms(run_onnx, args.repeats)
            print(f"{threads:>7} {bs:>5} {t_ms:>9.2f} {o_ms:>8.2f} {t_ms / o_ms:>10.2f} "
                  f"{bs / (o_ms / 1000):>10.1f}")


if __name__ == "__main__":
    main()
