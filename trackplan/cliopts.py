"""The options every trackplan command spells the same way: ``--format`` and ``-o/--output``.

Each package's ``cli.py`` builds its options from here, so a user learns them once: every
command takes ``--format`` with ``json`` among its choices, and every command that writes
a file or directory names it with ``-o/--output``. Older spellings (``--out``,
``--report``) stay as hidden aliases so scripts written against them keep working.

Exit codes, the same everywhere: 0 success, 1 the check failed (invalid plan or event,
lint error, policy violation, stale generated code), 2 bad usage or unreadable input.

>>> @click.command()
... @output_option("out", legacy=("--out",), help="Write here.")
... def cmd(out: str | None) -> None: ...
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from trackplan.errors import InputError

__all__ = [
    "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "format_option", "output_option", "emit"
]  # fmt: skip

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., Any])


def format_option(
    choices: Sequence[str], *, default: str | None = None, help: str = "Output format."
) -> Callable[[F], F]:
    """``--format`` among ``choices`` (which must include ``json``), stored as ``fmt``."""
    if "json" not in choices:
        raise ValueError("every command offers --format json")
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default or choices[0],
        show_default=True,
        help=help,
    )


def output_option(
    dest: str,
    *,
    legacy: Sequence[str] = (),
    required: bool = False,
    help: str,
    **kwargs: Any,
) -> Callable[[F], F]:
    """``-o/--output`` stored as ``dest``; ``legacy`` names are hidden aliases of it.

    Args:
        dest: the parameter name the command function receives.
        legacy: older option names (``--out``) still accepted, hidden from ``--help``.
        required: the command needs it (checked after the aliases are merged).
        kwargs: passed to :func:`click.option` (``type``, ``metavar``, ...).
    """
    hidden = f"legacy_{dest}"

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **values: Any) -> Any:
            old = values.pop(hidden, None)
            if old is not None:
                if values.get(dest) is not None:
                    raise click.UsageError(f"give -o/--output once (not also {legacy[0]})")
                values[dest] = old
            if required and values.get(dest) is None:
                raise click.UsageError("Missing option '-o' / '--output'.")
            return func(*args, **values)

        shown = f"{help} [required]" if required else help
        command = click.option("-o", "--output", dest, help=shown, **kwargs)(wrapper)
        if legacy:
            command = click.option(*legacy, hidden, hidden=True, **kwargs)(command)
        return command  # type: ignore[return-value]

    return decorate


def emit(text: str, output: Path | None) -> None:
    """Write a command's output to standard output, or atomically to ``output``.

    The file appears complete or not at all (written beside it, then renamed), so a CI
    step that uploads it never sees half a report.
    """
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))
            os.replace(tmp, output)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
