"""Violations: what broke the plan, where in the event, where in the plan. Never the value."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from trackplan import pointer as jp
from trackplan.plan.jsonutil import json_type

__all__ = [
    "Violation",
    "VIOLATION_TYPES",
    "from_rs_error",
    "UNPLANNED_EVENT",
    "REQUIRED_MISSING",
    "DATATYPE_MISMATCH",
    "ADDITIONAL_PROPERTIES",
    "FORMAT",
    "ENUM",
    "RANGE",
    "PATTERN",
    "ENVELOPE",
    "OTHER",
]

UNPLANNED_EVENT = "Unplanned-Event"
REQUIRED_MISSING = "Required-Missing"
DATATYPE_MISMATCH = "Datatype-Mismatch"
ADDITIONAL_PROPERTIES = "Additional-Properties"
FORMAT = "Format"
ENUM = "Enum"
RANGE = "Range"
PATTERN = "Pattern"
ENVELOPE = "Envelope"
OTHER = "Other"

#: Every violation type the engine reports (RudderStack's names where they fit). Later
#: backends add their own (``PII``, ``Suppressed``) through the same class.
VIOLATION_TYPES = (
    UNPLANNED_EVENT, REQUIRED_MISSING, DATATYPE_MISMATCH, ADDITIONAL_PROPERTIES, FORMAT, ENUM,
    RANGE, PATTERN, ENVELOPE, OTHER,
)  # fmt: skip


class Violation:
    """One violation.

    Attributes:
        type: one of :data:`VIOLATION_TYPES` (or a backend's own, such as ``PII``).
        pointer: RFC 6901 pointer into the event.
        schema_location: ``file#pointer`` of the rule that failed, when there is one.
        message: what is wrong; never contains the offending value.
        keyword: the JSON Schema keyword that failed, if any.
    """

    __slots__ = ("type", "pointer", "schema_location", "message", "keyword")

    def __init__(
        self,
        type: str,
        pointer: str,
        message: str,
        schema_location: str = "",
        keyword: str | None = None,
    ) -> None:
        self.type = type
        self.pointer = pointer
        self.message = message
        self.schema_location = schema_location
        self.keyword = keyword

    @property
    def field(self) -> str:
        """Segment's dotted field name (``properties.total``)."""
        return _field(self.pointer)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stamped into ``context.protocols.violations``."""
        out: dict[str, Any] = {
            "type": self.type,
            "field": self.field,
            "pointer": self.pointer,
            "description": self.message,
        }
        if self.schema_location:
            out["schema"] = self.schema_location
        if self.keyword:
            out["keyword"] = self.keyword
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Violation) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.type, self.pointer, self.message, self.schema_location))

    def __repr__(self) -> str:
        return f"Violation({self.type!r}, {self.pointer!r}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.type}: {self.message} - at {self.pointer or '/'}"


@lru_cache(maxsize=4096)  # failing events repeat the same few pointers
def _field(pointer: str) -> str:
    return jp.dotted(jp.parse(pointer))


_RANGE_WORDS = {
    "Minimum": "must be >= {}",
    "Maximum": "must be <= {}",
    "ExclusiveMinimum": "must be > {}",
    "ExclusiveMaximum": "must be < {}",
    "MinLength": "must be at least {} characters long",
    "MaxLength": "must be at most {} characters long",
    "MinItems": "must have at least {} items",
    "MaxItems": "must have at most {} items",
    "MinProperties": "must have at least {} properties",
    "MaxProperties": "must have at most {} properties",
}


def classify(kind_name: str, kind: Any, instance: Any) -> tuple[str, str]:
    """``(violation type, message)`` for a jsonschema-rs error kind, without the value."""
    if kind_name == "Required":
        return REQUIRED_MISSING, f"required property {kind.property!r} is missing"
    if kind_name == "Type":
        types = kind.types if isinstance(kind.types, list) else [kind.types]
        expected = " or ".join(str(t).lower() for t in types)
        return DATATYPE_MISMATCH, f"expected {expected}, got {json_type(instance)}"
    if kind_name in ("AdditionalProperties", "UnevaluatedProperties"):
        names = ", ".join(repr(n) for n in kind.unexpected)
        return ADDITIONAL_PROPERTIES, f"property not in the plan: {names}"
    if kind_name == "Format":
        return FORMAT, f"is not a valid {kind.format}"
    if kind_name == "Enum":
        return ENUM, f"is not one of the {len(kind.options)} allowed values"
    if kind_name == "Constant":
        return ENUM, "is not the constant value the plan requires"
    if kind_name == "Pattern":
        return PATTERN, f"does not match the pattern {kind.pattern!r}"
    if kind_name in _RANGE_WORDS:
        return RANGE, _RANGE_WORDS[kind_name].format(kind.limit)
    if kind_name == "MultipleOf":
        return RANGE, f"must be a multiple of {kind.multiple_of}"
    if kind_name == "UniqueItems":
        return OTHER, "items must be unique"
    if kind_name == "AnyOf":
        return OTHER, "matches none of the allowed schemas (anyOf)"
    if kind_name == "OneOfNotValid":
        return OTHER, "matches none of the allowed schemas (oneOf)"
    if kind_name == "OneOfMultipleValid":
        return OTHER, "matches more than one of the schemas (oneOf)"
    if kind_name == "Not":
        return OTHER, "matches a schema it must not match (not)"
    if kind_name == "FalseSchema":
        return OTHER, "is not allowed here (false schema)"
    if kind_name == "Contains":
        return OTHER, "has no item matching 'contains'"
    if kind_name == "PropertyNames":
        return OTHER, "has a property name the plan does not allow"
    return OTHER, f"fails the {kind_name} check"


def from_rs_error(
    err: Any,
    *,
    schema_location: str,
    kind_name: str | None = None,
    instance_path: Sequence[str | int] | None = None,
    vtype: str | None = None,
) -> Violation:
    """A :class:`Violation` from a jsonschema-rs ``ValidationError``."""
    kind = err.kind
    name = kind_name or type(kind).__name__
    found_type, message = classify(name, kind, err.instance)
    path = list(err.instance_path) if instance_path is None else list(instance_path)
    if name == "Required":
        path.append(kind.property)  # point at the missing property, as Segment's field does
    return Violation(
        vtype or found_type,
        jp.from_parts(path),
        message,
        schema_location,
        str(err.schema_path[-1]) if err.schema_path else None,
    )
