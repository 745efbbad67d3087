"""The batch table: one row per input file, with a fixed column set and types.

Results are the contract fields (docs/design.md) of ``MottlingResult.to_dict()`` and
``CrtResult.to_dict()``, flattened so the same table reads well as Parquet and as CSV: ``probabilities`` becomes
``prob_0``..``prob_5``, the 95% intervals become ``*_ci95_low``/``*_ci95_high``, the ROI becomes
``roi_x``..``roi_h`` and the quality flags one ``;``-separated string. Nothing from a file's own
metadata (EXIF, GPS, container tags) is ever copied in.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from mottling.scale import N_CLASSES as N_SCORES

STATUSES = ("ok", "rejected", "error")
KINDS = ("photo", "video", "unknown")

_FIELDS: list[tuple[str, pa.DataType]] = [
    ("path", pa.string()),
    ("kind", pa.string()),
    ("format", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("reason", pa.string()),
    # photo: mottling score
    ("score", pa.int64()),
    *[(f"prob_{k}", pa.float64()) for k in range(N_SCORES)],
    ("expected_score", pa.float64()),
    ("confidence", pa.float64()),
    ("quality", pa.string()),
    # video: capillary refill time
    ("site", pa.string()),
    ("crt_s", pa.float64()),
    ("crt_ci95_low", pa.float64()),
    ("crt_ci95_high", pa.float64()),
    ("tau_s", pa.float64()),
    ("tau_ci95_low", pa.float64()),
    ("tau_ci95_high", pa.float64()),
    ("release_s", pa.float64()),
    ("threshold_s", pa.float64()),
    ("prolonged", pa.bool_()),
    ("fps", pa.float64()),
    ("frames", pa.int64()),
    ("roi_x", pa.int64()),
    ("roi_y", pa.int64()),
    ("roi_w", pa.int64()),
    ("roi_h", pa.int64()),
    # provenance
    ("input_bytes", pa.int64()),
    ("input_sha256", pa.string()),
    ("model_version", pa.string()),
    ("model_sha256", pa.string()),
    ("mottling_version", pa.string()),
    ("scored_utc", pa.string()),
]

SCHEMA = pa.schema([pa.field(name, dtype) for name, dtype in _FIELDS])
COLUMNS = tuple(SCHEMA.names)
# Columns that legitimately differ between two runs over the same files.
VOLATILE_COLUMNS = ("scored_utc",)


def empty_row(path: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row["path"] = path
    row["kind"] = "unknown"
    return row


def _pair(row: dict, prefix: str, value) -> None:
    row[f"{prefix}_low"], row[f"{prefix}_high"] = (None, None) if value is None else value


def fill_photo(row: dict[str, Any], result: dict[str, Any]) -> None:
    """Copy ``MottlingResult.to_dict()`` into the row (the row keeps its own ``path``)."""
    probs = list(result["probabilities"])
    if len(probs) != N_SCORES:
        raise ValueError(f"the model gave {len(probs)} probabilities, expected {N_SCORES}")
    row["score"] = int(result["score"])
    for k, p in enumerate(probs):
        row[f"prob_{k}"] = float(p)
    row["expected_score"] = float(result["expected_score"])
    row["confidence"] = float(result["confidence"])
    row["quality"] = ";".join(result.get("quality") or ())
    row["model_version"] = result.get("model_version")
    row["model_sha256"] = result.get("model_sha256")


def fill_crt(row: dict[str, Any], result: dict[str, Any]) -> None:
    """Copy ``CrtResult.to_dict()`` into the row; its ``status``/``reason`` become the row's."""
    row["status"] = result["status"]
    row["reason"] = result.get("reason")
    row["site"] = result["site"]
    for key in ("crt_s", "tau_s", "release_s", "threshold_s", "fps"):
        row[key] = result.get(key)
    _pair(row, "crt_ci95", result.get("crt_ci95"))
    _pair(row, "tau_ci95", result.get("tau_ci95"))
    row["prolonged"] = result.get("prolonged")
    row["frames"] = result.get("frames")
    roi = result.get("roi")
    row["roi_x"], row["roi_y"], row["roi_w"], row["roi_h"] = (None,) * 4 if roi is None else roi


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts with exactly ``COLUMNS``) -> an Arrow table with the fixed schema."""
    return pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=SCHEMA)
