"""Helpers of the engine tests: small plans built in memory, realistic events."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from calls import track_call

from trackplan.plan.load import build_plan
from trackplan.plan.model import Controls, Plan

#: the payload schemas of the kitchen-sink event: one property per violation type
SINK_PROPERTIES: dict[str, Any] = {
    "type": "object",
    "required": ["order_id"],
    "properties": {
        "order_id": {"type": "string"},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "email": {"type": "string", "format": "email"},
        "tier": {"enum": ["free", "pro"]},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "tags": {"type": "array", "uniqueItems": True},
        "strict": {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "additionalProperties": False,
        },
    },
}


def make_plan(
    controls: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> Plan:
    """A plan from one in-memory document (``plan.yaml``), checked by the real loader."""
    doc: dict[str, Any] = {"trackplan": 1, "name": "test", "version": "1"}
    if controls is not None:
        doc["controls"] = controls
    doc["events"] = (
        events
        if events is not None
        else [{"name": "Sink", "properties": copy.deepcopy(SINK_PROPERTIES)}]
    )
    doc.update(sections)
    return build_plan("plan.yaml", doc)


def track(name: str = "Sink", properties: Any = None, **over: Any) -> dict[str, Any]:
    """A track call as analytics-python sends it (``anonymousId: null`` beside ``userId``)."""
    return track_call(name, {"order_id": "o-1"} if properties is None else properties, **over)


def _strip_pii(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_pii(v) for k, v in value.items() if k not in ("x-pii", "pii")}
    if isinstance(value, list):
        return [_strip_pii(v) for v in value]
    return value


def without_pii(plan: Plan) -> Plan:
    """``plan`` with no PII section and no ``x-pii`` annotations: the core engine alone."""
    rules = tuple(
        dataclasses.replace(
            r,
            payload=_strip_pii(r.payload),
            call=_strip_pii(r.call),
            extra=_strip_pii(dict(r.extra)),
        )
        for r in plan.rules
    )
    return dataclasses.replace(
        plan, rules=rules, pii={"detection": False}, definitions=_strip_pii(dict(plan.definitions))
    )


def all_allow(plan: Plan) -> Plan:
    """``plan`` with every schema control at ``allow``: violations reported, nothing changed."""
    return dataclasses.replace(plan, controls=Controls())
