"""``mottling export CKPT --out models/NAME.onnx``: the ONNX artefact the torch-free core loads.

Contract (docs/design.md): input ``image`` float32 (N, 3, S, S) prepared by
``mottling.photo.preprocess.to_input``; outputs ``probabilities`` (N, 6), ``expected_score`` (N,) and
``area_map`` (N, 1, h, w) in [0, 1]. Preprocessing, labels, versions and headline metrics are stored
in ``metadata_props``. The export is checked with ``onnx.checker`` and against PyTorch on generated
photos; a parity failure deletes the file and fails the export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mottling.photo.model import OUTPUT_NAMES as ONNX_OUTPUT_NAMES
from mottling.photo.preprocess import PreprocessSpec, to_input
from mottling.scale import SCALE_VERSION
from training.checkpoint import git_commit, model_from_checkpoint, spec_from_config
from training.model import N_CLASSES, ExportWrapper

log = logging.getLogger(__name__)
OPSET = 18
PARITY_ATOL = 1e-4
LABELS = [str(k) for k in range(N_CLASSES)]
OUTPUT_NAMES = list(ONNX_OUTPUT_NAMES)   # the contract lives in mottling.photo.model


class ParityError(RuntimeError):
    """The ONNX model does not reproduce the PyTorch model."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _export_graph(wrapper: torch.nn.Module, size: int, path: Path, exporter: str = "auto") -> str:
    """``auto``: the torch.export-based exporter, falling back to TorchScript if it fails."""
    example = torch.randn(2, 3, size, size)
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise ValueError(f"unknown exporter {exporter!r}")
    if exporter != "torchscript":
        try:
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(wrapper, (example,), str(path), dynamo=True, external_data=False,
                              opset_version=OPSET, input_names=["image"],
                              output_names=OUTPUT_NAMES, dynamic_shapes={"image": {0: batch}},
                              verbose=False)
            return "dynamo"
        except Exception as err:  # noqa: BLE001 - fall back to TorchScript, and say why
            if exporter == "dynamo":
                raise
            log.warning("dynamo export failed (%s); using the TorchScript exporter", err)
    torch.onnx.export(wrapper, (example,), str(path), dynamo=False, opset_version=OPSET,
                      input_names=["image"], output_names=OUTPUT_NAMES,
                      dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"},
                                    "expected_score": {0: "batch"}, "area_map": {0: "batch"}})
    return "torchscript"


def parity_images(n: int = 12, size: int = 256) -> list:
    """Generated photos across scores and skin tones (the generator knows the answer)."""
    from mottling.synth.images import render_photo

    return [render_photo(seed=90_000 + i, score=i % N_CLASSES, skin_tone=1 + (3 * i) % 10,
                         size=size).image for i in range(n)]


def check_parity(wrapper: torch.nn.Module, onnx_path: Path, spec: PreprocessSpec,
                 images: list | None = None) -> dict[str, Any]:
    """Max |p_onnx - p_torch| <= 1e-4 and identical argmax, at batch sizes 1 and N."""
    import onnxruntime as ort

    images = images if images is not None else parity_images()
    batch = np.stack([to_input(im, spec)[0] for im in images]).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        t_probs, t_exp, t_area = (t.numpy() for t in wrapper(torch.from_numpy(batch)))
    o_probs, o_exp, o_area = sess.run(OUTPUT_NAMES, {"image": batch})
    single = np.concatenate([sess.run(["probabilities"], {"image": batch[i:i + 1]})[0]
                             for i in range(len(batch))])
    report = {
        "images": int(len(batch)),
        "max_abs_diff_probabilities": float(np.abs(o_probs - t_probs).max()),
        "max_abs_diff_probabilities_batch1": float(np.abs(single - t_probs).max()),
        "max_abs_diff_expected_score": float(np.abs(o_exp - t_exp).max()),
        "max_abs_diff_area_map": float(np.abs(o_area - t_area).max()),
        "argmax_identical": bool((o_probs.argmax(1) == t_probs.argmax(1)).all()
                                 and (single.argmax(1) == t_probs.argmax(1)).all()),
        "probabilities_sum_max_error": float(np.abs(o_probs.sum(1) - 1).max()),
        "area_map_shape": list(o_area.shape),
    }
    ok = (report["max_abs_diff_probabilities"] <= PARITY_ATOL
          and report["max_abs_diff_probabilities_batch1"] <= PARITY_ATOL
          and report["argmax_identical"])
    report["passed"] = bool(ok)
    if not ok:
        raise ParityError(f"ONNX/PyTorch parity failed: {report}")
    return report


def headline_metrics(evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """The few numbers stored inside the model (the full report sits in the card)."""
    if not evaluation:
        return {}
    o = evaluation["overall"]
    return {"test_set": evaluation.get("test_set", evaluation.get("manifest")), "n": o["n"],
            "qwk": o["qwk"], "mae": o["mae"], "exact_accuracy": o["exact_accuracy"],
            "within_one_accuracy": o["within_one_accuracy"], "ece": o.get("ece"),
            "qwk_by_skin_tone": {g: m["qwk"] for g, m in evaluation["by_skin_tone"].items()}}


def export(checkpoint_path: str | Path, out: str | Path, semver: str = "0.1.0",
           metrics_path: str | Path | None = None, training_data: str | None = None,
           test_set: str | None = None, parity: bool = True, card: bool = True,
           weights: bool = False, recipe: str | None = None, exporter: str = "auto",
           parity_photos: list | None = None, protocol: dict[str, str] | None = None,
           calibrate: dict[str, Any] | None = None) -> dict[str, Any]:
    """``calibrate``: keyword arguments of ``training.calibrate.calibrate`` (``manifests``, and
    ``splits_file``, default the run's splits.csv beside the checkpoint): choose per-rank offsets
    on the validation patients and fold them into the head's bias before export."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    net, cfg, ckpt = model_from_checkpoint(checkpoint_path)
    spec = spec_from_config(cfg)
    if calibrate is not None:
        ckpt = {**ckpt, "calibration": calibrate_checkpoint(net, spec, ckpt, checkpoint_path,
                                                            calibrate)}
    wrapper = ExportWrapper(net).eval()
    t0 = time.perf_counter()
    exporter = _export_graph(wrapper, spec.input_size, out, exporter)

    import onnx

    evaluation = json.loads(Path(metrics_path).read_text()) if metrics_path else None
    if evaluation is not None and test_set:
        evaluation["test_set"] = test_set
    data_info = ckpt.get("data") or {}
    training_data = training_data or describe_training_data(data_info)
    commit = git_commit()
    meta = {
        "mottling.semver": semver,
        "mottling.git_commit": commit,
        "mottling.labels": json.dumps(LABELS),
        "mottling.input_size": str(spec.input_size),
        "mottling.mean": json.dumps(list(spec.mean)),
        "mottling.std": json.dumps(list(spec.std)),
        "mottling.resize": spec.resize,
        "mottling.scale_version": SCALE_VERSION,
        "mottling.training_data": training_data,
        "mottling.metrics": json.dumps(headline_metrics(evaluation)),
        "mottling.backbone": cfg.backbone,
        "mottling.head": cfg.head,
        "mottling.created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if ckpt.get("calibration"):
        c = ckpt["calibration"]
        meta["mottling.calibration"] = json.dumps(
            {"offsets": c["offsets"], "objective": c["objective"],
             "validation": c.get("validation")})
    model = onnx.load(str(out))
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "mottling"
    model.doc_string = ("Mottling score (Ait-Oufella 2011) from a knee/thigh photo. Research "
                        "baseline trained on generated images; not a medical device.")
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(out))
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    result: dict[str, Any] = {"onnx": str(out), "exporter": exporter, "opset": opset,
                              "export_s": round(time.perf_counter() - t0, 2)}
    if parity:
        try:
            result["parity"] = check_parity(wrapper, out, spec, parity_photos)
        except ParityError:
            out.unlink(missing_ok=True)
            raise
    result["sha256"] = sha256_file(out)
    result["size_bytes"] = out.stat().st_size
    weights_info = None
    if weights:
        # weights only (no optimizer state), for `mottling train --init`
        from training import checkpoint as ck

        pt = out.with_suffix(".pt")
        ck.save(pt, config=cfg.to_dict(), model=net.state_dict(), epoch=ckpt.get("epoch"),
                metrics=ckpt.get("metrics"), git_commit=ckpt.get("git_commit"),
                data=ckpt.get("data"), calibration=ckpt.get("calibration"))
        weights_info = {"file": pt.name, "sha256": sha256_file(pt), "size_bytes": pt.stat().st_size}
        result["weights"] = weights_info
    if card:
        from training.card import write_cards

        summary_path = Path(checkpoint_path).parent / "summary.json"
        run_summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        # a run started with --init continues an earlier one: record that stage too
        if run_summary is not None and cfg.init:
            earlier = Path(cfg.init).parent / "summary.json"
            if earlier.is_file():
                run_summary["initialised_from"] = {"checkpoint": cfg.init,
                                                   **json.loads(earlier.read_text())}
        tables = {name: json.loads(Path(path).read_text())
                  for name, path in (protocol or {}).items()}
        write_cards(out, meta=meta, cfg=cfg, ckpt=ckpt, evaluation=evaluation, export=result,
                    run_summary=run_summary, weights=weights_info, recipe=recipe,
                    protocol=tables or None)
    return result


def calibrate_checkpoint(net, spec, ckpt: dict[str, Any], checkpoint_path: str | Path,
                         options: dict[str, Any]) -> dict[str, Any]:
    """Choose offsets on the validation patients, fold them into ``net``; returns the record."""
    from training.calibrate import calibrate, fold_offsets

    if ckpt.get("calibration"):
        raise ValueError(f"{checkpoint_path} is already calibrated (offsets "
                         f"{ckpt['calibration']['offsets']}); calibrate the uncalibrated weights")
    options = dict(options)
    default_splits = Path(checkpoint_path).parent / "splits.csv"
    options["splits_file"] = options.get("splits_file") or default_splits
    if not Path(options["splits_file"]).is_file():
        raise FileNotFoundError(f"no splits file {options['splits_file']}: calibration needs the "
                                "run's validation patients (pass the run's splits.csv)")
    record = calibrate(net, spec, **options)
    fold_offsets(net, record["offsets"])
    record["checkpoint"] = str(checkpoint_path)
    log.info("calibrated on %d validation photos: offsets %s", record["validation"]["images"],
             record["offsets"])
    return record


def describe_training_data(data_info: dict[str, Any]) -> str:
    train, val = data_info.get("train", {}), data_info.get("val", {}) or {}
    versions = train.get("generator_versions", [])
    counts = (f"{train.get('images', '?')} training images of {train.get('patients', '?')} "
              f"patients (+{val.get('images', 0)} validation images)")
    if versions:
        return (f"GENERATED images only (mottling synth images, generator {', '.join(versions)}): "
                f"{counts}, scores 0-5 balanced, Monk skin tones 1-10. No real patient photographs. "
                "Research baseline, not a medical device.")
    return f"{counts} from a user-supplied manifest (see the model card)."
