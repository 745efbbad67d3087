"""Write an ``Agreement`` as ``report.md``, ``agreement.json`` and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mottling.agreement import Agreement
from mottling.scale import DEFAULT_THRESHOLDS

PLOTS = {"confusion": "confusion_model_vs_consensus.png", "bland_altman": "bland_altman_crt.png",
         "kappa_groups": "score_qwk_by_skin_tone.png"}


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _score_table(title: str, entries: dict[str, dict]) -> list[str]:
    lines = [f"| {title} | n | QWK | exact | within 1 |", "|---|---:|---:|---:|---:|"]
    for name, m in entries.items():
        lines.append(f"| {name} | {m['n']} | {_f(m.get('qwk'))} | {_pct(m.get('exact'))} | "
                     f"{_pct(m.get('within_one'))} |")
    return lines


def _crt_table(title: str, entries: dict[str, dict]) -> list[str]:
    lines = [f"| {title} | n | bias (s) | 95% limits of agreement (s) | ICC(2,1) | "
             "same threshold decision | kappa |", "|---|---:|---:|---|---:|---:|---:|"]
    for name, m in entries.items():
        loa = (f"{_f(m.get('loa_low_s'))} to {_f(m.get('loa_high_s'))}" if m["n"] else "n/a")
        lines.append(f"| {name} | {m['n']} | {_f(m.get('bias_s'))} | {loa} | "
                     f"{_f(m.get('icc_2_1'))} | {_pct(m.get('threshold_agreement'))} | "
                     f"{_f(m.get('threshold_kappa'))} |")
    return lines


def _confusion_md(matrix: list[list[int]]) -> list[str]:
    lines = ["| consensus \\ model | " + " | ".join(str(k) for k in range(len(matrix))) + " |",
             "|---|" + "---:|" * len(matrix)]
    for k, row in enumerate(matrix):
        lines.append(f"| **{k}** | " + " | ".join(str(v) for v in row) + " |")
    return lines


def render_markdown(ag: Agreement, results_name: str, labels_name: str) -> str:
    s, c, cov = ag.scores, ag.crt, ag.coverage
    t = DEFAULT_THRESHOLDS
    out = ["# Agreement with human raters", "",
           f"Results `{results_name}` against labels `{labels_name}`; raters: "
           f"{', '.join(ag.raters) or 'none'}. Research use only: agreement on this archive, not "
           "a validation of the model.", "",
           "## Coverage", ""]
    with_model = cov.get("model_results", True)
    if not with_model:
        out += [f"- Labelled files: {cov['labelled_files']}. No model results were given: the "
                "raters are compared with each other only.", ""]
    else:
        out += [
           f"- Labelled files: {cov['labelled_files']}, matched to a result row: "
           f"{cov['matched']}." + (f" Unmatched (first 20): {', '.join(cov['unmatched'])}."
                                   if cov["unmatched"] else ""),
           f"- Scores: {cov['scores_labelled']} labelled photos, "
           f"{cov['scores_with_model_result']} with a model score (status ok).",
           f"- CRT: {cov['crt_labelled']} labelled videos; model status: "
           + (", ".join(f"{k} {v}" for k, v in sorted(cov["crt_model_status"].items())) or "none")
           + ". Rejected and failed videos are counted here, never turned into numbers.", ""]

    def keep(rows: dict[str, dict]) -> dict[str, dict]:
        return rows if with_model else {k: v for k, v in rows.items()
                                        if not k.startswith("model vs")}

    out += ["## Mottling score", "",
            "Raters against each other are the reference: the model is as reproducible as a "
            "rater when its figures against the consensus reach theirs.", ""]
    mvc = s["model_vs_consensus"]
    out += _score_table("comparison", keep({"model vs consensus": mvc,
                                       **{f"model vs {r}": m for r, m in s["model_vs_rater"].items()},
                                       **{f"{r} vs other raters' consensus": m
                                          for r, m in s["rater_vs_others"].items()},
                                       **s["rater_vs_rater"]}))
    if mvc["n"]:
        out += ["", "Confusion matrix, model against the consensus (rows: consensus):", ""]
        out += _confusion_md(mvc["confusion"])
        out += ["", f"![confusion]({PLOTS['confusion']})"]
    for how, groups in s["by_group"].items():
        if groups:
            out += ["", f"By {how.replace('_', ' ')} (model vs consensus):", ""]
            out += _score_table(how.replace("_", " "), groups)
    if s["by_group"].get("skin_tone"):
        out += ["", f"![qwk by skin tone]({PLOTS['kappa_groups']})"]
    out += ["", "## Capillary refill time", "",
            f"Bias is model minus reference. Prolonged means above {t.finger_s:g} s at the finger "
            f"and {t.knee_s:g} s at the knee.", ""]
    out += _crt_table("comparison", keep({"model vs consensus (mean)": c["model_vs_consensus"],
                                     **{f"model vs {r}": m for r, m in c["model_vs_rater"].items()},
                                     **c["rater_vs_rater"]}))
    rel = c.get("release_model_vs_raters", {"n": 0})
    if rel["n"]:
        out += ["", f"Release moment, model against the raters' marked release frame (mean of "
                f"raters), n={rel['n']}: bias {_f(rel['bias_s'], 3)} s, 95% limits "
                f"{_f(rel['loa_low_s'], 3)} to {_f(rel['loa_high_s'], 3)} s, median absolute "
                f"error {_f(rel['median_abs_error_s'], 3)} s."]
    if c["model_vs_consensus"]["n"]:
        out += ["", f"![Bland-Altman]({PLOTS['bland_altman']})"]
    for how, groups in c["by_group"].items():
        if groups:
            out += ["", f"By {how.replace('_', ' ')} (model vs consensus):", ""]
            out += _crt_table(how.replace("_", " "), groups)
    return "\n".join(out) + "\n"


def _plot_confusion(ag: Agreement, path: Path) -> None:
    import matplotlib.pyplot as plt

    m = np.asarray(ag.scores["model_vs_consensus"]["confusion"])
    fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > m.max() / 2 else "black", fontsize=8)
    ax.set_xlabel("model score")
    ax.set_ylabel("raters' consensus")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_title(f"QWK {_f(ag.scores['model_vs_consensus']['qwk'])}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_bland_altman(ag: Agreement, path: Path) -> None:
    import matplotlib.pyplot as plt

    ref, model, sites = (np.asarray(v) for v in ag.crt_pairs)
    m = ag.crt["model_vs_consensus"]
    mean, diff = (ref + model) / 2, model - ref
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    for site, marker in (("finger", "o"), ("knee", "s")):
        sel = sites == site
        if sel.any():
            ax.scatter(mean[sel], diff[sel], marker=marker, alpha=0.7, label=site)
    for y, style, text in ((m["bias_s"], "-", "bias"), (m["loa_low_s"], "--", "-1.96 SD"),
                           (m["loa_high_s"], "--", "+1.96 SD")):
        if y is not None:
            ax.axhline(y, linestyle=style, color="gray", linewidth=1)
            ax.annotate(f"{text} {y:.2f} s", (1.0, y), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=7)
    ax.set_xlabel("mean of model and raters' CRT (s)")
    ax.set_ylabel("model - raters (s)")
    ax.set_title(f"Bland-Altman, n={m['n']}, ICC {_f(m['icc_2_1'])}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_groups(ag: Agreement, path: Path) -> None:
    import matplotlib.pyplot as plt

    groups = ag.scores["by_group"]["skin_tone"]
    names = list(groups)
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=120)
    ax.bar(names, [groups[g].get("qwk") or 0.0 for g in names], color="#8a6d5a")
    for k, g in enumerate(names):
        ax.text(k, 0.02, f"n={groups[g]['n']}", ha="center", fontsize=7, color="white")
    ax.set_ylim(0, 1)
    ax.set_ylabel("QWK, model vs consensus")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(ag: Agreement, out_dir: str | Path, results_name: str,
                 labels_name: str) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"report": out / "report.md", "json": out / "agreement.json"}
    if ag.scores["model_vs_consensus"]["n"]:
        written["confusion"] = out / PLOTS["confusion"]
        _plot_confusion(ag, written["confusion"])
    if ag.crt["model_vs_consensus"]["n"]:
        written["bland_altman"] = out / PLOTS["bland_altman"]
        _plot_bland_altman(ag, written["bland_altman"])
    if ag.scores["by_group"].get("skin_tone"):
        written["kappa_groups"] = out / PLOTS["kappa_groups"]
        _plot_groups(ag, written["kappa_groups"])
    written["json"].write_text(json.dumps(ag.to_dict(), indent=2, allow_nan=False) + "\n")
    written["report"].write_text(render_markdown(ag, results_name, labels_name),
                                 encoding="utf-8")
    return written
