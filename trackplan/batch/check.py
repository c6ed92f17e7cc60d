"""The vectorised check of one record batch: a pure function with a fixed output schema.

:func:`check_batch` takes a :class:`~trackplan.batch.compiled.BatchPlan` (the plan's rules
compiled once into vectorised nodes) and one ``pyarrow.RecordBatch``, and returns a record
batch of
:data:`RESULT_SCHEMA`. Nothing else is read or written, so any engine that can call a
function on Arrow batches (this process, Dask, Spark's ``mapInArrow``) can run it, and
their outputs concatenate into the same report.

Output rows are of these kinds:

* ``violation``: one per failing (row, field, keyword), with the file, the row number
  (0-based, within the file; reports renumber it: :func:`trackplan.batch.engines.numbered`),
  the event and version, the field (``products[].price`` in the payload; ``messageId`` or
  ``context.ip`` for the call checks of the plan's common rule and of a rule's own
  ``call`` schema, reported under the row's event),
  the keyword, the source column and, for the first few per batch, the offending value
  as JSON text (masked later, before anyone sees it);
* ``violation`` with keyword ``PII``: one per finding of the enforcer's PII transform in a
  row (:mod:`trackplan.batch.pii`), with its JSON ``pointer``, the enforcer's message in
  ``detail`` (never the value), the value a cleaned copy holds there in ``replacement``
  (JSON; null: removed), and ``count`` 1 when it blocks the row (a ``reject``);
* ``checked``: one per (event, version) with the number of rows checked in ``count``;
* ``rows``: one per batch with its number of rows; ``unplanned``: rows of events the plan
  does not know, when the plan lets them through, and of call types it has no rule for
  (``screen``, ``alias``). Such rows are still checked against the common rule, as the
  enforcer does, under their event name (or call type) and version 0. Under
  ``unplanned_events: block`` an unplanned event's rows are blocked with one ``unplanned``
  violation and nothing else checked, as the enforcer blocks them before validating.

Under ``unplanned_properties: block`` a row whose payload holds a property its rule does
not list is blocked as the enforcer blocks it: one ``unplanned`` violation per such
property, and nothing else checked for that row; under ``omit`` they are dropped before
the payload is checked (:mod:`trackplan.batch.unplanned`). Segment's reserved consent event is
checked by the rule the enforcer gives it (:func:`trackplan.plan.reserved.reserved_rules`).
Identify and group traits sent under ``context.traits`` (no ``traits``; nested and NDJSON
input) are checked as the traits, reported as ``context.traits.<field>``, as the enforcer
reports them at ``/context/traits/...``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from trackplan import pointer as jp
from trackplan.batch.compiled import (
    CALL_KINDS,
    BatchPlan,
    CallCheck,
    CompiledRule,
    unplanned_label,
)
from trackplan.batch.envelope import ENVELOPE, envelope_check
from trackplan.batch.mapping import (
    Layout,
    call_struct,
    column_at,
    payload_struct,
)
from trackplan.batch.pii import RowPii, detect_rows, field_name
from trackplan.batch.rules import field_parts, row_failures, struct_child, to_json
from trackplan.batch.unplanned import UNPLANNED, UnplannedCheck, omitted, present
from trackplan.plan.model import PAYLOAD_KEY

__all__ = [
    "RESULT_SCHEMA", "BatchPlan", "check_batch", "SAMPLES_PER_BATCH", "JSON_COLUMN", "PII",
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

class _Out:
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


def _value_text(value: Any) -> str:
    text = orjson.dumps(to_json(value), default=str).decode()
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS]


def _pluck(value: Any, parts: list[str]) -> Any:
    """The value at a field path (``products[].price`` -> the list of prices)."""
    for i, part in enumerate(parts):
        if part == "[]":
            if not isinstance(value, list):
                return value
            return [_pluck(v, parts[i + 1 :]) for v in value]
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _field_parts(fld: str) -> list[str]:
    return list(field_parts(fld))


def _top(fld: str) -> str:
    """The payload property a field is in (``products`` of ``products[].price``)."""
    parts = field_parts(fld)
    return parts[0] if parts and parts[0] != "[]" else ""


def _sample_values(payload: pa.StructArray, fld: str, rows: np.ndarray) -> list[str | None]:
    """JSON text of the value at ``fld`` for the first few failing rows."""
    parts = _field_parts(fld)
    if not parts or parts[0] not in payload.type.names:
        return []
    column = struct_child(payload, parts[0])
    return [
        _value_text(_pluck(column[int(i)].as_py(), parts[1:])) for i in rows[:SAMPLES_PER_BATCH]
    ]


def _source_column(sources: Mapping[str, str], fld: str) -> str | None:
    top = _top(fld)
    return sources.get(top, top or None)


def _groups(batch: pa.RecordBatch, layout: Layout) -> Iterator[tuple[str, str | None, Any]]:
    """(call kind, event name, row mask or None for all rows) for each event in the batch."""
    kinds: pa.Array | None = None
    if layout.type_column is not None:
        kinds = pc.fill_null(batch.column(layout.type_column).cast(pa.string()), "track")
    events: pa.Array | None = None
    if layout.fixed_event is not None:
        events = None
    elif layout.event_column is not None:
        events = batch.column(layout.event_column)
        if pa.types.is_dictionary(events.type) and events.null_count == 0:
            used = pc.unique(events.indices)
            if len(used) == 1 and kinds is None:  # a table of one event: no casting
                yield "track", events.dictionary.cast(pa.string())[used[0].as_py()].as_py(), None
                return
        events = events.cast(pa.string())
    kind_values = pc.unique(kinds).to_pylist() if kinds is not None else ["track"]
    for kind in kind_values:
        kmask = pc.equal(kinds, kind) if kinds is not None and len(kind_values) > 1 else None
        if kind != "track" or events is None:
            name = layout.fixed_event if kind == "track" else None
            yield kind, name, kmask
            continue
        scope = events if kmask is None else pc.filter(events, kmask)
        names = pc.unique(scope).to_pylist()
        for name in names:
            if name is None:
                emask = pc.is_null(events)
            elif len(names) == 1 and kmask is None and events.null_count == 0:
                yield kind, name, None
                continue
            else:
                emask = pc.fill_null(pc.equal(events, name), False)
            yield kind, name, emask if kmask is None else pc.and_(emask, kmask)


def check_batch(
    plan: BatchPlan, batch: pa.RecordBatch, *, file: str, offset: int
) -> pa.RecordBatch:
    """Check every row of ``batch``; rows are numbered from ``offset`` within ``file``.

    Returns:
        A record batch of :data:`RESULT_SCHEMA`.
    """
    out = _Out(file)
    out.counted("rows", None, None, batch.num_rows)
    if JSON_COLUMN in batch.schema.names:
        _check_json_rows(plan, batch, offset, out)
        return out.batch()
    layout = plan.layout(batch.schema)
    versions: pa.Array | None = None
    if layout.version_path is not None:
        versions = column_at(batch, layout.version_path)
    index = np.arange(batch.num_rows, dtype=np.int64) + offset
    common = None
    if plan.common is not None:
        common = _CallFailures(plan.common, batch, offset)
    envelopes: dict[str, _EnvelopeFailures] = {}
    for kind, name, mask in _groups(batch, layout):
        sub, rows, vers = batch, index, versions
        if mask is not None:
            mask = pc.fill_null(mask, False)
            sub = batch.filter(mask)
            rows = index[mask.to_numpy(zero_copy_only=False)]
            vers = versions.filter(mask) if versions is not None else None
        if sub.num_rows == 0:
            continue
        env = None
        if kind in CALL_KINDS:
            env = envelopes.get(kind)
            if env is None:
                env = envelopes[kind] = _EnvelopeFailures(kind, batch, offset)
        # rows the enforcer blocks before its PII pass: an envelope failure, a common-rule
        # failure the controls block (batch positions; the rule's own are added per rule)
        before = _blocked_before(env, None if _forwards_common(plan, kind) else common)
        if kind == "track" and not name:
            # the enforcer checks a call without a name, or with an empty one, as an
            # unplanned one never blocked as such; its envelope check fails on the name
            keyword = "required" if name is None else "minLength"
            out.checked(name, 0, len(rows))
            out.violations(rows, name, 0, "event", keyword, layout.event_column, [])
            keep = _block_unplanned(out, plan.no_rule.get(kind), sub, rows, layout, kind, name, 0)
            checked: list[tuple[str | None, int, np.ndarray]] = [
                (name, 0, rows if keep is None else rows[keep])
            ]
        else:
            checked = _check_group(plan, sub, rows, kind, name, vers, layout, out,
                                   _Before(before, offset))  # fmt: skip
        if common is not None:
            forwarded = _forwards_common(plan, kind)
            for event, version, grows in checked:
                common.emit(out, grows, event, version, forwarded=forwarded)
        if env is not None:
            for event, version, grows in checked:
                env.emit(out, grows, event, version)
    return out.batch()


def _blocked_before(
    env: _EnvelopeFailures | None, common: _CallFailures | None
) -> np.ndarray | None:
    """Batch positions the envelope, or the common rule (given when it blocks), fails."""
    masks = [f for _, f in env.fails] if env is not None else []
    masks += [f for _, _, f in common.fails] if common is not None else []
    return np.logical_or.reduce(masks) if masks else None


class _Before:
    """Rows blocked before the PII pass (batch positions), looked up by row number."""

    def __init__(self, mask: np.ndarray | None, offset: int) -> None:
        self.mask, self.offset = mask, offset

    def skip(self, numbers: np.ndarray, *more: np.ndarray | None) -> np.ndarray | None:
        """The mask of ``numbers`` (row numbers in the file) blocked before the PII pass,
        or'ed with ``more`` masks over the same rows (None: nothing to skip)."""
        out = None if self.mask is None else self.mask[numbers - self.offset]
        for m in more:
            if m is not None:
                out = m.copy() if out is None else out | m
        return out


class _EnvelopeFailures:
    """The envelope's failures of one call type over a whole batch, handed out per event
    group (the rows the enforcer validates: not those blocked before validation)."""

    def __init__(self, kind: str, batch: pa.RecordBatch, offset: int) -> None:
        self.offset = offset
        self.fails, self.sources = envelope_check(kind).failures(batch)

    def emit(self, out: _Out, rows: np.ndarray, event: str | None, version: int) -> None:
        local = rows - self.offset
        for fld, failing in self.fails:
            hit = rows[failing[local]]
            if len(hit):
                out.violations(hit, event, version, fld, ENVELOPE, self.sources.get(fld), [])


class _CallFailures:
    """A call check's failures over a whole batch, handed out per event group."""

    def __init__(self, check: CallCheck, batch: pa.RecordBatch, offset: int) -> None:
        self.offset = offset
        self.arr, self.sources = call_struct(batch, check.schema, check.defs)
        self.fails: list[tuple[str, str, np.ndarray]] = []
        for fld, keyword, mask in check.node.evaluate(self.arr):
            failing = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
            if failing.any():
                self.fails.append((fld, keyword, failing))

    def column(self, fld: str) -> str | None:
        path = fld.replace("[]", "")
        while path:
            if path in self.sources:
                return self.sources[path]
            path = path.rpartition(".")[0]
        return _source_column(self.sources, fld)

    def emit(
        self,
        out: _Out,
        rows: np.ndarray,
        event: str | None,
        version: int,
        *,
        numbers: np.ndarray | None = None,
        forwarded: bool = False,
    ) -> None:
        """Violations of the rows ``rows`` (numbered in the file) under their event.

        With ``numbers``, ``rows`` are positions in the checked batch and ``numbers``
        their row numbers in the file.
        """
        if not self.fails:
            return
        local = rows - self.offset
        for fld, keyword, failing in self.fails:
            pick = failing[local]
            hit = local[pick]
            if not len(hit):
                continue
            samples = [] if keyword == "required" else _sample_values(self.arr, fld, hit)
            numbered = hit + self.offset if numbers is None else numbers[pick]
            out.violations(numbered, event, version, fld, keyword, self.column(fld), samples,
                           forwarded=forwarded)


def _check_group(
    plan: BatchPlan,
    sub: pa.RecordBatch,
    rows: np.ndarray,
    kind: str,
    name: str | None,
    versions: pa.Array | None,
    layout: Layout,
    out: _Out,
    before: _Before,
) -> list[tuple[str | None, int, np.ndarray]]:
    """Check one event's rows by version; returns the (event, version, rows) checked.
    ``before``: rows the enforcer blocks before its PII pass (no PII reported there)."""
    checked: list[tuple[str | None, int, np.ndarray]] = []
    if versions is not None and pa.types.is_integer(versions.type):
        wanted = [v for v in pc.unique(versions).to_pylist()]
    else:
        wanted = [None]
    seen: set[tuple[str, str | None, int]] = set()
    for version in wanted:
        compiled = plan.select(kind, name, version)
        if compiled is None:
            if kind == "track" and plan.block_unplanned:
                out.checked(name, 0, len(rows))
                out.violations(rows, name, 0, "event", "unplanned", layout.event_column, [])
                # blocked as unplanned before anything is validated, as the enforcer does
            else:
                label = unplanned_label(kind, name)
                out.counted("unplanned", label, 0, len(rows))
                check = plan.no_rule.get(kind)
                keep = None
                if kind in CALL_KINDS:  # the envelope applies to every call
                    # let through, but the common rule still applies, as the enforcer's
                    # rules for unplanned events and for call types without a rule check it
                    # (after blocking those with properties, when the controls say so)
                    out.checked(label, 0, len(rows))
                    keep = _block_unplanned(out, check, sub, rows, layout, kind, label, 0)
                    checked.append((label, 0, rows if keep is None else rows[keep]))
                pii = plan.no_rule_pii.get(kind)
                if pii is not None:  # the enforcer's transform of calls without a rule
                    kept, krows = (sub, rows) if keep is None else (
                        sub.filter(pa.array(keep)), rows[keep])  # fmt: skip
                    pkey = PAYLOAD_KEY.get(kind)
                    payload, sources = (None, {}) if pkey is None else payload_struct(
                        kept, layout, [], pkey)  # fmt: skip
                    omit = None
                    if payload is not None and plan.no_rule_omit.get(kind):
                        omit = {f.name: np.ones(len(payload), bool) for f in payload.type}
                    _emit_pii(out, pii, kept, krows, layout, pkey, payload, sources, label, 0,
                              skip=before.skip(krows), omitted=omit)  # fmt: skip
            return checked
        key = (compiled.rule.kind, compiled.rule.name, compiled.rule.version)
        if key in seen:
            continue
        seen.add(key)
        # every version value that selects this rule (unknown ones select the oldest)
        same = [v for v in wanted if plan.select(kind, name, v) is compiled]
        g, grow = sub, rows
        if len(same) != len(wanted) and versions is not None:
            vm = pc.is_in(versions, value_set=pa.array([v for v in same if v is not None]))
            if None in same:
                vm = pc.or_(pc.fill_null(vm, False), pc.is_null(versions))
            vm = pc.fill_null(vm, False)
            g, grow = sub.filter(vm), rows[vm.to_numpy(zero_copy_only=False)]
        label_event = compiled.rule.name or compiled.rule.kind
        version_no = compiled.rule.version
        out.checked(label_event, version_no, g.num_rows)
        in_context = _context_traits(g) if compiled.rule.payload_key == "traits" else None
        if in_context is None:
            grow = _check_rule_rows(plan, compiled, g, grow, layout, kind, out, False, before)
        else:  # traits sent under context.traits: checked there, as the enforcer does
            kept = [
                _check_rule_rows(plan, compiled, g.filter(pa.array(m)), grow[m], layout, kind,
                                 out, ctx, before)
                for m, ctx in ((~in_context, False), (in_context, True)) if m.any()
            ]  # fmt: skip
            grow = np.sort(np.concatenate(kept))
        checked.append((label_event, version_no, grow))
    return checked


#: Where identify and group calls of some SDKs send their traits (the enforcer reads them
#: there when ``traits`` is absent), as the prefix of the scan's field names.
CONTEXT_TRAITS = "context.traits"


def _context_traits(batch: pa.RecordBatch) -> np.ndarray | None:
    """The rows (nested layout) without ``traits`` but with a ``context.traits`` object,
    or None when there are none."""
    names = batch.schema.names
    if "context" not in names:
        return None
    context_type = batch.schema.field("context").type
    if not pa.types.is_struct(context_type) or context_type.get_field_index("traits") < 0:
        return None
    if not pa.types.is_struct(context_type.field("traits").type):
        return None
    context = batch.column("context")
    mask = pc.and_(pc.is_valid(context), pc.is_valid(pc.struct_field(context, "traits")))
    if "traits" in names:
        mask = pc.and_(mask, pc.is_null(batch.column("traits")))
    rows: np.ndarray = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return rows if rows.any() else None


def _prefixed(prefix: str, fld: str) -> str:
    """A payload field's name under ``prefix`` (``context.traits.email``)."""
    if not prefix:
        return fld
    return prefix if not fld else prefix + ("" if fld.startswith("[]") else ".") + fld


def _omitted_pointer(compiled: CompiledRule, prefix: str, fld: str, keyword: str) -> str | None:
    """The JSON pointer of the payload property the enforcer drops for a violation at
    ``fld`` under ``violations: omit`` (None: nothing dropped; a missing required
    property has nothing to drop)."""
    if compiled.on_violation != "omit" or not fld:
        return None
    top = _top(fld)
    if not top or (keyword == "required" and field_parts(fld) == (top,)):
        return None
    base = "/context/traits" if prefix else jp.join("", compiled.rule.payload_key or "properties")
    return jp.join(base, top)


def _check_rule_rows(
    plan: BatchPlan,
    compiled: CompiledRule,
    g: pa.RecordBatch,
    grow: np.ndarray,
    layout: Layout,
    kind: str,
    out: _Out,
    in_context: bool,
    before: _Before,
) -> np.ndarray:
    """Check rows of one rule (their payload under ``context.traits`` when ``in_context``);
    returns the row numbers left for the common rule (those not blocked)."""
    label_event = compiled.rule.name or compiled.rule.kind
    version_no = compiled.rule.version
    prefix = CONTEXT_TRAITS if in_context else ""
    if in_context:
        arr = pc.struct_field(g.column("context"), "traits")
        payload = pa.StructArray.from_arrays(  # parent validity dropped, as payload_struct
            [pc.struct_field(arr, i) for i in range(arr.type.num_fields)], fields=list(arr.type)
        )
        sources = {f.name: f"{CONTEXT_TRAITS}.{f.name}" for f in arr.type}
    else:
        payload, sources = payload_struct(g, layout, compiled.properties, compiled.rule.payload_key)
        key = compiled.rule.payload_key
        if compiled.payload_required and key is not None and layout.payload_column is not None:
            # a nested row can lack its payload; a flat table cannot say so (README)
            if key in g.schema.names:
                absent = pc.is_null(g.column(key)).to_numpy(zero_copy_only=False)
            else:
                absent = np.ones(g.num_rows, dtype=bool)
            if absent.any():
                out.violations(grow[absent], label_event, version_no, key, "required", key, [],
                               forwarded=compiled.on_violation != "block")
    if compiled.unplanned is not None and not compiled.unplanned.block:
        base = "/context/traits" if in_context else jp.join("", compiled.rule.payload_key or "")
        hits, _ = present(compiled.unplanned, g, layout, kind, (payload, sources),
                          own=in_context)  # fmt: skip
        for name, column, holding in hits:
            out.dropped(grow[holding], label_event, version_no, column, jp.join(base, name))
        payload = omitted(compiled.unplanned, payload)  # dropped before validation
    elif compiled.unplanned is not None:
        keep = _block_unplanned(out, compiled.unplanned, g, grow, layout, kind, label_event,
                                version_no, (payload, sources), prefix=prefix)  # fmt: skip
        if keep is not None:  # blocked rows: nothing else of theirs is checked
            mask = pa.array(keep)
            g, grow, payload = g.filter(mask), grow[keep], payload.filter(mask)
    blocking = np.zeros(g.num_rows, dtype=bool) if compiled.on_violation == "block" else None
    offending: dict[str, np.ndarray] = {}  # under omit: property -> rows it is dropped from
    no_object = np.zeros(g.num_rows, dtype=bool)  # a payload that is no object: blocked
    for fld, keyword, fail in compiled.node.evaluate(payload):
        idx = np.flatnonzero(fail.to_numpy(zero_copy_only=False))
        if not len(idx):
            continue
        if blocking is not None:
            blocking[idx] = True
        elif compiled.on_violation == "omit" and fld:
            top = _top(fld)
            rows = offending.setdefault(top, np.zeros(g.num_rows, dtype=bool))
            rows[idx] = True
        out.violations(
            grow[idx],
            label_event,
            version_no,
            _prefixed(prefix, fld),
            keyword,
            _source_column(sources, fld),
            [] if keyword == "required" else _sample_values(payload, fld, idx),
            forwarded=blocking is None,
            omit=_omitted_pointer(compiled, prefix, fld, keyword),
        )
        key = compiled.rule.payload_key
        if not fld and keyword == "type" and not in_context and key is not None:
            # a payload that is no object breaks the envelope too, as the enforcer reports
            out.violations(grow[idx], label_event, version_no, key, ENVELOPE, key, [])
            no_object[idx] = True
    own_blocks: np.ndarray | None = None
    if compiled.call is not None:
        own = _CallFailures(compiled.call, g, 0)
        own.emit(out, np.arange(g.num_rows), label_event, version_no, numbers=grow,
                 forwarded=compiled.on_violation != "block")
        if blocking is not None and own.fails:
            own_blocks = np.logical_or.reduce([f for _, _, f in own.fails])
    if compiled.pii is not None:  # offending properties: dropped first, as the enforcer does
        key = compiled.rule.payload_key
        skip = before.skip(grow, blocking, own_blocks, no_object if no_object.any() else None)
        _emit_pii(out, compiled.pii, g, grow, layout, key, payload, sources, label_event,
                  version_no, in_context=in_context, skip=skip, omitted=offending)  # fmt: skip
    return grow


def _emit_pii(
    out: _Out,
    pii: RowPii,
    g: pa.RecordBatch,
    grow: np.ndarray,
    layout: Layout,
    key: str | None,
    payload: pa.StructArray | None,
    sources: Mapping[str, str],
    event: str | None,
    version: int,
    *,
    in_context: bool = False,
    skip: np.ndarray | None = None,
    omitted: Mapping[str, np.ndarray] | None = None,
) -> None:
    """The enforcer's PII findings in the rows ``g`` (numbered ``grow``) as violations."""
    nested = layout.payload_column is not None
    located = detect_rows(pii, g, nested=nested, payload_key=key, payload=payload,
                          payload_sources=sources, in_context=in_context, skip=skip,
                          omitted=omitted)  # fmt: skip
    for found in located:
        f = found.finding
        out.pii(int(grow[found.position]), event, version, found.field, found.column,
                f.pointer, f.detail, f.replacement, f.blocked)  # fmt: skip


def _json_pii(
    out: _Out, pii: RowPii | None, event: dict[str, Any], row: np.ndarray, label: str | None,
    version: int, key: str | None, in_context: bool = False,
) -> None:  # fmt: skip
    """:func:`_emit_pii` for one row kept as JSON (the event as the enforcer sees it)."""
    if pii is None:
        return
    for f in pii.run([event]):
        fld = field_name(f.parts, key, in_context)
        column = ".".join(str(p) for p in f.parts[:2])
        out.pii(int(row[0]), label, version, fld, column, f.pointer, f.detail,
                f.replacement, f.blocked)  # fmt: skip


def _block_unplanned(
    out: _Out,
    check: UnplannedCheck | None,
    sub: pa.RecordBatch,
    rows: np.ndarray,
    layout: Layout,
    kind: str,
    event: str | None,
    version: int,
    payload: tuple[pa.StructArray, dict[str, str]] | None = None,
    *,
    prefix: str = "",
) -> np.ndarray | None:
    """Report the rows of ``sub`` that ``unplanned_properties: block`` blocks: one violation
    per unplanned property present (named under ``prefix``, the payload's own place when
    it is not the call type's column). Returns the mask of the rows left to check, or None
    when none is blocked."""
    if check is None:
        return None
    hits, keep = present(check, sub, layout, kind, payload, own=bool(prefix))
    for name, column, holding in hits:
        # no sample: an unplanned property has no x-pii to mask it by
        named = _prefixed(prefix, name)
        out.violations(rows[holding], event, version, named, UNPLANNED, column, [])
    return keep


def _json_blocked(
    out: _Out,
    check: UnplannedCheck | None,
    payload: Any,
    row: np.ndarray,
    event: str | None,
    version: int,
    prefix: str = "",
) -> bool:
    """The per-row form of :func:`_block_unplanned`: True when the row is blocked."""
    if check is None or not check.block or type(payload) is not dict or not payload:
        return False
    names = check.names(payload)
    for name in names:
        named = _prefixed(prefix, name)
        out.violations(row, event, version, named, UNPLANNED, named, [])
    return bool(names)


def _json_failures(
    out: _Out,
    validator: Any,
    doc: Any,
    row: np.ndarray,
    event: str | None,
    version: int,
    prefix: str = "",
    *,
    forwarded: bool = False,
    compiled: CompiledRule | None = None,
) -> list[str]:
    """The per-row engine's failures of ``doc`` (a payload or a whole call, found under
    ``prefix``) as violations; the fields failing."""
    if validator is None or validator.is_valid(doc):
        return []
    failures = sorted(row_failures(validator, doc))
    for fld, keyword in failures:
        top = _top(fld)
        value = _pluck(doc, _field_parts(fld))
        sample = [_value_text(value)] if value is not None else []
        named = _prefixed(prefix, fld)
        omit = None if compiled is None else _omitted_pointer(compiled, prefix, fld, keyword)
        out.violations(row, event, version, named, keyword, _prefixed(prefix, top), sample,
                       forwarded=forwarded, omit=omit)
    return [fld for fld, _ in failures]


def _json_envelope(
    out: _Out, kind: str, event: dict[str, Any], row: np.ndarray, label: str | None,
    version: int,
) -> bool:
    """The per-row form of the envelope check (see :mod:`trackplan.batch.envelope`);
    True when the row fails it (the enforcer blocks it)."""
    if kind not in CALL_KINDS:
        return False
    failing = envelope_check(kind).row(event)
    for fld in failing:
        out.violations(row, label, version, fld, ENVELOPE, fld or None, [])
    return bool(failing)


def _forwards_common(plan: BatchPlan, kind: str) -> bool:
    """Whether the enforcer forwards a call of ``kind`` breaking the common rule."""
    return plan.plan.controls.for_kind(kind).common_violations != "block"


def _check_json_rows(plan: BatchPlan, batch: pa.RecordBatch, offset: int, out: _Out) -> None:
    """Rows kept as JSON text: the per-row engine, one event at a time."""
    common = plan.common.validator if plan.common is not None else None
    counts: dict[tuple[str | None, int], int] = {}
    for i, text in enumerate(batch.column(JSON_COLUMN).to_pylist()):
        event = orjson.loads(text) if text is not None else {}
        if not isinstance(event, dict):
            event = {}
        kind = str(event.get("type") or "track")
        name = event.get("event") if kind == "track" else None
        row = np.array([offset + i], dtype=np.int64)
        if kind == "track" and (not isinstance(name, str) or not name):
            nameless = name if name == "" else None  # as the typed path: no name, or ""
            keyword = "required" if nameless is None else "minLength"
            out.checked(nameless, 0, 1)
            out.violations(row, nameless, 0, "event", keyword, "event", [])
            check = plan.no_rule.get(kind)
            if not _json_blocked(out, check, event.get("properties"), row, nameless, 0):
                _json_failures(out, common, event, row, nameless, 0,
                               forwarded=_forwards_common(plan, kind))
                _json_envelope(out, kind, event, row, nameless, 0)
            continue
        ctx = event.get("context")
        proto = ctx.get("protocols") if isinstance(ctx, dict) else None
        version = proto.get("event_version") if isinstance(proto, dict) else None
        compiled = plan.select(kind, name, version if isinstance(version, int) else None)
        if compiled is None:
            if kind == "track" and plan.block_unplanned:
                counts[(str(name), 0)] = counts.get((str(name), 0), 0) + 1
                out.violations(row, name, 0, "event", "unplanned", "event", [])  # nothing else
            else:
                label = unplanned_label(kind, name)
                out.counted("unplanned", label, 0, 1)
                check = plan.no_rule.get(kind)
                blocked = False
                if kind in CALL_KINDS:  # the envelope applies to every call
                    counts[(label, 0)] = counts.get((label, 0), 0) + 1
                    payload = event.get(PAYLOAD_KEY.get(kind) or "")
                    blocked = _json_blocked(out, check, payload, row, label, 0)
                    if not blocked:  # the envelope, and the common rule as controlled, block
                        forwards = _forwards_common(plan, kind)
                        broken = _json_failures(out, common, event, row, label, 0,
                                                forwarded=forwards)  # fmt: skip
                        failing = _json_envelope(out, kind, event, row, label, 0)
                        blocked = failing or bool(broken and not forwards)
                if not blocked:
                    pkey = PAYLOAD_KEY.get(kind)
                    if pkey is not None and plan.no_rule_omit.get(kind) and pkey in event:
                        payload = event[pkey]
                        if type(payload) is dict and payload:
                            event = {**event, pkey: {}}  # every property omitted first
                    _json_pii(out, plan.no_rule_pii.get(kind), event, row, label, 0, pkey)
            continue
        label = compiled.rule.name or compiled.rule.kind
        key = (label, compiled.rule.version)
        counts[key] = counts.get(key, 0) + 1
        payload = event.get(compiled.rule.payload_key or "properties")  # JSON as sent
        prefix = ""
        if (compiled.rule.payload_key == "traits" and "traits" not in event
                and isinstance(ctx, dict) and isinstance(ctx.get("traits"), dict)):
            payload, prefix = ctx["traits"], CONTEXT_TRAITS  # as the enforcer reads them
        version_no = compiled.rule.version
        if _json_blocked(out, compiled.unplanned, payload, row, label, version_no, prefix):
            continue
        if payload is None and (compiled.rule.payload_key or "properties") not in event:
            if compiled.payload_required and not prefix:
                key_name = compiled.rule.payload_key or "properties"
                out.violations(row, label, version_no, key_name, "required", key_name, [],
                               forwarded=compiled.on_violation != "block")
            payload = {}  # absent: an empty object, as Segment treats it (a null breaks type)
        elif compiled.unplanned is not None and type(payload) is dict:
            dropped = set(compiled.unplanned.names(payload))  # omitted before validation
            payload = {k: v for k, v in payload.items() if k not in dropped}
            base = "/context/traits" if prefix else jp.join("", compiled.rule.payload_key or "")
            for name in sorted(dropped):
                out.dropped(row, label, version_no, _prefixed(prefix, name), jp.join(base, name))
            if dropped and not prefix:
                event = {**event, compiled.rule.payload_key or "properties": payload}
        own_call = compiled.call.validator if compiled.call is not None else None
        forwards = compiled.on_violation != "block"
        failed = _json_failures(out, compiled.validator, payload, row, label, version_no, prefix,
                                forwarded=forwards, compiled=compiled)  # fmt: skip
        common_forwards = _forwards_common(plan, kind)
        broken = _json_failures(out, common, event, row, label, version_no,
                                forwarded=common_forwards)  # fmt: skip
        own = _json_failures(out, own_call, event, row, label, version_no, forwarded=forwards)
        # the envelope, and the rest as controlled, block before the PII pass
        blocked = _json_envelope(out, kind, event, row, label, version_no)
        blocked = blocked or bool(broken and not common_forwards)
        blocked = blocked or bool((failed or own) and not forwards)
        if failed and compiled.on_violation == "omit" and type(payload) is dict and not prefix:
            tops = {_top(f) for f in failed}
            payload = {k: v for k, v in payload.items() if k not in tops}
            event = {**event, compiled.rule.payload_key or "properties": payload}
        if not blocked:
            _json_pii(out, compiled.pii, event, row, label, version_no,
                      compiled.rule.payload_key, bool(prefix))  # fmt: skip
    for (counted, version), count in counts.items():
        out.checked(counted, version, count)
