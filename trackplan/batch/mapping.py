"""Which columns of an export hold what: nested or flat (Segment warehouse) layouts.

Two layouts exist in the wild:

* **nested**: one row per call with a ``properties`` (or ``traits``) struct column, a
  ``context`` struct and an ``event`` column, as the events arrive;
* **flat**: Segment's warehouse tables, one table per event, each property a snake_cased
  column, context flattened into ``context_*`` columns, the event name in ``event`` or
  ``event_text``.

:func:`infer_layout` looks at an Arrow schema and decides; :class:`LayoutOptions`
overrides what it guesses. :func:`payload_struct` then presents the payload of either
layout as one struct array, so the rules see one shape.

>>> infer_layout(pa.schema([("event", pa.string()), ("order_id", pa.string())])).kind
'flat'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "Layout",
    "LayoutOptions",
    "infer_layout",
    "payload_struct",
    "snake_case",
    "ENVELOPE_COLUMNS",
    "call_struct",
    "CALL_ALIASES",
]

#: Columns of a flat warehouse table that belong to the call, not to its properties.
ENVELOPE_COLUMNS = frozenset(
    {
        "id", "message_id", "anonymous_id", "user_id", "event", "event_text", "type",
        "timestamp", "original_timestamp", "sent_at", "received_at", "uuid_ts", "loaded_at",
        "channel", "context", "integrations", "version", "messageId", "anonymousId", "userId",
        "sentAt", "receivedAt", "originalTimestamp", "name", "category", "group_id",
        "groupId", "previous_id", "previousId", "properties", "traits",
    }
)  # fmt: skip

_CAMEL_1 = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")
_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")


def snake_case(name: str) -> str:
    """Segment's warehouse column name for a property: ``orderId`` -> ``order_id``."""
    name = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", name))
    return _NON_WORD.sub("_", name).strip("_").lower()


@dataclass(frozen=True, slots=True)
class LayoutOptions:
    """What the user says about the layout; ``None`` means infer it.

    Attributes:
        kind: ``nested`` or ``flat``.
        event: a fixed event name for every row (a flat table per event without an event
            column).
        columns: property name -> column name, for flat tables whose names differ.
    """

    kind: Literal["nested", "flat"] | None = None
    event: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the event name, call type, event version and payload are in a batch."""

    kind: Literal["nested", "flat"]
    event_column: str | None
    type_column: str | None
    version_path: tuple[str, ...] | None
    payload_column: str | None
    fixed_event: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)

    def payload_columns(self, schema: pa.Schema, properties: Sequence[str]) -> dict[str, str]:
        """Flat layout: property name -> column holding it, for every payload column.

        Declared properties map to their override, their own name or their snake_cased
        name, whichever exists; every other non-envelope column is an undeclared property
        under its column name.
        """
        names = set(schema.names)
        out: dict[str, str] = {}
        used: set[str] = set()
        for prop in properties:
            for candidate in (self.columns.get(prop), prop, snake_case(prop)):
                if candidate is not None and candidate in names and candidate not in used:
                    out[prop] = candidate
                    used.add(candidate)
                    break
        for name in schema.names:
            if name in used or name in ENVELOPE_COLUMNS or name.startswith("context_"):
                continue
            if name.startswith("__") or name in out:
                continue
            out[name] = name
        return out


def _field_path(schema: pa.Schema, path: Sequence[str]) -> bool:
    """Whether the nested struct path exists in ``schema``."""
    if path[0] not in schema.names:
        return False
    typ = schema.field(path[0]).type
    for part in path[1:]:
        if not pa.types.is_struct(typ) or typ.get_field_index(part) < 0:
            return False
        typ = typ.field(part).type
    return True


def infer_layout(schema: pa.Schema, options: LayoutOptions | None = None) -> Layout:
    """Decide the layout of a batch schema, honouring ``options``.

    Nested when a ``properties`` or ``traits`` struct column exists, flat otherwise.
    """
    options = options or LayoutOptions()
    payload: str | None = None
    for name in ("properties", "traits"):
        if name in schema.names and pa.types.is_struct(schema.field(name).type):
            payload = name
            break
    kind = options.kind or ("nested" if payload is not None else "flat")
    if kind == "flat":
        payload = None
    # Segment's warehouse tables hold the original name in event_text, snake_cased in event
    event_column = next((c for c in ("event_text", "event") if c in schema.names), None)
    type_column = "type" if "type" in schema.names else None
    version_path: tuple[str, ...] | None = None
    for path in (
        ("context", "protocols", "event_version"),
        ("context_protocols_event_version",),
    ):
        if _field_path(schema, path):
            version_path = path
            break
    return Layout(
        kind=kind,
        event_column=event_column,
        type_column=type_column,
        version_path=version_path,
        payload_column=payload,
        fixed_event=options.event,
        columns=dict(options.columns),
    )


def column_at(batch: pa.RecordBatch, path: Sequence[str]) -> pa.Array:
    """The array at a nested struct path, with parent nulls propagated."""
    arr: pa.Array = batch.column(path[0])
    for part in path[1:]:
        arr = pc.struct_field(arr, part)
    return arr


def payload_struct(
    batch: pa.RecordBatch,
    layout: Layout,
    properties: Sequence[str],
    payload_key: str | None = None,
) -> tuple[pa.StructArray, dict[str, str]]:
    """The payload of every row as one struct array, and property -> source column.

    In the nested layout the payload is the rule's ``payload_key`` column (``traits``
    for identify and group) when the batch has it. A null payload struct (a nested row
    without ``properties``) reads as an empty object, as Segment treats it.
    """
    if layout.payload_column is not None:
        column = layout.payload_column
        if payload_key is not None and payload_key in batch.schema.names:
            if pa.types.is_struct(batch.schema.field(payload_key).type):
                column = payload_key
        arr = batch.column(column)
        if arr.null_count:
            # a missing properties object is an empty one: drop the parent validity
            arr = pa.StructArray.from_arrays(
                [pc.struct_field(arr, i) for i in range(arr.type.num_fields)],
                fields=list(arr.type),
            )
        sources = {f.name: f"{column}.{f.name}" for f in arr.type}
        return arr, sources
    mapping = layout.payload_columns(batch.schema, properties)
    if not mapping:
        empty = pa.StructArray.from_arrays([pa.nulls(batch.num_rows)], names=["__none__"])
        return empty, {}
    arrays = [batch.column(col) for col in mapping.values()]
    struct = pa.StructArray.from_arrays(arrays, names=list(mapping))
    return struct, dict(mapping)


#: Segment warehouse columns of call fields whose snake_cased name differs.
CALL_ALIASES: Mapping[str, tuple[str, ...]] = {"messageId": ("id",)}


def _resolve(schema: object, defs: Mapping[str, object]) -> Mapping[str, object]:
    """The schema behind local ``$ref``s, or ``{}`` when it is not an object schema."""
    for _ in range(8):
        if not isinstance(schema, Mapping):
            return {}
        ref = schema.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#/definitions/")):
            return schema
        schema = defs.get(ref.split("/", 2)[2])
    return {}


def _declared(schema: object, defs: Mapping[str, object]) -> dict[str, object]:
    """The ``properties`` of an object schema (through local ``$ref``s)."""
    props = _resolve(schema, defs).get("properties")
    return dict(props) if isinstance(props, Mapping) else {}


def _remap(arr: pa.Array, schema: object, defs: Mapping[str, object]) -> pa.Array:
    """A struct column with its declared fields under their schema names (``user_agent``
    -> ``userAgent``), other fields kept; anything else unchanged."""
    props = _declared(schema, defs)
    if not props or not pa.types.is_struct(arr.type):
        return arr
    names = [f.name for f in arr.type]
    taken: dict[str, int] = {}
    for prop in props:
        for candidate in (prop, snake_case(prop)):
            if candidate in names and names.index(candidate) not in taken.values():
                taken[prop] = names.index(candidate)
                break
    if all(names[i] == prop for prop, i in taken.items()):
        children = {name: _remap(pc.struct_field(arr, [i]), props.get(name), defs)
                    for i, name in enumerate(names)}  # fmt: skip
    else:
        children = {prop: _remap(pc.struct_field(arr, i), props[prop], defs)
                    for prop, i in taken.items()}  # fmt: skip
        for i, name in enumerate(names):
            if i not in taken.values() and name not in children:
                children[name] = pc.struct_field(arr, i)
    return pa.StructArray.from_arrays(
        list(children.values()),
        names=list(children),
        mask=pc.is_null(arr) if arr.null_count else None,
    )


def _call_field(
    batch: pa.RecordBatch,
    path: tuple[str, ...],
    schema: object,
    defs: Mapping[str, object],
    sources: dict[str, str],
) -> pa.Array | None:
    """The values of one declared call field, from a column of its own or from
    ``prefix_*`` columns (flat tables spell ``context.library.name`` as
    ``context_library_name``); None when the batch does not hold it."""
    names = batch.schema.names
    if len(path) == 1:
        for candidate in (path[0], snake_case(path[0]), *CALL_ALIASES.get(path[0], ())):
            if candidate in names:
                sources[path[0]] = candidate
                return _remap(batch.column(candidate), schema, defs)
    prefix = "_".join(snake_case(p) for p in path)
    if len(path) > 1 and prefix in names:
        sources[".".join(path)] = prefix
        return _remap(batch.column(prefix), schema, defs)
    children: dict[str, pa.Array] = {}
    declared = _declared(schema, defs)
    for prop, sub in declared.items():
        arr = _call_field(batch, (*path, prop), sub, defs, sources)
        if arr is not None:
            children[prop] = arr
    if _resolve(schema, defs).get("additionalProperties") is False:
        # a closed object: its undeclared prefix_* columns must be seen to be caught
        for name, column in _undeclared(names, prefix, declared, defs).items():
            if name not in children:
                sources[".".join((*path, name))] = column
                children[name] = batch.column(column)
    if not children:
        return None
    mask = None
    if len(path) > 1:
        # flattened (context_consent_*): the object is absent where none of it holds a value
        nulls = [pc.is_null(a) for a in children.values()]
        mask = nulls[0]
        for more in nulls[1:]:
            mask = pc.and_(mask, more)
    return pa.StructArray.from_arrays(list(children.values()), names=list(children), mask=mask)


def _scalar(schema: object, defs: Mapping[str, object]) -> bool:
    """Whether a schema's values cannot be objects (a declared ``type`` without ``object``)."""
    typ = _resolve(schema, defs).get("type")
    if isinstance(typ, str):
        return typ != "object"
    if isinstance(typ, list):
        return "object" not in typ
    return False


def _undeclared(
    names: Sequence[str], prefix: str, declared: Mapping[str, object], defs: Mapping[str, object]
) -> dict[str, str]:
    """Flat ``prefix_*`` columns that no declared property of the object at ``prefix``
    holds: key (the column name after the prefix) -> column.

    A declared property owns its own column and, unless its values cannot be objects,
    the columns of its flattened children (``context_library_name`` is ``library``'s).
    """
    owners: list[tuple[str, bool]] = []
    for prop, sub in declared.items():
        for spelling in dict.fromkeys((prop, snake_case(prop))):
            owners.append((f"{prefix}_{spelling}", not _scalar(sub, defs)))
    out: dict[str, str] = {}
    for column in names:
        if not column.startswith(prefix + "_") or len(column) == len(prefix) + 1:
            continue
        if any(column == own or (nests and column.startswith(own + "_"))
               for own, nests in owners):  # fmt: skip
            continue
        out[column[len(prefix) + 1 :]] = column
    return out


def call_struct(
    batch: pa.RecordBatch, schema: object, defs: Mapping[str, object]
) -> tuple[pa.StructArray, dict[str, str]]:
    """The call fields a call schema declares (``messageId``, ``context.ip``), as one
    struct array, and field path -> the column holding it.

    Both layouts: a column named as the field or snake_cased (``message_id``; Segment's
    warehouses call it ``id``), a struct column (``context``, its fields by name or
    snake_cased), or flat ``context_*`` columns. In flat tables an undeclared
    ``context_*`` column is present only where the plan closes the object it would belong
    to (``additionalProperties: false``), as a field named by the rest of the column name;
    elsewhere it cannot break the call schema and is not read.
    """
    sources: dict[str, str] = {}
    children: dict[str, pa.Array] = {}
    for prop, sub in _declared(schema, defs).items():
        arr = _call_field(batch, (prop,), sub, defs, sources)
        if arr is not None:
            children[prop] = arr
    if not children:
        empty = pa.StructArray.from_arrays([pa.nulls(batch.num_rows)], names=["__none__"])
        return empty, sources
    return pa.StructArray.from_arrays(list(children.values()), names=list(children)), sources
