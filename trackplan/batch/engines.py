"""Engines that run :func:`~trackplan.batch.check.check_batch` over input files.

* ``local``: this process, batch by batch, in bounded memory.
* ``dask``: one Dask task per file (or per parquet row group), in parallel; each task
  reads its part, runs the same pure function and returns result batches of the fixed
  :data:`~trackplan.batch.check.RESULT_SCHEMA`, which this process tallies. Dask's
  ``dataframe.map_partitions`` would hand each task a pandas frame (an Arrow -> pandas
  round trip that loses integer nulls and nested types), so the tasks are a
  ``dask.bag`` over file parts and stay in Arrow throughout.

Both engines feed the same :class:`~trackplan.batch.report.Tally`, so their reports are
equal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from trackplan.batch.check import BatchPlan, check_batch
from trackplan.batch.mapping import LayoutOptions
from trackplan.batch.readers import (
    BATCH_ROWS,
    Chunk,
    Source,
    dictionary_columns,
    parquet_batches,
    read_source,
    with_partition,
)
from trackplan.errors import BatchError
from trackplan.plan.model import Plan

__all__ = ["ENGINES", "run_local", "run_dask", "Part"]

ENGINES = ("local", "dask")

#: Batches checked at once by the local engine (bounds memory to a few batches).
IN_FLIGHT = 2

OnResult = Callable[[Chunk, pa.RecordBatch], None]


def run_local(
    batch_plan: BatchPlan,
    sources: Sequence[Source],
    on_result: OnResult,
    *,
    batch_rows: int = BATCH_ROWS,
    all_columns: bool = False,
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
                for chunk in read_source(source, batch_rows=batch_rows, columns=columns):
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
            meta = pq.ParquetFile(source.path).metadata
        except (OSError, pa.ArrowException):
            raise BatchError("cannot read parquet metadata", file=str(source.path)) from None
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


def _part_batches(
    part: Part, batch_rows: int, columns: Callable[[pa.Schema], list[str] | None]
) -> Iterator[tuple[int, pa.RecordBatch]]:
    if part.row_group is None:
        for chunk in read_source(part.source, batch_rows=batch_rows, columns=columns):
            yield chunk.offset, chunk.batch
        return
    with pq.ParquetFile(part.source.path) as handle:
        names = columns(handle.schema_arrow)
    batches = parquet_batches(
        part.source.path,
        batch_rows=batch_rows,
        columns=names,
        dictionary=dictionary_columns(part.source.path, names),
        row_group=part.row_group,
    )
    offset = part.offset
    for batch in batches:
        if part.source.partition:
            batch = with_partition(batch, part.source.partition)
        yield offset, batch
        offset += batch.num_rows


def check_part(part: Part, plan: Plan, options: LayoutOptions, batch_rows: int) -> pa.Table:
    """Worker side: read one part and check it; returns a table of RESULT_SCHEMA."""
    from trackplan.batch.check import RESULT_SCHEMA

    bp = _batch_plan(plan, options)
    results = [
        check_batch(bp, batch, file=str(part.source.path), offset=offset)
        for offset, batch in _part_batches(part, batch_rows, bp.needed_columns)
    ]
    return pa.Table.from_batches(results, schema=RESULT_SCHEMA)


def run_dask(
    plan: Plan,
    options: LayoutOptions,
    sources: Sequence[Source],
    on_table: Callable[[pa.Table], None],
    *,
    batch_rows: int = BATCH_ROWS,
    scheduler: str | None = None,
) -> None:
    """Check every part on Dask (``scheduler`` as Dask names them; default: processes)."""
    try:
        import dask.bag as db
    except ImportError:
        raise BatchError(
            "the dask engine needs Dask: pip install 'dask>=2024.1'", file="(engine)"
        ) from None
    parts = plan_parts(sources)
    if not parts:
        return
    bag = db.from_sequence(parts, npartitions=min(len(parts), 64))  # type: ignore[no-untyped-call]
    tables: list[Any] = bag.map(check_part, plan, options, batch_rows).compute(
        scheduler=scheduler or "processes"
    )
    for table in tables:
        on_table(table)
