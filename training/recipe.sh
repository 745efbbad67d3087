#!/usr/bin/env bash
# The recipe that produced models/mottling-v0.1.0.onnx (CPU only, generated data).
# Run from the repository root with the train extra installed. Wall times: training/README.md.
set -euo pipefail
# 1. training photos (seed 1) and a fresh test set (seed 777: other patients, never trained on)
mottling synth images --n 4200 --out data/train-s1 --seed 1 --size 384 --workers 2
mottling synth images --n 1500 --out data/test-s777 --seed 777 --size 384 --workers 2
# 2. train (10% of the training patients are held out for validation / early stopping):
#    stage 1, 10 epochs from scratch; stage 2, a second 4-epoch cosine cycle from stage 1's best
#    weights (same seed, so the same patient split). Stage 2 was kept on validation QWK.
mottling train --config training/configs/default.yaml --data data/train-s1/manifest.csv --out_dir runs/default
mottling train --config training/configs/default-stage2.yaml --data data/train-s1/manifest.csv --out_dir runs/default-ft
# 3. evaluate the best checkpoint on the fresh test set
mottling evaluate --model runs/default-ft/best.pt --manifest data/test-s777/manifest.csv --out runs/default-ft/eval-test
# 4. export (ONNX + parity check + model card + weights for --init) with the measured metrics
mottling export runs/default-ft/best.pt --out models/mottling-v0.1.0.onnx --semver 0.1.0 \
  --metrics runs/default-ft/eval-test/metrics.json \
  --test-set "1500 generated photos: mottling synth images --n 1500 --seed 777 --size 384" \
  --recipe-file training/recipe.sh
# 5. the shipped ONNX file gives the same numbers
mottling evaluate --model models/mottling-v0.1.0.onnx --manifest data/test-s777/manifest.csv --out runs/default-ft/eval-onnx
