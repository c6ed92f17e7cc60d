"""Engines that run :func:`~trackplan.batch.check.check_batch` over input files.

* ``local``: this process, batch by batch, in bounded memory.
* ``dask``: a Dask DataFrame per input schema, one partition per parquet row group (or
  per text file), and ``map_partitions`` running the same pure function on every
  partition in parallel worker processes. Partitions are Arrow-backed (pandas
  ``ArrowDtype``), so nested lists of structs, dictionaries and integer nulls reach the
  check as they were read, without a copy into NumPy. Each partition's result is a frame
  of the fixed :data:`~trackplan.batch.check.RESULT_SCHEMA`; this process tallies them.

NDJSON and CSV files have no schema up front (an NDJSON chunk whose values do not fit
one type becomes JSON text), so they cannot be a partition of a typed frame: each is read
and checked inside its own partition of the results frame instead.

Both engines feed the same :class:`~trackplan.batch.report.Tally`, so their reports are
equal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trackplan.batch.check import RESULT_SCHEMA, BatchPlan, check_batch
from trackplan.batch.mapping import LayoutOptions
from trackplan.batch.readers import (
    BATCH_ROWS,
    Chunk,
    Source,
    dictionary_columns,
    display_numbers,
    parquet_batches,
    read_source,
    refuse_duplicate_columns,
    with_partition,
)
from trackplan.errors import BatchError
from trackplan.plan.model import Plan

__all__ = ["ENGINES", "run_local", "run_dask", "Part", "plan_parts", "numbered"]

ENGINES = ("local", "dask")

#: Batches checked at once by the local engine (bounds memory to a few batches).
IN_FLIGHT = 2

OnResult = Callable[[Chunk, pa.RecordBatch], None]


def numbered(chunk: Chunk, result: pa.RecordBatch) -> pa.RecordBatch:
    """``result`` as reports number it: violations at their line (NDJSON, CSV) or row
    (parquet) from 1, and a ``malformed`` row per NDJSON line that is not JSON."""
    rows = result.column("row")
    index = result.schema.get_field_index("row")
    if rows.null_count < len(rows):
        raw = pc.fill_null(rows, chunk.offset).to_numpy(zero_copy_only=False)
        shown = np.where(
            rows.is_valid().to_numpy(zero_copy_only=False), display_numbers(chunk, raw), 0
        )
        missing = rows.is_null().to_numpy(zero_copy_only=False)
        result = result.set_column(index, "row", pa.array(shown, pa.int64(), mask=missing))
    if not chunk.malformed:
        return result
    n = len(chunk.malformed)
    extra = {f.name: pa.nulls(n, f.type) for f in RESULT_SCHEMA}
    extra["kind"] = pa.array(["malformed"] * n, pa.string())
    extra["file"] = pa.array([str(chunk.source.path)] * n, pa.string())
    extra["row"] = pa.array(chunk.malformed, pa.int64())
    more = pa.RecordBatch.from_pydict(extra, schema=RESULT_SCHEMA)
    table = pa.Table.from_batches([result, more]).combine_chunks()
    return table.to_batches()[0]


def run_local(
    batch_plan: BatchPlan,
    sources: Sequence[Source],
    on_result: OnResult,
    *,
    batch_rows: int = BATCH_ROWS,
    all_columns: bool = False,
    csv_empty_as_string: bool = False,
) -> None:
    """Check every chunk of every source in this process, handing each result on.

    Only the columns the checks need are read, unless ``all_columns`` (a redacted copy
    needs every column). Reading the next batch overlaps checking the previous ones
    (Arrow releases the GIL in both); at most ``IN_FLIGHT`` batches are held, and results
    are handed on in input order.
    """
    columns = None if all_columns else batch_plan.needed_columns
    pending: deque[tuple[Chunk, Future[pa.RecordBatch]]] = deque()
    with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="trackplan-scan") as pool:
        try:
            for source in sources:
                for chunk in read_source(
                    source,
                    batch_rows=batch_rows,
                    columns=columns,
                    csv_empty_as_string=csv_empty_as_string,
                ):
                    future = pool.submit(
                        check_batch,
                        batch_plan,
                        chunk.batch,
                        file=str(source.path),
                        offset=chunk.offset,
                    )
                    pending.append((chunk, future))
                    if len(pending) >= IN_FLIGHT:
                        done, result = pending.popleft()
                        on_result(done, result.result())
            while pending:
                done, result = pending.popleft()
                on_result(done, result.result())
        finally:
            for _, future in pending:
                future.cancel()


@dataclass(frozen=True, slots=True)
class Part:
    """A unit of work for a distributed engine: a file, or one row group of a parquet file."""

    source: Source
    row_group: int | None = None
    offset: int = 0


def plan_parts(sources: Sequence[Source]) -> list[Part]:
    """Split sources into parts: parquet files by row group, other files whole."""
    parts: list[Part] = []
    for source in sources:
        if source.format != "parquet":
            parts.append(Part(source))
            continue
        try:
            with pq.ParquetFile(source.path) as handle:
                meta, schema = handle.metadata, handle.schema_arrow
        except (OSError, pa.ArrowException):
            raise BatchError("cannot read parquet metadata", file=str(source.path)) from None
        refuse_duplicate_columns(schema, source.path)
        offset = 0
        for i in range(meta.num_row_groups):
            parts.append(Part(source, i, offset))
            offset += meta.row_group(i).num_rows
    return parts


_CACHE: dict[tuple[Any, ...], BatchPlan] = {}


def _batch_plan(plan: Plan, options: LayoutOptions) -> BatchPlan:
    """The compiled plan, built once per worker process (validators do not pickle)."""
    key = (plan.digest(), options.kind, options.event, tuple(sorted(options.columns.items())))
    found = _CACHE.get(key)
    if found is None:
        found = _CACHE[key] = BatchPlan.build(plan, options)
    return found


def _frame(table: pa.Table) -> Any:
    """An Arrow-backed pandas frame of ``table`` (no conversion of the values)."""
    import pandas as pd

    return table.to_pandas(types_mapper=pd.ArrowDtype, ignore_metadata=True)


def _read_part(part: Part, plan: Plan, options: LayoutOptions, batch_rows: int) -> Any:
    """Worker side: one parquet row group, the columns the checks need, as a frame."""
    bp = _batch_plan(plan, options)
    try:
        with pq.ParquetFile(part.source.path) as handle:
            names = bp.needed_columns(handle.schema_arrow)
        batches = [
            with_partition(batch, part.source.partition) if part.source.partition else batch
            for batch in parquet_batches(
                part.source.path,
                batch_rows=batch_rows,
                columns=names,
                dictionary=dictionary_columns(part.source.path, names),
                row_group=part.row_group,
            )
        ]
    except (OSError, pa.ArrowException):
        raise BatchError("cannot read parquet", file=str(part.source.path)) from None
    return _frame(pa.Table.from_batches(batches) if batches else _empty(part, bp))


def _empty(part: Part, bp: BatchPlan) -> pa.Table:
    """A part's table with no rows: the first batch of its file, cut to nothing."""
    first = next(
        parquet_batches(
            part.source.path,
            batch_rows=1,
            columns=bp.needed_columns(pq.ParquetFile(part.source.path).schema_arrow),
            dictionary=(),
        ),
        None,
    )
    if first is None:
        return pq.ParquetFile(part.source.path).schema_arrow.empty_table()
    batch = first.slice(0, 0)
    if part.source.partition:
        batch = with_partition(batch, part.source.partition)
    return pa.Table.from_batches([batch])


def _check_frame(
    frame: Any,
    parts: Sequence[Part],
    plan: Plan,
    options: LayoutOptions,
    batch_rows: int,
    partition_info: dict[str, Any] | None = None,
) -> Any:
    """Worker side of ``map_partitions``: check one partition; a frame of RESULT_SCHEMA."""
    if partition_info is None:  # without its number a partition has no file or row numbers
        if len(frame):
            raise BatchError("Dask gave a partition without its number", file="(engine)")
        return _frame(RESULT_SCHEMA.empty_table())
    part = parts[partition_info["number"]]
    bp = _batch_plan(plan, options)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    results = []
    offset = part.offset
    for batch in table.to_batches(max_chunksize=batch_rows):
        result = check_batch(bp, batch, file=str(part.source.path), offset=offset)
        results.append(numbered(Chunk(part.source, offset, batch), result))
        offset += batch.num_rows
    return _frame(pa.Table.from_batches(results, schema=RESULT_SCHEMA))


def check_part(
    part: Part,
    plan: Plan,
    options: LayoutOptions,
    batch_rows: int,
    csv_empty_as_string: bool = False,
) -> Any:
    """Worker side for a text file: read it and check it; a frame of RESULT_SCHEMA."""
    bp = _batch_plan(plan, options)
    results = [
        numbered(
            chunk, check_batch(bp, chunk.batch, file=str(part.source.path), offset=chunk.offset)
        )
        for chunk in read_source(
            part.source,
            batch_rows=batch_rows,
            columns=bp.needed_columns,
            csv_empty_as_string=csv_empty_as_string,
        )
    ]
    return _frame(pa.Table.from_batches(results, schema=RESULT_SCHEMA))


def _schema_key(part: Part, bp: BatchPlan) -> tuple[Any, ...]:
    """Parts with equal keys read into frames of one schema."""
    schema = pq.ParquetFile(part.source.path).schema_arrow
    names = bp.needed_columns(schema)
    return (
        schema.to_string(),
        tuple(names or ()),
        tuple(dictionary_columns(part.source.path, names)),
        tuple(part.source.partition),
    )


def run_dask(
    plan: Plan,
    options: LayoutOptions,
    sources: Sequence[Source],
    on_table: Callable[[pa.Table], None],
    *,
    batch_rows: int = BATCH_ROWS,
    scheduler: str | None = None,
    csv_empty_as_string: bool = False,
) -> None:
    """Check every part on Dask (``scheduler`` as Dask names them; default: processes).

    Parquet row groups of one schema are the partitions of one Arrow-backed Dask
    DataFrame, checked by ``map_partitions``; text files are read and checked in the
    partitions of a frame of results. All result frames are computed together.
    """
    try:
        import dask
        import dask.dataframe as dd
    except ImportError:
        raise BatchError(
            "the dask engine needs Dask's DataFrame: pip install 'trackplan[dask]'",
            file="(engine)",
        ) from None
    parts = plan_parts(sources)
    if not parts:
        return
    # partitions are Arrow-backed already: no conversion of string columns between tasks
    with dask.config.set({"dataframe.convert-string": False}):
        bp = _batch_plan(plan, options)
        result_meta = _frame(RESULT_SCHEMA.empty_table())
        groups: dict[tuple[Any, ...], list[Part]] = {}
        text: list[Part] = []
        for part in parts:
            if part.row_group is None:
                text.append(part)
            else:
                groups.setdefault(_schema_key(part, bp), []).append(part)
        checked = []
        for group in groups.values():
            frames = dd.from_map(  # type: ignore[no-untyped-call]
                _read_part,
                group,
                args=(plan, options, batch_rows),
                meta=_frame(_empty(group[0], bp)),
                label="trackplan-read",
            )
            checked.append(
                frames.map_partitions(
                    _check_frame, group, plan, options, batch_rows, meta=result_meta
                )
            )
        if text:
            checked.append(
                dd.from_map(  # type: ignore[no-untyped-call]
                    check_part,
                    text,
                    args=(plan, options, batch_rows, csv_empty_as_string),
                    meta=result_meta,
                    label="trackplan-check",
                )  # fmt: skip
            )
        results = dd.concat(checked) if len(checked) > 1 else checked[0]  # type: ignore[no-untyped-call]
        # optimised first, reading and checking fuse into one task per partition; left to
        # compute(), the processes scheduler shipped every read partition through this
        # process (17 s instead of 6 s for the 5M-row benchmark file)
        frame = results.optimize().compute(scheduler=scheduler or "processes")
    on_table(pa.Table.from_pandas(frame, schema=RESULT_SCHEMA, preserve_index=False))
