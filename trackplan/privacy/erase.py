"""Erase data subjects from parquet, NDJSON and CSV datasets, crash-safely.

A row belongs to a subject when one of its identity fields holds one of the subject's
ids: ``userId`` / ``user_id`` for user ids, ``anonymousId`` / ``anonymous_id`` for
anonymous ids, either at the top level of the row or one level down in a wrapping
object or struct column (``message.userId``). Payload objects (``properties``,
``traits``, ``context``, ``integrations``) are not searched: an id there names someone
else, whose rows are kept.

Identity field names match case-insensitively (``USER_ID`` as warehouses export them).
JSON rows are compared on decoded values (``acme\\/u1`` is ``acme/u1``). Empty or blank ids
are refused: they would match every anonymous row.

Each run locks every file it reads (:mod:`trackplan.privacy.locking`) until it has
verified it, so concurrent runs on the same data take turns. Each file is first scanned;
a file without the subject is never opened for writing. A changed file is written aside
(a temporary with a name of its own in the same directory), fsynced, renamed over the
original and the directory fsynced, so a crash at any moment leaves each file whole-old or
whole-new. A rerun finishes the job and removes temporaries whose writers are dead. A JSON
array or batch body holding a subject row, a line that cannot be read but may hold an id,
and an id column of a type that cannot hold an id stop the run (exit 2): nothing that
cannot be checked is counted as clean. Every other row keeps its order and content
(NDJSON and CSV rows are copied byte for byte; parquet keeps its schema, metadata, row
groups and per-column compression). A verification pass re-reads every output before
the audit log entry, which records subject hashes only, never the ids, is appended.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import orjson

from trackplan.errors import BatchError, InputError
from trackplan.privacy.erase_columns import (
    ANON_FOLDED as _ANON_FOLDED,
)
from trackplan.privacy.erase_columns import (
    ANON_KEYS,
    USER_KEYS,
    id_leaf,
    parquet_count,
    parquet_write,
)
from trackplan.privacy.erase_columns import (
    PAYLOADS as _PAYLOADS,
)
from trackplan.privacy.erase_columns import (
    USER_FOLDED as _USER_FOLDED,
)
from trackplan.privacy.locking import TMP_SUFFIX, FileLock, OwnedTemp, remove_dead_temps
from trackplan.privacy.suppression import subject_hash

__all__ = [
    "USER_KEYS",
    "ANON_KEYS",
    "TMP_SUFFIX",
    "Subjects",
    "EraseOptions",
    "FileResult",
    "EraseReport",
    "erase",
    "find_files",
    "read_ids_file",
]

_T = TypeVar("_T")
_NDJSON = (".ndjson", ".jsonl", ".json")
_KINDS = {".parquet": "parquet", ".csv": "csv", **{s: "ndjson" for s in _NDJSON}}


@dataclass(frozen=True, slots=True)
class Subjects:
    """The ids to erase: user ids, anonymous ids, and ids that match either field."""

    user_ids: frozenset[str] = frozenset()
    anonymous_ids: frozenset[str] = frozenset()
    any_ids: frozenset[str] = frozenset()

    @property
    def users(self) -> frozenset[str]:
        """Ids matched against user-id fields."""
        return self.user_ids | self.any_ids

    @property
    def anonymous(self) -> frozenset[str]:
        """Ids matched against anonymous-id fields."""
        return self.anonymous_ids | self.any_ids

    def __bool__(self) -> bool:
        return bool(self.user_ids or self.anonymous_ids or self.any_ids)

    def check(self) -> None:
        """Refuse no subject at all, and empty or blank ids (they match anonymous rows).

        Raises:
            InputError: with what to give instead.
        """
        if not self:
            raise InputError("no subject to erase: give --user-id, --anonymous-id or --ids-file")
        for kind, ids in (
            ("user", self.user_ids),
            ("anonymous", self.anonymous_ids),
            ("", self.any_ids),
        ):
            if any(not i.strip() for i in ids):
                raise InputError(
                    f"an empty or blank {kind + ' ' if kind else ''}id would erase every row "
                    "without one; give real ids"
                )

    def hashes(self, key: bytes | None) -> list[dict[str, str]]:
        """Subject hashes for the audit log (sorted; never the ids)."""
        out = [{"type": "userId", "hash": subject_hash(i, key)} for i in self.user_ids]
        out += [{"type": "anonymousId", "hash": subject_hash(i, key)} for i in self.anonymous_ids]
        out += [{"type": "any", "hash": subject_hash(i, key)} for i in self.any_ids]
        return sorted(out, key=lambda d: (d["type"], d["hash"]))

    def row_matches(self, row: Any) -> bool:
        """Whether a JSON row (a dict) belongs to one of the subjects."""
        if type(row) is not dict:
            return False
        if self._flat(row):
            return True
        for key, value in row.items():
            if type(value) is dict and key.lower() not in _PAYLOADS and self._flat(value):
                return True
        return False

    def _flat(self, obj: dict[str, Any]) -> bool:
        users, anon = self.users, self.anonymous
        for k, v in obj.items():
            folded = k.lower()
            if folded in _USER_FOLDED and _as_id(v) in users:
                return True
            if folded in _ANON_FOLDED and _as_id(v) in anon:
                return True
        return False

    def needles(self) -> tuple[bytes, ...]:
        """Byte strings at least one of which a matching raw row must contain."""
        out: set[bytes] = set()
        for i in self.users | self.anonymous:
            out.add(i.encode())
            out.add(orjson.dumps(i)[1:-1])  # as JSON writes it: quotes, backslashes escaped
        return tuple(sorted(out))


def _as_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def read_ids_file(path: str) -> frozenset[str]:
    """Ids of an ids file: one per line; blank lines and ``#`` comments ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ids file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the ids file is not UTF-8 text") from None
    return frozenset(s for line in text.splitlines() if (s := line.strip()) and s[0] != "#")


@dataclass(frozen=True, slots=True)
class EraseOptions:
    """How to erase: ``dry_run`` only counts; ``key`` keys the subject hashes of the log."""

    dry_run: bool = False
    audit_log: Path | None = None
    key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file: rows before, rows removed, whether it was rewritten."""

    path: str
    format: str
    rows: int
    removed: int
    rewritten: bool = False


@dataclass(frozen=True, slots=True)
class EraseReport:
    """What an erase run did."""

    files: tuple[FileResult, ...]
    stale_removed: int = 0
    verified: bool = False
    dry_run: bool = False

    @property
    def removed(self) -> int:
        """Rows removed in total."""
        return sum(f.removed for f in self.files)


# -- files and atomic writes -------------------------------------------------------------
def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        kind = _KINDS.get(Path(name).suffix)
        return kind if kind in ("ndjson", "csv") else None
    return _KINDS.get(Path(name).suffix)


def find_files(paths: Iterable[str]) -> tuple[list[Path], list[Path]]:
    """Dataset files under ``paths`` (sorted, each once) and the directories they sit in.

    Raises:
        InputError: a path does not exist, or a file named directly has an unknown format.
    """
    files: dict[Path, None] = {}
    dirs: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, subdirs, names in os.walk(path):
                subdirs.sort()
                dirs[Path(root)] = None
                for name in sorted(names):
                    child = Path(root) / name
                    if not name.endswith(TMP_SUFFIX) and _kind(child) is not None:
                        files[child] = None
        elif path.is_file():
            if _kind(path) is None:
                raise InputError(
                    f"{path}: unknown format; expected .parquet, .ndjson, "
                    ".jsonl, .json or .csv (NDJSON and CSV may be .gz)"
                )
            files[path] = None
            dirs[path.parent] = None
        else:
            raise InputError(f"{path}: no such file or directory")
    return list(files), list(dirs)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a locked temporary file, fsync and rename."""
    with FileLock.acquire(path), OwnedTemp.create(path) as tmp:
        with open(tmp.path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace()


@contextlib.contextmanager
def _locks(files: list[Path]) -> Iterator[None]:
    """Lock every file, in one global order (two runs never wait on each other in a cycle)."""
    held: list[FileLock] = []
    try:
        for path in sorted(files, key=lambda p: str(p.resolve())):
            held.append(FileLock.acquire(path))
        yield
    finally:
        for lock in reversed(held):
            lock.release()


# -- NDJSON -------------------------------------------------------------------------------
def _open_read(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescaped(line: bytes) -> bytes:
    """``line`` with every JSON escape decoded, leniently (for a line that does not parse)."""
    text = _ESCAPE.sub(
        lambda m: chr(int(m[1], 16)) if m[1] is not None else _SIMPLE[m[2]],
        line.decode("utf-8", "replace"),
    )
    # escaped surrogate pairs become one character; lone surrogates become U+FFFD
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.encode("utf-8")


def _document_rows(row: Any) -> list[Any] | None:
    """The rows inside a JSON array or a batch body; None for a plain row."""
    if type(row) is list:
        return row
    if type(row) is dict and type(row.get("batch")) is list:
        return cast(list[Any], row["batch"])
    return None


def _json_document(path: Path) -> list[Any] | None:
    """The rows of ``path`` when it holds one JSON document (an array, a pretty-printed batch
    body or object) rather than NDJSON; None for NDJSON.

    Raises:
        BatchError: it starts as an array but is not valid JSON.
    """
    with _open_read(path) as f:
        head = f.read(1 << 16)
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if stripped[:1] not in (b"[", b"{"):
        return None
    first = stripped.split(b"\n", 1)[0]
    if stripped[:1] == b"{":
        try:
            orjson.loads(first)
            return None  # a complete first line: NDJSON
        except orjson.JSONDecodeError:
            pass
    with _open_read(path) as f:
        data = f.read().removeprefix(b"\xef\xbb\xbf")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        if stripped[:1] == b"{":
            return None  # NDJSON whose first line is broken: read line by line
        raise BatchError(
            "unreadable JSON array: it cannot be checked for subject rows", file=str(path)
        ) from None
    inner = _document_rows(value)
    return inner if inner is not None else [value]


def _document_count(path: Path, rows: list[Any], subjects: Subjects) -> tuple[int, int]:
    if any(subjects.row_matches(r) for r in rows):
        raise BatchError(
            "a JSON array or batch body holds rows of a subject; erase rewrites one event "
            "per line: convert the file to NDJSON and rerun",
            file=str(path),
        )
    return len(rows), 0


def _ndjson_rows(path: Path, subjects: Subjects) -> Iterator[tuple[bytes, bool]]:
    """``(raw line, belongs to a subject)`` for every line, blank ones included.

    A line without any subject id in its raw bytes and without a backslash cannot hold
    one (JSON strings differ from their bytes only through escapes), so only lines with
    either are parsed and compared on decoded values.
    """
    needles = subjects.needles()
    with _open_read(path) as f:
        for number, line in enumerate(f, start=1):
            if b"\\" not in line and not any(n in line for n in needles):
                yield line, False
                continue
            text = line[3:] if number == 1 and line.startswith(b"\xef\xbb\xbf") else line
            try:
                row = orjson.loads(text)
            except orjson.JSONDecodeError:
                if not any(n in _unescaped(text) for n in needles):
                    yield line, False  # even decoded, it names no subject
                    continue
                raise BatchError(
                    "unreadable JSON line that may hold a subject id (a pretty-printed "
                    "JSON document? erase rewrites one event per line); fix or convert the "
                    "file to NDJSON and rerun",
                    file=str(path),
                    row=number,
                ) from None
            inner = _document_rows(row)
            if inner is not None:
                if any(subjects.row_matches(r) for r in inner):
                    raise BatchError(
                        "a JSON array or batch body holds rows of a subject; erase rewrites "
                        "one event per line: convert the file to NDJSON and rerun",
                        file=str(path),
                        row=number,
                    )
                yield line, False
                continue
            yield line, subjects.row_matches(row)


def _count(rows: Iterable[tuple[bytes, bool]], blank: Callable[[bytes], bool]) -> tuple[int, int]:
    total = removed = 0
    for raw, hit in rows:
        if not blank(raw):
            total += 1
        removed += hit
    return total, removed


def _write_rows(path: Path, tmp: Path, rows: Iterable[tuple[bytes, bool]]) -> None:
    with open(tmp, "wb") as raw:
        out: IO[bytes] = raw
        if path.name.lower().endswith(".gz"):
            out = cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0))
        for line, hit in rows:
            if not hit:
                out.write(line)
        if out is not raw:
            out.close()
        raw.flush()
        os.fsync(raw.fileno())


# -- CSV ----------------------------------------------------------------------------------
def _csv_rows(path: Path, subjects: Subjects) -> Iterator[tuple[bytes, bool]]:
    """``(raw record bytes, belongs to a subject)`` per CSV record, the header first."""
    with _open_read(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        consumed: list[str] = []

        def lines() -> Iterator[str]:
            for line in text:
                consumed.append(line)
                yield line

        reader = csv.reader(lines())
        user_cols: list[int] = []
        anon_cols: list[int] = []
        for index, record in enumerate(reader):
            raw = "".join(consumed).encode("utf-8")
            consumed.clear()
            if index == 0:
                names = [n.lstrip("\ufeff") for n in record]  # a UTF-8 BOM is no name
                user_cols = [i for i, n in enumerate(names) if id_leaf(n) in _USER_FOLDED]
                anon_cols = [i for i, n in enumerate(names) if id_leaf(n) in _ANON_FOLDED]
                yield raw, False
                continue
            hit = any(i < len(record) and record[i] in subjects.users for i in user_cols) or any(
                i < len(record) and record[i] in subjects.anonymous for i in anon_cols
            )
            yield raw, hit
        if consumed:  # trailing text the reader did not return as a record
            yield "".join(consumed).encode("utf-8"), False


# -- one file -----------------------------------------------------------------------------
def _count_file(path: Path, kind: str, subjects: Subjects) -> tuple[int, int]:
    if kind == "parquet":
        return parquet_count(path, users=subjects.users, anonymous=subjects.anonymous)
    if kind == "csv":
        total, removed = _count(_csv_rows(path, subjects), lambda raw: False)
        return max(total - 1, 0), removed  # the header is no row
    document = _json_document(path)
    if document is not None:
        return _document_count(path, document, subjects)
    return _count(_ndjson_rows(path, subjects), lambda raw: not raw.strip())


def _rewrite(path: Path, kind: str, subjects: Subjects) -> None:
    with OwnedTemp.create(path) as tmp:
        if kind == "parquet":
            parquet_write(path, tmp.path, users=subjects.users, anonymous=subjects.anonymous)
        elif kind == "csv":
            _write_rows(path, tmp.path, _csv_rows(path, subjects))
        else:
            _write_rows(path, tmp.path, _ndjson_rows(path, subjects))
        tmp.replace()


def _verify(result: FileResult, subjects: Subjects, schema: Any) -> None:
    path = Path(result.path)
    rows, left = _count_file(path, result.format, subjects)
    if left or rows != result.rows - result.removed:
        raise BatchError(
            f"verification failed: {left} subject rows left, {rows} rows where "
            f"{result.rows - result.removed} were expected",
            file=result.path,
        )
    if schema is not None:
        import pyarrow.parquet as pq

        if not pq.ParquetFile(path).schema_arrow.equals(schema, check_metadata=True):
            raise BatchError("verification failed: the parquet schema changed", file=result.path)


def erase(paths: Iterable[str], subjects: Subjects, *, options: EraseOptions) -> EraseReport:
    """Remove every row of ``subjects`` from the dataset files under ``paths``.

    Raises:
        InputError: a path is missing or has an unknown format; no subject was given, or
            an empty or blank id.
        BatchError: a file could not be read, checked, rewritten or verified (names the
            file).
    """
    subjects.check()
    files, dirs = find_files(paths)
    with _locks(files):
        return _erase_locked(files, dirs, subjects, options)


def _erase_locked(
    files: list[Path], dirs: list[Path], subjects: Subjects, options: EraseOptions
) -> EraseReport:
    held = frozenset(files)
    stale = 0 if options.dry_run else sum(remove_dead_temps(d, held=held) for d in dirs)
    planned: list[FileResult] = []
    for path in files:  # scan first: the audit log names every change before it happens
        kind = _kind(path)
        assert kind is not None
        rows, removed = _guarded(path, partial(_count_file, path, kind, subjects))
        planned.append(FileResult(str(path), kind, rows, removed))
    log = None if options.dry_run else options.audit_log
    if log is not None and any(f.removed for f in planned):
        # a run killed part-way still leaves a record of what it set out to remove
        _audit(log, EraseReport(tuple(planned)), subjects, options.key, status="started")
    if options.dry_run:
        return EraseReport(tuple(planned), stale, False, True)
    results: list[FileResult] = []
    schemas: dict[str, Any] = {}
    for f in planned:
        path = Path(f.path)
        if f.removed:
            if f.format == "parquet":
                import pyarrow.parquet as pq

                schemas[f.path] = pq.ParquetFile(path).schema_arrow
            _guarded(path, partial(_rewrite, path, f.format, subjects))
        results.append(FileResult(f.path, f.format, f.rows, f.removed, bool(f.removed)))
    for result in results:
        if result.rewritten:
            _guarded(
                Path(result.path), partial(_verify, result, subjects, schemas.get(result.path))
            )
    report = EraseReport(tuple(results), stale, True, False)
    if log is not None:
        _audit(log, report, subjects, options.key, status="done")
    return report


def _guarded(path: Path, step: Callable[[], _T]) -> _T:
    """Run one read or rewrite step of ``path``, naming the file in any error."""
    try:
        return step()
    except UnicodeDecodeError:
        raise BatchError("cannot erase: the file is not UTF-8 text", file=str(path)) from None
    except (OSError, ValueError, EOFError, csv.Error) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BatchError(f"cannot erase: {type(exc).__name__}: {detail}", file=str(path)) from None


def _audit(
    log: Path, report: EraseReport, subjects: Subjects, key: bytes | None, *, status: str
) -> None:
    """Append one JSON line (``started`` before any change, ``done`` after verification)."""
    entry = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "action": "erase",
        "status": status,
        "hash": "hmac-sha256" if key is not None else "sha256",
        "subjects": subjects.hashes(key),
        "files": [
            {"path": f.path, "format": f.format, "rows": f.rows, "rows_removed": f.removed}
            for f in report.files
        ],
        "rows_removed": report.removed,
        "verified": report.verified,
    }
    line = orjson.dumps(entry) + b"\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
