"""Scan inputs against a plan: discover files, run an engine, tally, mask samples.

>>> outcome = scan(load_plan("plans/ecommerce"), ["examples/orders.parquet"])  # doctest: +SKIP
>>> outcome.report["invalid_rows"]                                              # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from trackplan.batch.check import BatchPlan
from trackplan.batch.engines import numbered, run_dask, run_local
from trackplan.batch.mapping import LayoutOptions
from trackplan.batch.readers import BATCH_ROWS, Chunk, Source, discover
from trackplan.batch.report import Tally
from trackplan.plan.model import Plan

#: The label of PII fields declared for every event (the common rule's call fields).
ANY_EVENT = "*"

__all__ = ["ScanOptions", "ScanOutcome", "scan", "Progress", "pii_fields", "make_masker"]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How to scan: the engine, the layout hints, the batch size and progress output."""

    engine: str = "local"
    layout: LayoutOptions = field(default_factory=LayoutOptions)
    batch_rows: int = BATCH_ROWS
    progress: bool = False
    #: read an empty CSV field as an empty string (default: absent, a null)
    csv_empty_as_string: bool = False


@dataclass
class ScanOutcome:
    """The report dictionary and what produced it."""

    report: dict[str, Any]
    tally: Tally
    batch_plan: BatchPlan


class Progress:
    """A one-line progress display (files, rows, rows/s) on a terminal; silent otherwise."""

    def __init__(self, total_files: int, *, stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.total = total_files
        self.files: set[str] = set()
        self.rows = 0
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, file: str, rows: int) -> None:
        """Count ``rows`` more rows of ``file`` and redraw at most ten times a second."""
        self.files.add(file)
        self.rows += rows
        now = time.monotonic()
        if self.enabled and now - self._last > 0.1:
            self._last = now
            rate = self.rows / max(now - self.start, 1e-9)
            self.stream.write(
                f"\rfiles {len(self.files)}/{self.total}  rows {self.rows:,}  {rate:,.0f} rows/s"
            )
            self.stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled and self._last:
            self.stream.write("\n")
            self.stream.flush()


def pii_fields(plan: Plan) -> dict[tuple[str | None, str], str]:
    """(event or rule label, field) -> PII category, from ``x-pii`` in each payload.

    Fields use the batch notation (``products[].email``, ``context.ip``); ``x-pii:
    false`` is not PII. Fields of the common rule's call have the label ``ANY_EVENT``.
    """
    out: dict[tuple[str | None, str], str] = {}

    def walk(schema: Any, base: str, label: str | None, depth: int) -> None:
        if not isinstance(schema, Mapping) or depth > 12:
            return
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            target = plan.definitions.get(ref.split("/", 2)[2])
            walk(target, base, label, depth + 1)
        mark = schema.get("x-pii")
        category: str | None = None
        if isinstance(mark, str):
            category = mark
        elif isinstance(mark, Mapping) and isinstance(mark.get("category"), str):
            category = mark["category"]
        elif mark is True:
            category = "pii"
        if category and base:
            out[(label, base)] = category
        for name, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{base}.{name}" if base else name, label, depth + 1)
        items = schema.get("items")
        if isinstance(items, Mapping):
            walk(items, f"{base}[]", label, depth + 1)

    for rule in plan.rules:
        label = rule.name or rule.kind
        walk(rule.payload, "", label, 0)
        # call fields (context.ip) are named from the call's root; the common rule's
        # apply to every event
        walk(rule.call, "", ANY_EVENT if rule.kind == "common" else label, 0)
    return out


def _mask_declared(category: str, value: Any) -> Any:
    """Mask every string in a declared PII value with the plan's one mask action."""
    from trackplan.pii.actions import mask_value

    if isinstance(value, list):
        return [_mask_declared(category, v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_declared(category, v) for k, v in value.items()}
    return mask_value(category, value) if isinstance(value, str) else value


def _mask_found(key: str | None, value: Any) -> Any:
    """Mask PII the value detectors find in undeclared values (nested values by key)."""
    from trackplan.pii.actions import replace_spans
    from trackplan.pii.detect import findings_for

    if isinstance(value, list):
        return [_mask_found(key, v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_found(k, v) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    spans = [(f.start, f.end, f.category) for f in findings_for(key, value)]
    return replace_spans(value, spans, "mask", None) if spans else value


def make_masker(plan: Plan) -> Callable[[str | None, str, str], str]:
    """A function masking report samples: declared PII fields by their category's mask,
    every other value where a PII detector finds something."""
    declared = pii_fields(plan)

    def mask(event: str | None, fld: str, text: str) -> str:
        truncated = False
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:  # a truncated sample: mask it as text
            value, truncated = text, True
        top = fld.split(".", 1)[0].split("[]", 1)[0]
        categories = sorted(
            c for (label, f), c in declared.items()
            if label in (event, ANY_EVENT) and (f == top or f.startswith((top + "[]", top + ".")))
        )  # fmt: skip
        if categories:
            value = _mask_declared(categories[0], value)
        value = _mask_found(top, value)
        return value if truncated and isinstance(value, str) else orjson.dumps(value).decode()

    return mask


def scan(
    plan: Plan,
    paths: Sequence[str | Path],
    options: ScanOptions | None = None,
    *,
    on_chunk: Callable[[Chunk, pa.RecordBatch], None] | None = None,
) -> ScanOutcome:
    """Scan ``paths`` against ``plan``; ``on_chunk`` sees each chunk with its result.

    Raises:
        BatchError: an input cannot be read (exit code 2).
    """
    options = options or ScanOptions()
    sources = discover(paths)
    batch_plan = BatchPlan.build(plan, options.layout)
    tally = Tally()
    progress = Progress(len(sources), enabled=options.progress)
    for source in sources:
        tally.files.setdefault(str(source.path), {"rows": 0, "invalid_rows": 0})
        tally.formats[str(source.path)] = source.format
    try:
        if options.engine == "dask":
            if on_chunk is not None:
                raise ValueError("the dask engine does not write redacted copies")

            def on_table(table: pa.Table) -> None:
                tally.add(table)

            run_dask(
                plan,
                options.layout,
                sources,
                on_table,
                batch_rows=options.batch_rows,
                csv_empty_as_string=options.csv_empty_as_string,
            )
        else:

            def on_result(chunk: Chunk, result: pa.RecordBatch) -> None:
                tally.add(numbered(chunk, result))
                progress.update(str(chunk.source.path), chunk.batch.num_rows)
                if on_chunk is not None:
                    on_chunk(chunk, result)

            run_local(
                batch_plan,
                sources,
                on_result,
                batch_rows=options.batch_rows,
                all_columns=on_chunk is not None,
                csv_empty_as_string=options.csv_empty_as_string,
            )
    finally:
        progress.close()
    report = tally.to_dict(per_row=batch_plan.per_row_rules(), mask=make_masker(plan))
    report["representation"] = representation_notes(sources, batch_plan, options)
    return ScanOutcome(report, tally, batch_plan)


def representation_notes(
    sources: Sequence[Source], batch_plan: BatchPlan, options: ScanOptions
) -> list[str]:
    """What the scanned representations cannot say, so the scan cannot check it (the
    README's table in the batch section); one line per gap these inputs have."""
    notes: list[str] = []
    formats = {s.format for s in sources}
    flat = False
    for source in sources:
        if flat or source.format != "parquet":
            continue
        try:
            flat = batch_plan.layout(pq.read_schema(source.path)).kind == "flat"
        except (OSError, pa.ArrowException):
            continue
    if "csv" in formats:
        notes.append(
            "CSV: an empty field cannot be told from an absent value; read as absent"
            if not options.csv_empty_as_string
            else "CSV: an empty field cannot be told from an absent value; read as \"\" "
            "(--csv-empty-as-string)"
        )
        notes.append("CSV: every value is text or a number the reader infers; nested "
                     "objects and arrays cannot be represented")
    if flat or "csv" in formats:
        notes.append("flat tables: a null column is an absent property, never a JSON null; "
                     "an absent payload reads as an empty one (call.required payload keys "
                     "cannot fail)")
    if formats & {"parquet", "csv"} or flat:
        notes.append("columnar inputs: a JSON null inside an object reads as an absent key")
    return notes
