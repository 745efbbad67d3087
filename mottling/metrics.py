"""Agreement and calibration metrics, torch-free.

Used by the training report, the batch agreement report and the benchmarks, so a kappa means the
same thing everywhere. Scores are integers ``0 .. n_classes-1``; CRT values are floats in seconds.
"""

from __future__ import annotations

import math

import numpy as np

from mottling.scale import N_CLASSES


def _as_int_labels(a, n_classes: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of scores, got shape {arr.shape}")
    if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
        raise ValueError("scores must be whole numbers")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"scores must lie in 0..{n_classes - 1}")
    return arr


def _paired(a, b, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_int_labels(a, n_classes), _as_int_labels(b, n_classes)
    if x.shape != y.shape:
        raise ValueError(f"the two ratings differ in length: {x.size} vs {y.size}")
    return x, y


def confusion_matrix(a, b, n_classes: int = N_CLASSES) -> np.ndarray:
    """Counts ``m[i, j]`` of items rated ``i`` by ``a`` (rows, the reference) and ``j`` by ``b``."""
    x, y = _paired(a, b, n_classes)
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (x, y), 1)
    return m


def _weighted_kappa(a, b, n_classes: int, weights: str | None) -> float:
    m = confusion_matrix(a, b, n_classes).astype(np.float64)
    n = m.sum()
    if n == 0:
        return float("nan")
    idx = np.arange(n_classes)
    if weights == "quadratic":
        w = (idx[:, None] - idx[None, :]) ** 2 / max(1, (n_classes - 1) ** 2)
    elif weights == "linear":
        w = np.abs(idx[:, None] - idx[None, :]) / max(1, n_classes - 1)
    else:
        w = (idx[:, None] != idx[None, :]).astype(np.float64)
    expected = np.outer(m.sum(axis=1), m.sum(axis=0)) / n
    denom = (w * expected).sum()
    if denom == 0:
        # Both raters used one and the same category throughout: perfect agreement by convention
        # when they agree, undefined otherwise.
        return 1.0 if (w * m).sum() == 0 else float("nan")
    return float(1.0 - (w * m).sum() / denom)


def quadratic_weighted_kappa(a, b, n_classes: int = N_CLASSES) -> float:
    """Cohen's kappa with quadratic weights (the usual agreement figure for ordinal scores)."""
    return _weighted_kappa(a, b, n_classes, "quadratic")


def cohen_kappa(a, b, n_classes: int = N_CLASSES, weights: str | None = None) -> float:
    """Cohen's kappa, unweighted by default (``weights`` may be "linear" or "quadratic")."""
    return _weighted_kappa(a, b, n_classes, weights)


def mae(a, b) -> float:
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError("the two inputs differ in length")
    return float(np.abs(x - y).mean()) if x.size else float("nan")


def exact_accuracy(a, b) -> float:
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        raise ValueError("the two inputs differ in length")
    return float((x == y).mean()) if x.size else float("nan")


def within_one_accuracy(a, b) -> float:
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError("the two inputs differ in length")
    return float((np.abs(x - y) <= 1).mean()) if x.size else float("nan")


def expected_calibration_error(probs, labels, n_bins: int = 10) -> tuple[float, list[dict]]:
    """Top-label ECE: confidence (max probability) against accuracy, in ``n_bins`` equal bins.

    Returns the ECE and one dict per bin (``lo``, ``hi``, ``count``, ``confidence``, ``accuracy``;
    the last two are ``None`` for an empty bin), which is what a reliability diagram draws.
    """
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels).astype(np.int64)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError("probs must be (N, C) and labels (N,)")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    n = max(1, y.size)
    ece = 0.0
    bins = []
    for i in range(n_bins):
        lo, hi = edges[i], edges[i + 1]
        sel = (conf > lo) & (conf <= hi) if i else (conf >= lo) & (conf <= hi)
        count = int(sel.sum())
        if count:
            c, acc = float(conf[sel].mean()), float(correct[sel].mean())
            ece += count / n * abs(c - acc)
        else:
            c = acc = None
        bins.append({"lo": float(lo), "hi": float(hi), "count": count,
                     "confidence": c, "accuracy": acc})
    return float(ece), bins


def bland_altman(a, b) -> dict:
    """Bias (mean of ``b - a``), SD of the differences and 95% limits of agreement."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError("the two inputs differ in length")
    d = y - x
    n = int(d.size)
    if n == 0:
        return {"bias": float("nan"), "sd": float("nan"), "loa_low": float("nan"),
                "loa_high": float("nan"), "n": 0}
    bias = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    return {"bias": bias, "sd": sd, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd,
            "n": n}


def icc_2_1(a, b) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single rater (Shrout & Fleiss)."""
    x = np.column_stack([np.asarray(a, np.float64), np.asarray(b, np.float64)])
    n, k = x.shape
    if n < 2:
        return float("nan")
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    if denom == 0 or not math.isfinite(denom):
        return float("nan")
    return float((msr - mse) / denom)
