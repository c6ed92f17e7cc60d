"""``trackplan scan``: check exports against a plan; exit 0 clean, 1 failing, 2 unreadable."""

from __future__ import annotations

from pathlib import Path

import click

from trackplan.atomic import AtomicOutput
from trackplan.batch.mapping import LayoutOptions
from trackplan.batch.report import FORMATS, render
from trackplan.batch.scan import ScanOptions, scan
from trackplan.cliopts import output_option
from trackplan.errors import InputError
from trackplan.plan.load import load_plan

__all__ = ["COMMANDS", "scan_command"]


def _columns(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        prop, sep, column = value.partition("=")
        if not sep or not prop or not column:
            raise click.BadParameter(f"expected PROPERTY=COLUMN, got {value!r}")
        out[prop] = column
    return out


@click.command("scan")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, path_type=Path))
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@output_option(
    "report_file", legacy=("--report",), type=click.Path(path_type=Path),
    help="Write the report here.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--redact-to", type=click.Path(path_type=Path), help="Write a PII-redacted copy here."
)
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--layout", type=click.Choice(["nested", "flat"]), help="Override layout detection.")
@click.option("--event", "fixed_event", help="Event name of every row (a flat table per event).")
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="PROPERTY=COLUMN",
    help="Map a property to a column of a flat table (repeatable).",
)
@click.option("--keep-blocked", is_flag=True, help="Keep rows with violations in --redact-to.")
@click.option(
    "--csv-empty-as-string",
    is_flag=True,
    help="Read empty CSV fields as empty strings (default: absent values).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no report on stdout.")
def scan_command(
    plan_path: Path,
    paths: tuple[str, ...],
    report_file: Path | None,
    fmt: str,
    redact_to: Path | None,
    engine: str,
    layout: str | None,
    fixed_event: str | None,
    columns: tuple[str, ...],
    keep_blocked: bool,
    csv_empty_as_string: bool,
    quiet: bool,
) -> None:
    """Scan parquet, NDJSON or CSV exports (files or directories) against PLAN.

    Exits 0 when every row is valid, 1 when rows fail, 2 when an input cannot be read.
    """
    plan = load_plan(plan_path)
    options = ScanOptions(
        engine=engine,
        layout=LayoutOptions(kind=layout, event=fixed_event, columns=_columns(columns)),  # type: ignore[arg-type]
        progress=not quiet,
        csv_empty_as_string=csv_empty_as_string,
    )
    if redact_to is not None and engine != "local":
        raise click.UsageError("--redact-to runs on the local engine only")
    writer = None
    if redact_to is not None:
        from trackplan.batch.redact import RedactWriter

        for raw in paths:
            if (
                Path(raw).resolve() == redact_to.resolve()
                or redact_to.resolve() in Path(raw).resolve().parents
            ):
                raise click.UsageError("--redact-to must not be an input or inside one")
        from trackplan.batch.readers import discover
        from trackplan.batch.redact import output_paths

        output_paths(discover(paths), redact_to)  # two inputs to one output: refused up front
        _output_directory(redact_to)
        writer = RedactWriter(plan, redact_to, keep_blocked=keep_blocked)
    # the report's place is tried before the scan (a missing or unwritable one fails now)
    report_out = AtomicOutput(report_file) if report_file is not None else None
    try:
        outcome = scan(plan, paths, options, on_chunk=writer.add if writer else None)
        if writer is not None:
            writer.close()
        text = render(outcome.report, fmt)
        if report_out is not None:
            report_out.write(text.encode("utf-8"))
            report_out.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        if report_out is not None:
            report_out.abort()
        raise
    if not quiet:  # the terminal gets the text report whatever the file's format
        click.echo(text if report_file is None else render(outcome.report, "text"), nl=False)
    failing = outcome.report["invalid_rows"] or outcome.report["malformed"]
    click.get_current_context().exit(1 if failing else 0)


def _output_directory(path: Path) -> None:
    """Make the ``--redact-to`` directory (and its parents) if missing.

    Raises:
        InputError: it is not a directory, or cannot be made or written (names it).
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: is not a directory; --redact-to takes a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None


COMMANDS = [scan_command]
