"""Write a cleaned copy of scanned files: the plan's PII actions applied column-wise.

For every field the plan declares with ``x-pii`` (:class:`trackplan.pii.policy.PiiPolicy`),
the column (or struct field, or field of a list of structs) holding it goes through the
one definition of the action in :mod:`trackplan.pii.actions`: ``hash``, ``mask`` and
``redact`` run once per distinct value (dictionary-encoded) and are taken back to every
row, so each row gets exactly what the per-row function gives; ``drop`` nulls the value
(the schema keeps its column); ``reject`` nulls it and blocks the row. Values the
detectors found PII in (the scan's ``PII`` findings) get the value the enforcer forwards
there, row by row. Rows the enforcer blocks (their violations, rejected values) are
removed unless ``keep_blocked``; a row it forwards (PII findings only, violations under
``violations: allow``, or ``omit`` with the offending property dropped here) is kept,
cleaned. Rows an
NDJSON batch kept as JSON text are cleaned event by event, and written as JSON lines.

Each output file keeps its input's relative path (so hive partitions stay), format,
schema and parquet compression, and appears atomically: it is written to a hidden,
locked temporary beside its final name (:class:`trackplan.atomic.PartFile`) and
renamed when complete; a run removes the temporaries of earlier runs killed outright
before it writes. Inputs are only read.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trackplan import pointer as jp
from trackplan.atomic import PartFile, remove_stale_parts
from trackplan.batch.check import JSON_COLUMN, PII
from trackplan.batch.mapping import snake_case
from trackplan.batch.readers import Chunk, Source
from trackplan.batch.rules import struct_child, to_json
from trackplan.errors import BatchError
from trackplan.pii.actions import Canon
from trackplan.plan.model import Plan

__all__ = ["RedactWriter", "apply_column", "FieldAction", "output_paths"]


def output_paths(sources: Sequence[Source], out_dir: Path) -> dict[Path, Source]:
    """Where each input's cleaned copy goes: ``out_dir`` / its path under the directory
    given for it (a file given alone: its name).

    Raises:
        BatchError: two inputs would be written to one output file (exit code 2).
    """
    out: dict[Path, Source] = {}
    for source in sources:
        target = out_dir / source.relative
        before = out.get(target)
        if before is not None and before.path.resolve() != source.path.resolve():
            raise BatchError(
                f"--redact-to would write both {before.path} and {source.path} to one file; "
                "scan them in separate runs, or give their common parent directory",
                file=str(target),
            )
        out[target] = source
    return out


@dataclass(frozen=True, slots=True)
class FieldAction:
    """One declared field: which rows (event), where (call path) and what to do."""

    event: str | None  # None: every row of ``kind``
    path: tuple[str, ...]
    category: str
    action: str
    kind: str = "track"  # the rule's call kind; "common" applies to every row


def apply_column(
    arr: pa.Array, action: str, category: str, key: bytes | None, *, canon: Canon | None = None
) -> pa.Array:
    """Apply ``action`` to every value of ``arr`` exactly as the per-row function would
    (``canon``: the policy's canonical forms before ``hash``, phones in E.164).

    Nulls (absent values) stay null. The result keeps ``arr``'s type where the new values
    fit it (a hash of a number column becomes a string column).
    """
    from trackplan.pii.actions import apply_action

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if action == "allow":
        return arr
    if action in ("drop", "reject"):
        return pa.nulls(len(arr), arr.type)
    primitive = not (pa.types.is_nested(arr.type) or pa.types.is_dictionary(arr.type))
    if primitive:
        encoded = pc.dictionary_encode(arr)
        distinct = encoded.dictionary.to_pylist()
        new = [apply_action(action, category, to_json(v), key, canon=canon)[1] for v in distinct]
        try:
            dictionary = pa.array(new, type=arr.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            dictionary = pa.array(new)
        return pc.take(dictionary, encoded.indices)
    values = [
        None if v is None else apply_action(action, category, to_json(v), key, canon=canon)[1]
        for v in arr.to_pylist()
    ]
    try:
        return pa.array(values, type=arr.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array(values)


def _replace(arr: pa.Array, path: Sequence[str], fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``arr`` with ``fn`` applied at ``path`` (struct fields by name, ``*`` for list items)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not path:
        return fn(arr)
    head, rest = path[0], path[1:]
    if head == "*":
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            return arr
        offsets = arr.offsets
        values = arr.values.slice(offsets[0].as_py(), offsets[-1].as_py() - offsets[0].as_py())
        shifted = pc.subtract(offsets, offsets[0])
        new_values = _replace(values, rest, fn)
        cls = pa.LargeListArray if pa.types.is_large_list(arr.type) else pa.ListArray
        return cls.from_arrays(
            pc.cast(shifted, offsets.type),
            new_values,
            mask=pc.is_null(arr) if arr.null_count else None,
        )
    if not pa.types.is_struct(arr.type) or arr.type.get_field_index(head) < 0:
        return arr
    children = []
    for i, f in enumerate(arr.type):
        child = arr.field(i)
        if arr.offset or len(child) != len(arr):
            child = child.slice(arr.offset, len(arr))
        children.append(_replace(child, rest, fn) if f.name == head else child)
    fields = [pa.field(f.name, c.type, f.nullable) for f, c in zip(arr.type, children, strict=True)]
    mask = pc.is_null(arr) if arr.null_count else None
    return pa.StructArray.from_arrays(children, fields=fields, mask=mask)


class RedactWriter:
    """Receives each scanned chunk with its result and writes the cleaned copy.

    Raises (at construction):
        MissingSecretError: the plan hashes PII and its key is not in the environment.
    """

    def __init__(self, plan: Plan, out_dir: Path, *, keep_blocked: bool = False) -> None:
        from trackplan.pii.policy import PiiPolicy, stricter

        policy = PiiPolicy.from_plan(plan)
        self.key = policy.key
        self.canon = policy.canon()
        self.out_dir = out_dir
        self.keep_blocked = keep_blocked
        # one action per (kind, event, path): an event's versions may declare a field
        # twice, and applying hash twice would hash the hash; the stricter action wins.
        # Declarations that apply to every call (the common rule's, identify traits under
        # context.traits) are the enforcer's, by the same rule: PiiPolicy.fields_for
        every = {id(f) for f in policy.fields_for(None)}
        chosen: dict[tuple[str, str | None, tuple[str, ...]], FieldAction] = {}
        for declared in policy.fields:
            rule = declared.rule
            if declared.category is None or declared.action == "allow":
                continue
            kind = "common" if id(declared) in every else rule.kind
            event = rule.name if kind == "track" else None
            path = tuple(declared.path)
            before = chosen.get((kind, event, path))
            if before is not None and stricter(before.action, declared.action) == before.action:
                continue
            chosen[(kind, event, path)] = FieldAction(
                event, path, declared.category, declared.action, kind
            )
        self.actions = list(chosen.values())
        # temporaries of an earlier run killed outright (no live writer holds them)
        self.stale_removed = remove_stale_parts(out_dir)
        self._open: dict[Path, _FileOut] = {}
        self.rows_written = 0
        self.rows_removed = 0

    def add(self, chunk: Chunk, result: pa.RecordBatch) -> None:
        """Clean one chunk and append it to its output file."""
        batch = chunk.batch
        source = chunk.source
        drop = [k for k in source.partition if k in batch.schema.names]
        out = self._open.get(source.path)
        if out is None:
            target = self.out_dir / source.relative
            try:
                out = self._open[source.path] = _FileOut(source, self.out_dir)
            except OSError as exc:
                raise _cannot_write(target, exc) from None
        if drop and out.schema is None:
            out.partition_columns = drop
        blocked = np.zeros(batch.num_rows, dtype=bool)
        found = result.filter(pc.equal(result.column("kind"), "violation"))
        # a PII finding blocks its row only when its action is reject (count 1); another
        # violation unless the enforcer forwards the call anyway (count 0: violations
        # allow, or omit with the property at its pointer dropped)
        pii = pc.fill_null(pc.equal(found.column("keyword"), PII), False)
        count = found.column("count")
        blocking = pc.if_else(pii, pc.fill_null(pc.equal(count, 1), False), pc.is_null(count))
        bad = found.filter(blocking).column("row")
        if len(bad):
            blocked[np.asarray(pc.unique(bad).to_numpy()) - chunk.offset] = True
        findings = found.filter(pc.is_valid(found.column("pointer")))
        # properties the enforcer omits as unplanned: dropped from the copy too
        dropped = result.filter(pc.equal(result.column("kind"), "omitted"))
        if dropped.num_rows:
            findings = pa.Table.from_batches([findings, dropped]).combine_chunks().to_batches()[0]
        if JSON_COLUMN in batch.schema.names:
            batch = self._apply_json(batch, blocked, chunk.offset, findings)
        else:
            batch = self._apply(batch, blocked)
            if findings.num_rows:
                batch = _put_findings(batch, findings, chunk.offset)
        if not self.keep_blocked and blocked.any():
            self.rows_removed += int(blocked.sum())
            batch = batch.filter(pa.array(~blocked))
        batch = batch.drop_columns(out.partition_columns) if out.partition_columns else batch
        try:
            out.write(batch)
        except OSError as exc:  # a full disk, an I/O error: nothing is left half-written
            self.abort()
            raise _cannot_write(out.target, exc) from None
        self.rows_written += batch.num_rows

    def _apply(self, batch: pa.RecordBatch, blocked: np.ndarray) -> pa.RecordBatch:
        nested = "properties" in batch.schema.names or "traits" in batch.schema.names
        event_col = next((c for c in ("event_text", "event") if c in batch.schema.names), None)
        events = batch.column(event_col).cast(pa.string()) if event_col else None
        kinds = batch.column("type").cast(pa.string()) if "type" in batch.schema.names else None
        columns = {name: batch.column(name) for name in batch.schema.names}
        for fa in self.actions:
            located = self._locate(fa.path, batch.schema, nested)
            if located is None:
                continue
            column, inner = located
            rows: pa.Array | None = None
            if fa.kind not in ("track", "common"):
                # identify/group/page/screen fields: only rows of that call type
                if kinds is None:
                    if events is not None:
                        continue  # a table of track events holds no traits
                else:
                    rows = pc.fill_null(pc.equal(kinds, fa.kind), False)
                    if not pc.any(rows).as_py():
                        continue
            elif fa.event is not None and events is not None:
                rows = pc.fill_null(
                    pc.or_(pc.equal(events, fa.event), pc.equal(events, snake_case(fa.event))),
                    False,
                )
                if not pc.any(rows).as_py():
                    continue
                if pc.all(rows).as_py():
                    rows = None
            old = columns[column]
            if fa.action == "reject":
                present = pc.is_valid(_leaf(old, inner)) if not inner or "*" not in inner else None
                if present is not None:
                    hit = present if rows is None else pc.and_(present, rows)
                    blocked |= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)

            def fn(a: pa.Array, fa: FieldAction = fa) -> pa.Array:
                return apply_column(a, fa.action, fa.category, self.key, canon=self.canon)

            new = _replace(old, inner, fn)
            if rows is not None:
                new = pc.if_else(rows, new, old) if new.type == old.type else new
            columns[column] = new
        arrays = list(columns.values())
        return pa.RecordBatch.from_arrays(arrays, names=list(columns))

    def _apply_json(
        self, batch: pa.RecordBatch, blocked: np.ndarray, offset: int, findings: pa.RecordBatch
    ) -> pa.RecordBatch:
        """Rows kept as JSON text: the declared actions and the findings, row by row."""
        by_row: dict[int, list[tuple[str, str | None]]] = {}
        for f in findings.select(["row", "pointer", "replacement"]).to_pylist():
            by_row.setdefault(f["row"] - offset, []).append((f["pointer"], f["replacement"]))
        texts = batch.column(JSON_COLUMN).to_pylist()
        out: list[str | None] = []
        for i, text in enumerate(texts):
            event = orjson.loads(text) if text is not None else None
            if isinstance(event, dict):
                kind = str(event.get("type") or "track")
                name = event.get("event")
                for fa in self.actions:
                    if fa.kind not in ("common", kind) or (
                        fa.kind == "track" and fa.event is not None
                        and name not in (fa.event, snake_case(fa.event))
                    ):  # fmt: skip
                        continue
                    if fa.action == "reject" and _holds(event, fa.path):
                        blocked[i] = True
                    _act_at(event, fa.path, fa, self.key)
                for pointer, replacement in by_row.get(i, ()):
                    _set_at(event, jp.parse(pointer), replacement)
            out.append(None if event is None else orjson.dumps(event).decode())
        column = pa.array(out, pa.string())
        return pa.RecordBatch.from_arrays([column], names=[JSON_COLUMN])

    @staticmethod
    def _locate(
        path: tuple[str, ...], schema: pa.Schema, nested: bool
    ) -> tuple[str, tuple[str, ...]] | None:
        """(column, path inside it) holding the call path, in either layout."""
        if not path:
            return None
        if path[0] in schema.names:  # nested layout (properties.email, context.ip)
            return path[0], path[1:]
        if nested or len(path) < 2:
            return None
        head, name, rest = path[0], path[1], path[2:]
        if head in ("properties", "traits"):
            for candidate in (name, snake_case(name)):
                if candidate in schema.names:
                    return candidate, rest
        elif head == "context":  # context_ip, context_traits_email
            for k in range(len(path), 1, -1):
                candidate = "_".join(["context", *(snake_case(p) for p in path[1:k])])
                if candidate in schema.names:
                    return candidate, path[k:]
        return None

    def close(self) -> None:
        """Finish every output file (each renamed into place when complete)."""
        for out in self._open.values():
            out.close()
        self._open.clear()

    def abort(self) -> None:
        """Remove every unfinished temporary; no output file appears."""
        for out in self._open.values():
            out.abort()
        self._open.clear()


def _cannot_write(target: Path, exc: OSError) -> BatchError:
    """The error of an output file that cannot be written (names it, never a temporary)."""
    return BatchError(f"cannot write: {exc.strerror or type(exc).__name__}", file=str(target))


def _holds(value: Any, path: Sequence[str]) -> bool:
    """Whether ``value`` (a parsed event) holds something at the declared path."""
    if not path:
        return value is not None
    head, rest = path[0], path[1:]
    if head == "*":
        items = value if isinstance(value, list) else (
            list(value.values()) if isinstance(value, dict) else [])  # fmt: skip
        return any(_holds(v, rest) for v in items)
    return isinstance(value, dict) and head in value and _holds(value[head], rest)


def _act_at(value: Any, path: Sequence[str], fa: FieldAction, key: bytes | None) -> None:
    """Apply a declared action in place at ``path`` of a parsed event (``*``: every item)."""
    from trackplan.pii.actions import apply_action

    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        slots: list[Any] = list(range(len(value))) if isinstance(value, list) else (
            list(value) if isinstance(value, dict) else [])  # fmt: skip
    else:
        slots = [head] if isinstance(value, dict) and head in value else []
    for slot in reversed(slots):
        if rest:
            _act_at(value[slot], rest, fa, key)
        elif fa.action in ("drop", "reject"):
            del value[slot]
        elif value[slot] is not None:
            value[slot] = apply_action(fa.action, fa.category, value[slot], key)[1]


def _set_at(event: Any, parts: Sequence[str], replacement: str | None) -> None:
    """Put a finding's replacement (JSON; None: remove) at its pointer in a parsed event."""
    node = event
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return
    last = parts[-1] if parts else None
    if last is None:
        return
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        if replacement is None:
            del node[int(last)]
        else:
            node[int(last)] = orjson.loads(replacement)
    elif isinstance(node, dict) and last in node:
        if replacement is None:
            del node[last]
        else:
            node[last] = orjson.loads(replacement)


def _column_of(parts: Sequence[str], schema: pa.Schema) -> tuple[str, list[str]] | None:
    """(column, the rest of the pointer inside it) holding a call pointer, in either layout
    (flat tables: a property's own column, ``context_*`` columns)."""
    names = schema.names
    if not parts:
        return None
    if parts[0] in names and pa.types.is_nested(schema.field(parts[0]).type):
        return parts[0], list(parts[1:])
    if parts[0] in ("properties", "traits") and len(parts) > 1:
        for candidate in (parts[1], snake_case(parts[1])):
            if candidate in names:
                return candidate, list(parts[2:])
    if parts[0] == "context":
        for k in range(len(parts), 1, -1):
            column = "_".join(["context", *(snake_case(p) for p in parts[1:k])])
            if column in names:
                return column, list(parts[k:])
    return None


def _put_findings(batch: pa.RecordBatch, findings: pa.RecordBatch, offset: int) -> pa.RecordBatch:
    """``batch`` with each finding's replacement at its pointer (the enforcer's value there)."""
    edits: dict[str, list[tuple[int, list[str], str | None]]] = {}
    for f in findings.select(["row", "pointer", "replacement"]).to_pylist():
        located = _column_of(jp.parse(f["pointer"]), batch.schema)
        if located is not None:
            column, inner = located
            edits.setdefault(column, []).append((f["row"] - offset, inner, f["replacement"]))
    for column, changes in edits.items():
        index = batch.schema.get_field_index(column)
        old = batch.column(index)
        values = old.to_pylist()
        for row, inner, replacement in changes:
            if not inner:
                values[row] = None if replacement is None else orjson.loads(replacement)
            else:
                holder = {"v": values[row]}
                _set_at(holder, ["v", *inner], replacement)
                values[row] = holder["v"]
        typ = old.type.value_type if pa.types.is_dictionary(old.type) else old.type
        try:
            new = pa.array(values, type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            # a replacement the column's type cannot hold (a hash in a number column): the
            # value is removed, which no action is less protective than
            for row, _, _ in changes:
                values[row] = None
            new = pa.array(values, type=typ)
        batch = batch.set_column(index, batch.schema.field(index).with_type(typ), new)
    return batch


def _leaf(arr: pa.Array, path: Sequence[str]) -> pa.Array:
    for part in path:
        arr = struct_child(arr, part)
    return arr


class _FileOut:
    """One output file being written aside, renamed on close."""

    def __init__(self, source: Source, out_dir: Path) -> None:
        self.source = source
        self.target = out_dir / source.relative
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.schema: pa.Schema | None = None
        self.partition_columns: list[str] = []
        self._parquet: pq.ParquetWriter | None = None
        self._csv: pacsv.CSVWriter | None = None
        self._text: IO[bytes] | None = None
        self._compression = "snappy"
        if source.format == "parquet":
            meta = pq.ParquetFile(source.path).metadata
            if meta.num_row_groups and meta.num_columns:
                self._compression = meta.row_group(0).column(0).compression.lower()
        self.part = PartFile(self.target)
        self.tmp = self.part.path

    def write(self, batch: pa.RecordBatch) -> None:
        fmt = self.source.format
        if self.schema is None:
            self.schema = batch.schema
        elif batch.schema != self.schema and fmt != "ndjson":  # lines need no one schema
            batch = batch.cast(self.schema)
        if fmt == "parquet":
            if self._parquet is None:
                compression: Any = (
                    None if self._compression == "uncompressed" else self._compression
                )
                self._parquet = pq.ParquetWriter(self.tmp, batch.schema, compression=compression)
            self._parquet.write_batch(batch)
        elif fmt == "csv":
            if self._text is None:
                self._text = self._open_text()
                self._csv = pacsv.CSVWriter(self._text, batch.schema)
            assert self._csv is not None
            self._csv.write_batch(batch)
        else:
            if self._text is None:
                self._text = self._open_text()
            if JSON_COLUMN in batch.schema.names:  # rows kept as JSON text
                for text in batch.column(JSON_COLUMN).to_pylist():
                    self._text.write(text.encode() + b"\n")
                return
            for row in batch.to_pylist():
                self._text.write(orjson.dumps(to_json(row), default=str) + b"\n")

    def _open_text(self) -> IO[bytes]:
        raw = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        if self.source.compression == "gzip":
            return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", mtime=0))
        return raw

    def close(self) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            elif self.source.format == "parquet" and self.schema is not None:
                pq.write_table(self.schema.empty_table(), self.tmp)
            if self._csv is not None:
                self._csv.close()
            if self._text is not None:
                fileobj = getattr(self._text, "fileobj", None)
                self._text.close()
                if fileobj is not None:
                    fileobj.close()
            if self.schema is not None:  # something was written (PartFile made the file)
                self.part.commit()
            else:
                self.part.discard()
        except OSError as exc:
            self.abort()
            raise _cannot_write(self.target, exc) from None

    def abort(self) -> None:
        for handle in (self._parquet, self._csv, self._text):
            try:
                if handle is not None:
                    handle.close()
            except (OSError, ValueError, pa.ArrowException):
                pass
        self.part.discard()
