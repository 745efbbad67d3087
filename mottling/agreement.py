"""Agreement between a batch run and human raters: is the model as reproducible as the raters?

The model is judged against the raters' consensus and against each rater, and the raters are
judged against each other: human inter-rater agreement is the reference the model's figures are
read against (mottling kappa 0.87 in Ait-Oufella 2011; CRT kappa 0.27-0.56 by eye).

Labels are a long CSV, one row per (file, rater): ``path``, ``rater`` and ``score`` and/or
``crt_s``, with optional ``skin_tone`` (Monk 1-10), ``site`` (finger/knee) and ``centre``. An empty
cell is no rating (an "unreadable" photo or "unusable" video in a ``mottling rate`` file). Several
files may be given, e.g. one ``RATER.csv`` per rater; other columns are ignored. The consensus score is the median of the raters' scores (a half rounds up, to
the worse score); the consensus CRT is their mean.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import numpy as np

from mottling import metrics
from mottling.errors import InputError
from mottling.scale import DEFAULT_THRESHOLDS, SITES, CrtThresholds
from mottling.scale import N_CLASSES as N_SCORES
from mottling.skin import monk_group



@dataclass
class Labels:
    scores: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    crts: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    # the release moment a rater marked (``mottling rate``), on the video's own timestamps
    releases: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    skin_tone: dict[str, int] = field(default_factory=dict)
    site: dict[str, str] = field(default_factory=dict)
    centre: dict[str, str] = field(default_factory=dict)

    @property
    def raters(self) -> list[str]:
        names = {r for d in (*self.scores.values(), *self.crts.values()) for r in d}
        return sorted(names)


def _cell(rec: dict, key: str) -> str:
    return str(rec.get(key) or "").strip()


def load_labels(path: str | Path) -> Labels:
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the labels {path}: {err}") from None
    if not rows:
        raise InputError(f"the labels file {path} has no rows")
    cols = set(rows[0])
    if not {"path", "rater"} <= cols or not cols & {"score", "crt_s"}:
        raise InputError(f"the labels file {path} needs columns path, rater and score and/or "
                         f"crt_s (it has: {', '.join(rows[0])})")
    labels = Labels()
    for line, rec in enumerate(rows, start=2):
        item, rater = _cell(rec, "path").replace("\\", "/"), _cell(rec, "rater")
        if not item or not rater:
            raise InputError(f"{path}, line {line}: path and rater must not be empty")
        try:
            if _cell(rec, "score"):
                score = float(_cell(rec, "score"))
                if score not in range(N_SCORES):
                    raise ValueError(f"score {score:g} is not one of 0-5")
                labels.scores[item][rater] = int(score)
            if _cell(rec, "crt_s"):
                crt = float(_cell(rec, "crt_s"))
                if not math.isfinite(crt) or crt < 0:
                    raise ValueError(f"crt_s {crt} is not a time")
                labels.crts[item][rater] = crt
            if _cell(rec, "release_s") and _cell(rec, "crt_s"):
                labels.releases[item][rater] = float(_cell(rec, "release_s"))
            if _cell(rec, "skin_tone"):
                labels.skin_tone[item] = int(float(_cell(rec, "skin_tone")))
                monk_group(labels.skin_tone[item])   # validates 1-10
        except ValueError as err:
            raise InputError(f"{path}, line {line}: {err}") from None
        if _cell(rec, "site"):
            labels.site[item] = _cell(rec, "site").lower()
        if _cell(rec, "centre"):
            labels.centre[item] = _cell(rec, "centre")
    return labels


def load_label_files(paths: Iterable[str | Path]) -> Labels:
    """Several label files as one (e.g. the ``RATER.csv`` of each rater from ``mottling rate``).

    The same rater answering the same file in two of them is refused: it would count twice."""
    merged = Labels()
    for path in paths:
        one = load_labels(path)
        for table, into in ((one.scores, merged.scores), (one.crts, merged.crts),
                            (one.releases, merged.releases)):
            for item, by_rater in table.items():
                twice = set(by_rater) & set(into[item])
                if twice:
                    raise InputError(f"{path}: {', '.join(sorted(twice))} already rated {item} "
                                     "in an earlier labels file")
                into[item].update(by_rater)
        merged.skin_tone.update(one.skin_tone)
        merged.site.update(one.site)
        merged.centre.update(one.centre)
    return merged


def match_paths(result_paths: Iterable[str], label_paths: Iterable[str]) -> dict[str, str]:
    """``{label path: result path}``: exact, else one is a path suffix of the other, else a
    unique file name. A label that matches nothing is left out (and counted as unmatched)."""
    results = list(result_paths)
    exact = set(results)
    by_name = defaultdict(list)
    for p in results:
        by_name[PurePosixPath(p).name].append(p)
    out = {}
    for label in label_paths:
        if label in exact:
            out[label] = label
            continue
        hits = [p for p in results if p.endswith("/" + label) or label.endswith("/" + p)]
        if not hits:
            hits = by_name.get(PurePosixPath(label).name, [])
        if len(hits) == 1:
            out[label] = hits[0]
    return out


def consensus_score(ratings: Iterable[int]) -> int:
    return int(math.floor(float(np.median(list(ratings))) + 0.5))


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def score_agreement(reference: list[int], other: list[int]) -> dict[str, Any]:
    """``other`` judged against ``reference`` (the confusion matrix has the reference as rows)."""
    if not reference:
        return {"n": 0}
    return {"n": len(reference),
            "qwk": _num(metrics.quadratic_weighted_kappa(reference, other, N_SCORES)),
            "exact": _num(metrics.exact_accuracy(reference, other)),
            "within_one": _num(metrics.within_one_accuracy(reference, other)),
            "confusion": metrics.confusion_matrix(reference, other, N_SCORES).tolist()}


def crt_agreement(reference: list[float], other: list[float], sites: list[str],
                  thresholds: CrtThresholds = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    """Bland-Altman (bias = other - reference), ICC(2,1) and agreement on "prolonged"."""
    if not reference:
        return {"n": 0}
    limit = [thresholds.for_site(s) for s in sites]
    ref_long = [int(r > t) for r, t in zip(reference, limit)]
    oth_long = [int(o > t) for o, t in zip(other, limit)]
    ba = metrics.bland_altman(reference, other)
    return {"n": len(reference), "bias_s": _num(ba["bias"]), "sd_s": _num(ba["sd"]),
            "loa_low_s": _num(ba["loa_low"]), "loa_high_s": _num(ba["loa_high"]),
            "icc_2_1": _num(metrics.icc_2_1(reference, other)),
            "threshold_agreement": _num(metrics.exact_accuracy(ref_long, oth_long)),
            "threshold_kappa": _num(metrics.cohen_kappa(ref_long, oth_long, n_classes=2))}


def _group_of(item: str, labels: Labels, how: str) -> str | None:
    if how == "skin_tone":
        tone = labels.skin_tone.get(item)
        return None if tone is None else monk_group(tone)
    return labels.centre.get(item)


def _release_agreement(labels: Labels, by_path: dict[str, dict],
                       matched: dict[str, str]) -> dict[str, Any]:
    """The model's release moment against the mean of the raters' marked release frames: the
    step every CRT starts from, checked on its own (bias = model - raters)."""
    ref, model = [], []
    for item, by_rater in sorted(labels.releases.items()):
        row = by_path.get(matched.get(item, ""))
        if row is not None and row.get("status") == "ok" and row.get("release_s") is not None:
            ref.append(float(np.mean(list(by_rater.values()))))
            model.append(float(row["release_s"]))
    if not ref:
        return {"n": 0}
    ba = metrics.bland_altman(ref, model)
    return {"n": len(ref), "bias_s": _num(ba["bias"]), "loa_low_s": _num(ba["loa_low"]),
            "loa_high_s": _num(ba["loa_high"]),
            "median_abs_error_s": _num(float(np.median(np.abs(np.subtract(model, ref)))))}


@dataclass
class Agreement:
    """Everything ``report.md`` shows, as plain data (also written as ``agreement.json``)."""

    raters: list[str]
    scores: dict[str, Any]
    crt: dict[str, Any]
    coverage: dict[str, Any]
    # kept for the plots
    score_pairs: tuple[list[int], list[int]] = ((), ())  # type: ignore[assignment]
    crt_pairs: tuple[list[float], list[float], list[str]] = ((), (), ())  # type: ignore[assignment]

    def to_dict(self) -> dict[str, Any]:
        return {"raters": self.raters, "scores": self.scores, "crt": self.crt,
                "coverage": self.coverage}


def compute_agreement(rows: list[dict[str, Any]], labels: Labels,
                      thresholds: CrtThresholds = DEFAULT_THRESHOLDS) -> Agreement:
    """``rows``: the batch table as dicts (``path``, ``kind``, ``status``, ``score``, ``crt_s``,
    ``site``). Only rows with status ok carry a model value; the others are counted, not guessed."""
    by_path = {r["path"]: r for r in rows}
    label_paths = sorted(set(labels.scores) | set(labels.crts))
    matched = match_paths(by_path, label_paths)
    raters = labels.raters
    coverage = {"model_results": bool(rows), "labelled_files": len(label_paths),
                "matched": len(matched),
                "unmatched": sorted(set(label_paths) - set(matched))[:20]}

    # ---- scores --------------------------------------------------------------------------
    model_score = {}
    for item in labels.scores:
        row = by_path.get(matched.get(item, ""))
        if row is not None and row.get("status") == "ok" and row.get("score") is not None:
            model_score[item] = int(row["score"])
    coverage["scores_labelled"] = len(labels.scores)
    coverage["scores_with_model_result"] = len(model_score)
    items = sorted(model_score)
    cons = {i: consensus_score(labels.scores[i].values()) for i in labels.scores}
    scores: dict[str, Any] = {
        "model_vs_consensus": score_agreement([cons[i] for i in items],
                                              [model_score[i] for i in items]),
        "model_vs_rater": {}, "rater_vs_rater": {}, "rater_vs_others": {}, "by_group": {}}
    for r in raters:
        its = [i for i in items if r in labels.scores[i]]
        scores["model_vs_rater"][r] = score_agreement([labels.scores[i][r] for i in its],
                                                      [model_score[i] for i in its])
        others = [i for i in labels.scores if r in labels.scores[i] and len(labels.scores[i]) > 1]
        scores["rater_vs_others"][r] = score_agreement(
            [consensus_score(v for k, v in labels.scores[i].items() if k != r) for i in others],
            [labels.scores[i][r] for i in others])
    for a, b in itertools.combinations(raters, 2):
        its = [i for i in labels.scores if a in labels.scores[i] and b in labels.scores[i]]
        scores["rater_vs_rater"][f"{a} vs {b}"] = score_agreement(
            [labels.scores[i][a] for i in its], [labels.scores[i][b] for i in its])
    for how in ("skin_tone", "centre"):
        groups = defaultdict(list)
        for i in items:
            g = _group_of(i, labels, how)
            if g is not None:
                groups[g].append(i)
        scores["by_group"][how] = {
            g: {k: v for k, v in score_agreement([cons[i] for i in its],
                                                 [model_score[i] for i in its]).items()
                if k != "confusion"} for g, its in sorted(groups.items())}

    # ---- CRT -----------------------------------------------------------------------------
    model_crt, site_of, statuses = {}, {}, defaultdict(int)
    for item in labels.crts:
        row = by_path.get(matched.get(item, ""))
        site = (row or {}).get("site") or labels.site.get(item)
        if site in SITES:
            site_of[item] = site
        statuses["missing" if row is None else str(row.get("status"))] += 1
        if row is not None and row.get("status") == "ok" and row.get("crt_s") is not None \
                and site in SITES:
            model_crt[item] = float(row["crt_s"])
    coverage["crt_labelled"] = len(labels.crts)
    coverage["crt_model_status"] = dict(statuses)
    vitems = sorted(model_crt)
    crt_cons = {i: float(np.mean(list(labels.crts[i].values()))) for i in labels.crts}
    crt: dict[str, Any] = {
        "model_vs_consensus": crt_agreement([crt_cons[i] for i in vitems],
                                            [model_crt[i] for i in vitems],
                                            [site_of[i] for i in vitems], thresholds),
        "model_vs_rater": {}, "rater_vs_rater": {}, "by_group": {}}
    for r in raters:
        its = [i for i in vitems if r in labels.crts[i]]
        crt["model_vs_rater"][r] = crt_agreement([labels.crts[i][r] for i in its],
                                                 [model_crt[i] for i in its],
                                                 [site_of[i] for i in its], thresholds)
    for a, b in itertools.combinations(raters, 2):
        its = [i for i in labels.crts if a in labels.crts[i] and b in labels.crts[i]
               and i in site_of]
        crt["rater_vs_rater"][f"{a} vs {b}"] = crt_agreement(
            [labels.crts[i][a] for i in its], [labels.crts[i][b] for i in its],
            [site_of[i] for i in its], thresholds)
    crt["release_model_vs_raters"] = _release_agreement(labels, by_path, matched)
    for how in ("site", "skin_tone", "centre"):
        groups = defaultdict(list)
        for i in vitems:
            g = site_of[i] if how == "site" else _group_of(i, labels, how)
            if g is not None:
                groups[g].append(i)
        crt["by_group"][how] = {g: crt_agreement([crt_cons[i] for i in its],
                                                 [model_crt[i] for i in its],
                                                 [site_of[i] for i in its], thresholds)
                                for g, its in sorted(groups.items())}
    return Agreement(raters, scores, crt, coverage,
                     score_pairs=([cons[i] for i in items], [model_score[i] for i in items]),
                     crt_pairs=([crt_cons[i] for i in vitems], [model_crt[i] for i in vitems],
                                [site_of[i] for i in vitems]))
