"""Batch scans of warehouse exports: Arrow readers, vectorised rules, reports, redacted copies.

The pipeline, one file per stage: :mod:`~trackplan.batch.readers` (parquet, hive trees,
NDJSON, CSV, batch by batch), :mod:`~trackplan.batch.mapping` (nested or flat layout),
:mod:`~trackplan.batch.rules` (payload schema -> Arrow compute, per-row fallback),
:mod:`~trackplan.batch.check` (the pure per-batch function and its fixed output schema),
:mod:`~trackplan.batch.engines` (local, Dask), :mod:`~trackplan.batch.report` (tally,
text, JSON, HTML), :mod:`~trackplan.batch.redact` (PII actions column-wise).

>>> from trackplan.batch import BatchPlan, check_batch, scan        # doctest: +SKIP
>>> outcome = scan(load_plan("plans/ecommerce"), ["examples/export.parquet"])  # doctest: +SKIP
>>> outcome.report["invalid_rows"]                                            # doctest: +SKIP
"""

from __future__ import annotations

from trackplan.batch.check import RESULT_SCHEMA, BatchPlan, check_batch
from trackplan.batch.mapping import LayoutOptions
from trackplan.batch.scan import ScanOptions, ScanOutcome, scan

__all__ = [
    "RESULT_SCHEMA",
    "BatchPlan",
    "check_batch",
    "LayoutOptions",
    "ScanOptions",
    "ScanOutcome",
    "scan",
]
