"""Plan schemas as msgspec types: what the NDJSON bytes path (:mod:`trackplan.engine.typed`)
decodes a line into, so that one typed decode checks types, bounds, lengths and enums.

A schema is turned into a type only where every keyword has an exact msgspec equivalent,
or is a string keyword (``format``, ``pattern``, ``anyOf`` of formats ...) that a
jsonschema-rs validator post-checks on the decoded value (:func:`compile_check`); anything
else raises :class:`Unsupported` and leaves the rule to the dict path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

import msgspec

from trackplan import pointer as jp
from trackplan.plan.assemble import DEFS_KEYS
from trackplan.schema.envelope import envelope_schema
from trackplan.schema.validator import make_validator

__all__ = ["Builder", "Check", "IDENTITY_ANYOF", "Unsupported", "compile_check", "local_refs"]

UNSET = msgspec.UNSET
Check = Callable[[Any], bool]
#: what msgspec types cannot check, as a tree compiled to one function per rule:
#: ("leaf", validator) | ("struct", ((attr, node), ...)) | ("list", node)
#: | ("if", class, node) | ("all", (node, ...))
_Node = tuple[Any, ...]

#: keywords that only annotate: they never change validity
_ANNOTATIONS = frozenset(
    {"description", "title", "examples", "default", "$comment", "readOnly", "writeOnly",
     "deprecated", "$schema", "definitions", "$defs"}
)
#: keywords with an exact msgspec equivalent (or handled structurally)
_TYPED = frozenset(
    {"type", "enum", "const", "properties", "required", "additionalProperties", "minimum",
     "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "items",
     "minItems", "maxItems", "$ref", "allOf"}
)
#: keywords a jsonschema-rs post-check decides, on strings (and null) only
_POST = frozenset({"format", "pattern", "anyOf", "oneOf", "not", "if", "then", "else"})
_JSON_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
#: int64: msgspec's limit for bounds (orjson keeps up to uint64 as int: the rest falls back)
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT = 2.0**53  # bounds beyond it compare ints and floats inexactly
IDENTITY_ANYOF = envelope_schema("track")["anyOf"]
_MAX_NESTING = 48  # typed objects and arrays within each other; recursive refs stop here


_UNRESOLVED = object()


class Unsupported(Exception):
    """A schema has no exact msgspec equivalent; the rule stays on the dict path."""


#: every keyword of draft-04 to 2020-12: what a validator might act on; others are ignored
_VOCABULARY = frozenset(
    {"$id", "id", "$schema", "$ref", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor",
     "$recursiveRef", "$recursiveAnchor", "$vocabulary", "$defs", "definitions", "title",
     "description", "default", "readOnly", "writeOnly", "deprecated", "examples", "multipleOf",
     "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
     "pattern", "additionalItems", "items", "prefixItems", "maxItems", "minItems", "uniqueItems",
     "contains", "minContains", "maxContains", "maxProperties", "minProperties", "required",
     "additionalProperties", "properties", "patternProperties", "dependencies",
     "dependentRequired", "dependentSchemas", "propertyNames", "unevaluatedItems",
     "unevaluatedProperties", "const", "enum", "type", "format", "contentMediaType",
     "contentEncoding", "contentSchema", "if", "then", "else", "allOf", "anyOf", "oneOf", "not"}
)


def _is_annotation(key: str) -> bool:
    """Keywords that never change validity: annotations and words outside every draft."""
    return key in _ANNOTATIONS or key not in _VOCABULARY


class Builder:
    """Turns conjunctions of subschemas of one whole-call schema into msgspec types."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.counter = 0
        self.depth = 0
        self.no_ids = False
        self.post_root: dict[str, Any] = {"$schema": root.get("$schema")}
        for key in DEFS_KEYS:
            if key in root:
                self.post_root[key] = root[key]

    # -- schema plumbing ----------------------------------------------------------------
    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise Unsupported("non-local $ref")
        node = jp.resolve(self.root, ref[1:], _UNRESOLVED)
        if node is _UNRESOLVED:
            raise Unsupported("unresolvable $ref")
        return node

    def expand(self, schemas: list[Any], refs: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Flatten ``allOf`` and ``$ref``; drop annotation-only schemas."""
        out: list[dict[str, Any]] = []
        for schema in schemas:
            if schema is True:
                continue
            if not isinstance(schema, dict):
                raise Unsupported("false or non-object schema")
            if self.no_ids and ("id" in schema or "$id" in schema):
                raise Unsupported("id beside $ref")
            keys = [k for k in schema if not _is_annotation(k) and k not in ("id", "$id")]
            for key in keys:
                if key not in _TYPED and key not in _POST:
                    raise Unsupported(f"keyword {key}")
            if "$ref" in schema:
                ref = schema["$ref"]
                if len(keys) != 1 or not isinstance(ref, str):
                    raise Unsupported("$ref beside other keywords")
                if ref in refs or len(refs) > 32:
                    raise Unsupported("recursive $ref")
                out.extend(self.expand([self.resolve(ref)], (*refs, ref)))
                continue
            rest = {k: v for k, v in schema.items() if k in keys and k != "allOf"}
            if rest:
                out.append(rest)
            if "allOf" in schema:
                if not isinstance(schema["allOf"], list):
                    raise Unsupported("allOf")
                out.extend(self.expand(schema["allOf"], refs))
        return out

    def post_validator(self, schemas: list[dict[str, Any]]) -> Callable[[Any], bool]:
        """A jsonschema-rs check of the whole conjunction, for values of one field."""
        for schema in schemas:
            text = json.dumps(schema)
            if '"$ref"' in text and not all(
                r.startswith(("#/definitions/", "#/$defs/"))
                for r in local_refs(schema)
            ):
                raise Unsupported("$ref into the rule inside a post-checked schema")
        full = dict(self.post_root)
        full["allOf"] = schemas
        return make_validator(full).is_valid  # type: ignore[no-any-return]

    # -- types --------------------------------------------------------------------------
    def build(self, raw: list[Any], *, exclude: frozenset[str] = frozenset(),
              extra: Mapping[str, list[Any]] | None = None,
              tag: tuple[str, str] | None = None) -> tuple[Any, _Node | None]:
        """``(msgspec type, post-check or None)`` for the conjunction ``raw``."""
        self.depth += 1
        try:
            if self.depth > _MAX_NESTING:
                raise Unsupported(f"recursive $ref or nesting deeper than {_MAX_NESTING}")
            return self._build(raw, exclude, extra, tag)
        finally:
            self.depth -= 1

    def _build(self, raw: list[Any], exclude: frozenset[str],
               extra: Mapping[str, list[Any]] | None, tag: tuple[str, str] | None
               ) -> tuple[Any, _Node | None]:
        schemas = self.expand(raw)
        if not schemas:
            return msgspec.Raw, None  # any JSON value: msgspec checks its syntax only
        types = _types(schemas)
        has_post = any(k in _POST for s in schemas for k in s)
        enums = [s[k] for s in schemas for k in ("enum", "const") if k in s]
        if enums:
            return self._literal(schemas, enums), None
        if types is None:
            raise Unsupported("no type")
        if has_post:
            if not types <= {"string", "null"}:
                raise Unsupported("format, pattern or combinator on a non-string")
            check = self.post_validator(schemas)
            return self._scalar_union(schemas, types), ("leaf", check)
        members: list[Any] = []
        checks: list[_Node] = []
        struct_check = arr_check = None
        if "object" in types:
            struct, struct_check = self._struct(schemas, exclude, extra or {}, tag)
            members.append(struct)
            if struct_check is not None:
                checks.append(("if", struct, struct_check))
        if "array" in types:
            arr, arr_check = self._array(schemas)
            members.append(arr)
            if arr_check is not None:
                checks.append(("if", list, arr_check))
        scalars = types - {"object", "array"}
        if scalars:
            members.append(self._scalar_union(schemas, scalars))
        if len(members) == 1 and (struct_check or arr_check):
            return members[0], struct_check or arr_check  # one kind of value: no type test
        typ = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
        if not checks:
            return typ, None
        if len(checks) == 1:
            return typ, checks[0]
        return typ, ("all", tuple(checks))

    def _literal(self, schemas: list[dict[str, Any]], enums: list[Any]) -> Any:
        values: list[Any] | None = None
        for enum in enums:
            items = enum if isinstance(enum, list) else [enum]
            values = list(items) if values is None else [v for v in values if v in items]
        check = self.post_validator(schemas)
        kept: list[Any] = []
        for value in values or []:
            if value is not None and type(value) not in (str, int):
                raise Unsupported("enum of floats, booleans or containers")
            if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
                raise Unsupported("enum of big integers")
            if check(value) and value not in kept:
                kept.append(value)
        if not kept:
            raise Unsupported("no enum value is valid")
        return Literal[tuple(kept)]

    def _scalar_union(self, schemas: list[dict[str, Any]], types: set[str]) -> Any:
        members: list[Any] = []
        if "string" in types:
            meta = _meta(schemas, (("minLength", "min_length", max), ("maxLength", "max_length",
                                                                    min)))
            members.append(Annotated[str, meta] if meta else str)
        if "number" in types:
            meta = _number_meta(schemas, integer=False)
            members.append(Annotated[float, meta] if meta else float)
        elif "integer" in types:
            members.append(Annotated[int, _number_meta(schemas, integer=True)])
        if "boolean" in types:
            members.append(bool)
        if "null" in types:
            members.append(None)
        return members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007

    def _array(self, schemas: list[dict[str, Any]]) -> tuple[Any, _Node | None]:
        items = [s["items"] for s in schemas if "items" in s]
        if any(not isinstance(i, (dict, bool)) for i in items):
            raise Unsupported("tuple items")
        item, check = self.build(items) if items else (msgspec.Raw, None)
        meta = _meta(schemas, (("minItems", "min_length", max), ("maxItems", "max_length", min)))
        typ = Annotated[list[item], meta] if meta else list[item]  # type: ignore[valid-type]
        if check is None:
            return typ, None
        return typ, ("list", check)

    def _struct(self, schemas: list[dict[str, Any]], exclude: frozenset[str],
                extra: Mapping[str, list[Any]], tag: tuple[str, str] | None
                ) -> tuple[Any, _Node | None]:
        props: dict[str, list[Any]] = {}
        required: set[str] = set()
        allowed: set[str] | None = None
        for schema in schemas:
            own = schema.get("properties", {})
            if not isinstance(own, dict):
                raise Unsupported("properties")
            for key, sub in own.items():
                props.setdefault(key, []).append(sub)
            req = schema.get("required", [])
            if not isinstance(req, list):
                raise Unsupported("required")
            required.update(req)
            addl = schema.get("additionalProperties", True)
            if addl is False:
                allowed = set(own) if allowed is None else allowed & set(own)
            elif addl is not True:
                raise Unsupported("additionalProperties with a schema")
        for key, sub in extra.items():
            props.setdefault(key, []).extend(sub)
            required.add(key)
        names = set(props) | required
        if tag is not None and allowed is not None and tag[0] not in allowed:
            raise Unsupported("the tag field is not an allowed property")
        if allowed is not None:
            if not required <= allowed:
                raise Unsupported("a required property is not allowed")
            names &= allowed
        fields: list[tuple[str, Any, Any]] = []
        rename: dict[str, str] = {}
        checks: list[tuple[str, _Node]] = []
        for index, name in enumerate(sorted(names - exclude)):
            attr = f"f{index}"
            rename[attr] = name
            typ, check = self.build(props.get(name, []))
            if name in required:
                fields.append((attr, typ, msgspec.NODEFAULT))
            else:
                fields.append((attr, Union[typ, msgspec.UnsetType], UNSET))  # noqa: UP007
            if check is not None:
                checks.append((attr, check))
        self.counter += 1
        options: dict[str, Any] = {}
        if tag is not None:
            options = {"tag_field": tag[0], "tag": tag[1]}
        struct = msgspec.defstruct(
            f"T{self.counter}", fields, kw_only=True, rename=rename,
            forbid_unknown_fields=allowed is not None, **options,
        )
        if not checks:
            return struct, None
        return struct, ("struct", tuple(checks))


def local_refs(schema: Any) -> list[str]:
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                found.append(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _types(schemas: list[dict[str, Any]]) -> set[str] | None:
    """The intersection of every ``type``, None if none; ``number`` covers ``integer``."""
    result: set[str] | None = None
    for schema in schemas:
        if "type" not in schema:
            continue
        raw = schema["type"]
        names = set(raw) if isinstance(raw, list) else {raw}
        if not names <= set(_JSON_TYPES):
            raise Unsupported("unknown type")
        if "number" in names:
            names.add("integer")
        result = names if result is None else result & names
    if result is not None:
        if not result:
            raise Unsupported("no value has every type")
        if "number" in result:
            result.discard("integer")
    return result


def _meta(schemas: list[dict[str, Any]],
          spec: tuple[tuple[str, str, Callable[..., int]], ...]) -> msgspec.Meta | None:
    kwargs: dict[str, int] = {}
    for keyword, option, pick in spec:
        for schema in schemas:
            if keyword in schema:
                value = schema[keyword]
                if type(value) is float and value.is_integer():
                    value = int(value)
                if type(value) is not int or value < 0:
                    raise Unsupported(f"{keyword} not a non-negative integer")
                kwargs[option] = pick(kwargs[option], value) if option in kwargs else value
    return msgspec.Meta(**kwargs) if kwargs else None  # type: ignore[call-overload]


def _number_meta(schemas: list[dict[str, Any]], *, integer: bool) -> msgspec.Meta | None:
    """Bounds; integers also get orjson's int range (beyond it orjson makes floats)."""
    lower: list[tuple[float, bool]] = []  # (bound, exclusive)
    upper: list[tuple[float, bool]] = []
    for schema in schemas:
        for keyword, into, exclusive in (("minimum", lower, False), ("maximum", upper, False),
                                         ("exclusiveMinimum", lower, True),
                                         ("exclusiveMaximum", upper, True)):
            if keyword not in schema:
                continue
            value = schema[keyword]
            if type(value) not in (int, float) or not math.isfinite(value) or (
                abs(value) >= _EXACT_FLOAT
            ):
                raise Unsupported(f"{keyword} not a number of exact magnitude")
            into.append((value, exclusive))
    kwargs: dict[str, Any] = {}
    if integer:
        ge = max([_INT_MIN, *(math.floor(b) + 1 if ex else math.ceil(b) for b, ex in lower)])
        le = min([_INT_MAX, *(math.ceil(b) - 1 if ex else math.floor(b) for b, ex in upper)])
        if ge > le:
            raise Unsupported("empty integer range")
        return msgspec.Meta(ge=ge, le=le)
    for bound, ex in lower:
        key = "gt" if ex else "ge"
        kwargs[key] = max(kwargs[key], bound) if key in kwargs else bound
    for bound, ex in upper:
        key = "lt" if ex else "le"
        kwargs[key] = min(kwargs[key], bound) if key in kwargs else bound
    return msgspec.Meta(**kwargs) if kwargs else None


def compile_check(node: _Node | None, identity: tuple[str, ...]) -> Check:
    """One function checking a decoded event: identity, then every post-check in ``node``.

    Generated rather than nested closures: a call per field costs more than the checks.
    Only generated names enter the source (``f<n>`` attributes, ``v<n>`` locals, ``g<n>``
    globals for validators and classes); nothing from the plan does.
    """
    lines = ["def check(o):"]
    scope: dict[str, Any] = {"UNSET": UNSET}
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def attr_ok(attr: str) -> str:
        if not re.fullmatch(r"f[0-9]+", attr):
            raise ValueError(f"unexpected attribute name {attr!r}")
        return attr

    # the envelope's anyOf: userId or anonymousId present and non-empty (numbers count)
    present = [attr_ok(a) for a in identity if a]
    if not present:
        raise Unsupported("no userId or anonymousId can be present")
    indent = " "
    for attr in present:
        var = name("v")
        lines.append(f"{indent}{var} = o.{attr}")
        lines.append(f'{indent}if {var} is UNSET or {var} is None or {var} == "":')
        indent += " "
    lines.append(f"{indent}return False")

    def emit(node: _Node, var: str, depth: int) -> None:
        pad = " " * depth
        kind = node[0]
        if kind == "leaf":
            glob = name("g")
            scope[glob] = node[1]
            lines.append(f"{pad}if not {glob}({var}): return False")
        elif kind == "struct":
            for attr, sub in node[1]:
                inner = name("v")
                lines.append(f"{pad}{inner} = {var}.{attr_ok(attr)}")
                lines.append(f"{pad}if {inner} is not UNSET:")
                emit(sub, inner, depth + 1)
        elif kind == "list":
            inner = name("v")
            lines.append(f"{pad}for {inner} in {var}:")
            emit(node[1], inner, depth + 1)
        elif kind == "if":
            glob = name("g")
            scope[glob] = node[1]
            lines.append(f"{pad}if isinstance({var}, {glob}):")
            emit(node[2], var, depth + 1)
        else:  # "all"
            for sub in node[1]:
                emit(sub, var, depth)

    if node is not None:
        emit(node, "o", 1)
    lines.append(" return True")
    exec(compile("\n".join(lines), "<trackplan typed check>", "exec"), scope)  # noqa: S102
    check: Check = scope["check"]
    return check
