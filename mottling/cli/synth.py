"""``mottling synth images|videos``: generated data with exact ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from mottling.scale import SITES


@click.group()
def synth() -> None:
    """Generate knee photographs or refill videos whose answer is known exactly."""


@synth.command("images")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of photographs.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", type=click.IntRange(min=64, max=4096), default=384, show_default=True,
              help="Longer side of each photo in pixels.")
@click.option("--unbalanced", is_flag=True, help="Draw scores from a skewed, ICU-like prior "
              "instead of balancing them.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--renderer", type=click.Choice(["a", "b"]), default="a", show_default=True,
              help="a: flat leg outline through a homography; b: a 3-D leg on a ward bed seen by a "
              "wide-angle phone camera (built independently, for cross-renderer tests).")
@click.option("--contact-sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw a score x skin-tone grid to this PNG.")
def images(n: int, out_dir: Path, seed: int, size: int, unbalanced: bool, workers: int,
           renderer: str, contact_sheet: Path | None) -> None:
    """Knee-and-thigh photographs, masks of the mottled area and manifest.csv."""
    from mottling.synth.images import generate_images

    manifest = generate_images(n=n, out_dir=out_dir, seed=seed, size=size,
                               balanced=not unbalanced, workers=workers,
                               renderer=renderer)
    click.echo(f"wrote {n} photographs and {manifest}")
    if contact_sheet is not None:
        from mottling.synth.contact_sheet import draw_contact_sheet

        draw_contact_sheet(contact_sheet, seed=seed, size=size, renderer=renderer)
        click.echo(f"wrote {contact_sheet}")


@synth.command("videos")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of videos.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--broken-fraction", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="Share of deliberately broken videos that the CRT module must reject.")
@click.option("--site", type=click.Choice([*SITES, "both"]), default="both",
              show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--keyframes", default="mixed", show_default=True,
              help="Key frames: 'mixed' (each video's own draw, mostly a phone's 0.5-2 s), "
              "'x264' (x264's default, every 250 frames) or seconds between key frames.")
@click.option("--codec", type=click.Choice(["h264", "hevc", "hevc10-hlg"]), default="h264",
              show_default=True,
              help="How the frames are encoded: H.264, HEVC 8-bit (BT.709) or HEVC Main10 tagged "
              "BT.2020 HLG, as an iPhone records with HDR video on.")
@click.option("--bits-per-pixel", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Encode at a phone's bit rate, this many bits per pixel and frame (an "
              "iPhone's original about 0.13-0.26, a messaging app's copy about 0.08), instead of "
              "each video's drawn constant rate factor (18-28).")
@click.option("--min-side", type=click.IntRange(min=64), default=None,
              help="Film every video with at least this many pixels on its shorter side, as "
              "phones do (720 and up), instead of the drawn 180-640; the hand-held motion "
              "scales with the frame.")
def videos(n: int, out_dir: Path, seed: int, broken_fraction: float, site: str,
           workers: int, keyframes: str, codec: str, bits_per_pixel: float | None,
           min_side: int | None) -> None:
    """Press-and-release refill videos (MP4) and truth.json."""
    from mottling.synth.videos import generate_videos, parse_keyframes

    try:
        parse_keyframes(keyframes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--keyframes") from exc
    truth = generate_videos(n=n, out_dir=out_dir, seed=seed, broken_fraction=broken_fraction,
                            site=site, workers=workers, keyframes=keyframes, codec=codec,
                            bits_per_pixel=bits_per_pixel, min_side=min_side)
    click.echo(f"wrote {n} videos and {truth}")
