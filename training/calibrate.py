"""Decision calibration of the ordinal head: per-rank logit offsets chosen on validation patients.

The CORN head gives five conditional logits ``c_k = logit P(y > k | y > k-1)``; the score is the
argmax of the class probabilities built from them. Adding an offset ``d_k`` to ``c_k`` moves the
decision between "k" and "more than k" without retraining anything: ``d_0 < 0`` makes "0" (a
clean leg) more likely, which is what a false mottling finding (0 called 1 or more raises the
hypoperfusion flag) asks for.

The offsets are chosen on a run's VALIDATION patients (its ``splits.csv``, rows ``val``: held-out
training patients, never a fresh test set), by coordinate search on a grid:

- ``clean90``: the highest validation QWK among offsets that call at least ``min_clean`` of the
  clean validation legs 0 *in every renderer* of the validation set (the manifest's
  ``generator_version`` family); while no offset reaches it, the highest such share wins.
- ``cost``: the lowest mean cost, ``(y - pred)^2``, with a false finding (0 called 1 or more)
  weighted ``false_finding_weight`` times.

``fold_offsets`` adds them to the head's bias, so ``mottling export --calibrate`` writes a model
whose probabilities (and so the score) already carry them: inference code and the parity check
are unchanged, and the offsets are recorded in the card.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mottling import metrics as M
from training.data import N_CLASSES, Record, read_manifest, read_splits

log = logging.getLogger(__name__)
OBJECTIVES = ("clean90", "cost")
GRID = np.round(np.arange(-4.0, 4.0001, 0.25), 2)


# -- the decision, in numpy (the same formula as MottlingNet.probabilities for "corn") ------------
def corn_probabilities(logits: np.ndarray, offsets: Sequence[float] | None = None) -> np.ndarray:
    c = np.asarray(logits, dtype=np.float64)
    if offsets is not None:
        c = c + np.asarray(offsets, dtype=np.float64).reshape(1, -1)
    log_s = -np.logaddexp(0.0, -c)                       # log sigmoid(c)
    prev = np.exp(np.concatenate([np.zeros((len(c), 1)), np.cumsum(log_s, axis=1)], axis=1))
    stop = np.concatenate([1.0 / (1.0 + np.exp(c)), np.ones((len(c), 1))], axis=1)
    return prev * stop


def decide(logits: np.ndarray, offsets: Sequence[float] | None = None) -> np.ndarray:
    return corn_probabilities(logits, offsets).argmax(axis=1)


def renderer_of(r: Record) -> str:
    """``photos/1.2`` -> ``photos``, ``photos-ward/1.1`` -> ``photos-ward``; else ``all``."""
    v = r.extra.get("generator_version") or ""
    return v.split("/")[0] or "all"


def clean_rates(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Share of clean legs (score 0) called 0, per group that has clean legs."""
    out = {}
    for g in sorted(set(groups.tolist())):
        m = (groups == g) & (y == 0)
        if m.any():
            out[g] = float((pred[m] == 0).mean())
    return out


def cost(y: np.ndarray, pred: np.ndarray, false_finding_weight: float) -> float:
    c = (y - pred).astype(np.float64) ** 2
    c[(y == 0) & (pred > 0)] *= false_finding_weight
    return float(c.mean())


def _score(y, pred, groups, offsets, objective, min_clean, ffw):
    shift = -float(np.abs(offsets).sum())              # ties: the smallest change wins
    if objective == "cost":
        return (-cost(y, pred, ffw), shift)
    rates = clean_rates(y, pred, groups)
    worst = min(rates.values()) if rates else 1.0
    qwk = M.quadratic_weighted_kappa(y, pred)
    qwk = -1.0 if np.isnan(qwk) else qwk               # one predicted class: no agreement
    return (1, qwk, shift) if worst >= min_clean else (0, worst, qwk, shift)


def fit_offsets(logits: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
                objective: str = "clean90", min_clean: float = 0.9,
                false_finding_weight: float = 3.0, ranks: Sequence[int] | None = None,
                grid: np.ndarray = GRID, sweeps: int = 4) -> np.ndarray:
    """Offsets for the ranks in ``ranks`` (default all), by coordinate search from zero."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r} (one of {OBJECTIVES})")
    logits, y = np.asarray(logits, np.float64), np.asarray(y)
    groups = np.asarray(groups) if groups is not None else np.array(["all"] * len(y))
    ranks = list(range(logits.shape[1])) if ranks is None else list(ranks)
    d = np.zeros(logits.shape[1])
    best = _score(y, decide(logits, d), groups, d, objective, min_clean, false_finding_weight)
    for _ in range(sweeps):
        changed = False
        for k in ranks:
            for v in grid:
                trial = d.copy()
                trial[k] = v
                s = _score(y, decide(logits, trial), groups, trial, objective, min_clean,
                           false_finding_weight)
                if s > best:
                    best, d, changed = s, trial, True
        if not changed:
            break
    return d


def summary(logits: np.ndarray, y: np.ndarray, groups: np.ndarray,
            offsets: Sequence[float] | None = None) -> dict[str, Any]:
    pred = decide(logits, offsets)
    return {"n": int(len(y)), "qwk": M.quadratic_weighted_kappa(y, pred),
            "exact": M.exact_accuracy(y, pred), "clean_called_0": clean_rates(y, pred, groups)}


# -- logits from a checkpoint -----------------------------------------------------------------
def head_logits(net, batch: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(batch)))["logits"].numpy().astype(
            np.float64)


def logits_for_records(net, spec, records: list[Record], batch_size: int = 32,
                       flip: bool = False) -> np.ndarray:
    from mottling.photo.decode import load_photo
    from mottling.photo.preprocess import to_input

    out = []
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        x = np.stack([to_input(load_photo(r.path, spec.input_size).image, spec)[0]
                      for r in chunk]).astype(np.float32)
        out.append(head_logits(net, x[:, :, :, ::-1] if flip else x))
    return np.concatenate(out) if out else np.zeros((0, N_CLASSES - 1))


def validation_records(manifests: str, splits_file: str | Path) -> list[Record]:
    """Rows of ``manifests`` (comma-separated) whose patient is ``val`` in ``splits_file``."""
    assignment = read_splits(Path(splits_file))
    records = [r for m in str(manifests).split(",") for r in read_manifest(m.strip())
               if assignment.get(r.patient_id) == "val"]
    if not records:
        raise ValueError(f"no validation rows of {manifests} in {splits_file}")
    return records


def calibrate(net, spec, manifests: str, splits_file: str | Path, objective: str = "clean90",
              min_clean: float = 0.9, false_finding_weight: float = 3.0,
              ranks: Sequence[int] | None = None, threads: int = 2) -> dict[str, Any]:
    """Choose offsets for ``net`` (a CORN ``MottlingNet``) on the validation patients."""
    import torch

    if getattr(net, "head_name", "corn") != "corn":
        raise ValueError(f"calibration needs the corn head, not {net.head_name!r}")
    torch.set_num_threads(threads)
    records = validation_records(manifests, splits_file)
    logits = logits_for_records(net.eval(), spec, records)
    y = np.array([r.score for r in records])
    groups = np.array([renderer_of(r) for r in records])
    d = fit_offsets(logits, y, groups, objective, min_clean, false_finding_weight, ranks)
    return {"offsets": [float(v) for v in d], "objective": objective, "min_clean": min_clean,
            "false_finding_weight": false_finding_weight,
            "ranks": list(range(N_CLASSES - 1)) if ranks is None else list(ranks),
            "validation": {"manifests": str(manifests), "splits_file": str(splits_file),
                           "images": len(records),
                           "patients": len({r.patient_id for r in records})},
            "validation_before": summary(logits, y, groups),
            "validation_after": summary(logits, y, groups, d)}


def fold_offsets(net, offsets: Sequence[float]) -> None:
    """Add ``offsets`` to the CORN head's bias in place (the exported graph then carries them)."""
    import torch

    if net.head_name != "corn":
        raise ValueError(f"offsets fold into the corn head only, not {net.head_name!r}")
    d = torch.as_tensor(np.asarray(offsets, dtype=np.float32))
    if d.shape != net.out.bias.shape:
        raise ValueError(f"{d.numel()} offsets for a head with {net.out.bias.numel()} outputs")
    with torch.no_grad():
        net.out.bias.add_(d)
