"""Where lint looks: every schema of a plan (a site) and every property, walked once.

Each site and property carries its file, JSON pointer into that file and event label, so
findings say exactly where a problem is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trackplan import pointer as jp
from trackplan.ci.facts import pii_status
from trackplan.ci.naming import pii_name_matcher
from trackplan.plan.jsonutil import walk_schemas
from trackplan.plan.model import Plan

__all__ = [
    "LintConfig", "Site", "Prop", "LintContext", "Check", "Hit", "Out", "nodes", "split_section"
]  # fmt: skip

#: One finding of a check: ``(file, pointer, event, message)``.
Hit = tuple[str, str, str | None, str]


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Lint settings: the plan's ``lint`` section plus command-line skips."""

    skip: frozenset[str] = frozenset()
    levels: Mapping[str, str] = field(default_factory=dict)
    event_case: str = "title"
    property_case: str = "auto"
    optional_null: bool = False


@dataclass(frozen=True, slots=True)
class Site:
    """A schema to lint and where it is."""

    file: str
    pointer: str
    event: str
    schema: Any
    payload: bool  # a payload (properties/traits) or a definition, not a call schema
    qualifier: str | None = None
    latest: bool = True  # the newest version of its event
    #: on a call schema: the key its payload sits under (the call's ``properties`` or
    #: ``traits`` live in the rule's payload, not in this schema)
    payload_key: str | None = None

    def found(self, pointer: str, message: str, *keys: str | int) -> Hit:
        """A finding at ``pointer`` (a node of this site), or at ``keys`` below it."""
        return self.file, jp.join(pointer, *keys), self.event, message


@dataclass(frozen=True, slots=True)
class Prop:
    """One property of a payload schema."""

    site: Site
    name: str
    pointer: str
    schema: Any  # after one $ref hop into the plan's definitions
    raw: Any
    required: bool
    under_pii: bool
    qualifier: str | None
    top: bool

    def found(self, message: str, *keys: str | int) -> Hit:
        """A finding at this property, or at ``keys`` below it."""
        return self.site.file, jp.join(self.pointer, *keys), self.site.event, message


class LintContext:
    """What every rule reads: the plan, its settings, and the schema sites."""

    def __init__(self, plan: Plan, config: LintConfig) -> None:
        self.plan = plan
        self.config = config
        self.sites = list(sites(plan))
        self.props = [p for s in self.sites if s.payload for p in props(plan, s)]
        self.matcher = pii_name_matcher()
        self.nodes: list[tuple[Site, str, dict[str, Any]]] | None = None


Check = Callable[[LintContext], Iterator[Hit]]


# -- where the schemas are ----------------------------------------------------------------
def split_section(section: str) -> tuple[str, str]:
    file, _, base = section.partition("#")
    return file, base


def sites(plan: Plan) -> Iterator[Site]:
    newest: dict[tuple[str, str | None], int] = {}
    for rule in plan.rules:
        newest[(rule.kind, rule.name)] = max(rule.version, newest.get((rule.kind, rule.name), 0))
    for rule in plan.rules:
        if rule.payload is not None and rule.payload_key:
            latest = rule.version == newest[(rule.kind, rule.name)]
            yield Site(
                rule.source,
                jp.join(rule.pointer, rule.payload_key),
                rule.label,
                rule.payload,
                True,
                latest=latest,
            )
        if rule.call is not None:
            yield Site(
                rule.source,
                jp.join(rule.pointer, "call"),
                rule.label,
                rule.call,
                False,
                payload_key=rule.payload_key,
            )
    if plan.definitions:
        file, base = split_section(plan.sections.get("definitions", "#/definitions"))
        for name, schema in plan.definitions.items():
            yield Site(
                file, jp.join(base, name), f"definition {name}", schema, True, qualifier=name
            )


def deref(plan: Plan, schema: Any) -> Any:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        for key in ("#/definitions/", "#/$defs/"):
            if ref.startswith(key):
                target = plan.definitions.get(jp.unescape(ref[len(key) :]))
                if isinstance(target, dict):
                    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def props(plan: Plan, site: Site) -> Iterator[Prop]:
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
                schema = deref(plan, raw)
                yield Prop(
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


def nodes(ctx: LintContext) -> list[tuple[Site, str, dict[str, Any]]]:
    """Every subschema of every site with its pointer, walked once per lint run."""
    if ctx.nodes is None:
        ctx.nodes = [
            (site, jp.join(site.pointer, *path), node)
            for site in ctx.sites
            for path, node in walk_schemas(site.schema)
        ]
    return ctx.nodes


Out = Iterator[Hit]
