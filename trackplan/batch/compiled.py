"""The plan compiled once for batch checks: :class:`BatchPlan`, its rules with their
vectorised nodes (:class:`CompiledRule`) and call checks (:class:`CallCheck`).

Built from the same :class:`~trackplan.plan.model.Plan` the enforcer compiles, with the
same controls and the same reserved rules (Segment's consent event), so that
:func:`trackplan.batch.check.check_batch` decides every row as ``enforce`` would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from trackplan.batch.envelope import envelope_check
from trackplan.batch.mapping import (
    Layout,
    LayoutOptions,
    call_struct,
    infer_layout,
    snake_case,
)
from trackplan.batch.pii import RowPii, batch_policy
from trackplan.batch.rules import Node, compile_payload
from trackplan.batch.unplanned import UnplannedCheck
from trackplan.plan.assemble import DEFS_KEYS
from trackplan.plan.model import PAYLOAD_KEY, CallControls, Plan, Rule
from trackplan.plan.reserved import reserved_rules
from trackplan.schema.validator import make_validator

__all__ = ["CALL_KINDS", "BatchPlan", "CallCheck", "CompiledRule", "rule_definitions"]

_KIND_FOR_TYPE = {"track": "track", "page": "page", "screen": "screen"}

#: Segment's call types: rows of these without a rule are still checked by the common rule.
CALL_KINDS = frozenset({"track", "identify", "group", "page", "screen", "alias"})


def rule_definitions(plan: Plan, rule: Rule | None) -> dict[str, Any]:
    """The definitions a rule's ``$ref``s may name: the plan's, and those a Segment rule
    keeps at the root of its ``jsonSchema`` (imported into ``call``), which win."""
    defs = dict(plan.definitions)
    call = rule.call if rule is not None else None
    if isinstance(call, Mapping):
        for key in DEFS_KEYS:
            own = call.get(key)
            if isinstance(own, Mapping):
                defs.update(own)
    return defs


def with_definitions(schema: Any, defs: Mapping[str, Any]) -> Any:
    """``schema`` with ``defs`` at its root under both spellings, for the per-row engine."""
    if not isinstance(schema, Mapping):
        return schema
    return {**schema, "definitions": dict(defs), "$defs": dict(defs)}


def _call_schema(schema: Any, payload_key: str | None) -> tuple[Any, bool]:
    """A call schema without its payload keys in ``required`` (the payload is checked as
    the payload; a ``required`` payload key is checked where the layout can tell it is
    absent), and whether it required the rule's own payload key."""
    if not isinstance(schema, Mapping):
        return schema, False
    required = schema.get("required")
    if not isinstance(required, list):
        return schema, False
    payload_keys = set(PAYLOAD_KEY.values()) - {None}
    kept = [r for r in required if r not in payload_keys]
    if len(kept) == len(required):
        return schema, False
    out = dict(schema)
    if kept:
        out["required"] = kept
    else:
        del out["required"]
    return out, payload_key is not None and payload_key in required


def unplanned_label(kind: str, name: str | None) -> str | None:
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
    defs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, schema: Any, defs: Mapping[str, Any]) -> CallCheck | None:
        """None when there is nothing to check (no call schema, or ``true``)."""
        if isinstance(schema, Mapping):
            schema = {k: v for k, v in schema.items() if k not in DEFS_KEYS}
        if schema is None or schema is True or schema == {}:
            return None
        whole = with_definitions(schema, defs)
        return cls(schema, Node(schema, "", defs), make_validator(whole), dict(defs))


@dataclass
class CompiledRule:
    """One rule with its vectorised node and its per-row validator (for JSON rows)."""

    rule: Rule
    node: Node
    validator: Any
    call: CallCheck | None = None
    unplanned: UnplannedCheck | None = None
    #: the rule's call schema lists its payload key in ``required``
    payload_required: bool = False
    #: the enforcer's PII transform of the rule (None: it changes and reports nothing)
    pii: RowPii | None = None
    #: what a payload violation does (``violations``): ``block`` the call (no PII pass on
    #: it), ``omit`` its property before the PII pass, or ``allow``
    on_violation: str = "allow"

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
    #: call type -> the PII transform of its calls without a rule (unplanned events)
    no_rule_pii: dict[str, RowPii | None] = field(default_factory=dict)
    #: call type -> whether its calls without a rule lose every property (``omit``)
    no_rule_omit: dict[str, bool] = field(default_factory=dict)
    _memos: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _policy: Any = None
    _layouts: dict[pa.Schema, Layout] = field(default_factory=dict)
    _names: frozenset[str] = frozenset()
    _aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, plan: Plan, options: LayoutOptions | None = None) -> BatchPlan:
        """Compile every track, page, screen, identify and group rule of ``plan``."""
        out = cls(plan, options or LayoutOptions())
        out._policy = batch_policy(plan)
        controls = plan.controls
        for rule in plan.rules:
            if rule.kind == "common":
                call, _ = _call_schema(rule.call, None)
                out.common = CallCheck.build(call, rule_definitions(plan, rule))
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
            # ... and, under omit, what the enforcer drops before its PII pass: everything
            out.no_rule_omit[kind] = check is not None and not check.block
            out.no_rule_pii[kind] = out._row_pii(None, kind)
        return out

    def _row_pii(self, rule: Rule | None, kind: str) -> RowPii | None:
        """The enforcer's PII transform for calls of ``rule`` (None when inert)."""
        found = RowPii(self._policy, rule, kind)
        if found.inert:
            return None
        found.share_memos(self._memos)
        return found

    @property
    def detects(self) -> bool:
        """Whether any rule's PII transform may report or change a value."""
        found = [c.pii for c in self.rules.values()] + list(self.no_rule_pii.values())
        return any(p is not None for p in found)

    def _add(self, rule: Rule, controls: CallControls) -> None:
        """Compile ``rule``, run under ``controls`` (replacing a rule of the same key)."""
        defs = rule_definitions(self.plan, rule)
        payload = rule.payload if rule.payload is not None else True
        call, payload_required = _call_schema(rule.call, rule.payload_key)
        self.rules[(rule.kind, rule.name, rule.version)] = CompiledRule(
            rule,
            compile_payload(payload, defs),
            make_validator(with_definitions(payload, defs)),
            CallCheck.build(call, defs),
            UnplannedCheck.build(rule.payload, controls, f"{rule.source} [{rule.label}]"),
            payload_required,
            self._row_pii(rule, rule.kind),
            controls.violations,
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
            if self.detects:
                wanted.add("context")  # context.ip, context.traits: what detectors read
        else:
            if self.detects:  # undeclared payload columns and context_* hold what they read
                wanted |= set(layout.payload_columns(schema, []).values())
                wanted |= self._pii_context_columns(schema)
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
            wanted |= set(call_struct(empty, call.schema, call.defs)[1].values())
        for kind in sorted(CALL_KINDS):  # the envelope, checked on every call
            wanted |= set(call_struct(empty, envelope_check(kind).schema, {})[1].values())
        return [name for name in schema.names if name in wanted]

    def _pii_context_columns(self, schema: pa.Schema) -> set[str]:
        """The ``context_*`` columns of a flat table the PII pass reads (see
        :func:`trackplan.batch.pii.flat_context`)."""
        found = [c.pii for c in self.rules.values()] + list(self.no_rule_pii.values())
        names: set[str] = set()
        for pii in found:
            node = pii.transformer.root.keys.get("context") if pii is not None else None
            if node is None:
                continue
            if node.detect:
                return {n for n in schema.names if n.startswith("context_")}
            names |= {"context_" + snake_case(k) for k in node.keys}
            if "traits" in node.keys:
                names |= {n for n in schema.names if n.startswith("context_traits_")}
        return names & set(schema.names)

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
