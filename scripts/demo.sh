#!/usr/bin/env bash
# Installs the runtime (no torch) and runs the main job on the shipped model:
# generates a few photographs and refill videos, scores the photos and times the refills.
# Usage: bash scripts/demo.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-demo}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
M=.venv/bin/mottling
$M synth images --n 12 --out "$OUT/photos" --seed 20261122
# Filmed as a phone does: 720 px or more on the shorter side, at an iPhone's H.264 bit rate
# (the generator's own draw, 180-640 px at CRF 18-28, is harsher than any phone's original).
$M synth videos --n 2 --out "$OUT/videos" --seed 20261122 --broken-fraction 0 \
  --min-side 720 --bits-per-pixel 0.26
$M score "$OUT"/photos/images/*.jpg --json --overlay "$OUT/overlays" > "$OUT/scores.json"
# each video's site comes from the generator's truth file
.venv/bin/python - "$OUT" <<'PY' | while read -r v site; do
import json, sys
for rec in json.load(open(f"{sys.argv[1]}/videos/truth.json")):
    print(f"{sys.argv[1]}/videos/{rec['path']} {rec['site']}")
PY
  $M crt "$v" --site "$site" --json --plot "${v%.mp4}.png" < /dev/null || true
done
.venv/bin/python - "$OUT" <<'PY'
import csv, json, sys
out = sys.argv[1]
truth = {r["path"]: int(r["score"]) for r in csv.DictReader(open(f"{out}/photos/manifest.csv"))}
rows = json.load(open(f"{out}/scores.json"))
hits = sum(truth["images/" + r["path"].split("/images/")[-1]] == r["score"] for r in rows)
print(f"scored {len(rows)} generated photos: {hits} match the generator's score; details in {out}/scores.json")
PY
