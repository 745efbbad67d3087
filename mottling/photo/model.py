"""The mottling model at inference time: ONNX Runtime only, no torch.

``load_model`` reads the ONNX file once, checks its sha256 against the card beside it
(``NAME.card.json``) and refuses a mismatch, then builds one ``InferenceSession`` from the very bytes
it hashed (so the file cannot change between the check and the load). Preprocessing (input size,
mean, std, resize policy, labels) comes from the file's ``metadata_props`` and nowhere else.
ONNX Runtime sessions are safe to call from several threads, so one ``MottlingModel`` per process
serves every request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np
from PIL import Image

from mottling.errors import InputError, ModelError
from mottling.photo.decode import DEFAULT_LIMITS, ImageLimits, load_photo
from mottling.photo.preprocess import PreprocessSpec, to_input, unletterbox_map
from mottling.photo.quality import DEFAULT_POLICY, QualityPolicy, adjusted_confidence, assess_quality
from mottling.results import MottlingResult
from mottling.scale import N_CLASSES

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "mottling-v0.3.0.onnx"
# The one setting for which model to load (the server's ``model_path`` setting reads the same
# variable). ``MOTTLING_MODEL`` is the old name, still read, with a deprecation warning.
MODEL_ENV = "MOTTLING_MODEL_PATH"
DEPRECATED_MODEL_ENV = "MOTTLING_MODEL"
THREADS_ENV = "MOTTLING_THREADS"      # intra-op threads when none are given

INPUT_NAME = "image"
OUTPUT_NAMES = ("probabilities", "expected_score", "area_map")
REQUIRED_METADATA = ("mottling.semver", "mottling.labels", "mottling.input_size", "mottling.mean",
                     "mottling.std", "mottling.resize")


def default_model_path() -> Path:
    """``$MOTTLING_MODEL_PATH`` if set, else ``models/mottling-v0.3.0.onnx`` beside the package.

    A ``--model`` option or an explicit path always wins over this; see docs/design.md.
    """
    env = os.environ.get(MODEL_ENV)
    if not env and os.environ.get(DEPRECATED_MODEL_ENV):
        env = os.environ[DEPRECATED_MODEL_ENV]
        log.warning("%s is deprecated and will be removed; set %s instead",
                    DEPRECATED_MODEL_ENV, MODEL_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_NAME


def card_path_for(model_path: Path) -> Path:
    """``models/NAME.onnx`` -> ``models/NAME.card.json``."""
    return model_path.with_name(model_path.stem + ".card.json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """What the ONNX metadata says about the model."""

    version: str
    labels: tuple[str, ...]
    spec: PreprocessSpec
    metadata: dict[str, str]


def parse_metadata(props: dict[str, str]) -> ModelInfo:
    """Read the preprocessing spec and labels out of ``metadata_props``; raise ``ModelError``."""
    missing = [k for k in REQUIRED_METADATA if k not in props]
    if missing:
        raise ModelError(f"The model file lacks metadata {missing}; re-export it with "
                         "'mottling export'.")
    try:
        labels = tuple(str(x) for x in json.loads(props["mottling.labels"]))
        mean = tuple(float(x) for x in json.loads(props["mottling.mean"]))
        std = tuple(float(x) for x in json.loads(props["mottling.std"]))
        size = int(props["mottling.input_size"])
        spec = PreprocessSpec(input_size=size, mean=mean, std=std,  # type: ignore[arg-type]
                              resize=props["mottling.resize"])
    except (ValueError, TypeError) as err:
        raise ModelError(f"The model's preprocessing metadata is unreadable: {err}") from err
    if len(labels) != N_CLASSES or len(mean) != 3 or len(std) != 3 or size <= 0:
        raise ModelError(f"The model's metadata is inconsistent: {len(labels)} labels, "
                         f"mean {mean}, std {std}, input size {size}.")
    return ModelInfo(props["mottling.semver"], labels, spec, dict(props))


class MottlingModel:
    """A loaded, verified model. Build it with ``load_model``."""

    def __init__(self, session: Any, info: ModelInfo, sha256: str, card: dict[str, Any],
                 path: Path | None = None, policy: QualityPolicy = DEFAULT_POLICY):
        self._session = session
        self._info = info
        self.sha256 = sha256
        self.card = card
        self.path = path
        self.policy = policy

    @property
    def version(self) -> str:
        return self._info.version

    @property
    def labels(self) -> tuple[str, ...]:
        return self._info.labels

    @property
    def spec(self) -> PreprocessSpec:
        return self._info.spec

    @property
    def input_size(self) -> int:
        return self._info.spec.input_size

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self._info.metadata)

    def __repr__(self) -> str:
        return f"MottlingModel(version={self.version!r}, sha256={self.sha256[:12]}..., path={self.path})"

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs for a prepared (N, 3, S, S) float32 batch."""
        outputs = self._session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        return dict(zip(OUTPUT_NAMES, outputs))

    def predict(self, images: Sequence[Image.Image], paths: Sequence[str | None] | None = None,
                batch_size: int = 32) -> list[MottlingResult]:
        """Score decoded photos, ``batch_size`` at a time; one result per image, in order."""
        if paths is not None and len(paths) != len(images):
            raise ValueError(f"{len(paths)} paths for {len(images)} images")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        results: list[MottlingResult] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            names = (paths[start:start + batch_size] if paths is not None
                     else [None] * len(chunk))
            results.extend(self._predict_batch(chunk, names))
        return results

    def predict_one(self, image: Image.Image, path: str | None = None) -> MottlingResult:
        return self.predict([image], [path])[0]

    def _predict_batch(self, images: Sequence[Image.Image],
                       paths: Sequence[str | None]) -> list[MottlingResult]:
        rgb = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        prepared = [to_input(im, self.spec) for im in rgb]
        batch = np.stack([x for x, _ in prepared]).astype(np.float32, copy=False)
        out = self.run(batch)
        probs_all = np.asarray(out["probabilities"], dtype=np.float64)
        expected_all = np.asarray(out["expected_score"], dtype=np.float64).reshape(len(rgb), -1)
        maps = np.asarray(out["area_map"], dtype=np.float32)
        if probs_all.shape != (len(rgb), N_CLASSES):
            raise ModelError(f"The model returned probabilities of shape {probs_all.shape}.")
        results = []
        for i, (im, (_, geom)) in enumerate(zip(rgb, prepared)):
            probs = np.clip(probs_all[i], 0.0, None)
            probs = probs / probs.sum()   # float32 sums drift by ~1e-7; the contract says "sum to 1"
            report = assess_quality(im, self.policy)
            area = unletterbox_map(np.clip(maps[i].reshape(maps.shape[-2:]), 0.0, 1.0), geom)
            results.append(MottlingResult(
                path=paths[i],
                score=int(np.argmax(probs)),
                probabilities=tuple(float(p) for p in probs),
                expected_score=float(expected_all[i, 0]),
                confidence=adjusted_confidence(probs, report, self.policy),
                quality=report.flags,
                model_version=self.version,
                model_sha256=self.sha256,
                area_map=area,
            ))
        return results


def load_model(path: str | os.PathLike | None = None, *, intra_op_threads: int | None = None,
               policy: QualityPolicy = DEFAULT_POLICY) -> MottlingModel:
    """Load and verify a model; ``path=None`` means the shipped default (see ``default_model_path``).

    ``intra_op_threads`` (default ``$MOTTLING_THREADS``, else ONNX Runtime's own choice) bounds the
    threads one inference uses. Raises ``ModelError`` if the file or its card is missing, the
    sha256 differs from the card, or the file is not a mottling model.
    """
    model_path = Path(path).expanduser() if path is not None else default_model_path()
    if not model_path.is_file():
        hint = "" if path is not None else (
            f" Set {MODEL_ENV} to a model file, or train and export one (see README).")
        raise ModelError(f"Model file not found: {model_path}.{hint}")
    card_file = card_path_for(model_path)
    card = _read_card(card_file)
    data = model_path.read_bytes()
    digest = sha256_bytes(data)
    expected = str(card.get("sha256", "")).lower()
    if not expected:
        raise ModelError(f"The model card {card_file.name} has no sha256; refusing an unverified model.")
    if digest != expected:
        raise ModelError(f"The model file {model_path.name} does not match its card: sha256 "
                         f"{digest[:16]}... but the card says {expected[:16]}...; refusing to load it.")

    session = _make_session(data, intra_op_threads)
    _check_signature(session, model_path)
    props = dict(session.get_modelmeta().custom_metadata_map)
    info = parse_metadata(props)
    card_version = card.get("semver")
    if card_version and str(card_version) != info.version:
        raise ModelError(f"The card says version {card_version} but the model says {info.version}.")
    log.info("loaded model %s (%s, sha256 %s)", model_path, info.version, digest[:12])
    return MottlingModel(session, info, digest, card, model_path, policy)


def _read_card(card_file: Path) -> dict[str, Any]:
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ModelError(f"The model card {card_file} is missing; it holds the sha256 the model "
                         "is checked against.") from err
    except (OSError, ValueError) as err:
        raise ModelError(f"The model card {card_file} is unreadable: {err}") from err
    if not isinstance(card, dict):
        raise ModelError(f"The model card {card_file} is not a JSON object.")
    return card


def _make_session(data: bytes, intra_op_threads: int | None) -> Any:
    import onnxruntime as ort  # imported here so that `import mottling.photo.model` stays cheap

    if intra_op_threads is None and os.environ.get(THREADS_ENV):
        intra_op_threads = int(os.environ[THREADS_ENV])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if intra_op_threads:
        options.intra_op_num_threads = int(intra_op_threads)
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for a bad graph
        raise ModelError(f"ONNX Runtime cannot load the model: {err}") from err


def _check_signature(session: Any, model_path: Path) -> None:
    inputs = [i.name for i in session.get_inputs()]
    outputs = {o.name for o in session.get_outputs()}
    if inputs != [INPUT_NAME] or not set(OUTPUT_NAMES) <= outputs:
        raise ModelError(f"{model_path.name} is not a mottling model: inputs {inputs}, outputs "
                         f"{sorted(outputs)} (expected input '{INPUT_NAME}' and outputs "
                         f"{list(OUTPUT_NAMES)}).")


@dataclass(frozen=True)
class ScoredFile:
    """One input of ``iter_scored``: its result, or the ``InputError`` that stopped it."""

    path: str
    result: MottlingResult | None
    error: InputError | None = None
    image: Image.Image | None = None   # the decoded photo (for an overlay); None after an error


def iter_scored(paths: Iterable[str | os.PathLike], model: MottlingModel, *,
                limits: ImageLimits = DEFAULT_LIMITS, batch_size: int = 32) -> Iterator[ScoredFile]:
    """Decode (``load_photo``) and score image files ``batch_size`` at a time, yielding one
    ``ScoredFile`` per path, in order. A bad file yields its error and the others go on; only
    one batch of decoded photos is held at a time."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    pending: list[ScoredFile] = []

    def flush() -> Iterator[ScoredFile]:
        decoded = [f for f in pending if f.image is not None]
        results = iter(model.predict([f.image for f in decoded],  # type: ignore[misc]
                                     [f.path for f in decoded], batch_size=batch_size))
        for item in pending:
            yield item if item.error is not None else replace(item, result=next(results))
        pending.clear()

    for raw_path in paths:
        name = os.fspath(raw_path)
        try:
            pending.append(ScoredFile(name, None, image=load_photo(name, model.input_size, limits).image))
        except InputError as err:
            pending.append(ScoredFile(name, None, error=err))
        if sum(f.image is not None for f in pending) >= batch_size:
            yield from flush()
    yield from flush()


def score_files(paths: Iterable[str | os.PathLike], model: MottlingModel | None = None, *,
                limits: ImageLimits = DEFAULT_LIMITS, batch_size: int = 32,
                errors: Literal["raise", "return"] = "raise",
                ) -> list[MottlingResult | InputError]:
    """Decode and score image files, one result per path, in order.

    ``errors="raise"`` stops at the first bad file with its ``InputError``; ``errors="return"``
    puts the ``InputError`` in that file's place and scores the others. The model defaults to the
    shipped one.
    """
    model = model if model is not None else load_model()
    out: list[MottlingResult | InputError] = []
    for item in iter_scored(paths, model, limits=limits, batch_size=batch_size):
        if item.error is not None:
            if errors == "raise":
                raise item.error
            out.append(item.error)
        else:
            out.append(item.result)  # type: ignore[arg-type]
    return out
