"""Find input files and read them record batch by record batch, in bounded memory.

Parquet files (alone, in directories or hive-partitioned trees such as
``date=2024-01-01/part-0.parquet``), NDJSON (plain or gzip) and CSV (plain or gzip).
Every reader yields :class:`Chunk` objects: a record batch, its file and the number of
the batch's first row in that file, so violations name ``file:row``.

>>> [s.format for s in discover(["examples/orders.parquet"])]   # doctest: +SKIP
['parquet']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trackplan.batch.check import JSON_COLUMN
from trackplan.engine.readers import BOM
from trackplan.errors import BatchError

__all__ = [
    "Chunk",
    "Source",
    "discover",
    "read_source",
    "parquet_batches",
    "dictionary_columns",
    "with_partition",
    "refuse_duplicate_columns",
    "BATCH_ROWS",
    "Format",
    "LINE_FORMATS",
    "display_numbers",
]

Format = Literal["parquet", "ndjson", "csv"]

#: Formats whose rows are lines: reports name them ``file:line`` (from 1), parquet rows
#: ``file row N`` (from 1).
LINE_FORMATS = frozenset({"ndjson", "csv"})

#: Picks the columns to read from a file's Arrow schema (None: every column).
Columns = Callable[[pa.Schema], "list[str] | None"]

#: Rows per record batch: large enough for vectorised compute, small enough for memory.
BATCH_ROWS = 65_536

#: Batches a parquet scan reads ahead of the checks (bounds memory with BATCH_ROWS).
READAHEAD = 2

_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".csv": "csv",
}


@dataclass(frozen=True, slots=True)
class Source:
    """One input file: where it is, its format, and its place in a partitioned tree.

    Attributes:
        path: the file.
        root: the directory given on the command line (or the file's parent), so outputs
            keep the same relative path and partitioning.
        format: parquet, ndjson or csv.
        compression: ``gzip`` for ``.gz`` text files, else None.
        partition: hive partition keys from the path (``date=2024-01-01``).
    """

    path: Path
    root: Path
    format: Format
    compression: str | None = None
    partition: dict[str, str] = field(default_factory=dict)

    @property
    def relative(self) -> Path:
        """The file's path under its root."""
        return self.path.relative_to(self.root)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A record batch of one file; ``offset`` is the 0-based number of its first row.

    Attributes:
        lines: NDJSON only: the line number (from 1) of each row of the batch.
        malformed: NDJSON only: line numbers (from 1) of lines before or among this
            batch's that are not JSON (skipped, counted, reported).
    """

    source: Source
    offset: int
    batch: pa.RecordBatch
    lines: np.ndarray | None = field(default=None, compare=False)
    malformed: tuple[int, ...] = ()


def display_numbers(chunk: Chunk, rows: np.ndarray) -> np.ndarray:
    """What reports call rows of ``chunk`` (0-based numbers in the file): NDJSON lines,
    CSV lines (the header is line 1; a quoted field holding a line break shifts the
    lines after it), parquet rows from 1."""
    fmt = chunk.source.format
    if fmt == "ndjson" and chunk.lines is not None:
        lines: np.ndarray = chunk.lines[rows - chunk.offset]
        return lines
    shown: np.ndarray = rows + (2 if fmt == "csv" else 1)
    return shown


def _format_of(path: Path) -> tuple[Format, str | None] | None:
    name = path.name.lower()
    compression = None
    if name.endswith(".gz"):
        compression, name = "gzip", name[:-3]
    suffix = os.path.splitext(name)[1]
    fmt = _SUFFIXES.get(suffix)
    if fmt is None or (fmt == "parquet" and compression):
        return None
    return fmt, compression


def _partition(path: Path, root: Path) -> dict[str, str]:
    keys: dict[str, str] = {}
    for part in path.relative_to(root).parts[:-1]:
        key, sep, value = part.partition("=")
        if sep and key:
            keys[key] = value
    return keys


def discover(paths: Sequence[str | Path]) -> list[Source]:
    """Every readable input file under ``paths``, in a stable order.

    Hidden files and files starting with ``_`` (``_SUCCESS``, ``_metadata``) are skipped.

    Raises:
        BatchError: a path does not exist, a directory holds no input file, or a named
            file has an unknown format (exit code 2).
    """
    out: list[Source] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            before = len(out)
            for file in sorted(path.rglob("*")):
                rel = file.relative_to(path).parts
                if not file.is_file() or any(p.startswith((".", "_")) for p in rel):
                    continue
                found = _format_of(file)
                if found is not None:
                    out.append(Source(file, path, found[0], found[1], _partition(file, path)))
            if len(out) == before:
                raise BatchError(
                    "no parquet, NDJSON or CSV file in this directory (hidden files and "
                    "files starting with _ are skipped)",
                    file=str(path),
                )
        elif path.is_file():
            found = _format_of(path)
            if found is None:
                raise BatchError(
                    "unknown file format; use .parquet, .ndjson/.jsonl/.json(.gz) or .csv(.gz)",
                    file=str(path),
                )
            out.append(Source(path, path.parent, found[0], found[1]))
        else:
            raise BatchError("no such file or directory", file=str(path))
    return out


def read_source(
    source: Source,
    *,
    batch_rows: int = BATCH_ROWS,
    columns: Columns | None = None,
    csv_empty_as_string: bool = False,
) -> Iterator[Chunk]:
    """Yield the record batches of one file.

    ``columns`` picks, from a parquet file's schema, the columns to read (None: all).
    An empty CSV field is an absent value (null) unless ``csv_empty_as_string``. NDJSON
    lines that are not JSON are skipped and named in the chunks' ``malformed``.

    Raises:
        BatchError: the file cannot be read (names the file).
    """
    try:
        offset = 0
        if source.format == "ndjson":
            for batch, lines, malformed in _ndjson(source, batch_rows):
                if source.partition and batch.num_rows:
                    batch = with_partition(batch, source.partition)
                yield Chunk(source, offset, batch, lines, malformed)
                offset += batch.num_rows
            return
        if source.format == "parquet":
            batches = _parquet(source, batch_rows, columns)
        else:
            batches = _csv(source, batch_rows, csv_empty_as_string)
        for batch in batches:
            if source.partition:
                batch = with_partition(batch, source.partition)
            yield Chunk(source, offset, batch)
            offset += batch.num_rows
    except BatchError:
        raise
    except (OSError, pa.ArrowException, ValueError) as exc:
        reason = type(exc).__name__
        raise BatchError(f"cannot read {source.format} ({reason})", file=str(source.path)) from None


def with_partition(batch: pa.RecordBatch, keys: dict[str, str]) -> pa.RecordBatch:
    for key, value in keys.items():
        if key not in batch.schema.names:
            batch = batch.append_column(key, pa.array([value] * batch.num_rows, pa.string()))
    return batch


def dictionary_columns(path: Path | str, names: Sequence[str] | None) -> list[str]:
    """String columns, top-level or nested, stored as little more than dictionary indices.

    Reading these as Arrow dictionaries skips materialising every string (most of the
    read time of an order export with a list of products), and the rules then run once
    per distinct value. The test: a dictionary page and under two bytes per value in the
    first row group. Nested leaves are named by their parquet path
    (``products.list.element.url``), as :func:`parquet_batches` passes them on.
    """
    meta = pq.ParquetFile(path).metadata
    if meta.num_row_groups == 0:
        return []
    schema = meta.schema
    group = meta.row_group(0)
    out: list[str] = []
    for i in range(group.num_columns):
        chunk = group.column(i)
        name = chunk.path_in_schema
        if names is not None and name.split(".", 1)[0] not in names:
            continue
        leaf = schema.column(i)
        if leaf.physical_type != "BYTE_ARRAY" or "UTF8" not in (
            leaf.logical_type.type.replace("STRING", "UTF8"),
            leaf.converted_type,
        ):
            continue
        if chunk.has_dictionary_page and chunk.num_values:
            if chunk.total_uncompressed_size / chunk.num_values < 2:
                out.append(name)
    return out


def parquet_batches(
    path: Path,
    *,
    batch_rows: int,
    columns: Sequence[str] | None,
    dictionary: Sequence[str] = (),
    row_group: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The record batches of a parquet file (or of one row group), in file order.

    With ``dictionary`` (columns or nested leaves, see :func:`dictionary_columns`) the
    file goes through ``pyarrow.dataset``'s scanner, the one pyarrow reader that reads
    nested leaves as dictionaries (``ParquetFile.iter_batches`` refuses them); it keeps
    batch order and reads ahead a few batches on another thread. A file whose
    dictionaries cannot be read so is read again plainly from the first row not yet
    handed on.
    """
    done = 0
    if dictionary:
        import pyarrow.dataset as ds

        fmt = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=list(dictionary)),
            # pre-buffering holds a whole row group's compressed columns: memory, no speed
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
        )
        fragment = next(iter(ds.dataset(str(path), format=fmt).get_fragments()))
        if row_group is not None:
            fragment = fragment.subset(row_group_ids=[row_group])
        try:
            for batch in fragment.to_batches(
                columns=None if columns is None else list(columns),
                batch_size=batch_rows,
                batch_readahead=READAHEAD,
            ):
                yield batch
                done += batch.num_rows
            return
        except pa.ArrowNotImplementedError:
            pass
    with pq.ParquetFile(path) as handle:
        groups = None if row_group is None else [row_group]
        for batch in handle.iter_batches(batch_size=batch_rows, columns=columns, row_groups=groups):
            if done >= batch.num_rows:
                done -= batch.num_rows
                continue
            yield batch.slice(done) if done else batch
            done = 0


def refuse_duplicate_columns(schema: pa.Schema, path: Path | str) -> None:
    """Columns (and fields of struct columns) are found by name: two of one name cannot
    be told apart, so such a file is refused, by every engine.

    Raises:
        BatchError: ``schema`` names a column twice (names the file and the columns).
    """
    twice: list[str] = []

    def walk(names: list[str], types: list[pa.DataType], where: str) -> None:
        twice.extend(sorted({where + n for n in names if names.count(n) > 1}))
        for name, typ in zip(names, types, strict=True):
            while pa.types.is_list(typ) or pa.types.is_large_list(typ):
                typ = typ.value_type
            if pa.types.is_struct(typ):
                walk([f.name for f in typ], [f.type for f in typ], f"{where}{name}.")

    walk(schema.names, schema.types, "")
    if twice:
        raise BatchError(
            f"duplicate column names {', '.join(map(repr, twice))}: rename them and rerun",
            file=str(path),
        )


def _parquet(source: Source, batch_rows: int, columns: Columns | None) -> Iterator[pa.RecordBatch]:
    names = None
    dictionary: list[str] = []
    with pq.ParquetFile(source.path) as handle:
        schema = handle.schema_arrow
    refuse_duplicate_columns(schema, source.path)
    if columns is not None:  # a check-only read: as cheap as the file allows
        names = columns(schema)
        dictionary = dictionary_columns(source.path, names)
    yield from parquet_batches(
        source.path, batch_rows=batch_rows, columns=names, dictionary=dictionary
    )


def _csv(source: Source, batch_rows: int, empty_as_string: bool) -> Iterator[pa.RecordBatch]:
    stream = pa.input_stream(str(source.path), compression=source.compression)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=1 << 22),
        # a flat CSV cannot tell an absent value from an empty string: absent by default
        convert_options=pacsv.ConvertOptions(strings_can_be_null=not empty_as_string),
    )
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            yield batch
    except pa.ArrowInvalid:
        raise BatchError(
            "a later block of the CSV holds values of another type than the first; "
            "convert the file to parquet or NDJSON",
            file=str(source.path),
        ) from None
    finally:
        stream.close()


def _ndjson(
    source: Source, batch_rows: int
) -> Iterator[tuple[pa.RecordBatch, np.ndarray, tuple[int, ...]]]:
    """(batch, line number of each row, malformed lines) per batch; lines that are not
    JSON are skipped and counted, as ``trackplan validate`` does, never fatal."""
    with pa.input_stream(str(source.path), compression=source.compression) as stream:
        rows: list[object] = []
        texts: list[bytes] = []
        numbers: list[int] = []
        malformed: list[int] = []
        line_no = 0
        for line in _lines(stream):
            line_no += 1
            if line_no == 1:
                line = line.removeprefix(BOM)  # a leading byte order mark, as validate reads
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                malformed.append(line_no)
                continue
            texts.append(line)
            numbers.append(line_no)
            if len(rows) >= batch_rows:
                yield _json_batch(rows, texts), np.array(numbers, np.int64), tuple(malformed)
                rows, texts, numbers, malformed = [], [], [], []
        if rows:
            yield _json_batch(rows, texts), np.array(numbers, np.int64), tuple(malformed)
        elif malformed:  # nothing but malformed lines since the last batch
            empty = pa.RecordBatch.from_pydict({JSON_COLUMN: pa.array([], pa.string())})
            yield empty, np.array([], np.int64), tuple(malformed)


def _lines(stream: pa.NativeFile) -> Iterator[bytes]:
    rest = b""
    while True:
        block = stream.read(1 << 20)
        if not block:
            break
        block = rest + block
        *lines, rest = block.split(b"\n")
        yield from lines
    if rest:
        yield rest


def _has_null_value(value: object) -> bool:
    """Whether an object anywhere in ``value`` holds a JSON ``null`` (not an absent key)."""
    if isinstance(value, dict):
        return any(v is None or _has_null_value(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null_value(v) for v in value)
    return False


def _payload_nulls(row: object) -> bool:
    if not isinstance(row, dict):
        return False
    for key in ("properties", "traits"):  # a null payload is not an absent one either
        if (key in row and row[key] is None) or _has_null_value(row.get(key)):
            return True
    context = row.get("context")  # traits sent under context.traits are a payload too
    return isinstance(context, dict) and _has_null_value(context.get("traits"))


def _json_batch(rows: list[object], texts: list[bytes]) -> pa.RecordBatch:
    """Typed columns when every value fits; else the rows as JSON text (checked per row).

    Arrow cannot tell a JSON ``null`` from an absent key, which the plan treats
    differently, so a chunk with a ``null`` inside a payload is checked per row as well.
    """
    if all(isinstance(r, dict) for r in rows) and not any(_payload_nulls(r) for r in rows):
        first = rows[0].keys()  # type: ignore[attr-defined]
        if any(r.keys() - first for r in rows):  # type: ignore[attr-defined]
            # from_pylist takes its columns from row 0: name every row's keys in row 0
            names = dict.fromkeys(k for r in rows for k in r)  # type: ignore[attr-defined]
            rows = [{**dict.fromkeys(names), **r} for r in rows]  # type: ignore[dict-item]
        try:
            return pa.RecordBatch.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            pass
    column = pa.array([t.decode("utf-8", "replace") for t in texts], pa.string())
    return pa.RecordBatch.from_arrays([column], names=[JSON_COLUMN])
