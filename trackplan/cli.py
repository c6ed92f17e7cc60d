"""The ``trackplan`` command: a thin click group; each backend registers its own commands."""

from __future__ import annotations

import importlib
import os
import sys

import click

from trackplan.errors import TrackplanError

__all__ = ["main", "cli"]

#: Modules that each define ``COMMANDS``: a list of click commands or groups to register.
COMMAND_MODULES = (
    "trackplan.plan.cli",
    "trackplan.engine.cli",
    "trackplan.codegen.cli",
    "trackplan.batch.cli",
    "trackplan.ci.cli",
    "trackplan.privacy.cli",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trackplan")
def cli() -> None:
    """trackplan: tracking plans as code (validate, enforce PII, codegen, scan, diff)."""


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # backend not built into this install
            raise
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register()


def main() -> None:
    """Entry point: run the CLI, turning trackplan errors into messages and exit codes."""
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # ctx.exit(n): click returns it in non-standalone mode
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except TrackplanError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)
    except OSError as exc:
        # an output stream that cannot be written (stdout to a full disk or /dev/full):
        # trackplan's own message and exit 2, never a traceback
        _silence_stdout()
        where = f"{exc.filename}: " if exc.filename else "cannot write output: "
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
