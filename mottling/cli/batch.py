"""``mottling batch INPUT... --out results.parquet``: score a whole archive, one row per file."""

from __future__ import annotations

from pathlib import Path

import click

from mottling.batch.runner import ENGINES, BatchConfig, run_batch
from mottling.cli import EXIT_BAD_INPUT
from mottling.scale import SITES


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Parquet file to write. Finished shards go to OUT.parts/ so a rerun resumes.")
@click.option("--csv", "csv", is_flag=True, help="Also write the table as CSV beside OUT.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes (local) or actors (ray), each loading the model once.")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True)
@click.option("--ray-address", default=None,
              help="Join a running Ray cluster (e.g. auto or ray://head:10001) instead of "
                   "starting a private local one. Implies --engine ray.")
@click.option("--site", type=click.Choice(SITES), default=None,
              help="Body site of every video (lowest precedence).")
@click.option("--site-from-path", "site_from_path", default=None, metavar="REGEX",
              help="Take a video's site from its path: the first group (or the whole match), "
                   "e.g. '(finger|knee)'. Overrides --site.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV (or JSON list) with 'path' and 'site' columns. Overrides the others.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False), default=None,
              help="ONNX model (default: the shipped model).")
@click.option("--shard-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Files per shard: the unit of resumption.")
@click.option("--max-file-mb", type=click.FloatRange(min=0.001), default=1024, show_default=True,
              help="Larger files become error rows without being read.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: only when stderr is a terminal).")
@click.option("--slow-down-s", type=float, default=0.0, hidden=True)  # testing aid
def batch(inputs: tuple[str, ...], out: Path, csv: bool, workers: int,
          engine: str, ray_address: str | None, site: str | None, site_from_path: str | None,
          manifest: str | None, model: str | None, shard_size: int, max_file_mb: float,
          progress: bool | None, slow_down_s: float) -> None:
    """Score every photo (mottling) and video (CRT) under INPUT: folders, zip files, globs or
    list files (@paths.txt). Every file becomes one row with status ok, rejected or error; the
    exit code is 1 when any row is an error."""
    config = BatchConfig(
        inputs=tuple(inputs), out=str(out), csv=csv, workers=workers,
        engine="ray" if ray_address else engine, ray_address=ray_address, site=site,
        site_from_path=site_from_path, manifest=manifest, model=model, shard_size=shard_size,
        max_file_bytes=int(max_file_mb * (1 << 20)), slow_down_s=slow_down_s)
    summary = run_batch(config, progress=progress)
    click.echo(summary.format())
    if summary.n_errors:
        # SystemExit, not ctx.exit: mottling.cli.main runs click with standalone_mode=False and
        # drops the exit code that ctx.exit returns.
        raise SystemExit(EXIT_BAD_INPUT)
