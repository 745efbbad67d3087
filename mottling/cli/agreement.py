"""``mottling agreement results.parquet --labels labels.csv --out DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from mottling.errors import InputError


@click.command()
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--labels", "labels_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Long CSV: path, rater, score and/or crt_s [, skin_tone, site, centre].")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def agreement(results: Path, labels_path: Path, out_dir: Path) -> None:
    """Agreement of a batch run with human raters: QWK, confusion matrix and exact agreement for
    scores; Bland-Altman, ICC and the threshold decision for CRT; by skin tone and site."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mottling.agreement import compute_agreement, load_labels
    from mottling.agreement_report import write_report

    try:
        rows = pq.read_table(results).to_pylist()
    except (OSError, pa.ArrowInvalid) as err:
        raise InputError(f"cannot read the results {results}: {err}") from None
    if rows and not {"path", "status"} <= set(rows[0]):
        raise InputError(f"{results} is not a 'mottling batch' table (no path/status columns)")
    ag = compute_agreement(rows, load_labels(labels_path))
    written = write_report(ag, out_dir, results.name, labels_path.name)
    m, c = ag.scores["model_vs_consensus"], ag.crt["model_vs_consensus"]
    click.echo(f"scores: n={m['n']} QWK {m.get('qwk')} exact {m.get('exact')}; "
               f"CRT: n={c['n']} bias {c.get('bias_s')} s ICC {c.get('icc_2_1')}")
    click.echo(f"wrote {', '.join(str(p) for p in written.values())}")
