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

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
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
from trackplan.batch.jsonrows import check_json_rows
from trackplan.batch.mapping import (
    Layout,
    call_struct,
    column_at,
    payload_struct,
)
from trackplan.batch.pii import RowPii, detect_rows
from trackplan.batch.result import (
    CONTEXT_TRAITS,
    JSON_COLUMN,
    PII,
    RESULT_SCHEMA,
    SAMPLES_PER_BATCH,
    Out,
    forwards_common,
    omitted_pointer,
    pluck,
    prefixed,
    top_property,
    value_text,
)
from trackplan.batch.rules import field_parts, struct_child
from trackplan.batch.unplanned import UNPLANNED, UnplannedCheck, omitted, present
from trackplan.plan.model import PAYLOAD_KEY

__all__ = [
    "RESULT_SCHEMA", "BatchPlan", "check_batch", "SAMPLES_PER_BATCH", "JSON_COLUMN", "PII",
]  # fmt: skip

def _sample_values(payload: pa.StructArray, fld: str, rows: np.ndarray) -> list[str | None]:
    """JSON text of the value at ``fld`` for the first few failing rows."""
    parts = list(field_parts(fld))
    if not parts or parts[0] not in payload.type.names:
        return []
    column = struct_child(payload, parts[0])
    return [
        value_text(pluck(column[int(i)].as_py(), parts[1:])) for i in rows[:SAMPLES_PER_BATCH]
    ]


def _source_column(sources: Mapping[str, str], fld: str) -> str | None:
    top = top_property(fld)
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
    out = Out(file)
    out.counted("rows", None, None, batch.num_rows)
    if JSON_COLUMN in batch.schema.names:
        check_json_rows(plan, batch, offset, out)
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
        before = _blocked_before(env, None if forwards_common(plan, kind) else common)
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
            forwarded = forwards_common(plan, kind)
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

    def emit(self, out: Out, rows: np.ndarray, event: str | None, version: int) -> None:
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
        out: Out,
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
    out: Out,
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


def _check_rule_rows(
    plan: BatchPlan,
    compiled: CompiledRule,
    g: pa.RecordBatch,
    grow: np.ndarray,
    layout: Layout,
    kind: str,
    out: Out,
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
            top = top_property(fld)
            rows = offending.setdefault(top, np.zeros(g.num_rows, dtype=bool))
            rows[idx] = True
        out.violations(
            grow[idx],
            label_event,
            version_no,
            prefixed(prefix, fld),
            keyword,
            _source_column(sources, fld),
            [] if keyword == "required" else _sample_values(payload, fld, idx),
            forwarded=blocking is None,
            omit=omitted_pointer(compiled, prefix, fld, keyword),
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
    out: Out,
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


def _block_unplanned(
    out: Out,
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
        named = prefixed(prefix, name)
        out.violations(rows[holding], event, version, named, UNPLANNED, column, [])
    return keep


