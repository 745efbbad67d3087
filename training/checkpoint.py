"""Checkpoints: what a run saves every epoch, and how a model is rebuilt from one."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import torch

from mottling.photo.preprocess import PreprocessSpec
from training.config import TrainConfig
from training.model import MottlingNet

log = logging.getLogger(__name__)
FORMAT = "mottling-checkpoint/1"


def git_commit(cwd: str | Path | None = None) -> str:
    """The commit the code was run from ("unknown" outside a git checkout)."""
    here = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def spec_from_config(cfg: TrainConfig) -> PreprocessSpec:
    return PreprocessSpec(cfg.input_size, tuple(cfg.mean), tuple(cfg.std), "letterbox")


def save(path: Path, **payload: Any) -> None:
    """Write atomically, so an interrupted save never leaves a half checkpoint behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    tmp.replace(path)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a mottling checkpoint")
    return ckpt


def model_from_checkpoint(path: str | Path, map_location="cpu"
                          ) -> tuple[MottlingNet, TrainConfig, dict[str, Any]]:
    ckpt = load(path, map_location)
    cfg = TrainConfig.from_dict(ckpt["config"])
    net = MottlingNet.from_config(cfg.replace(pretrained=False))  # the checkpoint has every weight
    net.load_state_dict(ckpt["model"])
    net.eval()
    return net, cfg, ckpt


def init_weights(net: MottlingNet, path: str | Path) -> list[str]:
    """Copy every tensor whose name and shape match (fine-tuning, a different head, ...)."""
    source = load(path)["model"]
    own = net.state_dict()
    taken = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(taken))
    net.load_state_dict(taken, strict=False)
    log.info("init from %s: %d tensors loaded, %d kept fresh", path, len(taken), len(skipped))
    return skipped
