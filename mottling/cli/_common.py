"""Small helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


def emit_json(obj: Any) -> None:
    """Machine-readable output on stdout, one document per call."""
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """``X,Y,W,H`` in pixels of the upright frame."""
    if text is None:
        return None
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise click.BadParameter(f"ROI must be X,Y,W,H integers, got {text!r}")
    if len(parts) != 4 or parts[2] <= 0 or parts[3] <= 0 or parts[0] < 0 or parts[1] < 0:
        raise click.BadParameter(f"ROI must be X,Y,W,H with positive width and height, got {text!r}")
    return parts  # type: ignore[return-value]
