"""Helpers of the PII tests: small plans with x-pii built in memory, and events."""

from __future__ import annotations

import copy
from typing import Any

from calls import track_call

from trackplan.engine import compile_plan
from trackplan.engine.enforcer import Enforcer
from trackplan.plan.load import build_plan
from trackplan.plan.model import Plan

KEY = "pii-test-key-1"

#: A payload with every action, inside nested objects and arrays, and a $ref.
PROPERTIES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "email": {"type": "string", "x-pii": {"category": "email", "action": "hash"}},
        "phone": {"type": "string", "x-pii": {"category": "phone", "action": "mask"}},
        "nickname": {"type": "string", "x-pii": {"category": "name", "action": "redact"}},
        "street": {"type": "string", "x-pii": {"category": "address", "action": "drop"}},
        "consented_email": {
            "type": "string",
            "x-pii": {"category": "email", "action": "allow", "basis": "consent"},
        },
        "card": {"type": "string", "x-pii": {"category": "payment_card", "action": "reject"}},
        "buyer": {"$ref": "#/definitions/person"},
        "recipients": {"type": "array", "items": {"$ref": "#/definitions/person"}},
        "product_name": {"type": "string", "x-pii": False},
        "note": {"type": "string"},
    },
}

DEFINITIONS: dict[str, Any] = {
    "person": {
        "type": "object",
        "properties": {
            "email": {"type": "string", "x-pii": {"category": "email", "action": "hash"}},
            "first_name": {"type": "string", "x-pii": "name"},
            "age": {"type": "integer", "x-pii": {"category": "other", "action": "redact"}},
            "phones": {
                "type": "array",
                "items": {"type": "string", "x-pii": {"category": "phone", "action": "mask"}},
            },
            "address": {
                "type": "object",
                "x-pii": {"category": "address", "action": "drop"},
            },
        },
    }
}


def make_plan(
    properties: dict[str, Any] | None = None,
    pii: dict[str, Any] | None = None,
    controls: dict[str, Any] | None = None,
    **sections: Any,
) -> Plan:
    """A plan with one event ``Order`` (the payload above unless given) and a PII section."""
    doc: dict[str, Any] = {
        "trackplan": 1,
        "name": "pii-test",
        "definitions": copy.deepcopy(DEFINITIONS),
        "controls": controls
        or {"track": {"unplanned_properties": "allow", "unplanned_events": "allow"}},
        "pii": pii if pii is not None else {"defaults": {"name": "redact"}},
        "events": [{"name": "Order", "properties": copy.deepcopy(properties or PROPERTIES)}],
    }
    doc.update(sections)
    return build_plan("plan.yaml", doc)


def compile_with_key(plan: Plan, key: str = KEY, monkeypatch: Any = None) -> Enforcer:
    """Compile ``plan`` with ``TRACKPLAN_HASH_KEY`` set to ``key`` for the compile only."""
    import os

    old = os.environ.get("TRACKPLAN_HASH_KEY")
    os.environ["TRACKPLAN_HASH_KEY"] = key
    try:
        return compile_plan(plan)
    finally:
        if old is None:
            del os.environ["TRACKPLAN_HASH_KEY"]
        else:
            os.environ["TRACKPLAN_HASH_KEY"] = old


def track(properties: dict[str, Any], name: str = "Order", **over: Any) -> dict[str, Any]:
    """A track call as analytics-python sends it."""
    return track_call(name, properties, **over)
