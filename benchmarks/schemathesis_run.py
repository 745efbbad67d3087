"""Schemathesis against the live OpenAPI schema of a real ``mottling serve``: zero 5xx allowed.

Starts the server on loopback, runs ``schemathesis run <url>/openapi.json --checks
not_a_server_error`` over every operation (multipart bodies included: random bytes as photos and
videos, random sites and ROIs, random query flags), prints schemathesis' summary and exits with its
status: 0 means no operation answered 5xx.

    python benchmarks/schemathesis_run.py [--max-examples 40] [--model PATH]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._server import pick_model, serve  # noqa: E402


CHECKS = "not_a_server_error"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-examples", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", default=None)
    ap.add_argument("--checks", default=CHECKS, help="schemathesis checks ('all' for every check)")
    args = ap.parse_args()

    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    with serve(pick_model(args.model), 1) as (url, _proc):
        cmd = [exe, "run", f"{url}/openapi.json", "--checks", args.checks,
               "--max-examples", str(args.max_examples), "--seed", str(args.seed),
               "--request-timeout", "60", "--workers", "1"]
        print("$", " ".join(cmd), flush=True)
        # Run from a scratch folder: schemathesis keeps a .schemathesis/ cache in its cwd.
        with tempfile.TemporaryDirectory() as scratch:
            status = subprocess.run(cmd, cwd=scratch).returncode
    print(f"schemathesis exit status {status} ({'no 5xx' if status == 0 else 'FAILURES, see above'})")
    return status


if __name__ == "__main__":
    sys.exit(main())
