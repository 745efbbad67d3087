"""The mottling network: a torchvision backbone, an ordinal score head and an area head.

The score is set by *where* the mottling ends relative to the knee and the groin, so the head does
not pool position away straight after the backbone. It fuses stride-8 and stride-32 features into a
map, predicts the mottled area on that map (the auxiliary segmentation head, trained from the
masks, which also draws the explanation overlay), and reads the score from the map together with
the predicted area and x/y coordinate channels (CoordConv) before pooling.

Heads: ``corn`` (Shi et al. 2021, rank-consistent conditional binary tasks), ``cumulative``
(a cumulative-link model with learned, ordered cut points) and ``softmax`` (plain, for comparison).
All three give class probabilities that are non-negative and sum to 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mottling.scale import N_CLASSES
from training.backbones import build_features
from training.config import TrainConfig
from training.data import LANDMARKS

N_LANDMARKS = len(LANDMARKS)


def _taps(features: nn.Sequential) -> tuple[int, int, int, int]:
    """Index of the last stride-8 block and channel counts at stride 8 and at the end."""
    x = torch.zeros(1, 3, 64, 64)
    idx8, c8 = -1, 0
    with torch.no_grad():
        was_training = features.training
        features.eval()
        for i, layer in enumerate(features):
            x = layer(x)
            if x.shape[-1] == 8:
                idx8, c8 = i, x.shape[1]
        features.train(was_training)
    if idx8 < 0:
        raise ValueError("backbone has no stride-8 stage")
    return idx8, c8, x.shape[1], x.shape[-1]


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def coord_channels(like: torch.Tensor) -> torch.Tensor:
    """Two channels holding x and y in [-1, 1], batch-sized like ``like`` (N, C, H, W)."""
    h, w = like.shape[-2], like.shape[-1]
    ys = torch.linspace(-1.0, 1.0, h, dtype=like.dtype, device=like.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=like.dtype, device=like.device)
    grid = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)])
    return grid.unsqueeze(0).expand(like.shape[0], 2, h, w)


class MottlingNet(nn.Module):
    def __init__(self, backbone: str = "mobilenet_v3_small", head: str = "corn",
                 coord_conv: bool = True, seg_head: bool = True, dropout: float = 0.2,
                 width: int = 64, bn_momentum: float = 0.1, pretrained: bool = False,
                 freeze: int = 0, landmark_head: bool = False):
        super().__init__()
        self.backbone_name, self.head_name = backbone, head
        self.coord_conv, self.has_seg = coord_conv, seg_head
        self.features = build_features(backbone, pretrained)
        # the first ``freeze`` feature layers keep their (pretrained) weights and BN statistics:
        # the cheapest way to train on 2 CPU cores, and generic edges/colours need no retraining
        self.freeze = int(freeze)
        for layer in list(self.features)[:self.freeze]:
            for p in layer.parameters():
                p.requires_grad_(False)
        # torchvision's MobileNetV3 uses BatchNorm momentum 0.01, tuned for 600-epoch ImageNet
        # runs; in a short run from scratch the running statistics then lag far behind the
        # weights and evaluation-mode outputs collapse to one class. 0.1 keeps them current.
        for m in self.features.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = bn_momentum
        self.idx8, c8, c32, _ = _taps(self.features)
        self.lat8 = _conv_bn(c8, width, 1)
        self.lat32 = _conv_bn(c32, width, 1)
        self.fuse = _conv_bn(width, width, 3)
        self.seg = nn.Conv2d(width, 1, 1) if seg_head else None
        # one heatmap per landmark (knee, kneecap top, mid-thigh, groin) on the stride-8 map:
        # where the scale's rule is measured from, for the geometric route
        self.lmk = (nn.Sequential(_conv_bn(width, width, 3), nn.Conv2d(width, N_LANDMARKS, 1))
                    if landmark_head else None)
        extra = (1 if seg_head else 0) + (2 if coord_conv else 0)
        self.spatial = nn.Sequential(_conv_bn(width + extra, 96, 3, 2), _conv_bn(96, 128, 3, 2))
        self.global_proj = nn.Linear(c32, 128)
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(128 * 2 + 128, 128),
                                 nn.ReLU(inplace=True), nn.Dropout(dropout))
        if head == "softmax":
            self.out = nn.Linear(128, N_CLASSES)
        elif head == "corn":
            self.out = nn.Linear(128, N_CLASSES - 1)
        elif head == "cumulative":
            self.out = nn.Linear(128, 1)
            # first cut point, then positive gaps: ordered by construction
            self.cut0 = nn.Parameter(torch.tensor(-2.0))
            self.cut_gaps = nn.Parameter(torch.full((N_CLASSES - 2,), 0.5))
        else:
            raise ValueError(f"unknown head {head!r}")

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> "MottlingNet":
        return cls(cfg.backbone, cfg.head, cfg.coord_conv, cfg.seg_head, cfg.dropout,
                   width=cfg.head_width, bn_momentum=cfg.bn_momentum, pretrained=cfg.pretrained,
                   freeze=cfg.freeze, landmark_head=cfg.landmark_head)

    def train(self, mode: bool = True) -> "MottlingNet":
        super().train(mode)
        for layer in list(self.features)[:self.freeze]:
            layer.eval()
        return self

    def backbone(self, x: torch.Tensor, start: int = 0, f8: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run feature layers ``start..end``; returns (stride-8 map, stride-32 map).

        ``start > 0`` continues from cached activations of the frozen layers (``f8`` then comes
        from the cache too): see ``training.feature_cache``.
        """
        for i in range(start, len(self.features)):
            if i == self.freeze and self.freeze and torch.is_grad_enabled():
                x = x.detach()
            x = self.features[i](x)
            if i == self.idx8:
                f8 = x
        return f8, x

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(*self.backbone(x))

    def forward_cached(self, f8: torch.Tensor, frozen_out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Forward from the frozen layers' cached outputs (training with a feature cache)."""
        return self.head(*self.backbone(frozen_out, start=self.freeze, f8=f8))

    def head(self, f8: torch.Tensor, f32: torch.Tensor) -> dict[str, torch.Tensor]:
        """Fuse stride 8 and 32, predict the mottled area, read the score (module docstring)."""
        up = F.interpolate(self.lat32(f32), size=f8.shape[-2:], mode="bilinear",
                           align_corners=False)
        fused = self.fuse(self.lat8(f8) + up)
        parts = [fused]
        seg_logits = None
        if self.seg is not None:
            seg_logits = self.seg(fused)
            parts.append(torch.sigmoid(seg_logits))
        if self.coord_conv:
            parts.append(coord_channels(fused))
        s = self.spatial(torch.cat(parts, dim=1))
        pooled = torch.cat([s.mean(dim=(2, 3)), s.amax(dim=(2, 3)),
                            self.global_proj(f32.mean(dim=(2, 3)))], dim=1)
        logits = self.out(self.mlp(pooled))
        lmk_logits = self.lmk(fused) if self.lmk is not None else None
        return {"logits": logits, "seg_logits": seg_logits, "lmk_logits": lmk_logits}

    # -- probabilities and losses ------------------------------------------------------------
    def cutpoints(self) -> torch.Tensor:
        return torch.cat([self.cut0.view(1), self.cut0 + torch.cumsum(F.softplus(self.cut_gaps), 0)])

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        if self.head_name == "softmax":
            return torch.softmax(logits, dim=1)
        if self.head_name == "corn":
            cond = logits                                 # logit of P(y > k | y > k-1)
        else:
            p_gt = torch.sigmoid(logits - self.cutpoints().view(1, -1))   # P(y > k), decreasing
            prev = torch.cat([torch.ones_like(p_gt[:, :1]), p_gt], dim=1)
            nxt = torch.cat([p_gt, torch.zeros_like(p_gt[:, :1])], dim=1)
            return (prev - nxt).clamp_min(0.0)
        log_s = F.logsigmoid(cond)
        log_survive = torch.cumsum(log_s, dim=1)          # log P(y > k)
        prev = torch.exp(torch.cat([torch.zeros_like(log_survive[:, :1]), log_survive], dim=1))
        stop = torch.cat([torch.sigmoid(-cond), torch.ones_like(cond[:, :1])], dim=1)
        return prev * stop

    def class_loss(self, logits: torch.Tensor, target: torch.Tensor,
                   label_smoothing: float = 0.0) -> torch.Tensor:
        if self.head_name == "softmax":
            return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
        if self.head_name == "corn":
            k = torch.arange(N_CLASSES - 1, device=logits.device).view(1, -1)
            y = target.view(-1, 1)
            valid = (y >= k).float()                      # task k sees images with y > k-1
            label = (y > k).float()
            bce = F.binary_cross_entropy_with_logits(logits, label, reduction="none")
            return (bce * valid).sum() / valid.sum().clamp_min(1.0)
        probs = self.probabilities(logits)
        return F.nll_loss(torch.log(probs.clamp_min(1e-8)), target)


def seg_loss(seg_logits: torch.Tensor, masks: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice against the mask averaged down to the map's size, for images with masks."""
    if has_mask.sum() == 0:
        return seg_logits.sum() * 0.0
    target = F.adaptive_avg_pool2d(masks, seg_logits.shape[-2:])
    w = has_mask.view(-1, 1, 1, 1)
    bce = F.binary_cross_entropy_with_logits(seg_logits, target, reduction="none")
    bce = (bce * w).sum() / (w.sum() * bce[0].numel())
    p = torch.sigmoid(seg_logits)
    inter = (p * target).sum(dim=(1, 2, 3))
    denom = p.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    dice = 1.0 - (2 * inter + 1.0) / (denom + 1.0)
    dice = (dice * has_mask).sum() / has_mask.sum()
    return bce + dice


def landmark_loss(lmk_logits: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each landmark's spatial softmax against its (pooled) target heatmap,
    over the landmarks that have one."""
    target = F.adaptive_avg_pool2d(heat, lmk_logits.shape[-2:]).flatten(2)
    mass = target.sum(dim=2, keepdim=True)
    present = (mass > 1e-6).float()
    target = target / mass.clamp_min(1e-6)
    logp = F.log_softmax(lmk_logits.flatten(2), dim=2)
    ce = -(target * logp).sum(dim=2, keepdim=True) * present
    return ce.sum() / present.sum().clamp_min(1.0)


class ExportWrapper(nn.Module):
    """The ONNX contract: ``image`` -> ``probabilities``, ``expected_score``, ``area_map``."""

    def __init__(self, net: MottlingNet):
        super().__init__()
        self.net = net
        self.register_buffer("levels", torch.arange(N_CLASSES, dtype=torch.float32))

    def forward(self, image: torch.Tensor):
        out = self.net(image)
        probs = self.net.probabilities(out["logits"])
        expected = (probs * self.levels.view(1, -1)).sum(dim=1)
        if out["seg_logits"] is not None:
            area = torch.sigmoid(out["seg_logits"])
        else:
            area = torch.zeros_like(image[:, :1, ::8, ::8])
        return probs, expected, area
