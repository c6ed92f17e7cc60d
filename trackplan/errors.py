"""The one exception hierarchy of trackplan.

Every error trackplan raises on purpose is a :class:`TrackplanError`. Each carries an
``exit_code`` the CLI uses, and messages never contain event values (they may be PII).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "TrackplanError",
    "PlanIssue",
    "PlanError",
    "CompileError",
    "InputError",
    "BatchError",
    "MissingSecretError",
]


class TrackplanError(Exception):
    """Base class of every error trackplan raises on purpose."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class PlanIssue:
    """One problem found in a plan: where it is and what is wrong.

    ``file`` is the plan file, ``event`` the event (or rule) name when there is one,
    ``pointer`` an RFC 6901 JSON pointer into that file.
    """

    file: str
    pointer: str
    message: str
    event: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.event is not None:
            where += f" [{self.event}]"
        return f"{where} at {self.pointer or '/'}: {self.message}"


class PlanError(TrackplanError):
    """A plan could not be loaded; ``issues`` lists every problem found, not just the first."""

    exit_code = 1

    def __init__(self, issues: list[PlanIssue] | tuple[PlanIssue, ...]) -> None:
        self.issues: tuple[PlanIssue, ...] = tuple(issues)
        count = len(self.issues)
        head = f"plan has {count} error{'s' if count != 1 else ''}"
        super().__init__(head + "".join(f"\n  {issue}" for issue in self.issues))


class CompileError(TrackplanError):
    """A valid plan could not be compiled (for example a hash key is missing)."""

    exit_code = 2


class MissingSecretError(CompileError):
    """A secret the plan needs (a hash key) is not set in the environment."""


class InputError(TrackplanError):
    """Input events or files could not be read."""

    exit_code = 2


class BatchError(InputError):
    """A batch file could not be read or written; names the file and, where known, the row."""

    def __init__(self, message: str, *, file: str, row: int | None = None) -> None:
        self.file = file
        self.row = row
        where = file if row is None else f"{file}:{row}"
        super().__init__(f"{where}: {message}")
