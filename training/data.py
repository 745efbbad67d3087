"""Manifest datasets, patient-grouped splits and class-balanced sampling.

A dataset is a ``manifest.csv`` with at least ``path`` and ``score``; ``patient_id``, ``site``,
``skin_tone`` / ``ita``, ``mask_path``, landmark pixel columns and ``rater_*`` columns are optional.
Paths are relative to the manifest's folder. Images go through ``mottling.photo.preprocess`` exactly as
at inference: any augmentation happens on the resized photo *before* the letterbox.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image

from mottling.photo.decode import load_photo
from mottling.photo.preprocess import PreprocessSpec, letterbox, normalise
from mottling.scale import N_CLASSES

log = logging.getLogger(__name__)

LANDMARKS = ("knee", "patella_top", "mid_thigh", "groin")
SPLITS = ("train", "val", "test")


@dataclass
class Record:
    """One labelled photograph from a manifest."""

    path: Path
    score: int
    patient_id: str
    mask_path: Path | None = None
    skin_tone: int | None = None
    ita: float | None = None
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    raters: dict[str, int | None] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


def _float_or_none(value: str | None) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return None if math.isnan(x) else x


def read_manifest(path: str | Path, max_rows: int = 0) -> list[Record]:
    """Read a manifest, checking the columns a researcher is most likely to get wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    root = path.parent
    records: list[Record] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = {"path", "score"} - set(columns)
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; a manifest needs "
                             "at least 'path' and 'score'")
        rater_cols = [c for c in columns if c.startswith("rater_")]
        for i, row in enumerate(reader):
            try:
                score = int(float(row["score"]))
            except ValueError:
                raise ValueError(f"{path}: row {i + 2}: score {row['score']!r} is not 0-5") from None
            if not 0 <= score < N_CLASSES:
                raise ValueError(f"{path}: row {i + 2}: score {score} is not 0-5")
            landmarks = {}
            for name in LANDMARKS:
                x, y = _float_or_none(row.get(f"{name}_x")), _float_or_none(row.get(f"{name}_y"))
                if x is not None and y is not None:
                    landmarks[name] = (x, y)
            tone = _float_or_none(row.get("skin_tone"))
            raters = {}
            for c in rater_cols:
                v = _float_or_none(row.get(c))
                raters[c] = None if v is None else int(v)
            mask = (row.get("mask_path") or "").strip()
            records.append(Record(
                path=root / row["path"],
                score=score,
                patient_id=(row.get("patient_id") or "").strip() or f"row{i}",
                mask_path=root / mask if mask else None,
                skin_tone=None if tone is None else int(tone),
                ita=_float_or_none(row.get("ita")),
                landmarks=landmarks,
                raters=raters,
                extra={k: v for k, v in row.items() if k in ("split", "site", "pattern", "side", "generator_version")},
            ))
            if max_rows and len(records) >= max_rows:
                break
    if not records:
        raise ValueError(f"{path}: the manifest has no rows")
    return records


# -- splits ---------------------------------------------------------------------------------

def make_splits(records: list[Record], val_fraction: float, test_fraction: float,
                seed: int) -> dict[str, str]:
    """patient_id -> split. Grouped by patient and stratified by the patient's highest score.

    A ``split`` column in the manifest wins over the random assignment.
    """
    given = {r.patient_id: r.extra["split"] for r in records if r.extra.get("split") in SPLITS}
    if given:
        conflicts = {r.patient_id for r in records
                     if r.extra.get("split") in SPLITS and given[r.patient_id] != r.extra["split"]}
        if conflicts:
            raise ValueError(f"patients listed in two splits: {sorted(conflicts)[:5]}")
        return {r.patient_id: given.get(r.patient_id, "train") for r in records}
    stratum: dict[str, int] = {}
    for r in records:
        stratum[r.patient_id] = max(stratum.get(r.patient_id, 0), r.score)
    by_stratum: dict[int, list[str]] = defaultdict(list)
    for pid, s in sorted(stratum.items()):
        by_stratum[s].append(pid)
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for s in sorted(by_stratum):
        pids = by_stratum[s]
        rng.shuffle(pids)
        n = len(pids)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        if val_fraction > 0 and n_val == 0 and n - n_test >= 2:
            n_val = 1
        for j, pid in enumerate(pids):
            assignment[pid] = "test" if j < n_test else ("val" if j < n_test + n_val else "train")
    return assignment


def write_splits(records: list[Record], assignment: dict[str, str], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "score", "split"])
        for r in records:
            w.writerow([str(r.path), r.patient_id, r.score, assignment[r.patient_id]])


def read_splits(path: Path) -> dict[str, str]:
    with path.open(newline="") as fh:
        return {row["patient_id"]: row["split"] for row in csv.DictReader(fh)}


# -- images ---------------------------------------------------------------------------------

def fit_within(image: Image.Image, size: int) -> tuple[Image.Image, float]:
    """The photo resized exactly as ``letterbox`` resizes it, without the padding.

    Augmenting this and letterboxing the result again (a no-op resize) gives the same pixels as
    ``to_input`` on the original when no augmentation is applied.
    """
    canvas, geom = letterbox(image, size)
    nw, nh = round(geom.width * geom.scale), round(geom.height * geom.scale)
    nw, nh = max(1, nw), max(1, nh)
    return canvas.crop((geom.pad_x, geom.pad_y, geom.pad_x + nw, geom.pad_y + nh)), geom.scale


LANDMARK_SIGMA = 0.025   # landmark heatmap blobs: this share of the photo's longer side


def landmark_heatmaps(landmarks: dict[str, tuple[float, float]], width: int, height: int
                      ) -> np.ndarray:
    """(H, W, len(LANDMARKS)) uint8 Gaussian blobs at the landmark pixels (zero where unknown).

    Carried as extra mask channels, so every geometric augmentation moves them with the photo."""
    sigma = LANDMARK_SIGMA * max(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.zeros((height, width, len(LANDMARKS)), np.uint8)
    for i, name in enumerate(LANDMARKS):
        if name in landmarks:
            x, y = landmarks[name]
            g = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma * sigma))
            out[..., i] = np.round(255 * g).astype(np.uint8)
    return out


class ManifestDataset(torch.utils.data.Dataset):
    """Yields ``(image (3,S,S) float32, score, mask (C,S,S) float32, has_mask, index)``.

    ``mask`` channel 0 is the mottled area; with ``landmark_maps`` channels 1-4 are the landmark
    heatmaps (``LANDMARKS`` order, all zero where the manifest has none)."""

    def __init__(self, records: list[Record], spec: PreprocessSpec, augment=None, seed: int = 0,
                 cache: bool = True, landmark_maps: bool = False):
        self.landmark_maps = landmark_maps
        self.records = records
        self.spec = spec
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.cache = cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None, dict]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None, dict]:
        """Resized photo (uint8 HxWx3), mask (uint8 HxW or None), landmarks in its pixels."""
        if index in self._cache:
            return self._cache[index]
        r = self.records[index]
        photo = load_photo(r.path, self.spec.input_size)   # the same pixels inference scores
        resized, scale = fit_within(photo.image, self.spec.input_size)
        mask = None
        if r.mask_path is not None and r.mask_path.is_file():
            with Image.open(r.mask_path) as mk:
                m = mk.convert("L")
            if m.size not in (photo.full_size, photo.image.size):
                m = m.resize(photo.full_size, Image.NEAREST)
            mask = np.asarray(m.resize(resized.size, Image.BILINEAR), np.uint8)
        # landmark pixels are in the stored photo's upright frame, which may be larger than decoded
        scale *= photo.image.width / photo.full_size[0]
        landmarks = {k: (x * scale, y * scale) for k, (x, y) in r.landmarks.items()}
        item = (np.asarray(resized, np.uint8), mask, landmarks)
        if self.cache:
            self._cache[index] = item
        return item

    def sample_seed(self, index: int) -> int:
        return int((self.seed * 1_000_003 + self.epoch * 7919 + index) % (2**31 - 1))

    def __getitem__(self, index: int):
        pixels, mask, landmarks = self.load(index)
        has_mask = mask is not None
        if self.landmark_maps:
            h, w = pixels.shape[:2]
            area = mask if has_mask else np.zeros((h, w), np.uint8)
            mask = np.concatenate([area[..., None], landmark_heatmaps(landmarks, w, h)], axis=2)
        if self.augment is not None:
            pixels, mask, _ = self.augment(pixels, mask, landmarks, self.sample_seed(index))
        size = self.spec.input_size
        boxed, _ = letterbox(Image.fromarray(pixels), size, self.spec.pad_value)
        x = normalise(np.asarray(boxed), self.spec)
        if mask is not None:
            planes = mask[..., None] if mask.ndim == 2 else mask
            m = np.stack([np.asarray(letterbox(Image.fromarray(np.ascontiguousarray(planes[..., c])
                                                               ).convert("RGB"), size, 0)[0],
                                     np.float32)[:, :, 0] for c in range(planes.shape[2])]) / 255.0
        else:
            m = np.zeros((1, size, size), np.float32)
        return (torch.from_numpy(x), int(self.records[index].score), torch.from_numpy(m),
                float(has_mask), index)


# -- sampling -------------------------------------------------------------------------------

class EpochSampler(torch.utils.data.Sampler):
    """Seeded per epoch, so a resumed run draws the same batches as an uninterrupted one.

    With ``balanced`` on and skewed labels (largest class > 1.5x the smallest), draws with
    replacement, weighting each image by 1 / its class count; otherwise a plain shuffle.
    """

    def __init__(self, labels: list[int], seed: int, balanced: bool = True):
        self.labels = list(labels)
        self.seed = seed
        self.epoch = 0
        counts = Counter(self.labels)
        self.skewed = bool(counts) and max(counts.values()) > 1.5 * min(counts.values())
        self.balanced = balanced and self.skewed
        self.weights = torch.tensor([1.0 / counts[y] for y in self.labels], dtype=torch.double)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1009 + self.epoch)
        if self.balanced:
            idx = torch.multinomial(self.weights, len(self.labels), replacement=True, generator=g)
        else:
            idx = torch.randperm(len(self.labels), generator=g)
        return iter(idx.tolist())


def describe(records: list[Record]) -> dict[str, Any]:
    counts = Counter(r.score for r in records)
    return {"images": len(records), "patients": len({r.patient_id for r in records}),
            "scores": {str(k): counts.get(k, 0) for k in range(N_CLASSES)},
            "with_masks": sum(r.mask_path is not None for r in records),
            "generator_versions": sorted({r.extra.get("generator_version") or "" for r in records}
                                         - {""})}
