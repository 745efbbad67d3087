"""The training loop: AdamW + cosine, early stopping on validation QWK, a checkpoint every epoch.

Every random draw is seeded from (seed, epoch), so ``resume`` after epoch k continues exactly as
the uninterrupted run would have: same batches, same augmentations, same dropout masks.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mottling.metrics import exact_accuracy, mae, quadratic_weighted_kappa
from training import checkpoint
from training.augment import PhonePhotoAugment
from training.config import TrainConfig
from training.data import (EpochSampler, ManifestDataset, describe, make_splits, read_manifest,
                           read_splits, write_splits)
from training.feature_cache import FeatureCache, forward_any
from training.model import MottlingNet, landmark_loss, seg_loss

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _param_groups(net: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        (no_decay if p.ndim <= 1 or name.startswith("cut") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(total_steps: int, warmup_steps: int, min_ratio: float):
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def _loader(ds, batch_size: int, sampler=None, num_workers: int = 0):
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler, shuffle=False,
                                       num_workers=num_workers, drop_last=False,
                                       persistent_workers=False)


def _to(inputs, device):
    if isinstance(inputs, (list, tuple)):
        return tuple(t.to(device) for t in inputs)
    return inputs.to(device)


@torch.no_grad()
def predict_loader(net: MottlingNet, loader, device) -> tuple[np.ndarray, np.ndarray, float]:
    """Class probabilities, true scores and the mean class loss over a loader."""
    net.eval()
    probs, labels, losses, n = [], [], 0.0, 0
    for x, y, _m, _h, _i in loader:
        y = y.to(device)
        out = forward_any(net, _to(x, device))
        losses += float(net.class_loss(out["logits"], y)) * len(y)
        n += len(y)
        probs.append(net.probabilities(out["logits"]).float().cpu().numpy())
        labels.append(y.cpu().numpy())
    return np.concatenate(probs), np.concatenate(labels), losses / max(1, n)


def split_records(cfg: TrainConfig, run_dir: Path, reuse: bool):
    # several manifests (e.g. one per renderer) may be given, comma-separated
    records = [r for path in cfg.data.split(",") for r in read_manifest(path.strip(),
                                                                           cfg.max_images)]
    splits_path = run_dir / "splits.csv"
    if reuse and splits_path.is_file():
        assignment = read_splits(splits_path)
    else:
        val_frac = 0.0 if cfg.val_data else cfg.val_fraction
        assignment = make_splits(records, val_frac, cfg.test_fraction, cfg.seed)
        write_splits(records, assignment, splits_path)
    train = [r for r in records if assignment[r.patient_id] == "train"]
    val = [r for r in records if assignment[r.patient_id] == "val"]
    if cfg.val_data:
        val = read_manifest(cfg.val_data)
    if not train:
        raise ValueError("no training images left after the split")
    if not val:
        log.warning("no validation images: early stopping and 'best' fall back to the train loss")
    return train, val


def build_data(cfg: TrainConfig, run_dir: Path, net: MottlingNet, reuse: bool):
    """Train/val datasets (photos, or cached frozen-layer activations) and their loaders."""
    train_recs, val_recs = split_records(cfg, run_dir, reuse=reuse)
    spec = checkpoint.spec_from_config(cfg)
    augment = (PhonePhotoAugment(cfg.augment_strength, cfg.augment_profile, fade=cfg.augment_fade,
                                 zoom_out=cfg.augment_zoom_out) if cfg.augment else None)
    train_ds = ManifestDataset(train_recs, spec, augment, cfg.seed, cfg.cache_images,
                               landmark_maps=cfg.landmark_head)
    val_ds = ManifestDataset(val_recs, spec, None, cfg.seed, cfg.cache_images,
                             landmark_maps=cfg.landmark_head)
    info = {"train": describe(train_recs), "val": describe(val_recs) if val_recs else {}}
    if cfg.cache_features:
        train_ds = FeatureCache(net, train_ds, cfg.cache_views, cfg.threads)
        info["feature_cache_s"] = round(train_ds.build_s, 1)
        if val_recs:
            val_ds = FeatureCache(net, val_ds, 1, cfg.threads)
    sampler = EpochSampler([r.score for r in train_recs], cfg.seed, cfg.balanced_sampler)
    info["sampler"] = "class-balanced" if sampler.balanced else "shuffle"
    loaders = (_loader(train_ds, cfg.batch_size, sampler, cfg.num_workers),
               _loader(val_ds, cfg.batch_size * 2, None, cfg.num_workers))
    return train_ds, sampler, loaders, bool(val_recs), info


def train_one_epoch(net: MottlingNet, loader, opt, sched, cfg: TrainConfig, device
                    ) -> dict[str, float]:
    """One pass over the training loader; returns the mean losses and the throughput."""
    t0 = time.perf_counter()
    net.train()
    tot, tot_cls, tot_seg, n = 0.0, 0.0, 0.0, 0
    for x, y, m, has_m, _ in loader:
        y, m, has_m = y.to(device), m.to(device), has_m.to(device).float()
        out = forward_any(net, _to(x, device))
        l_cls = net.class_loss(out["logits"], y, cfg.label_smoothing)
        l_seg = seg_loss(out["seg_logits"], m[:, :1], has_m) if out["seg_logits"] is not None \
            else l_cls * 0.0
        loss = l_cls + cfg.seg_weight * l_seg
        if out.get("lmk_logits") is not None:
            loss = loss + cfg.landmark_weight * landmark_loss(out["lmk_logits"], m[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        k = len(y)
        tot += float(loss.detach()) * k
        tot_cls += float(l_cls.detach()) * k
        tot_seg += float(l_seg.detach()) * k
        n += k
    return {"lr": opt.param_groups[0]["lr"], "train_loss": tot / n, "train_class_loss": tot_cls / n,
            "train_seg_loss": tot_seg / n, "train_images_per_s": n / (time.perf_counter() - t0)}


def validate(net: MottlingNet, loader, device) -> dict[str, float]:
    probs, labels, vloss = predict_loader(net, loader, device)
    pred = probs.argmax(1)
    return {"val_loss": vloss, "val_qwk": quadratic_weighted_kappa(labels, pred),
            "val_accuracy": exact_accuracy(labels, pred), "val_mae": mae(labels, pred)}


def _optimiser(net: MottlingNet, cfg: TrainConfig, steps_per_epoch: int):
    params = [g for g in _param_groups(net, cfg.weight_decay)]
    for g in params:
        g["params"] = [p for p in g["params"] if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(
        steps_per_epoch * cfg.epochs, int(cfg.warmup_epochs * steps_per_epoch), cfg.min_lr_ratio))
    return opt, sched


def _start(cfg: TrainConfig, resume: bool, run_dir: Path):
    """The saved state when resuming (its config wins for everything that shapes the weights)."""
    last_path = run_dir / "last.pt"
    state = checkpoint.load(last_path) if resume and last_path.is_file() else None
    if resume and state is None:
        raise FileNotFoundError(f"--resume: no {last_path} to continue from")
    if state is not None:
        saved = TrainConfig.from_dict(state["config"])
        cfg = saved.replace(epochs=cfg.epochs, patience=cfg.patience, out_dir=cfg.out_dir)
    return cfg, state


def train(cfg: TrainConfig, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train (or resume) a run in ``cfg.out_dir``. ``stop_after`` ends after that many epochs of
    this invocation (a time-boxed run that a later ``resume`` continues)."""
    torch.set_num_threads(max(1, cfg.threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(cfg.device)
    run_dir = Path(cfg.out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    best_path = run_dir / "best.pt"
    cfg, state = _start(cfg, resume, run_dir)
    cfg.save(run_dir / "config.yaml")
    seed_everything(cfg.seed)
    net = MottlingNet.from_config(cfg).to(device)
    if cfg.init and state is None:
        checkpoint.init_weights(net, cfg.init)
    train_ds, sampler, (train_loader, val_loader), has_val, data_info = build_data(
        cfg, run_dir, net, reuse=state is not None)
    (run_dir / "data.json").write_text(json.dumps(data_info, indent=2))
    log.info("data: %s", data_info)
    opt, sched = _optimiser(net, cfg, math.ceil(len(train_ds) / cfg.batch_size))
    start_epoch, best, best_epoch, bad_epochs, history = 0, -math.inf, -1, 0, []
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
        best, best_epoch = state["best_score"], state["best_epoch"]
        bad_epochs, history = state["bad_epochs"], state["history"]
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])
    metrics_path = run_dir / "metrics.jsonl"
    metrics_path.write_text("".join(json.dumps(h) + "\n" for h in history))
    commit = checkpoint.git_commit()

    epochs_run = 0
    for epoch in range(start_epoch, cfg.epochs):
        if bad_epochs >= cfg.patience or (stop_after is not None and epochs_run >= stop_after):
            break
        t0 = time.perf_counter()
        train_ds.set_epoch(epoch)
        sampler.set_epoch(epoch)
        torch.manual_seed(cfg.seed * 7_919 + epoch)        # dropout masks
        row: dict[str, Any] = {"epoch": epoch,
                               **train_one_epoch(net, train_loader, opt, sched, cfg, device)}
        evaluated = has_val and ((epoch + 1) % cfg.eval_every == 0 or epoch == cfg.epochs - 1)
        if evaluated:
            row.update(validate(net, val_loader, device))
        row["epoch_s"] = time.perf_counter() - t0
        if evaluated or not has_val:
            score = row["val_qwk"] if evaluated else -row["train_loss"]
            if not math.isnan(score) and score > best + 1e-6:
                best, best_epoch, bad_epochs = score, epoch, 0
                checkpoint.save(best_path, config=cfg.to_dict(), model=net.state_dict(),
                                epoch=epoch, metrics=row, git_commit=commit, data=data_info)
            else:
                bad_epochs += 1
        row["best_epoch"] = best_epoch
        history.append(row)
        with metrics_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        checkpoint.save(run_dir / "last.pt", config=cfg.to_dict(), model=net.state_dict(),
                        optimizer=opt.state_dict(), scheduler=sched.state_dict(), epoch=epoch,
                        best_score=best, best_epoch=best_epoch, bad_epochs=bad_epochs,
                        history=history, git_commit=commit, data=data_info)
        log.info("epoch %d: %s", epoch, {k: round(v, 4) if isinstance(v, float) else v
                                          for k, v in row.items()})
        epochs_run += 1

    from training.plots import plot_training_curves

    plot_training_curves(history, run_dir / "training_curves.png")
    summary = {"run_dir": str(run_dir), "epochs_completed": len(history), "best_epoch": best_epoch,
               "best_val_qwk": best if has_val else None,
               "train_wall_s": sum(h["epoch_s"] for h in history),
               "feature_cache_s": data_info.get("feature_cache_s"),
               "stopped_early": bad_epochs >= cfg.patience, "git_commit": commit,
               "device": str(device)}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return run_dir
