"""Erase data subjects from parquet, NDJSON and CSV datasets, crash-safely.

A row belongs to a subject when one of its identity fields holds one of the subject's
ids: ``userId`` / ``user_id`` for user ids, ``anonymousId`` / ``anonymous_id`` for
anonymous ids, either at the top level of the row or one level down in a wrapping
object or struct column (``message.userId``). Payload objects (``properties``,
``traits``, ``context``, ``integrations``) are not searched: an id there names someone
else, whose rows are kept.

Each file is first scanned; a file without the subject is never opened for writing. A
changed file is written aside (``.<name>.trackplan-erase.tmp`` in the same directory),
fsynced, renamed over the original and the directory fsynced, so a crash at any moment
leaves each file whole-old or whole-new. A rerun finishes the job and removes stale
temporary files. Every other row keeps its order and content (NDJSON and CSV rows are
copied byte for byte; parquet keeps its schema, metadata, row groups and per-column
compression). A verification pass re-reads every output before the audit log entry,
which records subject hashes only, never the ids, is appended.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import orjson

from trackplan.atomic import replace_file
from trackplan.errors import BatchError, InputError
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
USER_KEYS = ("userId", "user_id")
ANON_KEYS = ("anonymousId", "anonymous_id")
_PAYLOADS = frozenset({"properties", "traits", "context", "integrations"})
TMP_SUFFIX = ".trackplan-erase.tmp"
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
            if type(value) is dict and key not in _PAYLOADS and self._flat(value):
                return True
        return False

    def _flat(self, obj: dict[str, Any]) -> bool:
        users, anon = self.users, self.anonymous
        for k in USER_KEYS:
            v = obj.get(k)
            if v is not None and _as_id(v) in users:
                return True
        for k in ANON_KEYS:
            v = obj.get(k)
            if v is not None and _as_id(v) in anon:
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
        raise InputError(f"{path}: cannot read ids file: {exc.strerror}") from None
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


def _tmp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


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


def _clean_stale(dirs: Iterable[Path]) -> int:
    removed = 0
    for directory in dirs:
        for child in directory.iterdir():
            if child.name.startswith(".") and child.name.endswith(TMP_SUFFIX):
                child.unlink(missing_ok=True)
                removed += 1
    return removed


# -- NDJSON -------------------------------------------------------------------------------
def _open_read(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def _ndjson_rows(path: Path, subjects: Subjects) -> Iterator[tuple[bytes, bool]]:
    """``(raw line, belongs to a subject)`` for every line, blank ones included."""
    needles = subjects.needles()
    with _open_read(path) as f:
        for number, line in enumerate(f, start=1):
            if not any(n in line for n in needles) and b"\\u" not in line:
                yield line, False
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise BatchError(
                    "unreadable JSON line that may hold a subject id; fix or "
                    "remove the line and rerun",
                    file=str(path),
                    row=number,
                ) from None
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
                user_cols = [i for i, n in enumerate(names) if _leaf(n) in USER_KEYS]
                anon_cols = [i for i, n in enumerate(names) if _leaf(n) in ANON_KEYS]
                yield raw, False
                continue
            hit = any(i < len(record) and record[i] in subjects.users for i in user_cols) or any(
                i < len(record) and record[i] in subjects.anonymous for i in anon_cols
            )
            yield raw, hit
        if consumed:  # trailing text the reader did not return as a record
            yield "".join(consumed).encode("utf-8"), False


def _leaf(column: str) -> str:
    """``userId`` for ``userId`` and for a flattened wrapper column ``message.userId``."""
    head, _, leaf = column.rpartition(".")
    return leaf if head.split(".")[0] not in _PAYLOADS else column


# -- parquet ------------------------------------------------------------------------------
def _parquet_id_columns(schema: Any) -> tuple[list[str], list[str]]:
    import pyarrow as pa

    users: list[str] = []
    anon: list[str] = []
    for fld in schema:
        if fld.name in USER_KEYS:
            users.append(fld.name)
        elif fld.name in ANON_KEYS:
            anon.append(fld.name)
        elif pa.types.is_struct(fld.type) and fld.name not in _PAYLOADS:
            for child in fld.type:
                if child.name in USER_KEYS:
                    users.append(f"{fld.name}.{child.name}")
                elif child.name in ANON_KEYS:
                    anon.append(f"{fld.name}.{child.name}")
    return users, anon


def _parquet_mask(table: Any, users: list[str], anon: list[str], subjects: Subjects) -> Any:
    """A boolean array: True for rows of a subject."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = pa.array([False] * table.num_rows, type=pa.bool_())
    for names, ids in ((users, subjects.users), (anon, subjects.anonymous)):
        if not ids:
            continue
        value_set = pa.array(sorted(ids), type=pa.string())
        for name in names:
            col: Any = table
            for part in name.split("."):
                col = col.column(part) if col is table else pc.struct_field(col, part)
            col = pc.cast(col, pa.string()) if not pa.types.is_string(col.type) else col
            mask = pc.or_(mask, pc.fill_null(pc.is_in(col, value_set=value_set), False))
    return mask


def _parquet_count(path: Path, subjects: Subjects) -> tuple[int, int]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    users, anon = _parquet_id_columns(pf.schema_arrow)
    total = pf.metadata.num_rows
    if not users and not anon:
        return total, 0
    table = pf.read(columns=users + anon)
    return total, int(pc.sum(_parquet_mask(table, users, anon, subjects)).as_py() or 0)


def _parquet_write(path: Path, tmp: Path, subjects: Subjects) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.metadata
    users, anon = _parquet_id_columns(pf.schema_arrow)
    compression: dict[str, str] = {}
    dictionary: list[str] = []
    if meta.num_row_groups:
        group = meta.row_group(0)
        for i in range(group.num_columns):
            col = group.column(i)
            codec = col.compression.lower()
            compression[col.path_in_schema] = {"lz4_raw": "lz4", "uncompressed": "none"}.get(
                codec, codec
            )
            if any("DICTIONARY" in e for e in col.encodings):
                dictionary.append(col.path_in_schema)
    with open(tmp, "wb") as sink:
        writer = pq.ParquetWriter(
            sink,
            pf.schema_arrow,
            compression=compression or "snappy",
            use_dictionary=dictionary if meta.num_row_groups else True,
            version=meta.format_version if meta.format_version in ("1.0", "2.4", "2.6") else "2.6",
        )
        try:
            for index in range(meta.num_row_groups):
                group_table = pf.read_row_group(index)
                kept = group_table.filter(
                    pc.invert(_parquet_mask(group_table, users, anon, subjects))
                )
                if kept.num_rows:
                    writer.write_table(kept, row_group_size=max(kept.num_rows, 1))
        finally:
            writer.close()
        sink.flush()
        os.fsync(sink.fileno())


# -- one file -----------------------------------------------------------------------------
def _count_file(path: Path, kind: str, subjects: Subjects) -> tuple[int, int]:
    if kind == "parquet":
        return _parquet_count(path, subjects)
    if kind == "csv":
        total, removed = _count(_csv_rows(path, subjects), lambda raw: False)
        return max(total - 1, 0), removed  # the header is no row
    return _count(_ndjson_rows(path, subjects), lambda raw: not raw.strip())


def _rewrite(path: Path, kind: str, subjects: Subjects) -> None:
    tmp = _tmp_for(path)
    if kind == "parquet":
        _parquet_write(path, tmp, subjects)
    elif kind == "csv":
        _write_rows(path, tmp, _csv_rows(path, subjects))
    else:
        _write_rows(path, tmp, _ndjson_rows(path, subjects))
    replace_file(tmp, path)


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
        InputError: a path is missing or has an unknown format; no subject was given.
        BatchError: a file could not be read, rewritten or verified (names the file).
    """
    if not subjects:
        raise InputError("no subject to erase: give --user-id, --anonymous-id or --ids-file")
    files, dirs = find_files(paths)
    stale = 0 if options.dry_run else _clean_stale(dirs)
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
            _verify(result, subjects, schemas.get(result.path))
    report = EraseReport(tuple(results), stale, True, False)
    if log is not None:
        _audit(log, report, subjects, options.key, status="done")
    return report


def _guarded(path: Path, step: Callable[[], _T]) -> _T:
    """Run one read or rewrite step of ``path``, naming the file in any error."""
    try:
        return step()
    except (OSError, ValueError, EOFError) as exc:
        _tmp_for(path).unlink(missing_ok=True)
        raise BatchError(f"cannot erase: {type(exc).__name__}: {exc}", file=str(path)) from None


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
