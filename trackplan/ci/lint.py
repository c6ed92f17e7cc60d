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

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trackplan import pointer as jp
from trackplan.ci.classify import pii_status, type_set
from trackplan.ci.naming import (
    CONVENTIONS,
    collision_key,
    conforms,
    example,
    majority_convention,
    pii_name_matcher,
)
from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.jsonutil import walk_schemas
from trackplan.plan.model import Plan

__all__ = ["LEVELS", "Finding", "LintRule", "LintConfig", "LintReport", "RULES", "RULE_IDS",
           "lint_config", "lint_plan"]  # fmt: skip

LEVELS = ("error", "warning", "info")

#: Formats the validator knows (draft-07 and 2020-12); anything else is unknownFormats.
KNOWN_FORMATS = frozenset(
    {"date-time", "date", "time", "duration", "email", "idn-email", "hostname",
     "idn-hostname", "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid",
     "uri-template", "json-pointer", "relative-json-pointer", "regex"}
)  # fmt: skip
_TYPE_KEYWORDS = {
    "number": ("numericProperties", ("minimum", "maximum", "exclusiveMinimum",
                                     "exclusiveMaximum", "multipleOf"), {"number", "integer"}),
    "string": ("stringProperties", ("minLength", "maxLength", "pattern", "format"),
               {"string"}),
    "array": ("arrayProperties", ("items", "minItems", "maxItems", "uniqueItems", "contains",
                                  "additionalItems"), {"array"}),
    "object": ("objectProperties", ("properties", "required", "additionalProperties",
                                    "patternProperties", "minProperties", "maxProperties",
                                    "propertyNames"), {"object"}),
}  # fmt: skip


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
class LintConfig:
    """Lint settings: the plan's ``lint`` section plus command-line skips."""

    skip: frozenset[str] = frozenset()
    levels: Mapping[str, str] = field(default_factory=dict)
    event_case: str = "title"
    property_case: str = "auto"
    optional_null: bool = False


@dataclass(frozen=True, slots=True)
class _Site:
    """A schema to lint and where it is."""

    file: str
    pointer: str
    event: str
    schema: Any
    payload: bool  # a payload (properties/traits) or a definition, not a call schema
    qualifier: str | None = None
    latest: bool = True  # the newest version of its event


@dataclass(frozen=True, slots=True)
class _Prop:
    """One property of a payload schema."""

    site: _Site
    name: str
    pointer: str
    schema: Any  # after one $ref hop into the plan's definitions
    raw: Any
    required: bool
    under_pii: bool
    qualifier: str | None
    top: bool


class _Ctx:
    """What every rule reads: the plan, its settings, and the schema sites."""

    def __init__(self, plan: Plan, config: LintConfig) -> None:
        self.plan = plan
        self.config = config
        self.sites = list(_sites(plan))
        self.props = [p for s in self.sites if s.payload for p in _props(plan, s)]
        self.matcher = pii_name_matcher()


Check = Callable[[_Ctx], Iterator[tuple[str, str, str | None, str]]]


@dataclass(frozen=True, slots=True)
class LintRule:
    """A lint rule: id, default level, the reason users read, and its check."""

    id: str
    level: str
    reason: str
    check: Check


# -- where the schemas are ----------------------------------------------------------------
def _split(section: str) -> tuple[str, str]:
    file, _, base = section.partition("#")
    return file, base


def _sites(plan: Plan) -> Iterator[_Site]:
    newest: dict[tuple[str, str | None], int] = {}
    for rule in plan.rules:
        newest[(rule.kind, rule.name)] = max(rule.version, newest.get((rule.kind, rule.name), 0))
    for rule in plan.rules:
        if rule.payload is not None and rule.payload_key:
            latest = rule.version == newest[(rule.kind, rule.name)]
            yield _Site(
                rule.source,
                jp.join(rule.pointer, rule.payload_key),
                rule.label,
                rule.payload,
                True,
                latest=latest,
            )
        if rule.call is not None:
            yield _Site(rule.source, jp.join(rule.pointer, "call"), rule.label, rule.call, False)
    if plan.definitions:
        file, base = _split(plan.sections.get("definitions", "#/definitions"))
        for name, schema in plan.definitions.items():
            yield _Site(
                file, jp.join(base, name), f"definition {name}", schema, True, qualifier=name
            )


def _deref(plan: Plan, schema: Any) -> Any:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        for key in ("#/definitions/", "#/$defs/"):
            if ref.startswith(key):
                target = plan.definitions.get(jp.unescape(ref[len(key) :]))
                if isinstance(target, dict):
                    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _props(plan: Plan, site: _Site) -> Iterator[_Prop]:
    """Every property under a payload schema, without following ``$ref`` (definitions are
    linted where they are written)."""
    stack: list[tuple[Any, str, bool, str | None, bool]] = [
        (site.schema, site.pointer, False, site.qualifier, True)
    ]
    while stack:
        node, ptr, under_pii, qualifier, top = stack.pop()
        if not isinstance(node, dict):
            continue
        props = node.get("properties")
        required = set(node.get("required", []) or [])
        if isinstance(props, dict):
            for name, raw in props.items():
                where = jp.join(ptr, "properties", name)
                schema = _deref(plan, raw)
                yield _Prop(
                    site, name, where, schema, raw, name in required, under_pii, qualifier, top
                )
                declared, category, _ = pii_status(schema)
                inner_pii = under_pii or (declared and category is not None)
                stack.append((raw, where, inner_pii, name.rstrip("s"), False))
        items = node.get("items")
        if isinstance(items, dict):
            stack.append((items, jp.join(ptr, "items"), under_pii, qualifier, False))
        for key in ("anyOf", "oneOf", "allOf"):
            for i, branch in enumerate(node.get(key, []) or []):
                stack.append((branch, jp.join(ptr, key, i), under_pii, qualifier, top))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            stack.append((extra, jp.join(ptr, "additionalProperties"), under_pii, qualifier, False))


def _nodes(ctx: _Ctx) -> Iterator[tuple[_Site, str, dict[str, Any]]]:
    for site in ctx.sites:
        for path, node in walk_schemas(site.schema):
            yield site, jp.join(site.pointer, *path), node


Out = Iterator[tuple[str, str, str | None, str]]


# -- hygiene (igluctl) --------------------------------------------------------------------
def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _min_max(lower: tuple[str, ...], upper: tuple[str, ...], what: str) -> Check:
    def check(ctx: _Ctx) -> Out:
        for site, ptr, node in _nodes(ctx):
            lo = [node[k] for k in lower if _num(node.get(k))]
            hi = [node[k] for k in upper if _num(node.get(k))]
            if lo and hi and max(lo) > min(hi):
                yield (
                    site.file,
                    ptr,
                    site.event,
                    f"{what}: the lower bound {max(lo)} is "
                    f"greater than the upper bound {min(hi)}, so no value is valid",
                )

    return check


def _wrong_type(kind: str) -> Check:
    rule_id, keywords, applies = _TYPE_KEYWORDS[kind]
    del rule_id

    def check(ctx: _Ctx) -> Out:
        for site, ptr, node in _nodes(ctx):
            types = type_set(node)
            if types is None or types & applies:
                continue
            for key in keywords:
                if key in node:
                    yield (
                        site.file,
                        jp.join(ptr, key),
                        site.event,
                        f"'{key}' applies to {kind} values but the type is "
                        f"{'|'.join(sorted(types))}: it is ignored",
                    )

    return check


def _required_exist(ctx: _Ctx) -> Out:
    for site, ptr, node in _nodes(ctx):
        props = node.get("properties")
        props = props if isinstance(props, dict) else {}
        if not isinstance(node.get("required"), list) or node.get("patternProperties"):
            continue
        for i, name in enumerate(node["required"]):
            if name not in props:
                yield (
                    site.file,
                    jp.join(ptr, "required", i),
                    site.event,
                    f"required property '{name}' is not defined in properties",
                )


def _root_object(ctx: _Ctx) -> Out:
    for site in ctx.sites:
        if (
            site.payload
            and not site.event.startswith("definition ")
            and isinstance(site.schema, dict)
            and site.schema.get("type") != "object"
        ):
            yield site.file, site.pointer, site.event, "the payload schema is not type: object"


def _string_range(ctx: _Ctx) -> Out:
    for site, ptr, node in _nodes(ctx):
        if _num(node.get("maxLength")) and node["maxLength"] > 65535:
            yield (
                site.file,
                jp.join(ptr, "maxLength"),
                site.event,
                f"maxLength {node['maxLength']} is over 65535: warehouses cap VARCHAR there",
            )


def _unknown_formats(ctx: _Ctx) -> Out:
    for site, ptr, node in _nodes(ctx):
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt not in KNOWN_FORMATS:
            yield (
                site.file,
                jp.join(ptr, "format"),
                site.event,
                f"format '{fmt}' is unknown: it is not checked",
            )


def _numeric_min_max(ctx: _Ctx) -> Out:
    for site, ptr, node in _nodes(ctx):
        types = type_set(node)
        if types is None or not types & {"number", "integer"} or "enum" in node or "const" in node:
            continue
        has_lo = any(k in node for k in ("minimum", "exclusiveMinimum"))
        has_hi = any(k in node for k in ("maximum", "exclusiveMaximum"))
        if not (has_lo and has_hi):
            yield site.file, ptr, site.event, "number without both a minimum and a maximum"


def _string_length(ctx: _Ctx) -> Out:
    for site, ptr, node in _nodes(ctx):
        if type_set(node) != frozenset({"string"}) and type_set(node) != frozenset(
            {"string", "null"}
        ):
            continue
        if not any(k in node for k in ("maxLength", "enum", "const", "format")):
            yield site.file, ptr, site.event, "string without maxLength, enum or format"


def _optional_null(ctx: _Ctx) -> Out:
    if not ctx.config.optional_null:
        return
    from trackplan.ci.classify import _allows_null

    for p in ctx.props:
        if not p.required and not _allows_null(p.schema):
            yield (
                p.site.file,
                p.pointer,
                p.site.event,
                f"optional property '{p.name}' does not allow null (the plan asks it to)",
            )


def _typed(ctx: _Ctx) -> Out:
    for p in ctx.props:
        s = p.schema
        if isinstance(s, dict) and not any(
            k in s for k in ("type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf")
        ):
            yield p.site.file, p.pointer, p.site.event, f"property '{p.name}' has no type"


# -- naming (Avo) --------------------------------------------------------------------------
def _event_case(ctx: _Ctx) -> Out:
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


def _property_case(ctx: _Ctx) -> Out:
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
            yield (
                p.site.file,
                p.pointer,
                p.site.event,
                f"property name '{p.name}' is not {conv} case like the rest of the plan "
                f"(like '{example(conv)}')",
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


def _event_collision(ctx: _Ctx) -> Out:
    yield from _collisions(
        ((str(r.name), (r.source, jp.join(r.pointer, "name"), r.label)) for r in ctx.plan.events),
        "event name",
    )


def _property_collision(ctx: _Ctx) -> Out:
    yield from _collisions(
        ((p.name, (p.site.file, p.pointer, p.site.event)) for p in ctx.props), "property name"
    )


def _type_signature(schema: Any) -> str | None:
    types = type_set(schema)
    if types is None and isinstance(schema, dict) and isinstance(schema.get("enum"), list):
        from trackplan.ci.classify import _json_type

        types = frozenset(_json_type(v) for v in schema["enum"])
    if types is None:
        return None
    names = {"number" if t == "integer" else t for t in types} - {"null"}
    return "|".join(sorted(names)) or None


def _conflicting_types(ctx: _Ctx) -> Out:
    seen: dict[str, dict[str, _Prop]] = {}
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
            p = by_sig[sig]
            yield (
                p.site.file,
                p.pointer,
                p.site.event,
                f"property '{name}' is {sig} here but {first_sig} in {first.site.event}",
            )


# -- documentation --------------------------------------------------------------------------
def _event_description(ctx: _Ctx) -> Out:
    for rule in ctx.plan.events:
        if not (rule.description or "").strip():
            yield rule.source, rule.pointer, rule.label, "event has no description"


def _property_description(ctx: _Ctx) -> Out:
    for p in ctx.props:
        if p.under_pii and not p.top:
            continue
        if isinstance(p.schema, dict) and not str(p.schema.get("description", "")).strip():
            yield p.site.file, p.pointer, p.site.event, f"property '{p.name}' has no description"


# -- privacy ------------------------------------------------------------------------------
def _looks_pii(ctx: _Ctx, p: _Prop) -> str | None:
    found = ctx.matcher(p.name, p.schema)
    if found is None or p.qualifier is None:
        return found
    return ctx.matcher(f"{p.qualifier}_{p.name}", p.schema) if p.name == "name" else found


def _pii_status(ctx: _Ctx) -> Out:
    cfg = ctx.config
    other_rule_runs = "piiUndeclared" not in cfg.skip and cfg.levels.get("piiUndeclared") != "off"
    for p in ctx.props:
        if p.under_pii or pii_status(p.schema)[0]:
            continue
        if other_rule_runs and _looks_pii(ctx, p):
            continue  # piiUndeclared reports it, as an error
        yield (
            p.site.file,
            p.pointer,
            p.site.event,
            f"property '{p.name}' declares no PII status: add x-pii: <category> or x-pii: false",
        )


def _pii_undeclared(ctx: _Ctx) -> Out:
    for p in ctx.props:
        if p.under_pii or pii_status(p.schema)[0]:
            continue
        category = _looks_pii(ctx, p)
        if category is not None:
            yield (
                p.site.file,
                p.pointer,
                p.site.event,
                f"property '{p.name}' looks like PII ({category}) but has no x-pii: declare "
                f"x-pii: {category} or x-pii: false",
            )


def _pii_annotation(ctx: _Ctx) -> Out:
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
            yield (
                p.site.file,
                jp.join(p.pointer, "x-pii"),
                p.site.event,
                f"x-pii of '{p.name}' names an unknown category or action; categories: "
                f"{', '.join(sorted(known))}; actions: {', '.join(sorted(actions))}",
            )


RULES: tuple[LintRule, ...] = (
    LintRule(
        "numericMinimumMaximum",
        "error",
        "A minimum above the maximum rejects every number.",
        _min_max(("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum"), "number bounds"),
    ),
    LintRule(
        "stringMinMaxLength",
        "error",
        "minLength above maxLength rejects every string.",
        _min_max(("minLength",), ("maxLength",), "string length"),
    ),
    LintRule(
        "arrayMinMaxItems",
        "error",
        "minItems above maxItems rejects every array.",
        _min_max(("minItems",), ("maxItems",), "array length"),
    ),
    LintRule(
        "numericProperties",
        "error",
        "Numeric keywords on a non-numeric type are "
        "silently ignored: the author meant a constraint that does not apply.",
        _wrong_type("number"),
    ),
    LintRule(
        "stringProperties",
        "error",
        "String keywords on a non-string type are ignored.",
        _wrong_type("string"),
    ),
    LintRule(
        "arrayProperties",
        "error",
        "Array keywords on a non-array type are ignored.",
        _wrong_type("array"),
    ),
    LintRule(
        "objectProperties",
        "error",
        "Object keywords on a non-object type are ignored.",
        _wrong_type("object"),
    ),
    LintRule(
        "requiredPropertiesExist",
        "error",
        "A required property that is not defined is usually a typo; its values go unchecked.",
        _required_exist,
    ),
    LintRule(
        "rootObject",
        "warning",
        "Event properties and traits are objects; any other root type rejects every call.",
        _root_object,
    ),
    LintRule(
        "stringMaxLengthRange",
        "warning",
        "Warehouses cap VARCHAR at 65535; longer strings are truncated or fail to load.",
        _string_range,
    ),
    LintRule(
        "unknownFormats",
        "warning",
        "An unknown format is not checked by validators.",
        _unknown_formats,
    ),
    LintRule(
        "numericMinMax",
        "warning",
        "Unbounded numbers hide unit mistakes and overflow warehouse columns.",
        _numeric_min_max,
    ),
    LintRule(
        "stringLength",
        "warning",
        "Unbounded strings become wide warehouse columns and let free text (often PII) through.",
        _string_length,
    ),
    LintRule(
        "optionalNull",
        "info",
        "Loaders write null for absent optional properties; "
        "a schema rejecting null fails on reload (when the plan sets optional_null).",
        _optional_null,
    ),
    LintRule(
        "typedProperties",
        "warning",
        "A property without a type accepts anything (Avo: typed properties).",
        _typed,
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
        "Every property declares its PII status (x-pii: "
        "<category> or x-pii: false), so privacy review is explicit.",
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
)
RULE_IDS = tuple(r.id for r in RULES)
_BY_ID = {r.id: r for r in RULES}


def lint_config(plan: Plan, *, skip: Iterable[str] = ()) -> LintConfig:
    """The lint settings of a plan, plus ``skip``; raises PlanError for unknown rule ids."""
    raw = plan.lint
    file, base = _split(plan.sections.get("lint", "#/lint"))
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
    ctx = _Ctx(plan, cfg)
    found: list[Finding] = []
    for rule in RULES:
        level = cfg.levels.get(rule.id, rule.level)
        if rule.id in cfg.skip or level == "off":
            continue
        for file, ptr, event, message in rule.check(ctx):
            found.append(Finding(rule.id, level, file, ptr, event, message))
    found.sort(key=lambda f: (f.file, f.pointer, f.rule))
    return LintReport(tuple(found))
