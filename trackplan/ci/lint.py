"""Lint a plan: a table of rules, each with an id, a level and a documented reason.

Hygiene rules take igluctl's names and levels; naming and documentation rules follow
Avo's audits; privacy rules make every property declare its PII status.

>>> report = lint_plan(load_plan("plans/ecommerce"))   # doctest: +SKIP
>>> report.errors                                        # doctest: +SKIP
()

Configuration lives in the plan's ``lint`` section::

    lint:
      skip: [numericMinMax]            # rules not run
      levels: {stringLength: error}    # error | warning | info | off
      event_case: title                # title (default), sentence, lower, snake, camel, ...
      property_case: auto              # auto (the plan's majority, default) or a convention
      optional_null: false             # true runs optionalNull
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from trackplan import pointer as jp
from trackplan.ci import hygiene
from trackplan.ci.facts import may_hold_text, pii_status, type_set
from trackplan.ci.naming import (
    CONVENTIONS,
    collision_key,
    conforms,
    example,
    majority_convention,
)
from trackplan.ci.sites import Check, LintConfig, LintContext, Out, Prop, deref, split_section
from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.model import Plan

__all__ = ["LEVELS", "Finding", "LintRule", "LintConfig", "LintReport", "RULES", "RULE_IDS",
           "lint_config", "lint_plan"]  # fmt: skip

LEVELS = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint finding: which rule, how bad, and where (file, event, JSON pointer)."""

    rule: str
    level: str
    file: str
    pointer: str
    event: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f" [{self.event}]" if self.event else "")
        return f"{where} at {self.pointer or '/'}: {self.level} {self.rule}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the rule's reason is added by the renderer)."""
        return {
            "rule": self.rule,
            "level": self.level,
            "file": self.file,
            "pointer": self.pointer,
            "event": self.event,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class LintRule:
    """A lint rule: id, default level, the reason users read, and its check."""

    id: str
    level: str
    reason: str
    check: Check


# -- naming (Avo) --------------------------------------------------------------------------
def _event_case(ctx: LintContext) -> Out:
    conv = ctx.config.event_case
    for rule in ctx.plan.events:
        if rule.version == min(
            r.version for r in ctx.plan.versions(str(rule.name))
        ) and not conforms(str(rule.name), conv):
            yield (
                rule.source,
                jp.join(rule.pointer, "name"),
                rule.label,
                f"event name is not {conv} case (like '{example(conv)}')",
            )


def _property_case(ctx: LintContext) -> Out:
    conv = ctx.config.property_case
    if conv == "auto":
        found = majority_convention(
            (p.name for p in ctx.props), ("snake", "camel", "pascal", "kebab", "title", "lower")
        )
        if found is None:
            return
        conv = found
    for p in ctx.props:
        if not conforms(p.name, conv):
            yield p.found(
                f"property name '{p.name}' is not {conv} case like the rest of the plan "
                f"(like '{example(conv)}')"
            )


def _collisions(names: Iterable[tuple[str, tuple[str, str, str | None]]], what: str) -> Out:
    groups: dict[str, dict[str, tuple[str, str, str | None]]] = {}
    for name, where in names:
        groups.setdefault(collision_key(name), {}).setdefault(name, where)
    for variants in groups.values():
        if len(variants) < 2:
            continue
        ordered = sorted(variants)
        for name in ordered[1:]:
            file, ptr, event = variants[name]
            yield (
                file,
                ptr,
                event,
                f"{what} '{name}' differs from '{ordered[0]}' only by case or separators",
            )


def _event_collision(ctx: LintContext) -> Out:
    yield from _collisions(
        ((str(r.name), (r.source, jp.join(r.pointer, "name"), r.label)) for r in ctx.plan.events),
        "event name",
    )


def _property_collision(ctx: LintContext) -> Out:
    yield from _collisions(
        ((p.name, (p.site.file, p.pointer, p.site.event)) for p in ctx.props), "property name"
    )


def _type_signature(schema: Any) -> str | None:
    types = type_set(schema)
    if types is None and isinstance(schema, dict) and isinstance(schema.get("enum"), list):
        from trackplan.ci.facts import json_type

        types = frozenset(json_type(v) for v in schema["enum"])
    if types is None:
        return None
    names = {"number" if t == "integer" else t for t in types} - {"null"}
    return "|".join(sorted(names)) or None


def _conflicting_types(ctx: LintContext) -> Out:
    seen: dict[str, dict[str, Prop]] = {}
    for p in ctx.props:
        if not p.top or not p.site.latest or p.site.event.startswith("definition "):
            continue
        sig = _type_signature(p.schema)
        if sig is not None:
            seen.setdefault(p.name, {}).setdefault(sig, p)
    for name, by_sig in sorted(seen.items()):
        if len(by_sig) < 2:
            continue
        first_sig, *rest = by_sig  # the first type met in plan order is the reference
        first = by_sig[first_sig]
        for sig in rest:
            message = f"property '{name}' is {sig} here but {first_sig} in {first.site.event}"
            yield by_sig[sig].found(message)


# -- documentation --------------------------------------------------------------------------
def _event_description(ctx: LintContext) -> Out:
    for rule in ctx.plan.events:
        if not (rule.description or "").strip():
            yield rule.source, rule.pointer, rule.label, "event has no description"


def _property_description(ctx: LintContext) -> Out:
    for p in ctx.props:
        if p.under_pii and not p.top:
            continue
        if isinstance(p.schema, dict) and not str(p.schema.get("description", "")).strip():
            yield p.found(f"property '{p.name}' has no description")


# -- privacy ------------------------------------------------------------------------------
def _looks_pii(ctx: LintContext, p: Prop) -> str | None:
    found = ctx.matcher(p.name, p.schema)
    if found is None or p.qualifier is None:
        return found
    return ctx.matcher(f"{p.qualifier}_{p.name}", p.schema) if p.name == "name" else found


def _undeclared(ctx: LintContext) -> Iterator[Prop]:
    """Properties that could hold text, declare no PII status and sit under no PII property.

    Numbers, booleans and fixed lists of values cannot carry PII: they need no status.
    """
    return (
        p
        for p in ctx.props
        if not (p.under_pii or pii_status(p.schema)[0])
        and may_hold_text(p.schema, deref=lambda s: deref(ctx.plan, s))
    )


def _pii_status(ctx: LintContext) -> Out:
    cfg = ctx.config
    other_rule_runs = "piiUndeclared" not in cfg.skip and cfg.levels.get("piiUndeclared") != "off"
    for p in _undeclared(ctx):
        if other_rule_runs and _looks_pii(ctx, p):
            continue  # piiUndeclared reports it, as an error
        yield p.found(
            f"property '{p.name}' declares no PII status: add x-pii: <category> or x-pii: false"
        )


def _pii_undeclared(ctx: LintContext) -> Out:
    for p in _undeclared(ctx):
        category = _looks_pii(ctx, p)
        if category is not None:
            yield p.found(
                f"property '{p.name}' looks like PII ({category}) but has no x-pii: declare "
                f"x-pii: {category} or x-pii: false"
            )


def _pii_annotation(ctx: LintContext) -> Out:
    from trackplan.plan.format_schema import PLAN_FORMAT_SCHEMA

    listed = PLAN_FORMAT_SCHEMA["properties"]["pii"].get("x-categories", [])
    known = set(listed) | set(ctx.plan.pii.get("categories", []) or [])
    actions = {"allow", "hash", "mask", "redact", "drop", "reject"}
    for p in ctx.props:
        raw = p.schema.get("x-pii") if isinstance(p.schema, dict) else None
        if raw is None or raw is False:
            continue
        declared, category, action = pii_status(p.schema)
        bad = category is not None and category not in known
        if isinstance(raw, dict) and isinstance(raw.get("action"), str):
            bad = bad or action not in actions
        if bad or not isinstance(raw, str | dict):
            yield p.found(
                f"x-pii of '{p.name}' names an unknown category or action; categories: "
                f"{', '.join(sorted(known))}; actions: {', '.join(sorted(actions))}",
                "x-pii",
            )


def _pii_detection_off(ctx: LintContext) -> Out:
    plan = ctx.plan
    if plan.detects_pii:
        return
    file, base = split_section(plan.sections.get("pii", f"{plan.source}#/pii"))
    yield (
        file,
        jp.join(base, "detection"),
        None,
        "PII detection is off: undeclared PII (an email in free text, a card number under "
        "an unplanned key, context.ip) is forwarded as it is; remove detection: off",
    )


RULES: tuple[LintRule, ...] = (
    LintRule(
        "numericMinimumMaximum",
        "error",
        "A minimum above the maximum rejects every number.",
        hygiene.min_max(
            ("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum"), "number bounds"
        ),
    ),
    LintRule(
        "stringMinMaxLength",
        "error",
        "minLength above maxLength rejects every string.",
        hygiene.min_max(("minLength",), ("maxLength",), "string length"),
    ),
    LintRule(
        "arrayMinMaxItems",
        "error",
        "minItems above maxItems rejects every array.",
        hygiene.min_max(("minItems",), ("maxItems",), "array length"),
    ),
    LintRule(
        "numericProperties",
        "error",
        "Numeric keywords on a non-numeric type are "
        "silently ignored: the author meant a constraint that does not apply.",
        hygiene.wrong_type("number"),
    ),
    LintRule(
        "stringProperties",
        "error",
        "String keywords on a non-string type are ignored.",
        hygiene.wrong_type("string"),
    ),
    LintRule(
        "arrayProperties",
        "error",
        "Array keywords on a non-array type are ignored.",
        hygiene.wrong_type("array"),
    ),
    LintRule(
        "objectProperties",
        "error",
        "Object keywords on a non-object type are ignored.",
        hygiene.wrong_type("object"),
    ),
    LintRule(
        "requiredPropertiesExist",
        "error",
        "A required property that is not defined is usually a typo; its values go unchecked.",
        hygiene.required_exist,
    ),
    LintRule(
        "rootObject",
        "warning",
        "Event properties and traits are objects; any other root type rejects every call.",
        hygiene.root_object,
    ),
    LintRule(
        "stringMaxLengthRange",
        "warning",
        "Warehouses cap VARCHAR at 65535; longer strings are truncated or fail to load.",
        hygiene.string_range,
    ),
    LintRule(
        "unknownFormats",
        "warning",
        "An unknown format is not checked by validators.",
        hygiene.unknown_formats,
    ),
    LintRule(
        "numericMinMax",
        "warning",
        "Unbounded numbers hide unit mistakes and overflow warehouse columns.",
        hygiene.numeric_min_max,
    ),
    LintRule(
        "stringLength",
        "warning",
        "Unbounded strings become wide warehouse columns and let free text (often PII) through.",
        hygiene.string_length,
    ),
    LintRule(
        "optionalNull",
        "info",
        "Loaders write null for absent optional properties; "
        "a schema rejecting null fails on reload (when the plan sets optional_null).",
        hygiene.optional_null,
    ),
    LintRule(
        "typedProperties",
        "warning",
        "A property without a type accepts anything (Avo: typed properties).",
        hygiene.typed,
    ),
    LintRule(
        "eventNameCase",
        "error",
        "One event-name convention keeps names guessable (Segment: 'Object Action' Title Case).",
        _event_case,
    ),
    LintRule(
        "propertyNameCase",
        "warning",
        "Mixed property-name conventions create near-duplicate warehouse columns.",
        _property_case,
    ),
    LintRule(
        "eventNameCollision",
        "error",
        "Names that differ only by case or separators split one event in two in analytics tools.",
        _event_collision,
    ),
    LintRule(
        "propertyNameCollision",
        "error",
        "Names that differ only by case or separators collide in case-insensitive warehouses.",
        _property_collision,
    ),
    LintRule(
        "conflictingPropertyTypes",
        "error",
        "One property name with two types cannot "
        "share a warehouse column (Avo: no conflicting properties).",
        _conflicting_types,
    ),
    LintRule(
        "eventDescription",
        "warning",
        "Readers of the data need to know when an event fires.",
        _event_description,
    ),
    LintRule(
        "propertyDescription",
        "warning",
        "Readers of the data need to know what a property holds.",
        _property_description,
    ),
    LintRule(
        "piiStatus",
        "warning",
        "Every property whose value could carry text (strings and containers of strings) "
        "declares its PII status (x-pii: <category> or x-pii: false), so privacy review is "
        "explicit; numbers, booleans and fixed lists of values need none.",
        _pii_status,
    ),
    LintRule(
        "piiUndeclared",
        "error",
        "A name that looks like PII without a declaration is sent unprotected.",
        _pii_undeclared,
    ),
    LintRule(
        "piiAnnotation",
        "error",
        "An unknown PII category or action cannot be enforced.",
        _pii_annotation,
    ),
    LintRule(
        "piiDetectionOff",
        "warning",
        "With detection off, PII the plan does not declare (an email in free text, a card "
        "number under an unplanned key, an IP address in context) is forwarded unprotected.",
        _pii_detection_off,
    ),
)
RULE_IDS = tuple(r.id for r in RULES)
_BY_ID = {r.id: r for r in RULES}


def lint_config(plan: Plan, *, skip: Iterable[str] = ()) -> LintConfig:
    """The lint settings of a plan, plus ``skip``; raises PlanError for unknown rule ids."""
    raw = plan.lint
    file, base = split_section(plan.sections.get("lint", "#/lint"))
    issues = []
    skips = set(raw.get("skip", []) or [])
    levels = dict(raw.get("levels", {}) or {})
    for i, rid in enumerate(raw.get("skip", []) or []):
        if rid not in _BY_ID:
            issues.append(PlanIssue(file, jp.join(base, "skip", i), f"unknown lint rule {rid!r}"))
    for rid, level in levels.items():
        if rid not in _BY_ID or level not in (*LEVELS, "off"):
            issues.append(
                PlanIssue(
                    file,
                    jp.join(base, "levels", rid),
                    f"unknown lint rule {rid!r} or level {level!r}",
                )
            )
    for key in ("event_case", "property_case"):
        value = raw.get(key)
        if value is not None and value not in CONVENTIONS and value != "auto":
            issues.append(PlanIssue(file, jp.join(base, key), f"unknown convention {value!r}"))
    if issues:
        raise PlanError(issues)
    return LintConfig(
        skip=frozenset(skips | set(skip)),
        levels=levels,
        event_case=str(raw.get("event_case", "title")),
        property_case=str(raw.get("property_case", "auto")),
        optional_null=bool(raw.get("optional_null", False)),
    )


@dataclass(frozen=True, slots=True)
class LintReport:
    """The findings of one lint run, sorted by file and pointer."""

    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Findings at level error."""
        return tuple(f for f in self.findings if f.level == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Findings at level warning."""
        return tuple(f for f in self.findings if f.level == "warning")

    def failed(self, *, strict: bool = False) -> bool:
        """True when there is an error (or, with ``strict``, a warning)."""
        return bool(self.errors or (strict and self.warnings))


def reason_of(rule_id: str) -> str:
    """The documented reason of a rule."""
    return _BY_ID[rule_id].reason


def lint_plan(
    plan: Plan, *, skip: Iterable[str] = (), config: LintConfig | None = None
) -> LintReport:
    """Run every rule not skipped; return the findings.

    Args:
        plan: the loaded plan.
        skip: rule ids not to run, on top of the plan's ``lint.skip``.
        config: settings to use instead of the plan's ``lint`` section.
    """
    unknown = sorted(set(skip) - set(_BY_ID))
    if unknown:
        raise ValueError(f"unknown lint rule(s): {', '.join(unknown)}")
    cfg = config if config is not None else lint_config(plan, skip=skip)
    ctx = LintContext(plan, cfg)
    found: list[Finding] = []
    for rule in RULES:
        level = cfg.levels.get(rule.id, rule.level)
        if rule.id in cfg.skip or level == "off":
            continue
        for file, ptr, event, message in rule.check(ctx):
            found.append(Finding(rule.id, level, file, ptr, event, message))
    found.sort(key=lambda f: (f.file, f.pointer, f.rule))
    return LintReport(tuple(found))
