"""``trackplan codegen python PLAN --out PATH [--check]``: write or check generated code."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path

import click

from trackplan.codegen.python import generate_python
from trackplan.errors import InputError
from trackplan.plan.load import load_plan

__all__ = ["COMMANDS", "codegen_group", "python_command", "stale_files", "write_package"]


def stale_files(files: dict[str, str], out: Path) -> list[str]:
    """Generated files whose committed copy under ``out`` is missing or different."""
    stale = []
    for name, text in sorted(files.items()):
        path = out / name
        try:
            current = path.read_bytes()
        except OSError:
            stale.append(name)
            continue
        if current != text.encode("utf-8"):
            stale.append(name)
    return stale


def write_package(files: dict[str, str], out: Path) -> list[str]:
    """Write the files that changed (each atomically); returns their names."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create directory: {exc.strerror or exc}") from exc
    written = []
    for name in stale_files(files, out):
        target = out / name
        fd, tmp = tempfile.mkstemp(prefix=".tp-", dir=out)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(files[name].encode("utf-8"))
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from exc
        written.append(name)
    return written


@click.group("codegen")
def codegen_group() -> None:
    """Generate typed tracking code from a plan."""


@codegen_group.command("python")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Package directory to write; its name is the import name.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 naming the files that differ from what would be generated.",
)
def python_command(plan_path: Path, out: Path, check: bool) -> None:
    """Generate a typed Python tracking package (TypedDicts and a client) from PLAN.

    In CI, run the same command with --check to fail when the committed code is stale.
    """
    package = out.resolve().name
    if not package.isidentifier():
        raise click.BadParameter(
            f"the directory name {package!r} is not a Python identifier; "
            "name the output directory like a package (letters, digits, underscores)",
            param_hint="--out",
        )
    plan = load_plan(plan_path)
    command = shlex.join(["trackplan", "codegen", "python", str(plan_path), "--out", str(out)])
    files = generate_python(plan, package=package, command=command)
    if check:
        stale = stale_files(files, out)
        if stale:
            for name in stale:
                click.echo(f"stale: {out / name}", err=True)
            click.echo(f"regenerate with: {command}", err=True)
            sys.exit(1)
        click.echo(f"{out}: up to date ({len(files)} files)")
        return
    written = write_package(files, out)
    click.echo(f"{out}: wrote {len(written)} of {len(files)} files")


COMMANDS = [codegen_group]
