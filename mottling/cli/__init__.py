"""The ``mottling`` command. Subcommands live in their own modules and are imported lazily, so
``mottling score`` never pays for the training stack and a missing extra gives a clear message.

Exit codes (docs/errors.md holds the table and tests/test_hostile_error_codes.py holds the code to
it): a command handles the inputs it cannot read itself and exits ``EXIT_BAD_INPUT``; an error
that reaches ``main`` means the run could not start at all.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from mottling import __version__
from mottling.errors import MottlingError

EXIT_OK = 0
EXIT_BAD_INPUT = 1       # an input could not be read or analysed (the others were)
EXIT_NOT_STARTED = 2     # usage error, missing INPUT, or the model is missing or fails its check
EXIT_INTERRUPTED = 130

# name -> "module:attribute" of a click command
COMMANDS = {
    "score": "mottling.cli.score:score",
    "crt": "mottling.cli.crt:crt",
    "batch": "mottling.cli.batch:batch",
    "agreement": "mottling.cli.agreement:agreement",
    "rate": "mottling.cli.rate:rate",
    "consensus": "mottling.cli.rate:consensus",
    "serve": "mottling.cli.serve:serve",
    "train": "training.cli:train",
    "evaluate": "training.cli:evaluate",
    "export": "training.cli:export",
    "synth": "mottling.cli.synth:synth",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def format_commands(self, ctx, formatter):
        # Help must not import torch: list the names without loading the commands.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name].split(":")[0]) for name in sorted(COMMANDS)])

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            missing = err.name or ""
            hint = (" Install the training extra: pip install 'mottling[train]'."
                    if missing.split(".")[0] in {"torch", "torchvision", "albumentations", "onnx"}
                    else "")
            raise click.ClickException(f"'mottling {name}' is not available: {err}.{hint}")
        return getattr(module, attr)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="mottling")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Skin mottling score and capillary refill time from phone media. Research use only."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: a bad input ends with one clear line on stderr and a non-zero exit."""
    try:
        # Without standalone mode, click returns a command's ctx.exit(code) instead of raising it.
        code = cli.main(args=argv, prog_name="mottling", standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except click.exceptions.Exit as err:
        return err.exit_code
    except SystemExit as err:       # a command's ``raise SystemExit(EXIT_BAD_INPUT)``
        return err.code if isinstance(err.code, int) else EXIT_NOT_STARTED
    except click.ClickException as err:
        err.show()
        return err.exit_code          # click's usage errors are 2, like EXIT_NOT_STARTED
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except MottlingError as err:
        click.echo(f"error: {err}", err=True)
        return EXIT_NOT_STARTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
