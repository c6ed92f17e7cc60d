"""Compile a payload JSON Schema into vectorised Arrow compute over whole columns.

Each schema node becomes a :class:`Node` whose :meth:`Node.evaluate` takes an Arrow array
(one value per row, null meaning *absent*) and returns, per failing check, a boolean mask
of the rows that break it. Keywords without a vectorised form send that subtree to the
per-row engine (:func:`trackplan.schema.make_validator`) for those values only,
and the node records that it did.

Conventions, shared with :func:`to_json` (the per-row view of a row):

* a null struct field or column is an absent property (warehouse exports cannot tell the
  two apart); a null list element is a JSON ``null``;
* fields are dotted property paths with ``[]`` for array items: ``products[].price``.

>>> node = compile_payload({"type": "object", "required": ["a"]}, {})   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trackplan.batch.formats import FORMAT_PREFILTERS, FormatCheck, match_repetitive
from trackplan.schema.validator import make_validator

__all__ = [
    "Node",
    "compile_payload",
    "to_json",
    "row_failures",
    "Failure",
    "FORMAT_PREFILTERS",
    "FieldPath",
    "field_parts",
    "struct_child",
]

Failure = tuple[str, str, pa.BooleanArray]
"""(field, keyword, mask of failing rows)."""

#: Keywords with no effect on validity, or handled by the node that owns them.
_INERT = frozenset(
    {
        "description", "title", "examples", "default", "$comment", "deprecated", "readOnly",
        "writeOnly", "$schema", "$id", "definitions", "$defs", "contentMediaType",
        "contentEncoding",
    }
)  # fmt: skip
_VECTOR = frozenset(
    {
        "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minLength", "maxLength", "pattern", "format", "properties", "required",
        "additionalProperties", "items", "minItems", "maxItems", "$ref", "anyOf", "allOf",
    }
)  # fmt: skip


def to_json(value: Any) -> Any:
    """The JSON value a row's Python value stands for: absent (None) dict values dropped."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, tuple):  # map arrays come back as lists of (key, value)
        return list(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class FieldPath(str):
    """A field in this module's notation (``products[].price``) that keeps its parts.

    A property name may hold a dot or start with one (``.x``, ``a.b``): the text is for
    reports, :attr:`parts` (``[]`` for array items) say where the value is.
    """

    parts: tuple[str, ...]

    def __new__(cls, parts: tuple[str, ...]) -> FieldPath:
        text = ""
        for part in parts:
            text = text + part if part == "[]" or not text else f"{text}.{part}"
        self = super().__new__(cls, text)
        self.parts = parts
        return self


def field_parts(field: str) -> tuple[str, ...]:
    """The parts of a field (a plain string is split at its dots, as it reads)."""
    if isinstance(field, FieldPath):
        return field.parts
    return tuple(p for p in field.replace("[]", ".[].").split(".") if p)


def struct_child(arr: Any, name: str) -> Any:
    """The child ``name`` of a struct array, addressed by its index: pyarrow reads a name
    starting with ``.`` or ``[`` as a path (``.x`` would be the child ``x``)."""
    index = next(i for i, f in enumerate(arr.type) if f.name == name)
    return pc.struct_field(arr, [index])


def row_failures(validator: Any, instance: Any, base: str = "") -> set[tuple[str, str]]:
    """The per-row engine's failures as (field, keyword), in this module's field notation."""
    out: set[tuple[str, str]] = set()
    for error in validator.iter_errors(instance):
        parts = ["[]" if isinstance(p, int) else str(p) for p in error.instance_path]
        keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
        if keyword == "required":
            missing = getattr(error.kind, "property", None)
            if missing is not None:
                parts.append(str(missing))
        out.add((FieldPath((*field_parts(base), *parts)), keyword))
    return out


def _join(base: str, child: str) -> FieldPath:
    """``base`` and one more part (a property name, or ``[]``)."""
    return FieldPath((*field_parts(base), child))


def _json_type(typ: pa.DataType) -> str | None:
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "string"
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_integer(typ):
        return "integer"
    if pa.types.is_floating(typ):
        return "number"
    if pa.types.is_struct(typ):
        return "object"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return "array"
    if pa.types.is_null(typ):
        return "null"
    return None  # anything else (timestamps, decimals, maps...) goes per-row


def _rows_mask(n: int, rows: Any) -> pa.BooleanArray:
    """A mask of length ``n`` true at the given row indexes."""
    mask = np.zeros(n, dtype=bool)
    idx = rows.to_numpy(zero_copy_only=False) if hasattr(rows, "to_numpy") else np.asarray(rows)
    if len(idx):
        mask[idx.astype(np.int64)] = True
    return pa.array(mask)


def _any(mask: pa.BooleanArray) -> bool:
    """Whether any value of ``mask`` is true (nulls are not)."""
    return bool(pc.any(mask).as_py())


def _fill(mask: Any) -> pa.BooleanArray:
    """A mask with nulls (absent values) read as not failing."""
    arr = mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask
    return pc.fill_null(arr, False) if arr.null_count else arr


class Node:
    """One compiled schema node for the values at ``field``."""

    def __init__(
        self,
        schema: Any,
        field: str,
        defs: Mapping[str, Any],
        *,
        items: bool = False,
        depth: int = 0,
    ) -> None:
        self.field = field
        self.defs = defs
        self.items = items  # values are array elements: null means JSON null
        schema = self._resolve(schema, depth)
        self.schema = schema
        self.fallback: Any = None
        self.fallback_reason = ""
        self.children: dict[str, Node] = {}
        self.item_node: Node | None = None
        self._format: FormatCheck | None = None
        self.any_of: list[Node] = []
        self.all_of: list[Node] = []
        if isinstance(schema, bool):
            if not schema:
                self._fall_back(schema, "false schema")
            return
        if not isinstance(schema, Mapping):
            self._fall_back(True, "not a schema")
            return
        unknown = sorted(
            k for k in schema if k not in _VECTOR and k not in _INERT and not k.startswith("x-")
        )
        ap = schema.get("additionalProperties")
        if ap is not None and ap is not False:
            unknown.append("additionalProperties")
        items_schema = schema.get("items")
        if items_schema is not None and not isinstance(items_schema, (Mapping, bool)):
            unknown.append("items")
        for keyword in ("anyOf", "allOf"):
            branches = schema.get(keyword)
            if keyword in schema and (not isinstance(branches, list) or not branches):
                unknown.append(keyword)
        if depth > 16:
            unknown.append("depth")
        if unknown:
            self._fall_back(schema, ", ".join(unknown))
            return
        fmt = schema.get("format")
        if isinstance(fmt, str):
            self._format = FormatCheck(fmt)
        for name, sub in (schema.get("properties") or {}).items():
            self.children[name] = Node(sub, _join(field, name), defs, depth=depth + 1)
        if isinstance(items_schema, (Mapping, bool)):
            self.item_node = Node(
                items_schema, _join(field, "[]"), defs, items=True, depth=depth + 1
            )
        # branches check the same values, so they share this node's field and null rule
        for keyword, branches in (("anyOf", self.any_of), ("allOf", self.all_of)):
            for sub in schema.get(keyword) or ():
                branches.append(Node(sub, field, defs, items=items, depth=depth + 1))

    def _resolve(self, schema: Any, depth: int) -> Any:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            prefix = next((p for p in ("#/definitions/", "#/$defs/") if ref.startswith(p)), None)
            if not isinstance(ref, str) or prefix is None or "/" in ref[len(prefix) :]:
                return {"$ref": ref, "x-unresolved": True, "not": {}}  # falls back per-row
            target = self.defs.get(ref[len(prefix) :])
            if target is None:
                return {"$ref": ref, "not": {}}
            schema = target
            seen += 1
        return schema

    def _fall_back(self, schema: Any, reason: str) -> None:
        whole = schema
        if isinstance(schema, Mapping):
            whole = {**schema, "definitions": dict(self.defs), "$defs": dict(self.defs)}
        self.fallback = make_validator(whole)
        self.fallback_reason = reason

    # -- inspection -----------------------------------------------------------------

    def per_row(self) -> Iterator[tuple[str, str]]:
        """(field, reason) for every subtree that runs on the per-row engine."""
        if self.fallback is not None:
            yield self.field or "(payload)", self.fallback_reason
        for child in [*self.children.values(), *self.any_of, *self.all_of]:
            yield from child.per_row()
        if self.item_node is not None:
            yield from self.item_node.per_row()

    # -- evaluation -----------------------------------------------------------------

    def evaluate(self, arr: pa.Array) -> list[Failure]:
        """Masks of failing values (length ``len(arr)``), one per (field, keyword)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            if self.items:  # a null item is a JSON null, which the dictionary cannot hold
                arr = arr.dictionary_decode()
            else:
                # once per distinct value, then back to the rows (null indexes: absent)
                encoded: pa.DictionaryArray = arr
                return [
                    (f, k, _fill(pc.take(mask, encoded.indices)))
                    for f, k, mask in self.evaluate(encoded.dictionary)
                    if _any(mask)
                ]
        if self.fallback is not None:
            return self._evaluate_per_row(arr)
        schema = self.schema
        if schema is True or not isinstance(schema, Mapping):
            return []
        jtype = _json_type(arr.type)
        if jtype is None:
            by_type = self._temporal(arr)
            return self._evaluate_per_row(arr) if by_type is None else by_type
        out: list[Failure] = []
        nulls_count = self.items and arr.null_count > 0
        self._type_ok(arr, jtype, out, nulls_count)
        if "enum" in schema or "const" in schema:
            self._enum(arr, jtype, out, nulls_count)
        if jtype in ("integer", "number"):
            self._numeric(arr, out)
        elif jtype == "string":
            self._string(arr, out)
        elif jtype == "object":
            self._object(arr, out)
        elif jtype == "array":
            self._array(arr, out)
        for branch in self.all_of:  # every branch's failures, under their own keywords
            out.extend(branch.evaluate(arr))
        if self.any_of:
            self._any_of(arr, out)
        return out

    def _temporal(self, arr: pa.Array) -> list[Failure] | None:
        """Timestamp and date columns checked by their type (None: not decidable so).

        A warehouse writes such a column from the event's string, which it parsed as a
        date-time (or a date): a present value is a JSON string of that format.
        """
        typ = arr.type
        if pa.types.is_timestamp(typ):
            formats: tuple[str, ...] = ("date-time",)
        elif pa.types.is_date(typ):
            formats = ("date",)
        else:
            return None
        s = self.schema
        if not isinstance(s, Mapping):
            return None
        keywords = {k for k in s if k not in _INERT and not k.startswith("x-")}
        if keywords - {"type", "format"} or s.get("format", formats[0]) not in formats:
            return None
        declared = s.get("type")
        allowed = {"string", "null"} if declared is None else (
            {declared} if isinstance(declared, str) else set(declared)
        )
        bad = pc.is_valid(arr) if "string" not in allowed else None
        if self.items and arr.null_count and "null" not in allowed:
            nulls = pc.is_null(arr)  # a null item is a JSON null
            bad = nulls if bad is None else pc.or_(bad, nulls)
        return [] if bad is None else [(self.field, "type", _fill(bad))]

    def _any_of(self, arr: pa.Array, out: list[Failure]) -> None:
        """Values failing every branch; each branch sees only what earlier ones rejected.

        The per-row engine reports one ``anyOf`` failure, whatever failed inside; trying
        the branches in order keeps the costly ones (an IPv6 check after IPv4) to the few
        values the cheap ones reject.
        """
        left = np.arange(len(arr), dtype=np.int64)
        values = arr
        for branch in self.any_of:
            failed = np.zeros(len(values), dtype=bool)
            for _, _, mask in branch.evaluate(values):
                failed |= _fill(mask).to_numpy(zero_copy_only=False)
            left = left[failed]
            if not len(left):
                return
            values = arr.take(pa.array(left))
        out.append((self.field, "anyOf", _rows_mask(len(arr), left)))

    def _type_ok(self, arr: pa.Array, jtype: str, out: list[Failure], nulls_count: bool) -> bool:
        declared = self.schema.get("type")
        if declared is None:
            return True
        allowed = {declared} if isinstance(declared, str) else set(declared)
        ok = jtype in allowed or (jtype == "integer" and "number" in allowed)
        if jtype == "null":
            ok = not self.items or "null" in allowed
            if not ok:
                out.append((self.field, "type", pc.is_null(arr)))
            return ok
        if not ok and jtype == "number" and "integer" in allowed:
            # floats with no fractional part are integers to JSON Schema
            whole = pc.equal(pc.floor(arr), arr)
            bad = _fill(pc.invert(whole))
            if nulls_count and "null" not in allowed:
                bad = pc.or_(bad, pc.is_null(arr))
            out.append((self.field, "type", bad))
            return False
        mask: pa.BooleanArray
        if not ok:
            mask = (
                pc.is_valid(arr)
                if not nulls_count or "null" in allowed
                else pa.array(np.ones(len(arr), dtype=bool))
            )
        elif nulls_count and "null" not in allowed:
            mask = pc.is_null(arr)
        else:
            return True
        out.append((self.field, "type", mask))
        return ok

    def _enum(self, arr: pa.Array, jtype: str, out: list[Failure], nulls_count: bool) -> None:
        schema = self.schema
        keyword = "const" if "const" in schema else "enum"
        values = [schema["const"]] if keyword == "const" else list(schema["enum"])
        if jtype in ("object", "array"):
            self._per_row_keyword(arr, {keyword: schema[keyword]}, keyword, out)
            return

        def fits(v: Any) -> bool:
            if jtype == "boolean":
                return isinstance(v, bool)
            if jtype in ("integer", "number"):
                return isinstance(v, (int, float)) and not isinstance(v, bool)
            return isinstance(v, str) if jtype == "string" else False

        candidates = [v for v in values if fits(v)]
        if candidates:
            value_set = pa.array(candidates, type=arr.type if jtype != "number" else None)
            if jtype in ("integer", "number"):
                value_set = pc.cast(pa.array([float(v) for v in candidates]), pa.float64())
                member = pc.is_in(pc.cast(arr, pa.float64()), value_set=value_set)
            else:
                member = pc.is_in(arr, value_set=value_set)
            bad = pc.and_(pc.is_valid(arr), pc.invert(member))
        else:
            bad = pc.is_valid(arr)
        if nulls_count and None not in values:
            bad = pc.or_(bad, pc.is_null(arr))
        out.append((self.field, keyword, _fill(bad)))

    def _numeric(self, arr: pa.Array, out: list[Failure]) -> None:
        s = self.schema
        for keyword, op in (("minimum", "less"), ("maximum", "greater"),
                            ("exclusiveMinimum", "less_equal"),
                            ("exclusiveMaximum", "greater_equal")):  # fmt: skip
            bound = s.get(keyword)
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                out.append((self.field, keyword, _fill(_beyond(arr, op, bound))))

    def _string(self, arr: pa.Array, out: list[Failure]) -> None:
        s = self.schema
        low, high = s.get("minLength"), s.get("maxLength")
        if isinstance(low, int) or isinstance(high, int):
            # a string has at most as many characters as bytes (and is empty exactly when
            # it has no bytes): counting characters is needed only where bytes do not decide
            size = pc.binary_length(arr)
            if isinstance(low, int):
                length = size if low <= 1 else pc.utf8_length(arr)
                out.append((self.field, "minLength", _fill(pc.less(length, _count(low)))))
            if isinstance(high, int) and _any(pc.greater(size, _count(high))):
                too_long = pc.greater(pc.utf8_length(arr), _count(high))
                out.append((self.field, "maxLength", _fill(too_long)))
        pattern = s.get("pattern")
        if isinstance(pattern, str):
            try:
                ok = match_repetitive(arr, pattern)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self._per_row_keyword(arr, {"pattern": pattern}, "pattern", out)
            else:
                out.append((self.field, "pattern", _fill(pc.invert(ok))))
        if self._format is not None:
            bad = self._format.failing(arr)
            if bad is not None:
                out.append((self.field, "format", bad))

    def _object(self, arr: pa.Array, out: list[Failure]) -> None:
        s = self.schema
        typ = arr.type
        names = {f.name for f in typ}
        valid = pc.is_valid(arr)
        for name in s.get("required") or ():
            if name in names:
                missing = pc.and_(valid, pc.is_null(struct_child(arr, name)))
            else:
                missing = valid
            out.append((_join(self.field, name), "required", _fill(missing)))
        for name, child in self.children.items():
            if name not in names:
                continue
            for f, k, mask in child.evaluate(struct_child(arr, name)):
                out.append((f, k, mask))
        if s.get("additionalProperties") is False:
            extra = [n for n in names if n not in self.children]
            if extra:
                any_extra = pc.is_valid(struct_child(arr, extra[0]))
                for name in extra[1:]:
                    any_extra = pc.or_(any_extra, pc.is_valid(struct_child(arr, name)))
                out.append((self.field, "additionalProperties", _fill(any_extra)))

    def _array(self, arr: pa.Array, out: list[Failure]) -> None:
        s = self.schema
        if "minItems" in s or "maxItems" in s:
            length = pc.list_value_length(arr)
            if isinstance(s.get("minItems"), int):
                bad = pc.less(length, _count(s["minItems"]))
                out.append((self.field, "minItems", _fill(bad)))
            if isinstance(s.get("maxItems"), int):
                bad = pc.greater(length, _count(s["maxItems"]))
                out.append((self.field, "maxItems", _fill(bad)))
        if self.item_node is None:
            return
        flat = pc.list_flatten(arr)
        if len(flat) == 0:
            return
        parents = pc.list_parent_indices(arr)
        for f, k, mask in self.item_node.evaluate(flat):
            if not _any(mask):
                continue
            rows = pc.unique(pc.filter(parents, mask))
            if len(rows):
                out.append((f, k, _rows_mask(len(arr), rows)))

    def _per_row_keyword(
        self, arr: pa.Array, schema: Mapping[str, Any], keyword: str, out: list[Failure]
    ) -> None:
        validator = make_validator(schema)
        values = arr.to_pylist()
        bad = [(v is not None or self.items) and not validator.is_valid(to_json(v)) for v in values]
        out.append((self.field, keyword, pa.array(bad, pa.bool_())))

    def _evaluate_per_row(self, arr: pa.Array) -> list[Failure]:
        """The per-row engine on this subtree, for present values only.

        A scalar's verdict depends on its value alone: repetitive scalar columns go to
        the engine once per distinct value.
        """
        if not self.items and len(arr) >= 256 and not pa.types.is_nested(arr.type):
            try:
                encoded = pc.dictionary_encode(arr)
            except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid):
                encoded = None
            if encoded is not None and len(encoded.dictionary) * 2 < len(arr):
                return self.evaluate(encoded)
        validator = self.fallback
        if validator is None:
            schema = self.schema
            if isinstance(schema, Mapping):
                schema = {**schema, "definitions": dict(self.defs), "$defs": dict(self.defs)}
            validator = self.fallback = make_validator(schema)
            self.fallback_reason = f"column type {arr.type}"
        masks: dict[tuple[str, str], list[int]] = {}
        for i, value in enumerate(arr.to_pylist()):
            if value is None and not self.items:
                continue
            instance = to_json(value)
            if validator.is_valid(instance):
                continue
            for key in row_failures(validator, instance, self.field):
                masks.setdefault(key, []).append(i)
        n = len(arr)
        out: list[Failure] = []
        for (f, k), rows in masks.items():
            out.append((f, k, _rows_mask(n, rows)))
        return out


_INT64 = (-(2**63), 2**63 - 1)


def _count(bound: int) -> int:
    """A length bound as an Arrow scalar can hold it (a length never exceeds int64)."""
    return min(max(bound, -1), _INT64[1])


#: x op bound, for a float x and an integer bound that no float equals: the same as
#: x op' f with f the float nearest the bound (no float lies between them), where op'
#: is op when f is on the failing side of the bound, else op with its equality flipped
_NEAREST = {
    "less": ("less_equal", "less"),
    "less_equal": ("less_equal", "less"),
    "greater": ("greater", "greater_equal"),
    "greater_equal": ("greater", "greater_equal"),
}


def _beyond(arr: pa.Array, op: str, bound: float) -> pa.Array:
    """``arr op bound`` exactly, for any JSON number ``bound`` (integers beyond 64 bits
    included, which an Arrow scalar cannot hold)."""
    if isinstance(bound, float) or _INT64[0] <= bound <= _INT64[1]:
        return getattr(pc, op)(arr, pa.scalar(bound))
    if pa.types.is_unsigned_integer(arr.type) and 0 <= bound < 2**64:
        return getattr(pc, op)(arr, pa.scalar(bound, pa.uint64()))
    if pa.types.is_integer(arr.type):  # every value is on one side of such a bound
        side = (bound < 0) == op.startswith("greater")
        return pc.if_else(pc.is_valid(arr), pa.scalar(side), pa.scalar(None, pa.bool_()))
    nearest = float(bound)
    if nearest == bound:
        return getattr(pc, op)(arr, pa.scalar(nearest))
    below, above = _NEAREST[op]
    return getattr(pc, below if nearest < bound else above)(arr, pa.scalar(nearest))


def compile_payload(schema: Any, defs: Mapping[str, Any]) -> Node:
    """The vectorised check of a rule's payload schema (``rule.payload``)."""
    return Node(schema if schema is not None else True, "", defs)
