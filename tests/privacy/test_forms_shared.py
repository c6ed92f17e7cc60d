"""Routing shares work between destinations: the copies must be exactly what each
destination gets on its own (:meth:`DestinationForms.apply`), and nothing is mutated."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from trackplan.engine import compile_plan
from trackplan.plan.load import load_plan
from trackplan.privacy.consent import route, router_of

from .privacy_helpers import EXAMPLE, ROOT, make_plan

KEY = "test-key-for-shared-forms"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)


def _check(enforcer: Any, events: list[dict[str, Any]]) -> int:
    """Route each event; compare every delivery with the destination's own copy. Returns
    how many deliveries shared a copy with another destination."""
    router = router_of(enforcer)
    shared = 0
    for event in events:
        before = copy.deepcopy(event)
        result = enforcer.enforce(event)
        enforced = copy.deepcopy(result.event)
        routing = router.decide(result, source=event)
        assert event == before, "the caller's event is never changed"
        assert result.event == enforced, "the enforced event is never changed"
        if not result.allowed:
            continue
        seen: dict[int, str] = {}
        for delivery in routing.deliveries:
            if delivery.reason in ("consent", "integrations"):
                continue
            dest = router.privacy.destination(delivery.destination)
            alone, rejected = router.forms.apply(dest, result.event, result.rule, source=event)
            if rejected:
                assert (delivery.send, delivery.detail) == (False, rejected)
                continue
            assert delivery.send
            assert orjson.dumps(delivery.event) == orjson.dumps(alone), delivery.destination
            if delivery.event is not result.event and id(delivery.event) in seen:
                shared += 1
            seen[id(delivery.event)] = delivery.destination
    return shared


def _example_events() -> list[dict[str, Any]]:
    lines = (ROOT / "examples" / "events.ndjson").read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines if line.strip()]
    prefs = [None, {"analytics": True}, {"analytics": True, "advertising": True}, {}]
    out = []
    for i, event in enumerate(events):
        extra = {"email": "Jo@Example.com", "phone": "+44 20 7946 0958", "first_name": "Jo"}
        event.setdefault("context", {})["traits"] = extra if i % 2 else {}
        if prefs[i % 4] is not None:
            event["context"]["consent"] = {"categoryPreferences": prefs[i % 4]}
        if i % 5 == 0:
            event["integrations"] = {"All": False, "Snowflake": True}
        out.append(event)
    return out


def test_example_plan_every_delivery_matches_the_destination_alone() -> None:
    enforcer = compile_plan(load_plan(EXAMPLE))
    shared = _check(enforcer, _example_events())
    assert shared > 100, "destinations with the same forms share one copy"


def _nested_plan() -> Any:
    """Wildcards over arrays and objects, a PII object holding a PII field, arrays of PII."""
    props = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "x-pii": {"category": "email", "action": "allow"}},
            "contacts": {"type": "array", "items": {"type": "object", "properties": {
                "email": {"type": "string", "x-pii": {"category": "email", "action": "allow"}},
                "phone": {"type": "string", "x-pii": {"category": "phone", "action": "hash"}},
            }}},
            "phones": {"type": "array", "items": {
                "type": "string", "x-pii": {"category": "phone", "action": "allow"}}},
            "byName": {"type": "object", "additionalProperties": {
                "type": "string", "x-pii": {"category": "name", "action": "allow"}}},
            "home": {"type": "object", "x-pii": {"category": "address", "action": "allow"},
                     "properties": {"street": {"type": "string", "x-pii": {
                         "category": "name", "action": "allow"}}}},
        },
    }
    base = {"legal_basis": "contract", "region": "EU", "dpa": True}
    dests = [
        {"name": "CRM", **base, "pii": {"email": "allow", "phone": "allow", "name": "allow",
                                        "address": "allow"}},
        {"name": "Ads", **base, "pii": {"email": "sha256", "phone": "sha256"}},
        {"name": "Ads2", **base, "pii": {"email": "sha256", "phone": "sha256"}},
        {"name": "Analytics", **base, "pii": {"email": "mask", "name": "redact",
                                              "address": "redact"}},
        {"name": "Warehouse", **base, "pii": {"email": "hash", "phone": "drop",
                                              "name": "hash", "address": "mask"}},
        {"name": "Strict", **base, "pii": {"email": "allow", "phone": "reject"}},
        {"name": "Legacy", **base},
    ]
    return make_plan(dests, {"categories": {}},
                     events=[{"name": "Viewed", "properties": props}],
                     pii={"defaults": {"phone": "allow", "address": "allow", "name": "allow"}})


def test_wildcards_arrays_and_nested_fields_match_the_destination_alone() -> None:
    enforcer = compile_plan(_nested_plan())
    events = []
    for n in range(12):
        props: dict[str, Any] = {}
        if n % 2:
            props["email"] = f"Person{n}@Example.com"
        if n % 3:
            props["contacts"] = [{"email": f"c{i}@example.com", "phone": f"+4420794609{i:02d}"}
                                 for i in range(n % 4)] + [{"other": 1}]
        if n % 4:
            props["phones"] = [f"+3361234567{i}" for i in range(n % 3)]
        if n % 5:
            props["byName"] = {"a": "Ann", "b": "Bob"}
        if n % 6:
            props["home"] = {"street": "1 High St", "zip": "AB1"} if n % 2 else "1 High St"
        events.append({"type": "track", "event": "Viewed", "userId": f"u{n}",
                       "properties": props})
    assert _check(enforcer, events) > 0


def test_a_shared_copy_is_still_routed_per_destination() -> None:
    enforcer = compile_plan(load_plan(EXAMPLE))
    event = {"type": "track", "event": "Product Viewed", "userId": "u1",
             "context": {"ip": "203.0.113.7"},
             "properties": {"product_id": "p1", "price": 3.0, "brand": "Acme"}}
    routing = route(enforcer, event)
    amplitude, snowflake = routing.delivery("Amplitude"), routing.delivery("Snowflake")
    # both keep the plan's masked ip and drop the free-text brand: one copy serves both
    assert amplitude.event is snowflake.event
    assert "brand" not in amplitude.event["properties"]
    assert amplitude.event["context"]["ip"] == "203.0.113.0"
    assert "ip" not in routing.delivery("Salesforce").event["context"]
    assert routing.result.event["properties"]["brand"] == "Acme"


def test_a_field_inside_another_keeps_the_plan_order() -> None:
    """``context.traits`` (address, every call) holds ``context.traits.email`` (one rule):
    the field-by-field walk applies, in the plan's order, as for one destination alone."""
    base = {"legal_basis": "contract", "region": "EU", "dpa": True}
    dests = [
        {"name": "Mask", **base, "pii": {"email": "hash", "address": "mask"}},
        {"name": "Drop", **base, "pii": {"email": "hash"}},
        {"name": "Redact", **base, "pii": {"email": "drop", "address": "redact"}},
        {"name": "Keep", **base, "pii": {"email": "allow", "address": "allow"}},
    ]
    common = {"call": {"type": "object", "properties": {"context": {
        "type": "object", "properties": {"traits": {
            "type": "object", "x-pii": {"category": "address", "action": "allow"}}}}}}}
    email = {"type": "string", "x-pii": {"category": "email", "action": "allow"}}
    call = {"type": "object", "properties": {"context": {"type": "object", "properties": {
        "traits": {"type": "object", "properties": {"email": email}}}}}}
    plan = make_plan(dests, {"categories": {}}, common=common,
                     events=[{"name": "Viewed", "call": call}],
                     pii={"defaults": {"address": "allow", "email": "allow"}})
    enforcer = compile_plan(plan)
    events = [{"type": "track", "event": "Viewed", "userId": "u",
               "context": {"traits": {"email": "a@example.com", "street": "1 High St"}}},
              {"type": "track", "event": "Viewed", "userId": "u",
               "context": {"traits": {"street": "1 High St"}}}]
    _check(enforcer, events)
    plans = router_of(enforcer).forms._rule_plans.values()  # noqa: SLF001
    assert any(run is None for p in plans for run in p.runs.values()), "the walk ran"


HOSTILE = ["'); raise SystemExit('x') #", "\n__import__('os')._exit(3)\n", "a\\'b\"c",
           "{copy}", "__builtins__", "n0", "é\u2028x", "*x", ""]


def test_hostile_property_names_are_data_in_the_generated_code() -> None:
    """Property names enter the generated presence check and destination forms only as
    literals: routing events that hold them behaves as the field-by-field walk."""
    email = {"type": "string", "x-pii": {"category": "email", "action": "allow"}}
    inner = {name: email for name in HOSTILE}
    props = {"type": "object", "properties": {
        **inner, "nested": {"type": "object", "properties": inner},
        "items": {"type": "array", "items": {"type": "object", "properties": inner}}}}
    base = {"legal_basis": "contract", "region": "EU", "dpa": True}
    dests = [{"name": "Drop", **base, "pii": {}},
             {"name": "Mask", **base, "pii": {"email": "mask"}},
             {"name": "Ads", **base, "pii": {"email": "sha256"}}]
    plan = make_plan(dests, {"categories": {}}, events=[{"name": "Viewed", "properties": props}],
                     pii={"defaults": {"email": "allow"}})
    enforcer = compile_plan(plan)
    values = {name: f"p{i}@example.com" for i, name in enumerate(HOSTILE)}
    event = {"type": "track", "event": "Viewed", "userId": "u",
             "properties": {**values, "nested": dict(values), "items": [dict(values)] * 2}}
    _check(enforcer, [event])
    routing = route(enforcer, event)
    assert routing.result.allowed
    assert set(routing.delivery("Drop").event["properties"]) == {"nested", "items"}
    masked = routing.delivery("Mask").event["properties"]["items"][1]
    assert all(v.startswith("****@") for v in masked.values())
