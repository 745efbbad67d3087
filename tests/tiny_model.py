"""A tiny ONNX model that honours the mottling model contract, built with ``onnx.helper``.

It lets the loader, the batching, the metadata round-trip and the CLI be tested without the shipped
model and without torch. The "network": the mean colour of the input picks the class (redder means
a higher score); the area map is high wherever the picture is brighter than the letterbox padding,
so a test can check that the padding is cropped away when the map is mapped back onto the photo.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

TINY_MEAN = (0.485, 0.456, 0.406)
TINY_STD = (0.229, 0.224, 0.225)
TINY_LABELS = ["0", "1", "2", "3", "4", "5"]


def tiny_metadata(input_size: int, semver: str) -> dict[str, str]:
    return {
        "mottling.semver": semver,
        "mottling.git_commit": "0000000",
        "mottling.labels": json.dumps(TINY_LABELS),
        "mottling.input_size": str(input_size),
        "mottling.mean": json.dumps(list(TINY_MEAN)),
        "mottling.std": json.dumps(list(TINY_STD)),
        "mottling.resize": "letterbox",
        "mottling.scale_version": "ait-oufella-2011",
        "mottling.training_data": "none: a hand-built test graph",
        "mottling.metrics": json.dumps({}),
        "mottling.backbone": "mean-colour",
        "mottling.head": "linear",
        "mottling.created_utc": "2026-01-01T00:00:00Z",
    }


def build_tiny_model(out_dir: Path, name: str = "tiny-v0.0.1", input_size: int = 64,
                     semver: str = "0.0.1", metadata: dict[str, str] | None = None,
                     write_card: bool = True) -> Path:
    """Write ``out_dir/NAME.onnx`` (and ``NAME.card.json`` with its sha256); return the onnx path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    s = input_size
    stride = 4
    w = np.zeros((3, 6), np.float32)
    w[0] = 6.0 * np.arange(6)       # red raises the score...
    w[1] = -6.0 * np.arange(6)      # ...green lowers it
    ranks = np.arange(6, dtype=np.float32)
    conv_w = np.full((1, 3, stride, stride), 10.0 / (3 * stride * stride), np.float32)
    conv_b = np.array([10.0], np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (w, "W"), (np.zeros(6, np.float32), "B"), (ranks, "ranks"), (conv_w, "CW"), (conv_b, "CB"))]
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        helper.make_node("MatMul", ["probabilities", "ranks"], ["expected_score"]),
        helper.make_node("Conv", ["image", "CW", "CB"], ["area_logits"],
                         kernel_shape=[stride, stride], strides=[stride, stride]),
        helper.make_node("Sigmoid", ["area_logits"], ["area_map"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_mottling",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, s, s])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 6]),
         helper.make_tensor_value_info("expected_score", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("area_map", TensorProto.FLOAT,
                                       ["N", 1, s // stride, s // stride])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="mottling-tests")
    model.ir_version = 8
    helper.set_model_props(model, metadata if metadata is not None else tiny_metadata(s, semver))
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    if write_card:
        card = {"name": name, "semver": semver,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        (out_dir / f"{name}.card.json").write_text(json.dumps(card, indent=2))
    return path
