"""The vectorised check of one record batch: a pure function with a fixed output schema.

:func:`check_batch` takes a :class:`BatchPlan` (the plan's rules compiled once into
vectorised nodes) and one ``pyarrow.RecordBatch``, and returns a record batch of
:data:`RESULT_SCHEMA`. Nothing else is read or written, so any engine that can call a
function on Arrow batches (this process, Dask, Spark's ``mapInArrow``) can run it, and
their outputs concatenate into the same report.

Output rows are of these kinds:

* ``violation``: one per failing (row, field, keyword), with the file, the row number
  (0-based, within the file), the event and version, the field (``products[].price`` in
  the payload; ``messageId`` or ``context.ip`` for the call checks of the plan's common
  rule and of a rule's own ``call`` schema, reported under the row's event),
  the keyword, the source column and, for the first few per batch, the offending value
  as JSON text (masked later, before anyone sees it);
* ``checked``: one per (event, version) with the number of rows checked in ``count``;
* ``rows``: one per batch with its number of rows; ``unplanned``: rows of events the plan
  does not know, when the plan lets them through, and of call types it has no rule for
  (``screen``, ``alias``). Such rows are still checked against the common rule, as the
  enforcer does, under their event name (or call type) and version 0.

Under ``unplanned_properties: block`` a row whose payload holds a property its rule does
not list is blocked as the enforcer blocks it: one ``unplanned`` violation per such
property, and nothing else checked for that row; under ``omit`` they are dropped before
the payload is checked (:mod:`trackplan.batch.unplanned`). Segment's reserved consent event is
checked by the rule the enforcer gives it (:func:`trackplan.privacy.consent.reserved_rules`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from trackplan.batch.mapping import (
    Layout,
    LayoutOptions,
    call_struct,
    column_at,
    infer_layout,
    payload_struct,
    snake_case,
)
from trackplan.batch.rules import Node, compile_payload, row_failures, to_json
from trackplan.batch.unplanned import UNPLANNED, UnplannedCheck, omitted, present
from trackplan.engine.enforcer import make_validator
from trackplan.plan.model import PAYLOAD_KEY, CallControls, Plan, Rule
from trackplan.privacy.consent import reserved_rules

__all__ = ["RESULT_SCHEMA", "BatchPlan", "check_batch", "SAMPLES_PER_BATCH", "JSON_COLUMN"]

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
    ]
)

#: Offending values kept per (field, keyword) and batch, for report samples.
SAMPLES_PER_BATCH = 3

#: Column of raw JSON rows, for NDJSON chunks whose values do not fit one Arrow type.
JSON_COLUMN = "__json__"

_KIND_FOR_TYPE = {"track": "track", "page": "page", "screen": "screen"}

#: Segment's call types: rows of these without a rule are still checked by the common rule.
CALL_KINDS = frozenset({"track", "identify", "group", "page", "screen", "alias"})


def _unplanned_label(kind: str, name: str | None) -> str | None:
    """What a row without a rule is reported under: its event name, or its call type."""
    return name if kind == "track" else kind


@dataclass
class CallCheck:
    """A call schema (the common rule's, or a rule's own ``call``) compiled for batches.

    It checks the envelope and context (``messageId``, ``context.ip``) of every row the
    rule applies to; violations are named by call path and reported under the row's
    event, like its payload's.
    """

    schema: Any
    node: Node
    validator: Any

    @classmethod
    def build(cls, schema: Any, defs: Mapping[str, Any]) -> CallCheck | None:
        """None when there is nothing to check (no call schema, or ``true``)."""
        if schema is None or schema is True or schema == {}:
            return None
        whole = {**schema, "definitions": dict(defs)} if isinstance(schema, Mapping) else schema
        return cls(schema, Node(schema, "", defs), make_validator(whole))


@dataclass
class CompiledRule:
    """One rule with its vectorised node and its per-row validator (for JSON rows)."""

    rule: Rule
    node: Node
    validator: Any
    call: CallCheck | None = None
    unplanned: UnplannedCheck | None = None

    @property
    def properties(self) -> list[str]:
        payload = self.rule.payload
        props = payload.get("properties") if isinstance(payload, Mapping) else None
        return list(props) if isinstance(props, Mapping) else []


@dataclass
class BatchPlan:
    """A plan compiled for batch checks; build once, reuse for every batch.

    Example:
        >>> bp = BatchPlan.build(load_plan("plans/ecommerce"))      # doctest: +SKIP
        >>> check_batch(bp, batch, file="a.parquet", offset=0)      # doctest: +SKIP
    """

    plan: Plan
    layout_options: LayoutOptions = field(default_factory=LayoutOptions)
    rules: dict[tuple[str, str | None, int], CompiledRule] = field(default_factory=dict)
    common: CallCheck | None = None
    block_unplanned: bool = False
    #: call type -> the unplanned-property check of its calls without a rule
    no_rule: dict[str, UnplannedCheck | None] = field(default_factory=dict)
    _layouts: dict[pa.Schema, Layout] = field(default_factory=dict)
    _names: frozenset[str] = frozenset()
    _aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, plan: Plan, options: LayoutOptions | None = None) -> BatchPlan:
        """Compile every track, page, screen, identify and group rule of ``plan``."""
        out = cls(plan, options or LayoutOptions())
        controls = plan.controls
        for rule in plan.rules:
            if rule.kind == "common":
                out.common = CallCheck.build(rule.call, plan.definitions)
                continue
            out._add(rule, controls.for_kind(rule.kind))
        # Segment's consent event: the enforcer accepts it in every plan, by these rules
        reserved = reserved_rules(plan)
        for rule, reserved_controls in reserved:
            out._add(rule, reserved_controls)
        out.block_unplanned = controls.track.unplanned_events == "block"
        names = [*plan.event_names, *(str(r.name) for r, _ in reserved)]
        out._names = frozenset(names)
        # warehouse tables name events snake_cased (order_completed)
        out._aliases = {snake_case(n): n for n in names}
        for kind in sorted(CALL_KINDS):
            key = PAYLOAD_KEY.get(kind)
            check = None if key is None else UnplannedCheck.build(
                None, controls.for_kind(kind), f"{plan.source} [{kind}]"
            )
            # no payload rule to validate: only blocking matters
            out.no_rule[kind] = check if check is not None and check.block else None
        return out

    def _add(self, rule: Rule, controls: CallControls) -> None:
        """Compile ``rule``, run under ``controls`` (replacing a rule of the same key)."""
        defs = self.plan.definitions
        payload = rule.payload if rule.payload is not None else True
        schema: Any = payload
        if isinstance(payload, Mapping):
            schema = {**payload, "definitions": dict(defs)}
        self.rules[(rule.kind, rule.name, rule.version)] = CompiledRule(
            rule,
            compile_payload(payload, defs),
            make_validator(schema),
            CallCheck.build(rule.call, defs),
            UnplannedCheck.build(rule.payload, controls, f"{rule.source} [{rule.label}]"),
        )

    @property
    def checks_unplanned(self) -> bool:
        """Whether any rows may be blocked for unplanned properties."""
        rules = (c.unplanned for c in self.rules.values())
        return any(c is not None and c.block for c in rules) or any(
            c is not None for c in self.no_rule.values()
        )

    def layout(self, schema: pa.Schema) -> Layout:
        """The layout of batches with ``schema`` (inferred once per schema)."""
        found = self._layouts.get(schema)
        if found is None:
            found = self._layouts[schema] = infer_layout(schema, self.layout_options)
        return found

    def needed_columns(self, schema: pa.Schema) -> list[str] | None:
        """The columns a check reads from files with ``schema`` (None: all of them).

        Reading only these makes a scan cheaper than reading the whole file. Flat tables
        are read whole when a payload closes its properties (``additionalProperties:
        false``): every column may then be a violation.
        """
        layout = self.layout(schema)
        wanted = {layout.event_column, layout.type_column}
        if layout.version_path is not None:
            wanted.add(layout.version_path[0])
        if layout.payload_column is not None:
            wanted |= {"properties", "traits"}
        else:
            if self.checks_unplanned:
                return None  # any column may hold an unplanned property
            declared: list[str] = []
            for compiled in self.rules.values():
                payload = compiled.rule.payload
                if payload is None or payload is True:
                    continue  # nothing of the payload to read
                if (
                    not isinstance(payload, Mapping)
                    or payload.get("additionalProperties") is not None
                ):
                    return None
                declared.extend(compiled.properties)
            mapping = layout.payload_columns(schema, list(dict.fromkeys(declared)))
            wanted |= {mapping[p] for p in declared if p in mapping}
        empty = pa.RecordBatch.from_pylist([], schema=schema)
        for call in self.call_checks():
            wanted |= set(call_struct(empty, call.schema, self.plan.definitions)[1].values())
        return [name for name in schema.names if name in wanted]

    def call_checks(self) -> list[CallCheck]:
        """The common rule's call check and every rule's own."""
        found = [self.common] + [c.call for c in self.rules.values()]
        return [c for c in found if c is not None]

    def per_row_rules(self) -> dict[str, list[str]]:
        """Rule label -> fields (and why) that run on the per-row engine."""
        out: dict[str, list[str]] = {}
        if self.common is not None:
            fields = [f"{f} ({why})" for f, why in self.common.node.per_row()]
            if fields:
                out["common"] = fields
        for compiled in self.rules.values():
            nodes = [compiled.node] + ([compiled.call.node] if compiled.call else [])
            fields = [f"{f} ({why})" for node in nodes for f, why in node.per_row()]
            if fields:
                out[compiled.rule.label] = fields
        return out

    def select(self, kind: str, event: str | None, version: int | None) -> CompiledRule | None:
        """The rule for a row: the event's version if planned, else its oldest version."""
        name = event if kind == "track" else None
        if kind == "track" and name is not None and name not in self._names:
            name = self._aliases.get(name, name)
        if kind == "track":
            versions = [r for (k, n, _), r in self.rules.items() if k == "track" and n == name]
        else:
            versions = [r for (k, _, _), r in self.rules.items() if k == kind]
        if not versions:
            return None
        for compiled in versions:
            if compiled.rule.version == version:
                return compiled
        return min(versions, key=lambda c: c.rule.version)


class _Out:
    """Columns of the result batch, appended to as checks run."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.cols: dict[str, list[Any]] = {f.name: [] for f in RESULT_SCHEMA}

    def checked(self, event: str | None, version: int, count: int) -> None:
        self._add("checked", None, event, version, None, None, None, None, count)

    def _add(self, *values: Any) -> None:
        kind, row, event, version, fld, keyword, column, value, count = values
        for name, v in zip(
            RESULT_SCHEMA.names,
            (kind, self.file, row, event, version, fld, keyword, column, value, count),
            strict=True,
        ):
            self.cols[name].append(v)

    def violations(
        self,
        rows: np.ndarray,
        event: str | None,
        version: int,
        fld: str,
        keyword: str,
        column: str | None,
        values: Sequence[str | None],
    ) -> None:
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
        c["count"].extend([None] * n)

    def batch(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict(self.cols, schema=RESULT_SCHEMA)


def _value_text(value: Any) -> str:
    text = orjson.dumps(to_json(value), default=str).decode()
    return text if len(text) <= 80 else text[:77] + "..."


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
    return [p for p in fld.replace("[]", ".[].").split(".") if p]


def _sample_values(payload: pa.StructArray, fld: str, rows: np.ndarray) -> list[str | None]:
    """JSON text of the value at ``fld`` for the first few failing rows."""
    parts = _field_parts(fld)
    if not parts or payload.type.get_field_index(parts[0]) < 0:
        return []
    column = pc.struct_field(payload, parts[0])
    return [
        _value_text(_pluck(column[int(i)].as_py(), parts[1:])) for i in rows[:SAMPLES_PER_BATCH]
    ]


def _source_column(sources: Mapping[str, str], fld: str) -> str | None:
    top = fld.split(".", 1)[0].split("[]", 1)[0]
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
    out._add("rows", None, None, None, None, None, None, None, batch.num_rows)
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
        common = _CallFailures(plan.common, batch, plan.plan.definitions, offset)
    for kind, name, mask in _groups(batch, layout):
        sub, rows, vers = batch, index, versions
        if mask is not None:
            mask = pc.fill_null(mask, False)
            sub = batch.filter(mask)
            rows = index[mask.to_numpy(zero_copy_only=False)]
            vers = versions.filter(mask) if versions is not None else None
        if sub.num_rows == 0:
            continue
        if kind == "track" and name is None:
            out.checked(None, 0, len(rows))
            out.violations(rows, None, 0, "event", "required", layout.event_column, [])
            # the enforcer checks a nameless call as an unplanned one (never blocked as such)
            keep = _block_unplanned(out, plan.no_rule.get(kind), sub, rows, layout, kind, None, 0)
            checked: list[tuple[str | None, int, np.ndarray]] = [
                (None, 0, rows if keep is None else rows[keep])
            ]
        else:
            checked = _check_group(plan, sub, rows, kind, name, vers, layout, out)
        if common is not None:
            for event, version, grows in checked:
                common.emit(out, grows, event, version)
    return out.batch()


class _CallFailures:
    """A call check's failures over a whole batch, handed out per event group."""

    def __init__(self, check: CallCheck, batch: pa.RecordBatch, defs: Any, offset: int) -> None:
        self.offset = offset
        self.arr, self.sources = call_struct(batch, check.schema, defs)
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
            out.violations(numbered, event, version, fld, keyword, self.column(fld), samples)


def _check_group(
    plan: BatchPlan,
    sub: pa.RecordBatch,
    rows: np.ndarray,
    kind: str,
    name: str | None,
    versions: pa.Array | None,
    layout: Layout,
    out: _Out,
) -> list[tuple[str | None, int, np.ndarray]]:
    """Check one event's rows by version; returns the (event, version, rows) checked."""
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
                checked.append((name, 0, rows))
            else:
                label = _unplanned_label(kind, name)
                out._add("unplanned", None, label, 0, None, None, None, None, len(rows))
                check = plan.no_rule.get(kind)
                if kind in CALL_KINDS and (plan.common is not None or check is not None):
                    # let through, but the common rule still applies, as the enforcer's
                    # rules for unplanned events and for call types without a rule check it
                    # (after blocking those with properties, when the controls say so)
                    out.checked(label, 0, len(rows))
                    keep = _block_unplanned(out, check, sub, rows, layout, kind, label, 0)
                    checked.append((label, 0, rows if keep is None else rows[keep]))
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
        payload, sources = payload_struct(g, layout, compiled.properties, compiled.rule.payload_key)
        if compiled.unplanned is not None and not compiled.unplanned.block:
            payload = omitted(compiled.unplanned, payload)  # dropped before validation
        elif compiled.unplanned is not None:
            keep = _block_unplanned(out, compiled.unplanned, g, grow, layout, kind,
                                    label_event, version_no, (payload, sources))  # fmt: skip
            if keep is not None:  # blocked rows: nothing else of theirs is checked
                mask = pa.array(keep)
                g, grow, payload = g.filter(mask), grow[keep], payload.filter(mask)
        for fld, keyword, fail in compiled.node.evaluate(payload):
            idx = np.flatnonzero(fail.to_numpy(zero_copy_only=False))
            if not len(idx):
                continue
            out.violations(
                grow[idx],
                label_event,
                version_no,
                fld,
                keyword,
                _source_column(sources, fld),
                [] if keyword == "required" else _sample_values(payload, fld, idx),
            )
        if compiled.call is not None:
            own = _CallFailures(compiled.call, g, plan.plan.definitions, 0)
            own.emit(out, np.arange(g.num_rows), label_event, version_no, numbers=grow)
        checked.append((label_event, version_no, grow))
    return checked


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
) -> np.ndarray | None:
    """Report the rows of ``sub`` that ``unplanned_properties: block`` blocks: one violation
    per unplanned property present. Returns the mask of the rows left to check, or None
    when none is blocked."""
    if check is None:
        return None
    hits, keep = present(check, sub, layout, kind, payload)
    for name, column, holding in hits:
        # no sample: an unplanned property has no x-pii to mask it by
        out.violations(rows[holding], event, version, name, UNPLANNED, column, [])
    return keep


def _json_blocked(
    out: _Out,
    check: UnplannedCheck | None,
    payload: Any,
    row: np.ndarray,
    event: str | None,
    version: int,
) -> bool:
    """The per-row form of :func:`_block_unplanned`: True when the row is blocked."""
    if check is None or not check.block or type(payload) is not dict or not payload:
        return False
    names = check.names(payload)
    for name in names:
        out.violations(row, event, version, name, UNPLANNED, name, [])
    return bool(names)


def _json_failures(
    out: _Out, validator: Any, doc: Any, row: np.ndarray, event: str | None, version: int
) -> None:
    """The per-row engine's failures of ``doc`` (a payload or a whole call) as violations."""
    if validator is None or validator.is_valid(doc):
        return
    for fld, keyword in sorted(row_failures(validator, doc)):
        top = fld.split(".", 1)[0].split("[]", 1)[0]
        value = _pluck(doc, _field_parts(fld))
        sample = [_value_text(value)] if value is not None else []
        out.violations(row, event, version, fld, keyword, top, sample)


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
        if kind == "track" and not isinstance(name, str):
            out.checked(None, 0, 1)
            out.violations(row, None, 0, "event", "required", "event", [])
            check = plan.no_rule.get(kind)
            if not _json_blocked(out, check, event.get("properties"), row, None, 0):
                _json_failures(out, common, event, row, None, 0)
            continue
        ctx = event.get("context")
        proto = ctx.get("protocols") if isinstance(ctx, dict) else None
        version = proto.get("event_version") if isinstance(proto, dict) else None
        compiled = plan.select(kind, name, version if isinstance(version, int) else None)
        if compiled is None:
            if kind == "track" and plan.block_unplanned:
                counts[(str(name), 0)] = counts.get((str(name), 0), 0) + 1
                out.violations(row, name, 0, "event", "unplanned", "event", [])
                _json_failures(out, common, event, row, name, 0)
            else:
                label = _unplanned_label(kind, name)
                out._add("unplanned", None, label, 0, None, None, None, None, 1)
                check = plan.no_rule.get(kind)
                if kind in CALL_KINDS and (common is not None or check is not None):
                    counts[(label, 0)] = counts.get((label, 0), 0) + 1
                    payload = event.get(PAYLOAD_KEY.get(kind) or "")
                    if not _json_blocked(out, check, payload, row, label, 0):
                        _json_failures(out, common, event, row, label, 0)
            continue
        label = compiled.rule.name or compiled.rule.kind
        key = (label, compiled.rule.version)
        counts[key] = counts.get(key, 0) + 1
        payload = event.get(compiled.rule.payload_key or "properties")  # JSON as sent
        version_no = compiled.rule.version
        if _json_blocked(out, compiled.unplanned, payload, row, label, version_no):
            continue
        if payload is None:
            payload = {}
        elif compiled.unplanned is not None and type(payload) is dict:
            dropped = set(compiled.unplanned.names(payload))  # omitted before validation
            payload = {k: v for k, v in payload.items() if k not in dropped}
        own_call = compiled.call.validator if compiled.call is not None else None
        _json_failures(out, compiled.validator, payload, row, label, version_no)
        _json_failures(out, common, event, row, label, version_no)
        _json_failures(out, own_call, event, row, label, version_no)
    for (counted, version), count in counts.items():
        out.checked(counted, version, count)
