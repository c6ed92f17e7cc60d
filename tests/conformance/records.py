"""What a surface says about one event, in one normalised form, and generic comparisons.

A :class:`Record` holds the decision (allowed or blocked), the violations as
``(type, pointer)`` with array indices written ``*`` (a batch scan names ``products[].price``,
not an item), and the forwarded PII: for every string in the input event, what the surface
forwards at the same place (:data:`ABSENT` when the key is gone). A surface that cannot say
one of these leaves it ``None`` and is not compared on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trackplan import pointer as jp
from trackplan.schema.violations import (
    ADDITIONAL_PROPERTIES,
    ENVELOPE,
    UNPLANNED_EVENT,
    classify,
)

__all__ = [
    "ABSENT",
    "Record",
    "norm_pointer",
    "string_leaves",
    "forwarded",
    "scan_violation",
    "ASPECTS",
    "project",
    "diverging",
]

#: The value of a key the surface does not forward.
ABSENT = "<absent>"
PII = "PII"
Violations = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Record:
    """One surface's verdict on one event (None: the surface cannot say)."""

    allowed: bool | None = None
    violations: Violations | None = None
    pii: Mapping[str, Any] | None = None


def norm_pointer(pointer: str) -> str:
    """``/properties/products/0/price`` -> ``/properties/products/*/price``."""
    return jp.from_parts(["*" if p.isdigit() else p for p in jp.parse(pointer)])


def violation_set(pairs: Any) -> Violations:
    """``{(type, normalised pointer)}`` from ``(type, pointer)`` pairs."""
    return frozenset((t, norm_pointer(p)) for t, p in pairs)


#: Top-level keys whose strings are compared as forwarded values: the payload, the context
#: (but not what the surfaces stamp there) and the identities.
_COMPARED = ("properties", "traits", "context", "userId", "anonymousId")


def string_leaves(event: Any) -> Iterator[tuple[str, list[str | int]]]:
    """(pointer, path) of every string in the parts of ``event`` that are compared."""

    def walk(node: Any, path: list[str | int]) -> Iterator[tuple[str, list[str | int]]]:
        if isinstance(node, str):
            yield jp.from_parts(path), list(path)
        elif isinstance(node, dict):
            for k, v in node.items():
                if path == ["context"] and k == "protocols":
                    continue
                yield from walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, [*path, i])

    if isinstance(event, dict):
        for key in _COMPARED:
            if key in event:
                yield from walk(event[key], [key])


def _at(node: Any, path: list[str | int]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return ABSENT
        elif not isinstance(node, dict) or part not in node:
            return ABSENT
        node = node[part]
    return ABSENT if node is None else node


def forwarded(source: Any, output: Any) -> dict[str, Any]:
    """For every string of ``source``, what ``output`` holds at its place."""
    return {ptr: _at(output, path) for ptr, path in string_leaves(source)}


# -- batch scan results -> engine violations ----------------------------------------------
class _AnyKind:
    """Stands in for a jsonschema-rs error kind: :func:`classify` needs only its name for
    the type; the message it also builds reads attributes, which this answers emptily."""

    def __getattr__(self, name: str) -> Any:
        return []


#: the scan's keyword -> the jsonschema-rs kind name the engine classifies
_KIND_NAMES = {"const": "Constant", "oneOf": "OneOfNotValid", "false": "FalseSchema"}
#: call fields: a scan field whose first part is one of these is not in the payload
_CALL_FIELDS = frozenset(
    {
        "messageId",
        "context",
        "event",
        "type",
        "userId",
        "anonymousId",
        "timestamp",
        "sentAt",
        "receivedAt",
        "originalTimestamp",
        "integrations",
        "groupId",
        "previousId",
        "channel",
    }
)


def keyword_type(keyword: str) -> str:
    """The engine's violation type for a JSON Schema keyword (the engine's own mapping)."""
    if "pii" in keyword.lower():  # whatever the scan's detectors call themselves
        return PII
    kind = _KIND_NAMES.get(keyword, keyword[:1].upper() + keyword[1:])
    return classify(kind, _AnyKind(), None)[0]


def scan_violation(field: str, keyword: str, payload_key: str | None) -> tuple[str, str]:
    """``(type, normalised pointer)`` of a scan's ``(field, keyword)`` on an event whose
    payload is ``payload_key`` (``properties``, ``traits``; None when it has none)."""
    parts: list[str] = [p for p in field.replace("[]", ".*").split(".") if p]
    if keyword == "envelope":  # a call field, or the call itself ("": userId/anonymousId)
        return ENVELOPE, jp.from_parts(parts)
    if not parts or parts[0] not in _CALL_FIELDS:
        parts = [payload_key or "properties", *parts]
    pointer = jp.from_parts(parts)
    if keyword == "unplanned":
        return (UNPLANNED_EVENT if parts == ["event"] else ADDITIONAL_PROPERTIES), pointer
    if parts == ["event"]:  # the event name is checked by the envelope
        return ENVELOPE, pointer
    return keyword_type(keyword), pointer


# -- comparison ---------------------------------------------------------------------------
#: aspect -> what of a record it compares
ASPECTS = (
    "decision",
    "schema-violations",
    "envelope-violations",
    "pii-violations",
    "forwarded-pii",
)


def project(record: Record, aspect: str) -> Any:
    """The part of ``record`` an aspect compares (None: the surface cannot say)."""
    if aspect == "decision":
        return record.allowed
    if aspect == "forwarded-pii":
        return record.pii
    if record.violations is None:
        return None
    if aspect == "envelope-violations":
        return frozenset(v for v in record.violations if v[0] == ENVELOPE)
    if aspect == "pii-violations":
        return frozenset(v for v in record.violations if v[0] == PII)
    return frozenset(v for v in record.violations if v[0] not in (ENVELOPE, PII))


def diverging(
    expected: Mapping[str, Record], found: Mapping[str, Record], aspect: str
) -> dict[str, tuple[Any, Any]]:
    """Events (by id) on which ``found`` says otherwise than ``expected`` about ``aspect``.

    Forwarded PII is compared on events both allow (a decision divergence is the decision's);
    a value present in the reference but missing from the surface's map is a divergence.
    """
    out: dict[str, tuple[Any, Any]] = {}
    for key, ref in expected.items():
        rec = found.get(key)
        if rec is None:
            out[key] = ("(present)", "(missing from the surface's output)")
            continue
        if aspect == "forwarded-pii":
            if not (ref.allowed and rec.allowed) or ref.pii is None or rec.pii is None:
                continue
            diff = {
                p: (v, rec.pii.get(p, ABSENT))
                for p, v in ref.pii.items()
                if rec.pii.get(p, ABSENT) != v
            }
            if diff:
                out[key] = ({p: d[0] for p, d in diff.items()}, {p: d[1] for p, d in diff.items()})
            continue
        a, b = project(ref, aspect), project(rec, aspect)
        if b is not None and a != b:
            out[key] = (
                sorted(a - b) if isinstance(a, frozenset) else a,
                sorted(b - a) if isinstance(b, frozenset) else b,
            )
    return out
