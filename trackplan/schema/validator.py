"""The one way trackplan turns a JSON Schema into a validator: formats asserted, every
remote or file ``$ref`` refused (trackplan never fetches a schema).

>>> make_validator({"type": "string", "format": "email"}).is_valid("a@example.com")
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs

__all__ = ["RemoteRefRefused", "make_validator", "refuse_remote"]


class RemoteRefRefused(Exception):
    """Raised inside the validator's retriever: trackplan never fetches a schema."""


def refuse_remote(uri: str) -> Any:
    """Retriever for jsonschema-rs that refuses every remote or file ``$ref``."""
    raise RemoteRefRefused(
        f"remote $ref {uri!r} refused: trackplan never fetches schemas over the network "
        "or from files; put the schema in the plan's definitions"
    )


def make_validator(schema: Mapping[str, Any] | bool, *, mask: str | None = None) -> Any:
    """A jsonschema-rs validator with formats asserted and remote refs refused.

    ``mask`` replaces instance values in the errors' messages: cheaper errors (a value is
    not written out) that hold no property value.

    Raises:
        ValueError: a custom meta-schema (another document: refused like a remote $ref).
        jsonschema_rs.ValidationError: ``schema`` is not a valid schema.
    """
    value = schema if isinstance(schema, bool) else dict(schema)
    try:
        return jsonschema_rs.validator_for(value, validate_formats=True, retriever=refuse_remote,
                                           mask=mask)
    except jsonschema_rs.ValidationError as exc:
        meta = value.get("$schema") if isinstance(value, dict) else None
        if isinstance(meta, str) and str(exc).startswith("Unknown meta-schema"):
            # a custom meta-schema is another document: refused like a remote $ref
            raise ValueError(
                f"meta-schema {meta!r} refused: trackplan never fetches schemas; "
                "use draft-07 or 2020-12"
            ) from None
        raise
