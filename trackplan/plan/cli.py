"""Plan commands: ``schema``, ``import`` (segment, rudderstack, iglu) and ``export segment``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import orjson

from trackplan.atomic import replace_tree, small_tree
from trackplan.cliopts import emit, format_option, output_option
from trackplan.errors import InputError
from trackplan.plan.format_schema import EDITOR_SCHEMA_IDS, editor_schema
from trackplan.plan.iglu import import_iglu
from trackplan.plan.jsonutil import MAX_DEPTH
from trackplan.plan.load import PLAN_FILE_NAMES, SECTION_FILES, load_plan
from trackplan.plan.model import Plan
from trackplan.plan.segment import Imported, export_segment, import_rudderstack, read_segment
from trackplan.plan.write import write_plan

__all__ = ["COMMANDS", "schema", "import_group", "export_group"]

_DOC_SUFFIXES = (".yaml", ".yml", ".json")


@click.command()
@click.option("--kind", type=click.Choice(sorted(EDITOR_SCHEMA_IDS)), default="plan",
              show_default=True,
              help="plan: plan.yaml or a one-file plan; event: a file under events/.")  # fmt: skip
@format_option(["json"])
@output_option("output", type=click.Path(dir_okay=False, path_type=Path),
               help="Write the schema to this file instead of standard output.")  # fmt: skip
def schema(kind: str, fmt: str, output: Path | None) -> None:
    """Print the plan format as a JSON Schema (draft-07, stable https $id) for editors.

    Point the YAML editor at it with a first line such as
    ``# yaml-language-server: $schema=<$id>`` (or a local copy written with -o).
    """
    del fmt  # JSON is the only form
    text = orjson.dumps(editor_schema(kind), option=orjson.OPT_INDENT_2).decode() + "\n"
    emit(text, output)


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


def _import_options(func: Any) -> Any:
    """The options every ``import`` subcommand takes."""
    func = format_option(["text", "json"])(func)
    force = "Replace the plan files in --output (other files stay)."
    func = click.option("--force", is_flag=True, help=force)(func)
    return output_option("out", legacy=("--out",), required=True,
                         type=click.Path(path_type=Path),
                         help="Directory to write the native plan into.")(func)  # fmt: skip


def _write_import(imported: Imported, out: Path, force: bool, fmt: str, origin: str) -> None:
    """Write an imported plan (its notes in the plan file's header) and report it."""
    if out.exists() and not out.is_dir():
        raise click.BadParameter(f"{out} exists and is not a directory", param_hint="--output")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise click.UsageError(f"{out} is not empty; pass --force to replace the plan in it")
    plan = imported.plan
    header = f"Imported from {origin}"
    if imported.notes:
        header += "\nRewritten to fit a supported JSON Schema draft:\n" + "\n".join(
            f"- {note}" for note in imported.notes
        )
    try:
        _replace_plan(plan, out, header=header)
    except OSError as exc:
        raise InputError(f"cannot write the plan to {out}: {exc.strerror or exc}") from None
    summary = {
        "output": str(out),
        "events": len(plan.event_names),
        "event_versions": len(plan.events),
        "other_rules": len(plan.rules) - len(plan.events),
        "notes": list(imported.notes),
    }
    if fmt == "json":
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    for note in imported.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"imported {summary['events']} events ({summary['event_versions']} versions) and "
        f"{summary['other_rules']} other rules into {out}",
        err=True,
    )


@import_group.command("segment")
@click.argument("file")
@_import_options
def import_segment_command(file: str, out: Path, force: bool, fmt: str) -> None:
    """Import a Segment tracking plan export FILE (``-`` for stdin) into a plan directory.

    Both the Public API form and the legacy form are read; nothing in the rules is lost.
    Rules written for draft-04, -06, 2019-09 or 2020-12 are normalised; each rewrite is
    noted (on standard error and in the plan file's header).
    """
    name = "standard input" if file == "-" else Path(file).name
    imported = read_segment(_read_json(file), source=file)
    _write_import(imported, out, force, fmt, f"Segment tracking plan {name}")


@import_group.command("rudderstack")
@click.argument("file")
@_import_options
def import_rudderstack_command(file: str, out: Path, force: bool, fmt: str) -> None:
    """Import a RudderStack tracking plan FILE (JSON; ``-`` for stdin) into a plan directory."""
    name = "standard input" if file == "-" else Path(file).name
    imported = import_rudderstack(_read_json(file), source=file)
    _write_import(imported, out, force, fmt, f"RudderStack tracking plan {name}")


@import_group.command("iglu")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_import_options
def import_iglu_command(folder: Path, out: Path, force: bool, fmt: str) -> None:
    """Import a Snowplow Iglu schema FOLDER (schemas/<vendor>/<name>/jsonschema/<version>).

    Each schema becomes an event (its SchemaVer MODEL is the event version), so Snowplow
    users can lint and diff their schemas with trackplan.
    """
    _write_import(import_iglu(folder), out, force, fmt, f"Iglu schemas in {folder}")


@click.group("export")
def export_group() -> None:
    """Export a native plan to another tool's format."""


@export_group.command("segment")
@click.argument("plan", type=click.Path(path_type=Path))
@output_option("out", legacy=("--out",), type=click.Path(path_type=Path), default=None,
               help="File to write (default: standard output).")  # fmt: skip
@format_option(["json"])
def export_segment_command(plan: Path, out: Path | None, fmt: str) -> None:
    """Export PLAN as a Segment tracking plan (Public API form, JSON)."""
    del fmt  # the export is JSON
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


COMMANDS = [schema, import_group, export_group]
