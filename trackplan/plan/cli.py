"""Plan commands: ``check``, ``schema``, ``import segment`` and ``export segment``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click
import orjson

from trackplan.errors import CompileError, InputError, MissingSecretError, PlanError
from trackplan.outfile import replace_tree, small_tree
from trackplan.plan.format_schema import PLAN_FORMAT_SCHEMA
from trackplan.plan.jsonutil import MAX_DEPTH
from trackplan.plan.load import PLAN_FILE_NAMES, SECTION_FILES, load_plan
from trackplan.plan.model import Plan
from trackplan.plan.segment import export_segment, import_segment
from trackplan.plan.write import write_plan

__all__ = ["COMMANDS", "check", "schema", "import_group", "export_group"]

_DOC_SUFFIXES = (".yaml", ".yml", ".json")


@click.command()
@click.argument("plan", type=click.Path(path_type=Path))
def check(plan: Path) -> None:
    """Load, check and compile PLAN (a directory or one file); list every problem found.

    Exit 0 when the plan is valid, 1 when it is not.
    """
    try:
        loaded = load_plan(plan)
    except PlanError as exc:
        count = len(exc.issues)
        click.echo(f"{plan}: {count} error{'s' if count != 1 else ''}")
        for issue in exc.issues:
            click.echo(f"  {issue}")
        sys.exit(1)
    try:
        # a schema the loader accepts can still be beyond the engine (a regex dialect gap)
        loaded.compile()
    except MissingSecretError:
        pass  # secrets come from the environment where events are enforced, not here
    except CompileError as exc:
        click.echo(f"{plan}: 1 error\n  {exc}")
        sys.exit(1)
    others = len(loaded.rules) - len(loaded.events)
    click.echo(
        f"{plan}: valid plan {loaded.name!r}: {len(loaded.event_names)} events, "
        f"{len(loaded.events)} event versions, {others} other rules"
    )


@click.command()
def schema() -> None:
    """Print the plan format as a JSON Schema, for editors that check plan files."""
    click.echo(orjson.dumps(PLAN_FORMAT_SCHEMA, option=orjson.OPT_INDENT_2).decode())


def _read_json(file: str) -> object:
    """Parse a JSON file (``-`` for stdin), turning every failure into an InputError."""
    if file == "-" and sys.stdin is None:
        raise InputError("-: standard input is closed")
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        # the standard parser keeps integers of any size exactly (orjson turns them into floats)
        doc = json.loads(raw)
        json.dumps(doc, ensure_ascii=False).encode("utf-8")  # text a plan file can hold
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: invalid JSON: {exc}") from None
    except UnicodeEncodeError:
        raise InputError(
            f"{file}: holds a lone surrogate escape (such as \\udc00), which is no text a "
            "plan file can hold; fix the export"
        ) from None
    except RecursionError:
        raise InputError(f"{file}: nesting is deeper than {MAX_DEPTH} levels") from None
    return doc


def _plan_files(root: Path) -> list[Path]:
    """The files in ``root`` the plan loader reads (and so an import replaces)."""
    names = [*PLAN_FILE_NAMES, *(s + x for s in SECTION_FILES for x in _DOC_SUFFIXES)]
    found = [root / n for n in names if (root / n).is_file()]
    events = root / "events"
    if events.is_dir():
        found += [p for p in events.rglob("*") if p.is_file() and p.suffix in _DOC_SUFFIXES]
    return found


def _replace_plan(plan: Plan, out: Path, *, header: str) -> None:
    """Write ``plan`` into ``out``, replacing only the plan files already there."""
    # Write next to the target first so a failure leaves the old plan untouched.
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        write_plan(plan, tmp, header=header)
        if load_plan(tmp).content() != plan.content():
            raise InputError("the written plan does not read back the same; nothing was written")

        def build(new: Path) -> None:
            for stale in _plan_files(new):
                stale.unlink()
            for path in sorted(Path(tmp).rglob("*")):
                target = new / path.relative_to(tmp)
                if path.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)

        if small_tree(out):
            # the whole folder is swapped: a kill leaves the old plan or the new one
            replace_tree(out, build)
        else:  # a big folder (a repository root): replace the plan files in place
            out.mkdir(parents=True, exist_ok=True)
            build(out)


@click.group("import")
def import_group() -> None:
    """Import a tracking plan from another tool into a native plan directory."""


@import_group.command("segment")
@click.argument("file")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Directory to write the native plan into.")  # fmt: skip
@click.option("--force", is_flag=True,
              help="Replace the plan files in --out (other files stay).")  # fmt: skip
def import_segment_command(file: str, out: Path, force: bool) -> None:
    """Import a Segment tracking plan export FILE (``-`` for stdin) into a plan directory.

    Both the Public API form and the legacy form are read; nothing in the rules is lost.
    """
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a directory", param_hint="--out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; pass --force to replace the plan in it")
    plan = import_segment(_read_json(file), source=file)
    name = "standard input" if file == "-" else Path(file).name
    try:
        _replace_plan(plan, out, header=f"Imported from Segment tracking plan {name}")
    except OSError as exc:
        raise InputError(f"cannot write the plan to {out}: {exc.strerror or exc}") from None
    click.echo(
        f"imported {len(plan.event_names)} events ({len(plan.events)} versions) and "
        f"{len(plan.rules) - len(plan.events)} other rules into {out}",
        err=True,
    )


@click.group("export")
def export_group() -> None:
    """Export a native plan to another tool's format."""


@export_group.command("segment")
@click.argument("plan", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="File to write (default: standard output).")  # fmt: skip
def export_segment_command(plan: Path, out: Path | None) -> None:
    """Export PLAN as a Segment tracking plan (Public API form, JSON)."""
    doc = export_segment(load_plan(plan))
    try:
        text = (json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()
    except ValueError as exc:
        raise InputError(f"{plan}: the plan holds a value JSON cannot carry: {exc}") from None
    if out is None:
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
        return
    try:
        _write_atomic(out, text)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None


def _write_atomic(out: Path, data: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


COMMANDS = [check, schema, import_group, export_group]
