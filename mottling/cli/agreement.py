"""``mottling agreement [results.parquet] --labels RATER.csv [--labels ...] --out DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from mottling.errors import InputError


@click.command()
@click.argument("results", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--labels", "labels_paths", required=True, multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Long CSV: path, rater, score and/or crt_s [, skin_tone, site, centre]; "
                   "repeat it for several files, e.g. each rater's file from 'mottling rate'.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def agreement(results: Path | None, labels_paths: tuple[Path, ...], out_dir: Path) -> None:
    """Agreement of a batch run with human raters, and of the raters with each other: QWK,
    confusion matrix and exact agreement for scores; Bland-Altman, ICC and the threshold decision
    for CRT; by skin tone and site. Without RESULTS, only the raters are compared."""
    from mottling.agreement import compute_agreement, load_label_files
    from mottling.agreement_report import write_report

    rows: list[dict] = []
    if results is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(results).to_pylist()
        except (OSError, pa.ArrowInvalid) as err:
            raise InputError(f"cannot read the results {results}: {err}") from None
        if rows and not {"path", "status"} <= set(rows[0]):
            raise InputError(f"{results} is not a 'mottling batch' table (no path/status columns)")
    ag = compute_agreement(rows, load_label_files(labels_paths))
    written = write_report(ag, out_dir, results.name if results else "(none: raters only)",
                           ", ".join(p.name for p in labels_paths))
    m, c = ag.scores["model_vs_consensus"], ag.crt["model_vs_consensus"]
    pairs = ag.scores["rater_vs_rater"]
    if results is not None:
        click.echo(f"scores: n={m['n']} QWK {m.get('qwk')} exact {m.get('exact')}; "
                   f"CRT: n={c['n']} bias {c.get('bias_s')} s ICC {c.get('icc_2_1')}")
    for name, pair in pairs.items():
        crt = ag.crt["rater_vs_rater"].get(name, {"n": 0})
        click.echo(f"{name}: scores n={pair['n']} QWK {pair.get('qwk')}; "
                   f"CRT n={crt['n']} bias {crt.get('bias_s')} s")
    click.echo(f"wrote {', '.join(str(p) for p in written.values())}")
