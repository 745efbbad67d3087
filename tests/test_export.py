"""ONNX export: the contract, parity with PyTorch, metadata round trip, model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from mottling.photo.preprocess import to_input  # noqa: E402
from training import checkpoint  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.export import ParityError, check_parity, export  # noqa: E402
from training.model import ExportWrapper, MottlingNet  # noqa: E402

CONTRACT_KEYS = {
    "mottling.semver", "mottling.git_commit", "mottling.labels", "mottling.input_size",
    "mottling.mean", "mottling.std", "mottling.resize", "mottling.scale_version",
    "mottling.training_data", "mottling.metrics", "mottling.backbone", "mottling.head",
    "mottling.created_utc",
}


@pytest.fixture(scope="module")
def photos():
    from mottling.synth.images import render_photo

    return [render_photo(seed=70 + i, score=i % 6, skin_tone=1 + 3 * i % 10, size=128).image
            for i in range(4)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, photos):
    tmp = tmp_path_factory.mktemp("export")
    cfg = TrainConfig(input_size=64, head="corn", mean=(0.4, 0.45, 0.5), std=(0.2, 0.25, 0.3))
    torch.manual_seed(0)
    net = MottlingNet.from_config(cfg).eval()
    # give BatchNorm non-trivial statistics so parity means something
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    ckpt = tmp / "tiny.pt"
    checkpoint.save(ckpt, config=cfg.to_dict(), model=net.state_dict(), epoch=0, metrics={},
                    git_commit="test", data={"train": {"images": 24, "patients": 8,
                                                       "generator_versions": ["photos/test"]}})
    metrics = {"manifest": "hand", "overall": {"n": 4, "qwk": 0.5, "mae": 1.0,
                                               "exact_accuracy": 0.25, "within_one_accuracy": 0.75,
                                               "ece": 0.1},
               "by_skin_tone": {"monk_1-3": {"n": 2, "qwk": 0.4, "mae": 1.0, "exact_accuracy": 0.5,
                                             "within_one_accuracy": 1.0, "ece": 0.2}},
               "calibration": {"ece": 0.1, "bins": []}, "confusion_matrix": [[0] * 6] * 6}
    (tmp / "metrics.json").write_text(json.dumps(metrics))
    out = tmp / "models" / "tiny-v9.9.9.onnx"
    result = export(ckpt, out, semver="9.9.9", metrics_path=tmp / "metrics.json",
                    exporter="torchscript", parity_photos=photos, weights=True)
    return out, result, net, cfg


def test_contract_inputs_outputs_and_dynamic_batch(exported, photos):
    out, result, _, cfg = exported
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert result["opset"] >= 17
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["probabilities", "expected_score", "area_map"]
    spec = checkpoint.spec_from_config(cfg)
    for n in (1, 3):
        batch = np.stack([to_input(p, spec)[0] for p in photos[:n]])
        probs, expected, area = sess.run(None, {"image": batch})
        assert probs.shape == (n, 6) and expected.shape == (n,) and area.shape[:2] == (n, 1)
        assert np.allclose(probs.sum(1), 1, atol=1e-5) and (probs >= 0).all()
        assert np.allclose(expected, probs @ np.arange(6), atol=1e-5)
        assert area.min() >= 0 and area.max() <= 1


def test_parity_with_pytorch(exported):
    _, result, _, _ = exported
    p = result["parity"]
    assert p["passed"] and p["argmax_identical"]
    assert p["max_abs_diff_probabilities"] <= 1e-4
    assert p["max_abs_diff_probabilities_batch1"] <= 1e-4


def test_parity_failure_is_detected(exported, photos):
    out, _, net, cfg = exported
    other = MottlingNet.from_config(cfg).eval()      # different weights: must not pass
    with pytest.raises(ParityError):
        check_parity(ExportWrapper(other).eval(), out, checkpoint.spec_from_config(cfg), photos)


def test_metadata_round_trip(exported):
    out, _, _, cfg = exported
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert set(meta) == CONTRACT_KEYS
    assert meta["mottling.semver"] == "9.9.9"
    assert json.loads(meta["mottling.labels"]) == ["0", "1", "2", "3", "4", "5"]
    assert int(meta["mottling.input_size"]) == 64
    assert tuple(json.loads(meta["mottling.mean"])) == cfg.mean
    assert tuple(json.loads(meta["mottling.std"])) == cfg.std
    assert meta["mottling.resize"] == "letterbox"
    assert meta["mottling.head"] == "corn" and meta["mottling.backbone"] == cfg.backbone
    assert json.loads(meta["mottling.metrics"])["qwk"] == 0.5
    assert len(meta["mottling.git_commit"]) in (40, 7) or meta["mottling.git_commit"] == "unknown"
    assert "photos/test" in meta["mottling.training_data"]


def test_card_matches_the_file(exported):
    from training.export import sha256_file

    out, result, _, _ = exported
    card = json.loads(out.with_suffix(".card.json").read_text())
    assert card["sha256"] == sha256_file(out) == result["sha256"]
    assert card["training_data"]["generated"] is True and card["medical_device"] is False
    assert card["metrics"]["overall"]["qwk"] == 0.5
    md = out.with_suffix(".md").read_text()
    assert "GENERATED" in md and "Not a medical device" in md and "monk_1-3" in md
    weights = out.with_suffix(".pt")
    assert card["pytorch_weights"]["sha256"] == sha256_file(weights)


def test_evaluate_gives_the_same_numbers_on_onnx_and_checkpoint(exported, tmp_path):
    from mottling.synth.images import generate_images
    from training.evaluate import evaluate

    out, _, _, _ = exported
    manifest = generate_images(n=6, out_dir=tmp_path / "synth", seed=99, size=128)
    a = evaluate(out, manifest, tmp_path / "onnx", threads=1)
    b = evaluate(out.with_suffix(".pt"), manifest, tmp_path / "pt", threads=1)
    assert a["overall"] == pytest.approx(b["overall"])
    assert a["model"]["kind"] == "onnx" and b["model"]["kind"] == "checkpoint"
