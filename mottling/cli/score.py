"""``mottling score IMAGE... [--json] [--overlay PNG_OR_DIR] [--model PATH]``.

Every image that can be read is scored and printed; each one that cannot gets one line on stderr
(``error: PATH: message``) and makes the exit code 1. A missing or tampered model ends the run
with exit code 2 before any image is read.
"""

from __future__ import annotations

from pathlib import Path

import click

from mottling.cli._common import emit_json
from mottling.results import IMAGE_QUALITY_MESSAGES, MottlingResult


@click.command()
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list, one object per scored image (keys: docs/design.md).")
@click.option("--overlay", type=click.Path(path_type=Path), default=None,
              help="Write the photo with the predicted mottled area and the score drawn on it: a "
                   ".png file for one image, or a folder (IMAGE_STEM.overlay.png per image).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="ONNX model (default: $MOTTLING_MODEL_PATH or the shipped model).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="ONNX Runtime intra-op threads (default: $MOTTLING_THREADS or all cores).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.pass_context
def score(ctx: click.Context, images: tuple[str, ...], as_json: bool, overlay: Path | None,
          model_path: Path | None, threads: int | None, batch_size: int) -> None:
    """Score skin mottling (0-5) on photos of the leg. Research use only."""
    from mottling.photo.model import iter_scored, load_model

    overlay_dir = _overlay_target(overlay, len(images))
    model = load_model(model_path, intra_op_threads=threads)   # ModelError -> exit 2 in main()

    results: list[MottlingResult] = []
    failures = 0
    used_names: set[str] = set()
    for item in iter_scored(images, model, batch_size=batch_size):
        if item.error is not None or item.result is None:
            failures += 1
            click.echo(f"error: {item.path}: {item.error}", err=True)
            continue
        if overlay is not None:
            _write_overlay(item.image, item.result, overlay, overlay_dir, item.path, used_names)
        results.append(item.result)
        if not as_json:
            click.echo(_human_line(item.result))

    if as_json:
        emit_json([r.to_dict() for r in results])
    if failures:
        ctx.exit(1)


def _overlay_target(overlay: Path | None, n_images: int) -> bool:
    """True when ``--overlay`` names a folder, False for a single PNG file."""
    if overlay is None:
        return False
    if overlay.is_dir() or (overlay.suffix.lower() != ".png"):
        overlay.mkdir(parents=True, exist_ok=True)
        return True
    if n_images > 1:
        raise click.UsageError("--overlay must be a folder when scoring more than one image.")
    if not overlay.parent.is_dir():
        raise click.UsageError(f"--overlay: folder {overlay.parent} does not exist.")
    return False


def _write_overlay(image, result: MottlingResult, overlay: Path, is_dir: bool, name: str,
                   used: set[str]) -> None:
    """One PNG per image; two inputs with the same stem (a/leg.jpg, b/leg.jpg) get -2, -3..."""
    from mottling.photo.overlay import draw_overlay

    target = overlay
    if is_dir:
        stem, n = Path(name).stem, 1
        file_name = f"{stem}.overlay.png"
        while file_name in used:
            n += 1
            file_name = f"{stem}-{n}.overlay.png"
        used.add(file_name)
        target = overlay / file_name
    draw_overlay(image, result).save(target, format="PNG")


def _human_line(result: MottlingResult) -> str:
    text = (f"{result.path}: score {result.score} (expected {result.expected_score:.2f}, "
            f"confidence {result.confidence:.2f})")
    if result.quality:
        text += " - " + " ".join(IMAGE_QUALITY_MESSAGES.get(q, q) for q in result.quality)
    return text
