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


def click_roi(text: str | None) -> tuple[int, int, int, int] | None:
    """``--roi X,Y,W,H`` (parsed by ``mottling.crt.roi.parse_roi``) as a click usage error."""
    from mottling.crt.roi import parse_roi as parse
    from mottling.errors import InputError

    try:
        return parse(text)
    except InputError as err:
        raise click.BadParameter(str(err)) from None
