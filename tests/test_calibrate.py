"""Decision calibration: offsets chosen on validation patients, folded into the exported model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from mottling.photo.decode import load_photo  # noqa: E402
from mottling.photo.preprocess import to_input  # noqa: E402
from training import calibrate as C  # noqa: E402
from training import checkpoint  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.model import MottlingNet  # noqa: E402


def test_numpy_decision_is_the_model_s_own():
    torch.manual_seed(1)
    net = MottlingNet(head="corn")
    logits = torch.randn(64, 5) * 3
    expected = net.probabilities(logits).numpy()
    assert np.allclose(C.corn_probabilities(logits.numpy()), expected, atol=1e-6)
    d = np.array([-1.5, 0.25, 0.0, 0.5, -0.75])
    assert np.allclose(C.corn_probabilities(logits.numpy(), d),
                       net.probabilities(logits + torch.tensor(d, dtype=torch.float32)).numpy(),
                       atol=1e-6)


def test_clean90_reaches_the_clean_share_in_every_renderer_and_cost_weighs_false_findings():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 40)
    groups = np.array(["a", "b"] * 120)
    # a model that reads its ranks well but sees mottling in many clean legs of renderer b
    logits = (y[:, None] > np.arange(5)[None]).astype(float) * 4 - 2 + rng.normal(0, 1, (240, 5))
    logits[(y == 0) & (groups == "b"), 0] += 2.5
    before = C.clean_rates(y, C.decide(logits), groups)
    assert before["b"] < 0.9
    d = C.fit_offsets(logits, y, groups, "clean90", min_clean=0.9)
    after = C.clean_rates(y, C.decide(logits, d), groups)
    assert min(after.values()) >= 0.9 and d[0] < 0
    light = C.fit_offsets(logits, y, groups, "cost", false_finding_weight=1.0)
    heavy = C.fit_offsets(logits, y, groups, "cost", false_finding_weight=10.0)
    ff = lambda off: int(((y == 0) & (C.decide(logits, off) > 0)).sum())  # noqa: E731
    assert ff(heavy) < ff(light)
    with pytest.raises(ValueError):
        C.fit_offsets(logits, y, groups, "accuracy")


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A tiny CORN net that calls most legs mottled, a validation manifest, and its export with
    ``calibrate=``."""
    from mottling.synth.images import render_photo
    from training.export import export

    tmp = tmp_path_factory.mktemp("calib")
    cfg = TrainConfig(input_size=64, head="corn")
    torch.manual_seed(0)
    net = MottlingNet.from_config(cfg).eval()
    with torch.no_grad():
        net.out.bias.copy_(torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0]))   # "mottled" nearly always
    ckpt = tmp / "run" / "best.pt"
    ckpt.parent.mkdir()
    checkpoint.save(ckpt, config=cfg.to_dict(), model=net.state_dict(), epoch=0, metrics={},
                    git_commit="test", data={})
    rows = []
    (tmp / "images").mkdir()
    for i in range(16):
        score = 0 if i < 10 else i - 10
        path = tmp / "images" / f"{i:02d}.jpg"
        render_photo(seed=500 + i, score=score, skin_tone=1 + i % 10, size=96).image.save(path)
        rows.append({"path": f"images/{i:02d}.jpg", "score": score, "patient_id": f"p{i // 2}",
                     "generator_version": "photos/test"})
    with (tmp / "manifest.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    # patients 0-5 are validation patients, 6-7 training patients (not used for the offsets)
    with (ckpt.parent / "splits.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "score", "split"])
        for r in rows:
            w.writerow([r["path"], r["patient_id"], r["score"],
                        "val" if int(r["patient_id"][1:]) < 6 else "train"])
    out = tmp / "models" / "tiny-cal.onnx"
    result = export(ckpt, out, semver="9.9.9", exporter="torchscript", weights=True,
                    calibrate={"manifests": str(tmp / "manifest.csv")})
    return tmp, net, cfg, out, result


def test_export_with_calibration_moves_the_decision_as_computed(calibrated):
    tmp, net, cfg, out, result = calibrated
    assert result["parity"]["passed"]
    card = json.loads(out.with_suffix(".card.json").read_text())
    cal = card["decision_calibration"]
    d = np.array(cal["offsets"])
    assert d[0] < 0 and cal["validation"]["images"] == 12   # val patients only
    assert cal["validation_before"]["clean_called_0"]["photos"] < 0.9
    assert cal["validation_after"]["clean_called_0"]["photos"] >= 0.9
    assert "Decision calibration" in out.with_suffix(".md").read_text()
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["mottling.calibration"])["offsets"] == cal["offsets"]
    # the file's probabilities are the uncalibrated head's logits plus the offsets
    from mottling.synth.images import render_photo

    photos = [render_photo(seed=600 + i, score=i % 6, skin_tone=1 + i % 10, size=96).image
              for i in range(8)]
    spec = checkpoint.spec_from_config(cfg)
    x = np.stack([to_input(im, spec)[0] for im in photos]).astype(np.float32)
    raw = C.head_logits(net, x)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probs = sess.run(["probabilities"], {"image": x})[0]
    assert np.allclose(probs, C.corn_probabilities(raw, d), atol=1e-4)
    assert not np.allclose(probs, C.corn_probabilities(raw), atol=1e-2)
    # and on the validation photos the clean legs are now called 0, as chosen
    val = [r for r in csv.DictReader((tmp / "manifest.csv").open()) if int(r["patient_id"][1:]) < 6]
    xv = np.stack([to_input(load_photo(tmp / r["path"], 64).image, spec)[0]
                   for r in val]).astype(np.float32)
    called = sess.run(["probabilities"], {"image": xv})[0].argmax(1)
    clean = np.array([int(r["score"]) == 0 for r in val])
    assert (called[clean] == 0).mean() == pytest.approx(
        cal["validation_after"]["clean_called_0"]["photos"])
    # the weights written beside it carry the folded offsets and say so
    saved = checkpoint.load(out.with_suffix(".pt"))
    assert saved["calibration"]["offsets"] == cal["offsets"]
    assert np.allclose(saved["model"]["out.bias"].numpy(), net.out.bias.detach().numpy() + d,
                       atol=1e-6)


def test_an_already_calibrated_checkpoint_is_not_calibrated_twice(calibrated, tmp_path):
    from training.export import export

    tmp, _, _, out, _ = calibrated
    with pytest.raises(ValueError, match="already calibrated"):
        export(out.with_suffix(".pt"), tmp_path / "twice.onnx", exporter="torchscript",
               calibrate={"manifests": str(tmp / "manifest.csv"),
                          "splits_file": str(tmp / "run" / "splits.csv")})


def test_cli_export_calibrate_passes_its_options(calibrated, tmp_path):
    from click.testing import CliRunner

    from training.cli import export as export_cmd

    tmp = calibrated[0]
    out = tmp_path / "cli.onnx"
    res = CliRunner().invoke(export_cmd, [
        str(tmp / "run" / "best.pt"), "--out", str(out), "--exporter", "torchscript",
        "--no-weights", "--calibrate", str(tmp / "manifest.csv"), "--calibrate-objective", "cost",
        "--calibrate-false-finding-weight", "5", "--calibrate-ranks", "all"])
    assert res.exit_code == 0, res.output
    cal = json.loads(out.with_suffix(".card.json").read_text())["decision_calibration"]
    assert cal["objective"] == "cost" and cal["false_finding_weight"] == 5.0
    assert cal["ranks"] == [0, 1, 2, 3, 4]
    res = CliRunner().invoke(export_cmd, [str(tmp / "run" / "best.pt"), "--out",
                                          str(tmp_path / "x.onnx"), "--calibrate", "nope.csv"])
    assert res.exit_code != 0 and "no such manifest" in res.output
