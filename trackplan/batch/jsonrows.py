"""The check of NDJSON rows kept as JSON text: one event at a time, as the enforcer sees it.

An NDJSON chunk whose values do not fit one Arrow type (or that holds a JSON ``null`` in a
payload) is kept as JSON text (:data:`~trackplan.batch.result.JSON_COLUMN`); its rows are
checked here by the per-row engine, with the vectorised check's rules and output
(:mod:`trackplan.batch.check`): the same violations, PII findings and counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from trackplan import pointer as jp
from trackplan.batch.compiled import CALL_KINDS, BatchPlan, CompiledRule, unplanned_label
from trackplan.batch.envelope import ENVELOPE, envelope_check
from trackplan.batch.pii import RowPii, field_name
from trackplan.batch.result import (
    CONTEXT_TRAITS,
    JSON_COLUMN,
    Out,
    forwards_common,
    omitted_pointer,
    pluck,
    prefixed,
    top_property,
    value_text,
)
from trackplan.batch.rules import field_parts, row_failures
from trackplan.batch.unplanned import UNPLANNED, UnplannedCheck
from trackplan.plan.model import PAYLOAD_KEY

__all__ = ["check_json_rows"]


def _json_pii(
    out: Out, pii: RowPii | None, event: dict[str, Any], row: np.ndarray, label: str | None,
    version: int, key: str | None, in_context: bool = False,
) -> None:  # fmt: skip
    """The PII findings of one row kept as JSON (the event as the enforcer sees it)."""
    if pii is None:
        return
    for f in pii.run([event]):
        fld = field_name(f.parts, key, in_context)
        column = ".".join(str(p) for p in f.parts[:2])
        out.pii(int(row[0]), label, version, fld, column, f.pointer, f.detail,
                f.replacement, f.blocked)  # fmt: skip


def _json_blocked(
    out: Out,
    check: UnplannedCheck | None,
    payload: Any,
    row: np.ndarray,
    event: str | None,
    version: int,
    prefix: str = "",
) -> bool:
    """The per-row form of ``unplanned_properties: block``: True when the row is blocked."""
    if check is None or not check.block or type(payload) is not dict or not payload:
        return False
    names = check.names(payload)
    for name in names:
        named = prefixed(prefix, name)
        out.violations(row, event, version, named, UNPLANNED, named, [])
    return bool(names)


def _json_failures(
    out: Out,
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
        top = top_property(fld)
        value = pluck(doc, list(field_parts(fld)))
        sample = [value_text(value)] if value is not None else []
        named = prefixed(prefix, fld)
        omit = None if compiled is None else omitted_pointer(compiled, prefix, fld, keyword)
        out.violations(row, event, version, named, keyword, prefixed(prefix, top), sample,
                       forwarded=forwarded, omit=omit)
    return [fld for fld, _ in failures]


def _json_envelope(
    out: Out, kind: str, event: dict[str, Any], row: np.ndarray, label: str | None,
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


def check_json_rows(plan: BatchPlan, batch: pa.RecordBatch, offset: int, out: Out) -> None:
    """Rows kept as JSON text (:data:`JSON_COLUMN`): the per-row engine, one event at a
    time, with the same checks, in the same order, as the vectorised ones."""
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
                               forwarded=forwards_common(plan, kind))
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
                        forwards = forwards_common(plan, kind)
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
                out.dropped(row, label, version_no, prefixed(prefix, name), jp.join(base, name))
            if dropped and not prefix:
                event = {**event, compiled.rule.payload_key or "properties": payload}
        own_call = compiled.call.validator if compiled.call is not None else None
        forwards = compiled.on_violation != "block"
        failed = _json_failures(out, compiled.validator, payload, row, label, version_no, prefix,
                                forwarded=forwards, compiled=compiled)  # fmt: skip
        common_forwards = forwards_common(plan, kind)
        broken = _json_failures(out, common, event, row, label, version_no,
                                forwarded=common_forwards)  # fmt: skip
        own = _json_failures(out, own_call, event, row, label, version_no, forwarded=forwards)
        # the envelope, and the rest as controlled, block before the PII pass
        blocked = _json_envelope(out, kind, event, row, label, version_no)
        blocked = blocked or bool(broken and not common_forwards)
        blocked = blocked or bool((failed or own) and not forwards)
        if failed and compiled.on_violation == "omit" and type(payload) is dict and not prefix:
            tops = {top_property(f) for f in failed}
            payload = {k: v for k, v in payload.items() if k not in tops}
            event = {**event, compiled.rule.payload_key or "properties": payload}
        if not blocked:
            _json_pii(out, compiled.pii, event, row, label, version_no,
                      compiled.rule.payload_key, bool(prefix))  # fmt: skip
    for (counted, version), count in counts.items():
        out.checked(counted, version, count)
