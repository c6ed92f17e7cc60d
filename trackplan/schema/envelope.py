"""The Segment envelope per call type, as JSON Schema the validator checks in the same pass."""

from __future__ import annotations

from typing import Any

__all__ = ["envelope_schema", "envelope_message"]

_TIMESTAMP = {"type": "string", "format": "date-time"}
_ID = {"type": ["string", "number"], "minLength": 1}
_NULLABLE_ID = {"type": ["string", "number", "null"]}

_COMMON: dict[str, Any] = {
    "messageId": {"type": "string", "maxLength": 100},
    "timestamp": _TIMESTAMP,
    "sentAt": _TIMESTAMP,
    "receivedAt": _TIMESTAMP,
    "originalTimestamp": _TIMESTAMP,
    "userId": _NULLABLE_ID,
    "anonymousId": _NULLABLE_ID,
    "context": {"type": "object"},
    "integrations": {"type": "object"},
}

_IDENTITY = {
    "anyOf": [
        {"required": ["userId"], "properties": {"userId": _ID}},
        {"required": ["anonymousId"], "properties": {"anonymousId": _ID}},
    ]
}

_KIND: dict[str, tuple[dict[str, Any], list[str]]] = {
    "track": (
        {"event": {"type": "string", "minLength": 1}, "properties": {"type": "object"}},
        ["event"],
    ),
    "identify": ({"traits": {"type": "object"}}, []),
    "group": ({"groupId": _ID, "traits": {"type": "object"}}, ["groupId"]),
    "page": (
        {"name": {"type": ["string", "null"]}, "properties": {"type": "object"}},
        [],
    ),
    "screen": (
        {"name": {"type": ["string", "null"]}, "properties": {"type": "object"}},
        [],
    ),
    "alias": ({"previousId": _ID, "userId": _ID}, ["previousId", "userId"]),
}


def envelope_schema(kind: str) -> dict[str, Any]:
    """The envelope JSON Schema of a call type (``track``, ``identify``, ...)."""
    props, required = _KIND[kind]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**_COMMON, **props},
        "required": list(required),
    }
    schema.update(_IDENTITY)
    return schema


_MESSAGES = {
    "anyOf": "userId or anonymousId must be present and non-empty",
    "messageId": "messageId must be a string of at most 100 characters",
}


def envelope_message(schema_path: list[Any], fallback: str) -> str:
    """A message for an envelope failure, from where in the envelope schema it failed."""
    if schema_path and schema_path[0] == "anyOf":
        return _MESSAGES["anyOf"]
    if len(schema_path) >= 2 and schema_path[0] == "properties":
        field = str(schema_path[1])
        if field in _MESSAGES:
            return _MESSAGES[field]
        if field.endswith("Id") or field == "event":
            return f"{field} must be present and non-empty ({fallback})"
        return f"{field} {fallback}"
    return fallback
