"""The cross-renderer protocol: one model, several named test sets, one table.

A model trained on renderer A is tested on fresh photos from renderer B (and the other way
round); a model trained on both is tested on fresh seeds of each. Every row is broken out by Monk
group, and the share of clean legs (score 0) called 0 is reported, because a model that sees
mottling in every vein or red knee is useless at the bedside. ``mottling evaluate --manifest
A=... --manifest B=...`` runs it; the commands for each figure are in training/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GROUPS = ("monk_1-3", "monk_4-7", "monk_8-10")


def summarise(metrics: dict[str, Any]) -> dict[str, Any]:
    """The protocol's row for one ``evaluate`` result."""
    cm = metrics["confusion_matrix"]
    clean = sum(cm[0])
    row = {"n": metrics["overall"]["n"], "qwk": metrics["overall"]["qwk"],
           "exact": metrics["overall"]["exact_accuracy"], "mae": metrics["overall"]["mae"],
           "clean_called_0": cm[0][0] / clean if clean else None}
    for g in GROUPS:
        row[g] = metrics["by_skin_tone"].get(g, {}).get("qwk")
    return row


def run_protocol(model: str | Path, sets: dict[str, str], out_dir: str | Path,
                 threads: int = 2, max_images: int = 0) -> dict[str, Any]:
    """Evaluate ``model`` on each named manifest; writes NAME/ folders, protocol.json/.md."""
    from training.evaluate import evaluate, load_predictor

    out = Path(out_dir)
    rows = {}
    predictor, seen = load_predictor(model, threads), {}
    for name, manifest in sets.items():
        result = evaluate(model, manifest, out / name, None, None, threads, max_images,
                          predictor=predictor, seen=seen)
        rows[name] = {"manifest": str(manifest), **summarise(result)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "protocol.json").write_text(json.dumps({"model": str(model), "sets": rows}, indent=2))
    (out / "protocol.md").write_text(render_table(rows, str(model)))
    return rows


def _f(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def render_table(rows: dict[str, dict[str, Any]], model: str = "") -> str:
    lines = [f"model: `{model}`", "",
             "| test set | n | QWK | Monk 1-3 | Monk 4-7 | Monk 8-10 | exact | clean called 0 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['n']} | {_f(r['qwk'])} | {_f(r['monk_1-3'])} | "
                     f"{_f(r['monk_4-7'])} | {_f(r['monk_8-10'])} | {_f(r['exact'])} | "
                     f"{_f(r['clean_called_0'])} |")
    return "\n".join(lines) + "\n"
