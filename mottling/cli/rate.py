"""``mottling rate ARCHIVE... --rater NAME --out DIR`` and ``mottling consensus``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("archives", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--rater", required=True, help="Your name or code; it names your files in DIR.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the answers: RATER.csv (tidy), RATER.answers.sqlite (every answer "
                   "as given), RATER.session.json (seed).")
@click.option("--seed", type=int, default=None,
              help="Seed of your order (default: drawn once and recorded in the session file).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def rate(archives: tuple[Path, ...], rater: str, out_dir: Path, seed: int | None, host: str,
         port: int, log_level: str) -> None:
    """Score the photos and mark the refill videos of ARCHIVE (folders or zips) blind, in a browser.

    Every answer is stored as it is given; stop at any time and run the same command to go on."""
    import uvicorn

    from mottling.rate.app import create_app
    from mottling.rate.service import open_service

    service = open_service([str(a) for a in archives], out_dir, rater=rater, seed=seed)
    session, store = service.rater(rater)
    done = len(store.latest())
    n_p, n_v = len(service.archive.photos), len(service.archive.videos)
    click.echo(f"{rater}: {n_p} photos and {n_v} videos ({done} answered, seed {session.seed}); "
               f"answers in {store.csv_path}", err=True)
    if service.archive.skipped:
        click.echo(f"{len(service.archive.skipped)} files are not offered (not a photo or video, "
                   "or leading outside the archive)", err=True)
    click.echo(f"open http://{host}:{port}/rate/ in a browser", err=True)
    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level,
                server_header=False, timeout_graceful_shutdown=5)


@click.command()
@click.argument("rater_files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(["majority", "median"]), default="majority",
              show_default=True, help="How raters' scores become one score.")
@click.option("--min-raters", type=click.IntRange(min=1), default=None,
              help="Fewest usable answers a file needs (default: every rater file given).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="The folder holding the archives (its parent folder when you "
                                 "rated 'trial/'); makes the manifest's paths open from OUT, and "
                                 "copies zip members out so training can read them.")
@click.option("--meta", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CSV with path and any of patient_id, skin_tone, ita, site, centre, split to "
                   "carry into the manifest (matched by path).")
def consensus(rater_files: tuple[Path, ...], out_dir: Path, method: str, min_raters: int | None,
              root: Path | None, meta: Path | None) -> None:
    """Turn several raters' files into a training manifest; ties and disagreements are listed in
    ties.csv, never broken silently."""
    from mottling.rate.consensus import build_consensus

    summary = build_consensus(list(rater_files), out_dir, method=method, min_raters=min_raters,
                              root=root, meta=meta)
    click.echo(f"{summary['photos_in_manifest']} photos in {summary['manifest']}; "
               f"{summary['ties']} ties/unresolved listed in {summary['ties_file']}; "
               f"{summary['videos']} videos in {summary['crt_file']}")
    if root is None:
        click.echo("paths are as rated (inside the archive); pass --root FOLDER (the folder that "
                   "holds the archive) so that training opens them from the manifest", err=True)
