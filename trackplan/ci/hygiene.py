"""Schema hygiene rules, after igluctl's linters: bounds, lengths, keywords that do not apply.

Each check takes the :class:`~trackplan.ci.sites.LintContext` and yields
``(file, pointer, event, message)``; :mod:`trackplan.ci.lint` holds the rule table.
"""

from __future__ import annotations

from typing import Any

from trackplan.ci.facts import allows_null, type_set
from trackplan.ci.sites import Check, LintContext, Out, nodes

__all__ = ["KNOWN_FORMATS", "min_max", "wrong_type", "required_exist", "root_object",
           "string_range", "unknown_formats", "numeric_min_max", "string_length",
           "optional_null", "typed"]  # fmt: skip

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


# -- checks --------------------------------------------------------------------
def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def min_max(lower: tuple[str, ...], upper: tuple[str, ...], what: str) -> Check:
    def check(ctx: LintContext) -> Out:
        for site, ptr, node in nodes(ctx):
            lo = [node[k] for k in lower if _num(node.get(k))]
            hi = [node[k] for k in upper if _num(node.get(k))]
            if lo and hi and max(lo) > min(hi):
                yield site.found(
                    ptr,
                    f"{what}: the lower bound {max(lo)} is "
                    f"greater than the upper bound {min(hi)}, so no value is valid",
                )

    return check


def wrong_type(kind: str) -> Check:
    rule_id, keywords, applies = _TYPE_KEYWORDS[kind]
    del rule_id

    def check(ctx: LintContext) -> Out:
        for site, ptr, node in nodes(ctx):
            types = type_set(node)
            if types is None or types & applies:
                continue
            for key in keywords:
                if key in node:
                    yield site.found(
                        ptr,
                        f"'{key}' applies to {kind} values but the type is "
                        f"{'|'.join(sorted(types))}: it is ignored",
                        key,
                    )

    return check


def required_exist(ctx: LintContext) -> Out:
    for site, ptr, node in nodes(ctx):
        props = node.get("properties")
        props = props if isinstance(props, dict) else {}
        if not isinstance(node.get("required"), list) or node.get("patternProperties"):
            continue
        for i, name in enumerate(node["required"]):
            if ptr == site.pointer and name == site.payload_key:
                continue  # a call schema's payload is defined beside it, in the rule
            if name not in props:
                message = f"required property '{name}' is not defined in properties"
                yield site.found(ptr, message, "required", i)


def root_object(ctx: LintContext) -> Out:
    for site in ctx.sites:
        if (
            site.payload
            and not site.event.startswith("definition ")
            and isinstance(site.schema, dict)
            and site.schema.get("type") != "object"
        ):
            yield site.found(site.pointer, "the payload schema is not type: object")


def string_range(ctx: LintContext) -> Out:
    for site, ptr, node in nodes(ctx):
        if _num(node.get("maxLength")) and node["maxLength"] > 65535:
            message = f"maxLength {node['maxLength']} is over 65535: warehouses cap VARCHAR there"
            yield site.found(ptr, message, "maxLength")


def unknown_formats(ctx: LintContext) -> Out:
    for site, ptr, node in nodes(ctx):
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt not in KNOWN_FORMATS:
            yield site.found(ptr, f"format '{fmt}' is unknown: it is not checked", "format")


def numeric_min_max(ctx: LintContext) -> Out:
    for site, ptr, node in nodes(ctx):
        types = type_set(node)
        if types is None or not types & {"number", "integer"} or "enum" in node or "const" in node:
            continue
        has_lo = any(k in node for k in ("minimum", "exclusiveMinimum"))
        has_hi = any(k in node for k in ("maximum", "exclusiveMaximum"))
        if not (has_lo and has_hi):
            yield site.found(ptr, "number without both a minimum and a maximum")


def string_length(ctx: LintContext) -> Out:
    for site, ptr, node in nodes(ctx):
        if type_set(node) != frozenset({"string"}) and type_set(node) != frozenset(
            {"string", "null"}
        ):
            continue
        if not any(k in node for k in ("maxLength", "enum", "const", "format")):
            yield site.found(ptr, "string without maxLength, enum or format")


def optional_null(ctx: LintContext) -> Out:
    if not ctx.config.optional_null:
        return
    for p in ctx.props:
        if not p.required and not allows_null(p.schema):
            yield p.found(f"optional property '{p.name}' does not allow null (the plan asks it to)")


def typed(ctx: LintContext) -> Out:
    for p in ctx.props:
        s = p.schema
        if isinstance(s, dict) and not any(
            k in s for k in ("type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf")
        ):
            yield p.found(f"property '{p.name}' has no type")
