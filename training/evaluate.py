"""``mottling evaluate``: agreement, calibration and the skin-tone breakdown of a model on a manifest.

Works on a training checkpoint (``.pt``) or an exported ``.onnx`` alike: both go through the same
``mottling.photo.preprocess`` functions, so the numbers are directly comparable.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from mottling import metrics as M
from mottling.photo.decode import load_photo
from mottling.photo.preprocess import to_input
from mottling.skin import ita_class, monk_group
from training.data import N_CLASSES, Record, read_manifest, read_splits

log = logging.getLogger(__name__)
HUMAN_KAPPA_REFERENCE = 0.87   # inter-observer kappa for the score (Ait-Oufella 2011)


class TorchPredictor:
    def __init__(self, path: str | Path, threads: int = 2):
        import torch

        from training.checkpoint import model_from_checkpoint, spec_from_config
        from training.model import ExportWrapper

        torch.set_num_threads(threads)
        net, cfg, ckpt = model_from_checkpoint(path)
        self.torch = torch
        self.wrapper = ExportWrapper(net).eval()
        self.spec = spec_from_config(cfg)
        self.description = {"kind": "checkpoint", "path": str(path), "backbone": cfg.backbone,
                            "head": cfg.head, "epoch": ckpt.get("epoch"),
                            "git_commit": ckpt.get("git_commit")}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            probs, _, _ = self.wrapper(self.torch.from_numpy(batch))
        return probs.numpy().astype(np.float64)


class OnnxPredictor:
    """An exported model, loaded like every other front end loads it: ``load_model`` checks its
    sha256 against the card beside it and reads the preprocessing from its metadata."""

    def __init__(self, path: str | Path, threads: int = 2):
        from mottling.photo.model import load_model

        self.model = load_model(path, intra_op_threads=threads)
        self.spec = self.model.spec
        meta = self.model.metadata
        self.description = {"kind": "onnx", "path": str(path),
                            "backbone": meta.get("mottling.backbone"),
                            "head": meta.get("mottling.head"),
                            "semver": meta.get("mottling.semver"),
                            "git_commit": meta.get("mottling.git_commit")}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.run(batch)["probabilities"], dtype=np.float64)


def load_predictor(path: str | Path, threads: int = 2):
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model not found: {p}")
    return OnnxPredictor(p, threads) if p.suffix == ".onnx" else TorchPredictor(p, threads)


def predict_records(predictor, records: list[Record], batch_size: int = 32) -> np.ndarray:
    out = []
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        batch = np.stack([to_input(load_photo(r.path, predictor.spec.input_size).image,
                                   predictor.spec)[0] for r in chunk])
        out.append(predictor(batch))
    return np.concatenate(out) if out else np.zeros((0, N_CLASSES))


def tone_group(r: Record) -> str:
    if r.skin_tone is not None and 1 <= r.skin_tone <= 10:
        return monk_group(r.skin_tone)
    if r.ita is not None:
        return "ita_" + ita_class(r.ita)
    return "unknown"


def agreement(reference, predicted, probs: np.ndarray | None = None) -> dict[str, Any]:
    ref, pred = np.asarray(reference), np.asarray(predicted)
    out: dict[str, Any] = {
        "n": int(ref.size),
        "qwk": M.quadratic_weighted_kappa(ref, pred),
        "mae": M.mae(ref, pred),
        "exact_accuracy": M.exact_accuracy(ref, pred),
        "within_one_accuracy": M.within_one_accuracy(ref, pred),
    }
    if probs is not None and len(probs):
        out["ece"], _ = M.expected_calibration_error(probs, ref)
        out["expected_score_mae"] = M.mae(ref, probs @ np.arange(probs.shape[1]))
    return out


def rater_agreement(records: list[Record], predicted: np.ndarray) -> dict[str, Any]:
    """Model vs each rater, next to each rater vs each other rater (pairwise QWK)."""
    names = sorted({k for r in records for k in r.raters})
    if not names:
        return {}
    col = {n: np.array([-1 if r.raters.get(n) is None else r.raters[n] for r in records])
           for n in names}
    ref = np.array([r.score for r in records])

    def qwk(a, b):
        ok = (a >= 0) & (b >= 0)
        return {"qwk": M.quadratic_weighted_kappa(a[ok], b[ok]) if ok.any() else None,
                "n": int(ok.sum())}

    result = {"model_vs_rater": {n: qwk(predicted, col[n]) for n in names},
              "reference_vs_rater": {n: qwk(ref, col[n]) for n in names},
              "rater_vs_rater": {f"{a}~{b}": qwk(col[a], col[b])
                                 for a, b in itertools.combinations(names, 2)},
              "published_human_kappa": HUMAN_KAPPA_REFERENCE}
    mean = lambda d: float(np.mean([v["qwk"] for v in d.values() if v["qwk"] is not None])) \
        if any(v["qwk"] is not None for v in d.values()) else None  # noqa: E731
    result["mean_model_vs_rater_qwk"] = mean(result["model_vs_rater"])
    result["mean_rater_vs_rater_qwk"] = mean(result["rater_vs_rater"])
    return result


def evaluate(model: str | Path, manifest: str | Path, out_dir: str | Path,
             split: str | None = None, splits_file: str | Path | None = None,
             threads: int = 2, max_images: int = 0, predictor=None,
             seen: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """``predictor`` and ``seen`` (photo path -> probabilities) let several test sets share one
    loaded model and photos already scored (the protocol's "A+B" row reuses A's and B's)."""
    from training.plots import plot_confusion, plot_reliability

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # "a/manifest.csv,b/manifest.csv": one test set made of several (e.g. both renderers)
    records = [r for m in str(manifest).split(",") for r in read_manifest(m.strip(), max_images)]
    if split:
        if splits_file:
            assignment = read_splits(Path(splits_file))
            records = [r for r in records if assignment.get(r.patient_id) == split]
        else:
            records = [r for r in records if r.extra.get("split") == split]
        if not records:
            raise ValueError(f"no rows in split {split!r}")
    predictor = predictor or load_predictor(model, threads)
    seen = {} if seen is None else seen
    todo = [r for r in records if str(r.path) not in seen]
    for r, p in zip(todo, predict_records(predictor, todo)):
        seen[str(r.path)] = p
    probs = np.stack([seen[str(r.path)] for r in records])
    pred = probs.argmax(axis=1)
    ref = np.array([r.score for r in records])
    groups = np.array([tone_group(r) for r in records])

    result: dict[str, Any] = {"model": predictor.description, "manifest": str(manifest),
                              "split": split, "overall": agreement(ref, pred, probs)}
    ece, bins = M.expected_calibration_error(probs, ref)
    result["calibration"] = {"ece": ece, "bins": bins}
    result["confusion_matrix"] = M.confusion_matrix(ref, pred).tolist()
    result["by_skin_tone"] = {g: agreement(ref[groups == g], pred[groups == g], probs[groups == g])
                              for g in sorted(set(groups))}
    patterns = np.array([r.extra.get("pattern") or "none" for r in records])
    if len(set(patterns)) > 1:
        result["by_pattern"] = {p: agreement(ref[patterns == p], pred[patterns == p])
                                for p in sorted(set(patterns))}
    raters = rater_agreement(records, pred)
    if raters:
        result["raters"] = raters
    qwks = [v["qwk"] for v in result["by_skin_tone"].values() if v["n"]]
    result["worst_skin_tone_qwk"] = float(min(qwks)) if qwks else None

    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    with (out / "predictions.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "score", "predicted", "expected_score", "skin_tone_group"]
                   + [f"p{k}" for k in range(N_CLASSES)])
        for r, p, g in zip(records, probs, groups):
            w.writerow([str(r.path), r.score, int(p.argmax()), f"{p @ np.arange(N_CLASSES):.4f}", g]
                       + [f"{x:.6f}" for x in p])
    plot_confusion(np.array(result["confusion_matrix"]), out / "confusion_matrix.png")
    plot_reliability(bins, ece, out / "reliability.png")
    (out / "report.md").write_text(render_report(result))
    return result


def _fmt(x) -> str:
    return "–" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def render_report(result: dict[str, Any]) -> str:
    o = result["overall"]
    lines = [
        "# Mottling model evaluation", "",
        f"- model: `{result['model']['path']}` ({result['model']['kind']}, "
        f"{result['model'].get('backbone')}, head {result['model'].get('head')})",
        f"- manifest: `{result['manifest']}`" + (f", split `{result['split']}`"
                                                 if result.get("split") else ""),
        f"- images: {o['n']}", "",
        "## Overall", "",
        "| QWK | MAE | exact | within 1 | ECE |", "|---|---|---|---|---|",
        f"| {_fmt(o['qwk'])} | {_fmt(o['mae'])} | {_fmt(o['exact_accuracy'])} | "
        f"{_fmt(o['within_one_accuracy'])} | {_fmt(o.get('ece'))} |", "",
        "## By skin tone", "",
        "| group | n | QWK | MAE | exact | within 1 | ECE |", "|---|---|---|---|---|---|---|",
    ]
    for g, m in result["by_skin_tone"].items():
        lines.append(f"| {g} | {m['n']} | {_fmt(m['qwk'])} | {_fmt(m['mae'])} | "
                     f"{_fmt(m['exact_accuracy'])} | {_fmt(m['within_one_accuracy'])} | "
                     f"{_fmt(m.get('ece'))} |")
    if "by_pattern" in result:
        lines += ["", "## By confounding pattern", "", "| pattern | n | QWK | exact |",
                  "|---|---|---|---|"]
        for p, m in result["by_pattern"].items():
            lines.append(f"| {p} | {m['n']} | {_fmt(m['qwk'])} | {_fmt(m['exact_accuracy'])} |")
    if "raters" in result:
        ra = result["raters"]
        lines += ["", "## Agreement with raters (quadratic weighted kappa)", "",
                  f"Published human inter-observer kappa for this score: "
                  f"{ra['published_human_kappa']}.", "", "| pair | n | QWK |", "|---|---|---|"]
        for name, v in ra["model_vs_rater"].items():
            lines.append(f"| model ~ {name} | {v['n']} | {_fmt(v['qwk'])} |")
        for name, v in ra["rater_vs_rater"].items():
            lines.append(f"| {name} | {v['n']} | {_fmt(v['qwk'])} |")
        lines += ["", f"Mean model~rater QWK {_fmt(ra['mean_model_vs_rater_qwk'])}; mean "
                  f"rater~rater QWK {_fmt(ra['mean_rater_vs_rater_qwk'])}."]
    lines += ["", "## Confusion matrix (rows: reference, columns: predicted)", "",
              "![confusion matrix](confusion_matrix.png)", "",
              "| | " + " | ".join(str(k) for k in range(N_CLASSES)) + " |",
              "|---" * (N_CLASSES + 1) + "|"]
    for k, row in enumerate(result["confusion_matrix"]):
        lines.append(f"| **{k}** | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", "## Calibration", "", f"Expected calibration error (10 bins, top label): "
              f"{_fmt(result['calibration']['ece'])}.", "", "![reliability](reliability.png)", ""]
    return "\n".join(lines)
