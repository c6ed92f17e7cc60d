"""The result of checking one batch: its schema, and the rows the checks append to it.

:data:`RESULT_SCHEMA` is every engine's output (see :mod:`trackplan.batch.check` for the
kinds of row); :class:`Out` collects a batch's rows as the vectorised checks
(:mod:`trackplan.batch.check`) and the per-row ones (:mod:`trackplan.batch.jsonrows`) find
them. The helpers below name fields and samples alike for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from trackplan import pointer as jp
from trackplan.batch.compiled import BatchPlan, CompiledRule
from trackplan.batch.rules import field_parts, to_json

__all__ = [
    "PII", "RESULT_SCHEMA", "SAMPLES_PER_BATCH", "JSON_COLUMN", "Out", "SAMPLE_CHARS",
    "value_text", "pluck", "top_property", "CONTEXT_TRAITS", "prefixed", "omitted_pointer",
    "forwards_common",
]  # fmt: skip

#: The keyword of PII findings, the enforcer's violation type.
PII = "PII"

#: Every engine's output schema (Spark's ``mapInArrow`` needs it up front).
RESULT_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("file", pa.string()),
        ("row", pa.int64()),
        ("event", pa.string()),
        ("version", pa.int32()),
        ("field", pa.string()),
        ("keyword", pa.string()),
        ("column", pa.string()),
        ("value", pa.string()),
        ("count", pa.int64()),
        # PII findings: the JSON pointer the enforcer names, what was found and done (never
        # the value), and the value the cleaned copy holds there (JSON; null: removed)
        ("pointer", pa.string()),
        ("detail", pa.string()),
        ("replacement", pa.string()),
    ]
)

#: Columns of RESULT_SCHEMA that only PII findings fill.
_PII_COLUMNS = ("pointer", "detail", "replacement")

#: Offending values kept per (field, keyword) and batch, for report samples.
SAMPLES_PER_BATCH = 3

#: Column of raw JSON rows, for NDJSON chunks whose values do not fit one Arrow type.
JSON_COLUMN = "__json__"


class Out:
    """Columns of the result batch, appended to as checks run."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.cols: dict[str, list[Any]] = {f.name: [] for f in RESULT_SCHEMA}
        self._pii_samples: dict[tuple[str | None, int, str], int] = {}

    def counted(self, kind: str, event: str | None, version: int | None, count: int) -> None:
        """A count row: ``checked`` rows of an event version, ``unplanned`` rows of an event
        without a rule, or the ``rows`` of a batch."""
        self._add(kind, None, event, version, None, None, None, None, count)

    def checked(self, event: str | None, version: int, count: int) -> None:
        self.counted("checked", event, version, count)

    def _add(self, *values: Any) -> None:
        kind, row, event, version, fld, keyword, column, value, count = values[:9]
        pii = values[9:] or (None, None, None)
        for name, v in zip(
            RESULT_SCHEMA.names,
            (kind, self.file, row, event, version, fld, keyword, column, value, count, *pii),
            strict=True,
        ):
            self.cols[name].append(v)

    def pii(
        self,
        row: int,
        event: str | None,
        version: int,
        fld: str,
        column: str | None,
        pointer: str,
        detail: str,
        replacement: str | None,
        blocked: bool,
    ) -> None:
        """A PII finding (or a declared ``reject``) in one row, as the enforcer reports it;
        ``count`` is 1 when it blocks the row."""
        key = (event, version, fld)
        shown = self._pii_samples.get(key, 0)
        self._pii_samples[key] = shown + 1
        value = "" if shown < SAMPLES_PER_BATCH else None  # "": a sample, nothing to show
        self._add("violation", row, event, version, fld, PII, column, value,
                  1 if blocked else None, pointer, detail, replacement)  # fmt: skip

    def dropped(
        self, rows: np.ndarray, event: str | None, version: int, column: str | None,
        pointer: str,
    ) -> None:
        """``omitted`` rows: the property at ``pointer`` that the enforcer drops before it
        forwards each of ``rows`` (``unplanned_properties: omit``). Not a violation: the
        report leaves them out; a cleaned copy drops the property too."""
        for row in rows.tolist():
            self._add("omitted", row, event, version, None, None, column, None, None,
                      pointer, None, None)  # fmt: skip

    def violations(
        self,
        rows: np.ndarray,
        event: str | None,
        version: int,
        fld: str,
        keyword: str,
        column: str | None,
        values: Sequence[str | None],
        *,
        forwarded: bool = False,
        omit: str | None = None,
    ) -> None:
        """Violations of ``rows``; ``forwarded`` when the enforcer still forwards the call
        (``count`` 0: ``violations: allow`` or ``omit``), ``omit`` the JSON pointer of the
        property it drops from it first (in ``pointer``)."""
        n = len(rows)
        c = self.cols
        c["kind"].extend(["violation"] * n)
        c["file"].extend([self.file] * n)
        c["row"].extend(rows.tolist())
        c["event"].extend([event] * n)
        c["version"].extend([version] * n)
        c["field"].extend([fld] * n)
        c["keyword"].extend([keyword] * n)
        c["column"].extend([column] * n)
        if not values:  # nothing to show, but the first rows are still samples
            values = [""] * min(n, SAMPLES_PER_BATCH)
        c["value"].extend([*values, *([None] * (n - len(values)))])
        c["count"].extend([0 if forwarded else None] * n)
        c["pointer"].extend([omit] * n)
        c["detail"].extend([None] * n)
        c["replacement"].extend([None] * n)

    def batch(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict(self.cols, schema=RESULT_SCHEMA)


#: Sample text kept for the report. Masking runs on this before the report cuts it to its
#: display width, so PII that crosses the display cut is still found whole.
SAMPLE_CHARS = 4096


def value_text(value: Any) -> str:
    text = orjson.dumps(to_json(value), default=str).decode()
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS]


def pluck(value: Any, parts: list[str]) -> Any:
    """The value at a field path (``products[].price`` -> the list of prices)."""
    for i, part in enumerate(parts):
        if part == "[]":
            if not isinstance(value, list):
                return value
            return [pluck(v, parts[i + 1 :]) for v in value]
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def top_property(fld: str) -> str:
    """The payload property a field is in (``products`` of ``products[].price``)."""
    parts = field_parts(fld)
    return parts[0] if parts and parts[0] != "[]" else ""


#: Where identify and group calls of some SDKs send their traits (the enforcer reads them
#: there when ``traits`` is absent), as the prefix of the scan's field names.
CONTEXT_TRAITS = "context.traits"


def prefixed(prefix: str, fld: str) -> str:
    """A payload field's name under ``prefix`` (``context.traits.email``)."""
    if not prefix:
        return fld
    return prefix if not fld else prefix + ("" if fld.startswith("[]") else ".") + fld


def omitted_pointer(compiled: CompiledRule, prefix: str, fld: str, keyword: str) -> str | None:
    """The JSON pointer of the payload property the enforcer drops for a violation at
    ``fld`` under ``violations: omit`` (None: nothing dropped; a missing required
    property has nothing to drop)."""
    if compiled.on_violation != "omit" or not fld:
        return None
    top = top_property(fld)
    if not top or (keyword == "required" and field_parts(fld) == (top,)):
        return None
    base = "/context/traits" if prefix else jp.join("", compiled.rule.payload_key or "properties")
    return jp.join(base, top)


def forwards_common(plan: BatchPlan, kind: str) -> bool:
    """Whether the enforcer forwards a call of ``kind`` breaking the common rule."""
    return plan.plan.controls.for_kind(kind).common_violations != "block"
