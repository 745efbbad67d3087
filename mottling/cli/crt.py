"""``mottling crt VIDEO --site finger|knee``: capillary refill time from a press-and-release video.

Exit codes follow docs/errors.md: 0 with a result (a rejected measurement is a result), 1 when
the video cannot be read or analysed (one ``error: PATH: message`` line), 2 for a usage error.
"""

from __future__ import annotations

from pathlib import Path

import click

from mottling.cli import EXIT_BAD_INPUT
from mottling.cli._common import click_roi, emit_json
from mottling.errors import InputError
from mottling.scale import SITES


@click.command("crt")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--site", type=click.Choice(SITES), required=True,
              help="Where the skin was pressed (sets the threshold: finger 3 s, knee 4 s).")
@click.option("--roi", "roi_text", default=None, metavar="X,Y,W,H",
              help="The pressed spot in upright video pixels; found automatically if omitted.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the signal, the fit, the release and the 90% point to this PNG.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (docs/design.md).")
def crt(video: Path, site: str, roi_text: str | None, plot_path: Path | None, as_json: bool) -> None:
    """Measure the capillary refill time in VIDEO. Research use only."""
    from mottling.crt import measure_crt

    roi = click_roi(roi_text)
    try:
        result = measure_crt(video, site, roi=roi, path=str(video))
    except InputError as err:
        # A bad video is a bad input (exit 1), like a bad photo in ``mottling score``; exit 2
        # is for a run that cannot start (usage, model).
        click.echo(f"error: {video}: {err}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    if plot_path is not None:
        from mottling.crt.plot import plot_crt

        plot_crt(result, plot_path)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(summary(video, site, result))
    if plot_path is not None:
        click.echo(f"plot: {plot_path}")


def summary(video, site: str, result) -> str:
    """The one line a person reads. A 95% interval across the threshold is said in words: the
    prolonged / not prolonged answer then rests on the point value alone."""
    if result.status != "ok":
        return f"{video}: rejected: {result.reason}"
    lo, hi = result.crt_ci95
    verdict = "prolonged" if result.prolonged else "not prolonged"
    if lo < result.threshold_s < hi:
        verdict += ", but the 95% CI spans the threshold"
    return (f"{video}: {site} CRT {result.crt_s:.2f} s (95% CI {lo:.2f}-{hi:.2f} s), "
            f"{verdict} (threshold {result.threshold_s:g} s); release at "
            f"{result.release_s:.2f} s, {result.frames} frames at {result.fps:.1f} fps")
