"""Train on cached activations of the frozen, pretrained backbone layers.

On two shared CPU cores a forward+backward pass of EfficientNet-Lite0 at 224 px runs at a few
images per second, and PyTorch's CPU forward pass is several times slower than ONNX Runtime's.
With the first ``freeze`` layers fixed, their outputs depend only on the (augmented) photo, so
they are computed once per photo and *view* by ONNX Runtime and kept in memory as float16; the
epochs then run only the trainable layers. View 0 is the plain photo, views 1.. are augmented
with different seeds; epoch ``e`` trains on view ``e % views``. The exported model is the same
``MottlingNet`` (frozen layers included), so inference does not know a cache was used.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np
import torch
from torch import nn

from training.data import ManifestDataset

log = logging.getLogger(__name__)


class FrozenPrefix(nn.Module):
    """The frozen layers alone: photo -> (stride-8 map, output of the last frozen layer)."""

    def __init__(self, net):
        super().__init__()
        self.layers = nn.Sequential(*list(net.features)[:net.freeze])
        self.idx8 = net.idx8

    def forward(self, x: torch.Tensor):
        f8 = x
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == self.idx8:
                f8 = x
        return f8, x


def prefix_session(net, size: int, threads: int):
    """An ONNX Runtime session for the frozen layers (exported in memory)."""
    import onnxruntime as ort

    if not 0 <= net.idx8 < net.freeze:
        raise ValueError("a feature cache needs the stride-8 layer among the frozen ones "
                         f"(freeze={net.freeze}, stride-8 layer={net.idx8})")
    prefix = FrozenPrefix(net).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(prefix, torch.zeros(1, 3, size, size), buf, dynamo=False,
                          input_names=["x"], output_names=["f8", "frozen"], opset_version=17,
                          dynamic_axes={"x": {0: "n"}, "f8": {0: "n"}, "frozen": {0: "n"}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])


class FeatureCache(torch.utils.data.Dataset):
    """Cached (f8, frozen) activations, pooled masks and labels for ``views`` views of a set.

    Items look like ``ManifestDataset``'s: ``((f8, frozen), score, mask, has_mask, index)``
    with the mask already averaged down to the stride-8 map (what the area loss compares with).
    """

    def __init__(self, net, ds: ManifestDataset, views: int, threads: int = 2, batch: int = 16):
        t0 = time.perf_counter()
        sess = prefix_session(net, ds.spec.input_size, threads)
        n = len(ds)
        self.views = views
        self.view = 0
        self.labels = [int(r.score) for r in ds.records]
        self.f8: np.ndarray | None = None
        self.frozen: np.ndarray | None = None
        augment = ds.augment
        for v in range(views):
            ds.augment = augment if v > 0 else None
            ds.set_epoch(v)
            for start in range(0, n, batch):
                items = [ds[i] for i in range(start, min(n, start + batch))]
                x = torch.stack([it[0] for it in items]).numpy()
                f8, frozen = sess.run(None, {"x": x})
                m = torch.stack([it[2] for it in items])   # area (+ landmark heatmaps)
                if self.f8 is None:
                    self.f8 = np.zeros((views, n) + f8.shape[1:], np.float16)
                    self.frozen = np.zeros((views, n) + frozen.shape[1:], np.float16)
                    self.masks = np.zeros((views, n, m.shape[1]) + f8.shape[2:], np.float16)
                    self.has_mask = np.zeros((n,), np.float32)
                sl = slice(start, start + len(items))
                self.f8[v, sl] = f8
                self.frozen[v, sl] = frozen
                pooled = nn.functional.adaptive_avg_pool2d(m, f8.shape[2:]).numpy()
                self.masks[v, sl] = pooled
                self.has_mask[sl] = [it[3] for it in items]
            log.info("feature cache: view %d/%d of %d photos done (%.0f s)", v + 1, views, n,
                     time.perf_counter() - t0)
        ds.augment = augment
        self.build_s = time.perf_counter() - t0

    def set_epoch(self, epoch: int) -> None:
        self.view = epoch % self.views

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        v = self.view
        return ((torch.from_numpy(self.f8[v, i].astype(np.float32)),
                 torch.from_numpy(self.frozen[v, i].astype(np.float32))),
                self.labels[i], torch.from_numpy(self.masks[v, i].astype(np.float32)),
                float(self.has_mask[i]), i)


def forward_any(net, inputs) -> dict[str, torch.Tensor]:
    """``net(x)`` for photos, ``net.forward_cached(f8, frozen)`` for cached activations."""
    if isinstance(inputs, (list, tuple)):
        return net.forward_cached(*inputs)
    return net(inputs)
