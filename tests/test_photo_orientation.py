"""One photo pipeline: a photo stored sideways reaches the model upright through every caller.

A photo is stored in each of the 8 EXIF orientations (the stored pixels transposed so that the
tag brings them back upright) and fed through the training dataset, evaluation, the CLI, a batch
worker and the HTTP service. Each must hand the model exactly the tensor the upright photo gives.
Lossless PNG keeps the comparison exact; the photo is big enough for the draft rule to halve it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mottling.photo.decode import ORIENTATION_TAG
from mottling.photo.model import MottlingModel, load_model
from mottling.photo.preprocess import to_input
from tests.photos import leg_photo
from tests.tiny_model import build_tiny_model

# The transpose that *undoes* each orientation's display transform: store upright.transpose(X)
# with tag n, and a viewer applying tag n shows the upright picture again.
STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
CALLERS = ("training_dataset", "evaluation", "cli", "batch_worker", "serving")


@pytest.fixture(scope="module")
def upright() -> Image.Image:
    """960x660: the draft rule (320 px) halves it, and both sides divide by 2 exactly."""
    leg = leg_photo(seed=5, score=3, skin_tone=5, size=960).convert("RGB").resize((960, 660))
    marked = leg.copy()
    marked.paste((0, 255, 0), (0, 0, 120, 60))          # a corner mark no flip or turn keeps
    return marked


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model"), input_size=64)


def _store(upright: Image.Image, orientation: int, path: Path) -> Path:
    method = STORE[orientation]
    stored = upright if method is None else upright.transpose(method)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    stored.save(path, format="PNG", exif=exif)
    return path


@pytest.fixture
def model_inputs(monkeypatch):
    """Every batch any ``MottlingModel`` runs, in order."""
    seen: list[np.ndarray] = []
    original = MottlingModel.run

    def spy(self, batch):
        seen.append(np.array(batch))
        return original(self, batch)

    monkeypatch.setattr(MottlingModel, "run", spy)
    return seen


def _through(caller: str, photo: Path, model_path: Path, seen: list[np.ndarray],
             tmp_path: Path) -> np.ndarray:
    """The (3, S, S) tensor ``caller`` gives the model for ``photo``."""
    if caller == "training_dataset":
        pytest.importorskip("torch")
        from training.data import ManifestDataset, Record

        spec = load_model(model_path).spec
        x = ManifestDataset([Record(path=photo, score=0, patient_id="p")], spec, cache=False)[0][0]
        return x.numpy()
    if caller == "evaluation":
        pytest.importorskip("torch")
        from training.data import Record
        from training.evaluate import load_predictor, predict_records

        predict_records(load_predictor(model_path, threads=1),
                        [Record(path=photo, score=0, patient_id="p")])
    elif caller == "cli":
        from click.testing import CliRunner

        from mottling.cli import cli

        res = CliRunner().invoke(cli, ["score", str(photo), "--model", str(model_path), "--json"])
        assert res.exit_code == 0, res.output
    elif caller == "batch_worker":
        from mottling.batch.inputs import InputItem
        from mottling.batch.worker import Scorer, ScoringConfig, Task

        scorer = Scorer(ScoringConfig(model_path=str(model_path)))
        row = scorer.score(Task(0, InputItem(photo.name, str(photo))))
        assert row["status"] == "ok", row
    elif caller == "serving":
        from fastapi.testclient import TestClient

        from serving.app import create_app
        from serving.settings import ServerSettings

        app = create_app(ServerSettings(model_path=model_path, warmup=False))
        with TestClient(app) as client:
            res = client.post("/v1/mottling", files={"image": (photo.name, photo.read_bytes(),
                                                               "image/png")})
        assert res.status_code == 200, res.text
    assert seen, f"{caller} never ran the model"
    return seen[-1][-1]


@pytest.mark.parametrize("orientation", sorted(STORE))
@pytest.mark.parametrize("caller", CALLERS)
def test_every_caller_sees_the_same_upright_pixels(caller, orientation, upright, model_path,
                                                   model_inputs, tmp_path):
    spec = load_model(model_path).spec
    expected, _ = to_input(upright.reduce(2), spec)
    photo = _store(upright, orientation, tmp_path / f"leg-o{orientation}.png")
    got = _through(caller, photo, model_path, model_inputs, tmp_path)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected), (
        f"{caller} saw orientation {orientation} differently "
        f"(max difference {np.abs(got - expected).max():.3f})")


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_full_size_is_the_upright_size_of_the_stored_photo(upright, orientation, tmp_path):
    from mottling.photo.decode import load_photo

    photo = load_photo(_store(upright, orientation, tmp_path / "leg.png"), 64)
    assert photo.full_size == upright.size
    assert photo.image.size == (upright.width // 2, upright.height // 2)


def test_training_landmarks_follow_a_shrunk_sideways_photo(upright, model_path, tmp_path):
    """Landmarks are given in the upright photo's full-size pixels; the dataset must map them onto
    the decoded (halved, then fitted to the input size) picture, not onto the stored one."""
    pytest.importorskip("torch")
    from training.data import ManifestDataset, Record

    spec = load_model(model_path).spec
    photo = _store(upright, 6, tmp_path / "leg.png")
    corner = (upright.width - 1, upright.height - 1)
    record = Record(path=photo, score=0, patient_id="p", landmarks={"knee": corner})
    pixels, _, landmarks = ManifestDataset([record], spec, cache=False).load(0)
    x, y = landmarks["knee"]
    assert abs(x - pixels.shape[1]) < 1.0 and abs(y - pixels.shape[0]) < 1.0
