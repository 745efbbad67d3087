"""``mottling train | evaluate | export`` (loaded lazily by ``mottling.cli``; needs the train extra)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from training.config import TrainConfig, parse_overrides


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2))


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="YAML config (training/configs/default.yaml is the recipe).")
@click.option("--resume", is_flag=True, help="Continue the run in out_dir from its last.pt.")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from these weights (a checkpoint, e.g. models/mottling-v0.3.0.pt).")
@click.option("--stop-after", type=click.IntRange(min=1), default=None,
              help="Stop after this many epochs of this invocation (continue with --resume).")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def train(config_path: str | None, resume: bool, init: str | None, stop_after: int | None,
          overrides: tuple[str, ...]) -> None:
    """Train a model. Any config field can be overridden: --data manifest.csv --epochs 3 ..."""
    from training.train import train as run_training

    logging.getLogger("training").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        values = parse_overrides(overrides)
        if init:
            values["init"] = init
        cfg = TrainConfig.load(config_path, values)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    if not cfg.data:
        raise click.UsageError("no training data: pass --data manifest.csv (or set data: in YAML)")
    run_dir = run_training(cfg, resume=resume, stop_after=stop_after)
    _echo_json(json.loads((run_dir / "summary.json").read_text()))


@click.command()
@click.option("--model", "model", type=click.Path(exists=True, dir_okay=False), required=True,
              help="A checkpoint (.pt) or an exported model (.onnx).")
@click.option("--manifest", "manifests", multiple=True, required=True,
              help="A manifest.csv; repeat as NAME=manifest.csv for the cross-renderer protocol "
              "(one row per set, by Monk group: OUT/protocol.md).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Only rows of this split (from --splits-file or the manifest's split column).")
@click.option("--splits-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A run's splits.csv.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--max-images", type=click.IntRange(min=0), default=0)
def evaluate(model: str, manifests: tuple[str, ...], out_dir: str, split: str | None,
             splits_file: str | None, threads: int, max_images: int) -> None:
    """QWK, MAE, accuracy, calibration and the skin-tone breakdown -> report.md + metrics.json."""
    from training.evaluate import evaluate as run_evaluate

    if len(manifests) > 1 or "=" in manifests[0]:
        from training.protocol import render_table, run_protocol

        sets = {}
        for item in manifests:
            name, sep, path = item.partition("=")
            if not sep or not all(Path(x).is_file() for x in path.split(",")):
                raise click.UsageError(f"--manifest {item!r}: expected NAME=existing/manifest.csv")
            sets[name] = path
        rows = run_protocol(model, sets, out_dir, threads, max_images)
        click.echo(render_table(rows, model))
        return
    manifest = manifests[0]
    if not all(Path(x).is_file() for x in manifest.split(",")):
        raise click.UsageError(f"--manifest {manifest!r}: no such file")
    result = run_evaluate(model, manifest, out_dir, split, splits_file, threads, max_images)
    o = result["overall"]
    _echo_json({"out": out_dir, "n": o["n"], "qwk": o["qwk"], "mae": o["mae"],
                "exact_accuracy": o["exact_accuracy"], "ece": o["ece"],
                "qwk_by_skin_tone": {g: m["qwk"] for g, m in result["by_skin_tone"].items()}})


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="models/NAME.onnx; NAME.card.json and NAME.md are written beside it.")
@click.option("--semver", default="0.1.0", show_default=True)
@click.option("--metrics", "metrics_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="metrics.json from `mottling evaluate` on a held-out test set.")
@click.option("--test-set", default=None, help="How the test set was made (goes in the card).")
@click.option("--training-data", default=None, help="Override the training-data description.")
@click.option("--weights/--no-weights", default=True, show_default=True,
              help="Also write NAME.pt (weights only) for `mottling train --init`.")
@click.option("--recipe-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A text file with the commands that produced the model (copied to the card).")
@click.option("--exporter", type=click.Choice(["auto", "dynamo", "torchscript"]), default="auto",
              show_default=True, help="auto: torch.export-based, TorchScript if that fails.")
@click.option("--protocol", "protocol", multiple=True,
              help="TRAINED_ON=protocol.json from `mottling evaluate --manifest NAME=...`; "
              "repeat for each row group of the card's cross-renderer table.")
@click.option("--calibrate", "calibrate", default=None, metavar="VAL_MANIFEST[,VAL_MANIFEST]",
              help="Choose per-rank offsets of the ordinal head on the validation patients of "
              "these manifests (the run's splits.csv, rows val; never a test set) and fold them "
              "into the head's bias; the offsets go into the metadata and the card.")
@click.option("--calibrate-splits", type=click.Path(exists=True, dir_okay=False), default=None,
              help="splits.csv naming the validation patients (default: beside CHECKPOINT).")
@click.option("--calibrate-objective", type=click.Choice(["clean90", "cost"]), default="clean90",
              show_default=True, help="clean90: best validation QWK with >= --calibrate-min-clean "
              "of clean legs called 0 per renderer; cost: squared error, false findings weighted.")
@click.option("--calibrate-min-clean", type=click.FloatRange(0, 1), default=0.9,
              show_default=True)
@click.option("--calibrate-false-finding-weight", type=click.FloatRange(min=1), default=3.0,
              show_default=True)
@click.option("--calibrate-ranks", type=click.Choice(["first", "all"]), default="first",
              show_default=True, help="first: one offset, on 'more than 0' (the clean/mottled "
              "threshold); all: one per rank (five). Measured: training/README.md.")
def export(checkpoint: str, out: str, semver: str, metrics_path: str | None, test_set: str | None,
           training_data: str | None, weights: bool, recipe_file: str | None,
           exporter: str, protocol: tuple[str, ...], calibrate: str | None,
           calibrate_splits: str | None, calibrate_objective: str, calibrate_min_clean: float,
           calibrate_false_finding_weight: float, calibrate_ranks: str) -> None:
    """Export to ONNX (opset 18, dynamic batch), check it, verify parity, write the model card."""
    from training.export import export as run_export

    recipe = Path(recipe_file).read_text().strip() if recipe_file else None
    options = None
    if calibrate:
        if not all(Path(x).is_file() for x in calibrate.split(",")):
            raise click.UsageError(f"--calibrate {calibrate!r}: no such manifest")
        options = {"manifests": calibrate, "splits_file": calibrate_splits,
                   "objective": calibrate_objective, "min_clean": calibrate_min_clean,
                   "false_finding_weight": calibrate_false_finding_weight,
                   "ranks": [0] if calibrate_ranks == "first" else None}
    result = run_export(checkpoint, out, semver=semver, metrics_path=metrics_path,
                        training_data=training_data, test_set=test_set, weights=weights,
                        recipe=recipe, exporter=exporter,
                        protocol=dict(p.split("=", 1) for p in protocol), calibrate=options)
    _echo_json(result)
