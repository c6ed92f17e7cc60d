"""The ``trackplan`` command: a thin click group; each command imports its backend when it runs.

Starting the CLI must stay cheap: ``trackplan --help`` imports click and nothing of the
backends, and ``trackplan validate`` imports the enforcer but not pyarrow or numpy. The group
therefore knows each command by name, module and one-line help (the table below) and imports
the module only when that command is invoked or its own help is asked for. A test checks the
table against the real commands so it cannot drift.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NamedTuple

import click

from trackplan.errors import TrackplanError

__all__ = ["COMMANDS", "CommandEntry", "LazyGroup", "cli", "main"]


class CommandEntry(NamedTuple):
    """Where a top-level command lives and what ``--help`` says of it."""

    module: str
    attribute: str
    short_help: str


#: Every top-level command: name -> (module, attribute in that module, one-line help).
COMMANDS: dict[str, CommandEntry] = {
    "check": CommandEntry(
        "trackplan.ci.cli", "check",
        "Load, check and compile PLAN (a directory or one file); list every problem found.",
    ),
    "codegen": CommandEntry(
        "trackplan.codegen.cli", "codegen_group", "Generate typed tracking code from a plan."
    ),
    "diff": CommandEntry(
        "trackplan.ci.cli", "diff",
        "Classify every change between two plans and check the version policy.",
    ),
    "erase": CommandEntry(
        "trackplan.privacy.cli", "erase",
        "Remove every row of the subjects from parquet, NDJSON and CSV files under PATHS.",
    ),
    "export": CommandEntry(
        "trackplan.plan.cli", "export_group", "Export a native plan to another tool's format."
    ),
    "import": CommandEntry(
        "trackplan.plan.cli", "import_group",
        "Import a tracking plan from another tool into a native plan directory.",
    ),
    "lint": CommandEntry(
        "trackplan.ci.cli", "lint",
        "Lint PLAN: schema hygiene, naming, documentation and PII declarations.",
    ),
    "report": CommandEntry(
        "trackplan.privacy.cli", "report_group", "Reports generated from the plan."
    ),
    "replay": CommandEntry(
        "trackplan.serve.cli", "replay",
        "Re-run a QUARANTINE (file or directory) against PLAN; output what now passes.",
    ),
    "route": CommandEntry(
        "trackplan.privacy.cli", "route",
        "Route EVENTS (NDJSON, JSON or batch; '-' for stdin) to the plan's destinations.",
    ),
    "scan": CommandEntry(
        "trackplan.batch.cli", "scan_command",
        "Scan parquet, NDJSON or CSV exports (files or directories) against PLAN.",
    ),
    "schema": CommandEntry(
        "trackplan.plan.cli", "schema",
        "Print the plan format as a JSON Schema (draft-07, stable https $id) for editors.",
    ),
    "serve": CommandEntry(
        "trackplan.serve.cli", "serve",
        "Run a gateway that Segment SDKs send to: PLAN enforced before events leave.",
    ),
    "validate": CommandEntry(
        "trackplan.engine.cli", "validate",
        "Enforce PLAN on event files (NDJSON, JSON array or batch bodies; '-' for stdin).",
    ),
}  # fmt: skip


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use, listed from ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command = load_command(entry)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the listing comes from the table, so --help imports no backend
        rows = [(name, COMMANDS[name].short_help) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def load_command(entry: CommandEntry) -> click.Command:
    """Import the module behind a command and return the command object.

    A backend missing from this install (an optional extra not installed) becomes a usage
    error that says how to install it, never a traceback.
    """
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "trackplan":
            raise click.UsageError(
                f"this command needs the Python package {missing!r}, which is not installed;"
                f" install it with: pip install {missing}"
            ) from exc
        raise
    command = getattr(module, entry.attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trackplan")
def cli() -> None:
    """trackplan: tracking plans as code (validate, enforce PII, codegen, scan, diff)."""


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
