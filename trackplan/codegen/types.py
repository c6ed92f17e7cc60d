"""Map JSON Schemas to Python annotations and TypedDict class specs for generated code.

A :class:`TypeMapper` reads rule schemas (with ``$ref`` resolved against the rule's
whole-call schema and the plan's definitions) and returns annotation source text such
as ``list[Product] | None``; nested objects become :class:`ClassSpec` entries, listed
children first so functional ``TypedDict(...)`` forms never refer forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trackplan import pointer as jp
from trackplan.codegen.names import Namespace, literal

__all__ = ["FieldSpec", "ClassSpec", "TypeMapper", "resolve_ref", "is_nullable", "split_union"]

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
_DEFS = ("definitions", "$defs")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One property of a generated class or method: wire name, annotation, docs."""

    wire: str
    annotation: str
    required: bool
    description: str | None


@dataclass(slots=True)
class ClassSpec:
    """A TypedDict to emit: its identifier, docstring and fields (in plan order)."""

    name: str
    description: str | None
    fields: list[FieldSpec] = field(default_factory=list)


def resolve_ref(root: Any, ref: str) -> Any:
    """The target of a local ``$ref`` in ``root``; raises ``KeyError`` when absent or remote."""
    if not ref.startswith("#"):
        raise KeyError(ref)
    node = root
    for token in jp.parse(ref[1:]) if ref != "#" else []:
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, Mapping):
            node = node[token]
        else:
            raise KeyError(ref)
    return node


def is_nullable(schema: Any, root: Any) -> bool:
    """True when the schema lets ``null`` through at its top level (type, enum or union)."""
    seen: set[str] = set()
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if ref in seen:
            return False
        seen.add(ref)
        try:
            schema = resolve_ref(root, ref)
        except (KeyError, IndexError, ValueError):
            return False
    if schema is True or schema == {}:
        return True
    if not isinstance(schema, Mapping):
        return False
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    if "enum" in schema:
        return None in schema["enum"]
    if "const" in schema:
        return schema["const"] is None
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return any(is_nullable(s, root) for s in schema[key])
    return types is None and "properties" not in schema


def _literal_ok(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | str)


def _union(parts: list[str]) -> str:
    out: list[str] = []
    for part in parts:
        for piece in split_union(part):
            if piece not in out:
                out.append(piece)
    if "Any" in out:
        return "Any"
    if "None" in out:  # None last reads best: ``str | None``
        out.remove("None")
        out.append("None")
    return " | ".join(out) if out else "Any"


def split_union(annotation: str) -> list[str]:
    """The top-level members of a ``A | B`` annotation (brackets and the string literals
    inside ``Literal[...]`` respected: ``Literal[']', 'a | b']`` is one member)."""
    depth, start, parts = 0, 0, []
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(annotation):
        if quote is not None:  # inside a literal made by repr(): skip to its end
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif depth == 0 and annotation.startswith(" | ", i):
            parts.append(annotation[start:i])
            start = i + 3
    parts.append(annotation[start:])
    return [p for p in parts if p]


class TypeMapper:
    """Annotations for schemas; collects the TypedDicts they need in ``classes``."""

    def __init__(self, module: Namespace) -> None:
        self.module = module
        self.classes: list[ClassSpec] = []
        self._defs_by_content: dict[str, str] = {}
        self._active: set[str] = set()
        self.uses: set[str] = set()  # typing names the annotations need

    # -- public ------------------------------------------------------------------
    def annotation(self, schema: Any, root: Any, hint: str) -> str:
        """Annotation source for ``schema``; ``hint`` names a class it may create."""
        return self._ann(schema, root, hint, 0)

    def fields(self, schema: Any, root: Any, hint: str) -> list[FieldSpec]:
        """The properties of an object schema as fields (required ones keep plan order)."""
        schema = self._deref(schema, root)
        if not isinstance(schema, Mapping):
            return []
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        out: list[FieldSpec] = []
        for wire, sub in props.items():
            ann = self._ann(sub, root, f"{hint} {wire}", 0)
            desc = sub.get("description") if isinstance(sub, Mapping) else None
            if not desc and isinstance(sub, Mapping) and "$ref" in sub:
                target = self._deref(sub, root)
                desc = target.get("description") if isinstance(target, Mapping) else None
            out.append(FieldSpec(wire, ann, wire in required, desc or None))
        for wire in required:
            if wire not in props:
                self.uses.add("Any")
                out.append(FieldSpec(wire, "Any", True, None))
        return out

    def class_for(self, schema: Mapping[str, Any], root: Any, hint: str) -> str:
        """Create a TypedDict for an object schema; returns its identifier."""
        name = self.module.one(hint, style="pascal", fallback="Model")
        spec = ClassSpec(name, schema.get("description") or None)
        spec.fields = self.fields(schema, root, name)
        self.classes.append(spec)
        self.uses.add("TypedDict")
        if any(not f.required for f in spec.fields):
            self.uses.add("NotRequired")
        return name

    # -- internals ---------------------------------------------------------------
    def _deref(self, schema: Any, root: Any) -> Any:
        seen: set[str] = set()
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref in seen:
                return {}
            seen.add(ref)
            try:
                schema = resolve_ref(root, ref)
            except (KeyError, IndexError, ValueError):
                return {}
        return schema

    def _any(self) -> str:
        self.uses.add("Any")
        return "Any"

    def _ann(self, schema: Any, root: Any, hint: str, depth: int) -> str:
        if depth > 64 or not isinstance(schema, Mapping) or not schema:
            return self._any()
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._ref(ref, root, hint, depth)
        if "const" in schema:
            if _literal_ok(schema["const"]):
                return self._literals([schema["const"]])
        elif isinstance(schema.get("enum"), list) and schema["enum"]:
            values = schema["enum"]
            if all(_literal_ok(v) for v in values):
                return self._literals(values)
        types = schema.get("type")
        if types is None:
            for key in ("anyOf", "oneOf"):
                branches = schema.get(key)
                if isinstance(branches, list) and branches:
                    return _union([self._ann(b, root, hint, depth + 1) for b in branches])
            if isinstance(schema.get("properties"), Mapping):
                types = "object"
            else:
                return self._any()
        names = [types] if isinstance(types, str) else [t for t in types if isinstance(t, str)]
        parts: list[str] = []
        for name in names:
            if name in _SCALARS:
                parts.append(_SCALARS[name])
            elif name == "array":
                items = schema.get("items")
                inner = (
                    self._ann(items, root, f"{hint} item", depth + 1)
                    if isinstance(items, Mapping)
                    else self._any()
                )
                parts.append(f"list[{inner}]")
            elif name == "object":
                props = schema.get("properties")
                if isinstance(props, Mapping) and props:
                    parts.append(self.class_for(schema, root, hint))
                else:
                    parts.append(f"dict[str, {self._any()}]")
            else:
                parts.append(self._any())
        return _union(parts)

    def _literals(self, values: list[Any]) -> str:
        plain = [v for v in values if v is not None]
        parts = []
        if plain:
            self.uses.add("Literal")
            parts.append("Literal[" + ", ".join(literal(v) for v in plain) + "]")
        if len(plain) != len(values):
            parts.append("None")
        return _union(parts)

    def _ref(self, ref: str, root: Any, hint: str, depth: int) -> str:
        try:
            target = resolve_ref(root, ref)
        except (KeyError, IndexError, ValueError):
            return self._any()
        tokens = jp.parse(ref[1:]) if ref.startswith("#/") else []
        is_def = len(tokens) == 2 and tokens[0] in _DEFS
        if ref in self._active:
            return self._any()  # a recursive schema: typed as Any below the first level
        if is_def and isinstance(target, Mapping):
            # one class per shared definition, whichever rule reaches it first
            key = literal(tokens[1]) + literal(dict(target))
            if key in self._defs_by_content:
                return self._defs_by_content[key]
            self._active.add(ref)
            try:
                ann = self._ann(target, root, tokens[1], depth + 1)
            finally:
                self._active.discard(ref)
            self._defs_by_content[key] = ann
            return ann
        self._active.add(ref)
        try:
            return self._ann(target, root, hint, depth + 1)
        finally:
            self._active.discard(ref)
