"""Figures for the run folder and the evaluation report (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_training_curves(history: list[dict], path: Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if history:
        ep = [h["epoch"] for h in history]
        ax1.plot(ep, [h["train_loss"] for h in history], "o-", label="train loss")
        ax1.plot(ep, [h["train_class_loss"] for h in history], ".--", label="train class loss")
        val = [(h["epoch"], h["val_loss"]) for h in history if "val_loss" in h]
        if val:
            ax1.plot(*zip(*val), "s-", label="val class loss")
        q = [(h["epoch"], h["val_qwk"]) for h in history if "val_qwk" in h]
        if q:
            ax2.plot(*zip(*q), "o-", label="val QWK")
        a = [(h["epoch"], h["val_accuracy"]) for h in history if "val_accuracy" in h]
        if a:
            ax2.plot(*zip(*a), "s--", label="val exact accuracy")
    ax1.set_xlabel("epoch"), ax1.set_title("loss"), ax1.legend(fontsize=8)
    ax2.set_xlabel("epoch"), ax2.set_title("validation agreement"), ax2.set_ylim(0, 1.02)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, path: Path, title: str = "confusion matrix") -> None:
    n = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(5, 4.4))
    row = matrix.sum(axis=1, keepdims=True).clip(min=1)
    ax.imshow(matrix / row, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center",
                    color="white" if matrix[i, j] / row[i, 0] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(n)), ax.set_yticks(range(n))
    ax.set_xlabel("predicted score"), ax.set_ylabel("reference score"), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(bins: list[dict], ece: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    mids = [(b["lo"] + b["hi"]) / 2 for b in bins]
    acc = [b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins]
    ax.bar(mids, acc, width=1 / len(bins), edgecolor="k", alpha=0.7, label="accuracy")
    conf = [(b["confidence"], b["accuracy"]) for b in bins if b["count"]]
    if conf:
        ax.plot(*zip(*conf), "ro", ms=4, label="mean confidence vs accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)"), ax.set_ylabel("accuracy")
    ax.set_title(f"reliability (ECE {ece:.3f})"), ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
