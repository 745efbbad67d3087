"""The geometric route's ceiling: the model's area map plus the scale's rule, with known landmarks.

The score is defined by where the mottling ends relative to the knee centre, the upper edge of
the kneecap, the middle of the thigh and the groin fold. Direct classification learns that from
pictures; the geometric route would segment the mottled skin, locate the landmarks and apply the
rule. This benchmark measures the second half of that route before anyone builds the first: it
takes the model's own area map (the head that draws the overlay) and the generator's true
landmark pixels from the manifest, and applies the rule. Side by side with the same model's direct
score, on each test set:

    python benchmarks/geometric_route.py --model runs/v0.3-A/best.pt \
        --manifest A=data/test-a-s777/manifest.csv --manifest B=data/test-b-s9777/manifest.csv

If the ceiling is far above the direct score on the renderer the model was not trained on, a
landmark locator is worth building; if not, the area map itself does not carry over. A
checkpoint trained with ``landmark_head: true`` adds a third row, the whole route without any
truth: its own landmark heatmaps (soft-argmax), the training manifest's median proportions
(``--anatomy``) for the kneecap, mid-thigh and coin, and the rule.

Fixed choices (not tuned on any test set): a pixel is mottled where the area map is above 0.5;
a photo is clean when the mottled pixels cover less than a third of a coin-sized patch; the
extent is the 98th percentile of the mottled pixels' position along the knee -> kneecap ->
mid-thigh -> groin polyline, measured in the scale's units (thigh lengths from the knee centre).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from mottling.metrics import quadratic_weighted_kappa
from mottling.photo.decode import load_photo
from mottling.photo.preprocess import to_input, unletterbox_map
from mottling.scale import LegLandmarks, score_for_extent
from mottling.skin import monk_group

POINTS = ("knee", "patella_top", "mid_thigh", "groin")
AREA_THRESHOLD = 0.5
EXTENT_PERCENTILE = 98
MIN_COIN_SHARE = 1 / 3


class Predictor:
    """(probabilities, area map) per photo from a checkpoint (.pt) or an exported model (.onnx)."""

    def __init__(self, path: str):
        if path.endswith(".onnx"):
            from mottling.photo.model import load_model

            model = load_model(path, intra_op_threads=2)
            self.spec = model.spec

            self.has_landmarks = False

            def run_onnx(x):
                out = model.run(x)
                return out["probabilities"], out["area_map"], None
            self._run = run_onnx
        else:
            import torch

            from training.checkpoint import model_from_checkpoint, spec_from_config

            torch.set_num_threads(2)
            net, cfg, _ = model_from_checkpoint(path)
            self.spec = spec_from_config(cfg)
            self.has_landmarks = cfg.landmark_head

            def run(x):
                with torch.no_grad():
                    out = net(torch.from_numpy(x))
                    probs = net.probabilities(out["logits"]).numpy()
                    area = torch.sigmoid(out["seg_logits"]).numpy()
                    lmk = None if out["lmk_logits"] is None else out["lmk_logits"].numpy()
                return probs, area, lmk
            self._run = run

    def __call__(self, path: str):
        """Probabilities, the area map on the decoded photo's pixels, (with a landmark head) the
        predicted landmark pixels (soft-argmax of each heatmap, mapped out of the letterbox), and
        the factor from the manifest's pixels to the decoded ones."""
        photo = load_photo(path, self.spec.input_size)
        image = photo.image
        x, geom = to_input(image, self.spec)
        probs, area, lmk = self._run(x[None])
        amap = np.asarray(area, np.float32).reshape(np.shape(area)[-2:])
        points = None
        if lmk is not None:
            heat = lmk[0]
            k, h, w = heat.shape
            p = np.exp(heat.reshape(k, -1) - heat.reshape(k, -1).max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            ys, xs = np.mgrid[0:h, 0:w]
            stride = self.spec.input_size / w
            bx = (p @ xs.ravel() + 0.5) * stride
            by = (p @ ys.ravel() + 0.5) * stride
            points = np.stack([(bx - geom.pad_x) / geom.scale, (by - geom.pad_y) / geom.scale], 1)
        to_decoded = image.width / photo.full_size[0]   # manifest pixels -> decoded pixels
        return np.asarray(probs)[0], unletterbox_map(np.clip(amap, 0, 1), geom), points, to_decoded


def axis_position(px: np.ndarray, pts: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Position of pixels ``px`` (N, 2) along the landmark polyline, in the scale's units."""
    best_d = np.full(len(px), np.inf)
    pos = np.zeros(len(px))
    for i in range(len(pts) - 1):
        a, b = pts[i], pts[i + 1]
        ab = b - a
        t = ((px - a) @ ab) / max(float(ab @ ab), 1e-9)
        # the first segment extends below the knee, the last one beyond the groin
        lo = -np.inf if i == 0 else 0.0
        hi = np.inf if i == len(pts) - 2 else 1.0
        tc = np.clip(t, lo, hi)
        d = np.linalg.norm(px - (a + tc[:, None] * ab), axis=1)
        closer = d < best_d
        best_d[closer] = d[closer]
        pos[closer] = units[i] + tc[closer] * (units[i + 1] - units[i])
    return pos


def geometric_score(area: np.ndarray, pts: np.ndarray, units: np.ndarray, coin: float) -> int:
    """The scale's rule on the area map: landmark pixels ``pts`` (knee, kneecap top, mid-thigh,
    groin) at ``units`` along the leg (thigh lengths from the knee), coin radius ``coin``."""
    marks = LegLandmarks(coin, float(units[1]), float(units[2]), float(units[3]))
    ys, xs = np.nonzero(area > AREA_THRESHOLD)
    thigh_px = float(np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1)))
    coin_px = np.pi * (coin * thigh_px) ** 2
    if len(xs) < MIN_COIN_SHARE * coin_px:
        return 0
    pos = axis_position(np.stack([xs, ys], 1).astype(float), pts, units)
    return score_for_extent(float(np.percentile(pos, EXTENT_PERCENTILE)), marks)


def anatomy(rows: list[dict]) -> tuple[np.ndarray, float]:
    """Median landmark units and coin radius of a (training) manifest: what a predicted-landmark
    route assumes for a patient it knows nothing else about."""
    col = lambda k: float(np.median([float(r[k]) for r in rows]))
    return np.array([0.0, col("patella_top_u"), col("mid_thigh_u"), 1.0]), col("coin_radius")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--manifest", action="append", required=True, help="NAME=manifest.csv")
    ap.add_argument("--anatomy", default="data/train-a-s1/manifest.csv",
                    help="training manifest whose median proportions the predicted route assumes")
    args = ap.parse_args()
    mean_units, mean_coin = anatomy(list(csv.DictReader(open(args.anatomy, newline=""))))
    predictor = Predictor(args.model)
    print(f"model {args.model}; geometric = the model's area map + the true landmarks + the rule")
    print("| test set | route | QWK | Monk 1-3 | Monk 4-7 | Monk 8-10 | exact | clean called 0 |")
    print("|---|---|---|---|---|---|---|---|")
    for item in args.manifest:
        name, path = item.split("=", 1)
        root = Path(path).parent
        rows = list(csv.DictReader(open(path, newline="")))
        truth, direct, geo, pgeo, groups = [], [], [], [], []
        for row in rows:
            probs, area, points, to_decoded = predictor(str(root / row["path"]))
            true_pts = to_decoded * np.array(
                [[float(row[f"{p}_x"]), float(row[f"{p}_y"])] for p in POINTS])
            units = np.array([0.0, float(row["patella_top_u"]), float(row["mid_thigh_u"]), 1.0])
            truth.append(int(row["score"]))
            direct.append(int(np.argmax(probs)))
            geo.append(geometric_score(area, true_pts, units, float(row["coin_radius"])))
            if points is not None:
                pgeo.append(geometric_score(area, points, mean_units, mean_coin))
            groups.append(monk_group(int(row["skin_tone"])))
        truth, groups = np.array(truth), np.array(groups)
        routes = [("direct", np.array(direct)), ("geometric (true landmarks)", np.array(geo))]
        if pgeo:
            pgeo = np.array(pgeo)
            routes.append(("geometric (predicted landmarks)", pgeo))
            # the direct score, but 0 wherever the area map holds less than a third of a coin
            routes.append(("direct, clean gate from the area map", np.where(pgeo == 0, 0, direct)))
        for route, pred in routes:
            cells = [f"{quadratic_weighted_kappa(truth, pred):.3f}"]
            for g in ("monk_1-3", "monk_4-7", "monk_8-10"):
                sel = groups == g
                cells.append(f"{quadratic_weighted_kappa(truth[sel], pred[sel]):.3f}" if sel.any() else "-")
            clean = truth == 0
            cells += [f"{(truth == pred).mean():.3f}", f"{(pred[clean] == 0).mean():.2f}"]
            print(f"| {name} | {route} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
