"""Enforcement semantics: controls, context.protocols stamping, envelope, SDK shapes, versions."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from trackplan.engine import compile_plan
from trackplan.engine.compiled import Result
from trackplan.plan.model import Plan
from trackplan.schema.violations import VIOLATION_TYPES

from .helpers import make_plan, track

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events.ndjson"
SECRET = "SECRET-7f3a9c-do-not-echo"

BAD_PROPS: dict[str, Any] = {
    "order_id": "o-1",
    "count": 99,  # Range
    "email": "not an email",  # Format
    "tier": "gold",  # Enum
    "code": "abc",  # Pattern
}


def protocols(result: Result) -> dict[str, Any]:
    ctx = result.event.get("context") or {}
    value: dict[str, Any] = ctx.get("protocols") or {}
    return value


def types(result: Result) -> set[str]:
    return {v.type for v in result.violations}


# -- controls -----------------------------------------------------------------------
def test_unplanned_event_allowed_by_default_and_forwarded_unchanged() -> None:
    event = track("Something Else", {"anything": 1})
    result = compile_plan(make_plan()).enforce(event)
    assert result.allowed and result.violations == ()
    assert result.event is event
    assert result.forwarded is event


def test_unplanned_event_blocked() -> None:
    enforcer = compile_plan(make_plan({"track": {"unplanned_events": "block"}}))
    result = enforcer.enforce(track("Something Else"))
    assert not result.allowed
    assert result.forwarded is None
    assert [(v.type, v.pointer) for v in result.violations] == [("Unplanned-Event", "/event")]
    # a planned event is still allowed
    assert enforcer.enforce(track()).allowed


def test_unplanned_properties_allow_keeps_them() -> None:
    event = track(properties={"order_id": "o-1", "extra": 1})
    result = compile_plan(make_plan()).enforce(event)
    assert result.allowed and result.violations == () and result.omitted == ()
    assert result.event["properties"]["extra"] == 1


def test_unplanned_properties_omit_drops_and_records() -> None:
    enforcer = compile_plan(make_plan({"track": {"unplanned_properties": "omit"}}))
    event = track(properties={"order_id": "o-1", "extra": 1, "zz": {"x": 1}})
    result = enforcer.enforce(event)
    assert result.allowed
    assert result.violations == ()
    assert result.omitted == ("/properties/extra", "/properties/zz")
    assert result.event["properties"] == {"order_id": "o-1"}
    assert protocols(result)["omitted"] == ["properties.extra", "properties.zz"]
    assert "violations" not in protocols(result)
    # the library context survives the stamping
    assert result.event["context"]["library"]["name"] == "analytics-python"


def test_unplanned_properties_block() -> None:
    enforcer = compile_plan(make_plan({"track": {"unplanned_properties": "block"}}))
    result = enforcer.enforce(track(properties={"order_id": "o-1", "extra": 1}))
    assert not result.allowed
    assert [(v.type, v.pointer) for v in result.violations] == [
        ("Additional-Properties", "/properties/extra")
    ]
    assert enforcer.enforce(track()).allowed


def test_unplanned_traits_omit_on_identify() -> None:
    plan = make_plan(
        {"identify": {"unplanned_properties": "omit"}},
        identify={"traits": {"type": "object", "properties": {"plan": {"type": "string"}}}},
    )
    event = {"type": "identify", "userId": "u", "traits": {"plan": "pro", "shoe_size": 44}}
    result = compile_plan(plan).enforce(event)
    assert result.allowed
    assert result.event["traits"] == {"plan": "pro"}
    assert protocols(result)["omitted"] == ["traits.shoe_size"]


def test_violations_allow_forwards_and_stamps() -> None:
    # detection off: the email key would add a PII finding (tests/pii covers those)
    plan = make_plan(pii={"detection": "off"})
    result = compile_plan(plan).enforce(track(properties=dict(BAD_PROPS)))
    assert result.allowed
    assert types(result) == {"Range", "Format", "Enum", "Pattern"}
    assert result.event["properties"] == BAD_PROPS
    stamped = protocols(result)["violations"]
    assert [v["pointer"] for v in stamped] == [v.pointer for v in result.violations]
    assert {v["field"] for v in stamped} == {
        "properties.count", "properties.email", "properties.tier", "properties.code"
    }  # fmt: skip
    assert all(v["schema"].startswith("plan.yaml#/events/0/properties/") for v in stamped)


def test_violations_omit_drops_only_offending() -> None:
    enforcer = compile_plan(make_plan({"track": {"violations": "omit"}}))
    result = enforcer.enforce(track(properties={**BAD_PROPS, "tags": ["a"]}))
    assert result.allowed
    assert result.event["properties"] == {"order_id": "o-1", "tags": ["a"]}
    assert result.omitted_on_violation == (
        "/properties/code", "/properties/count", "/properties/email", "/properties/tier"
    )  # fmt: skip
    assert protocols(result)["omitted_on_violation"] == [
        "properties.code", "properties.count", "properties.email", "properties.tier"
    ]  # fmt: skip
    assert len(protocols(result)["violations"]) == 4


def test_violations_omit_never_invents_a_missing_property() -> None:
    enforcer = compile_plan(make_plan({"track": {"violations": "omit"}}))
    result = enforcer.enforce(track(properties={"count": 3}))
    assert result.allowed
    assert [(v.type, v.pointer) for v in result.violations] == [
        ("Required-Missing", "/properties/order_id")
    ]
    assert result.omitted_on_violation == ()
    assert result.event["properties"] == {"count": 3}


def test_violations_block() -> None:
    enforcer = compile_plan(make_plan({"track": {"violations": "block"}}))
    result = enforcer.enforce(track(properties=dict(BAD_PROPS)))
    assert not result.allowed and result.forwarded is None
    assert types(result) == {"Range", "Format", "Enum", "Pattern"}
    # blocked events keep their stamped copy for review
    assert len(protocols(result)["violations"]) == 4
    assert enforcer.enforce(track()).allowed


def test_omit_unplanned_and_violation_together() -> None:
    enforcer = compile_plan(make_plan(
        {"track": {"unplanned_properties": "omit", "violations": "omit"}}
    ))
    result = enforcer.enforce(track(properties={"order_id": "o-1", "count": 0, "extra": "x"}))
    assert result.allowed
    assert result.event["properties"] == {"order_id": "o-1"}
    assert protocols(result)["omitted"] == ["properties.extra"]
    assert protocols(result)["omitted_on_violation"] == ["properties.count"]


def test_existing_protocols_context_is_kept() -> None:
    enforcer = compile_plan(make_plan({"track": {"unplanned_properties": "omit"}}))
    event = track(properties={"order_id": "o", "extra": 1})
    event["context"]["protocols"] = {"sourceId": "src-1"}
    result = enforcer.enforce(event)
    assert protocols(result) == {"sourceId": "src-1", "omitted": ["properties.extra"]}


# -- envelope ------------------------------------------------------------------------
ENVELOPE_CASES = [
    ("track without event", {"type": "track", "userId": "u", "properties": {}}),
    ("track with empty event", {"type": "track", "event": "", "userId": "u"}),
    ("group without groupId", {"type": "group", "userId": "u", "traits": {}}),
    ("group with empty groupId", {"type": "group", "groupId": "", "userId": "u"}),
    ("alias without previousId", {"type": "alias", "userId": "u"}),
    ("no identity", {"type": "track", "event": "Sink", "properties": {"order_id": "o"}}),
    ("null identities", {"type": "identify", "userId": None, "anonymousId": None}),
    ("empty userId", {"type": "identify", "userId": "", "anonymousId": None}),
    ("messageId too long", {"type": "identify", "userId": "u", "messageId": "m" * 101}),
    ("timestamp not ISO-8601", {"type": "identify", "userId": "u", "timestamp": "yesterday"}),
    ("timestamp without zone", {"type": "identify", "userId": "u",
                                "timestamp": "2026-11-29 10:00"}),
    ("unknown type", {"type": "purchase", "userId": "u"}),
    ("properties not an object", {"type": "track", "event": "Sink", "userId": "u",
                                  "properties": ["order_id"]}),
    ("not an object", ["type", "track"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event"), ENVELOPE_CASES, ids=[c for c, _ in ENVELOPE_CASES])
def test_envelope_violations_block_even_when_violations_allowed(case: str, event: Any) -> None:
    result = compile_plan(make_plan()).enforce(event)
    assert not result.allowed, case
    assert "Envelope" in types(result), result.violations


ENVELOPE_OK = [
    ("messageId of 100 characters", {"type": "identify", "userId": "u", "messageId": "m" * 100}),
    ("anonymousId only", {"type": "identify", "anonymousId": "a-1"}),
    ("numeric userId", {"type": "identify", "userId": 42}),
    ("timestamp with offset", {"type": "identify", "userId": "u",
                               "timestamp": "2026-11-29T10:00:00.123+01:00"}),
    ("group", {"type": "group", "groupId": "g-1", "userId": "u", "traits": {}}),
    ("alias", {"type": "alias", "previousId": "a-1", "userId": "u"}),
    ("page without name", {"type": "page", "userId": "u", "name": None, "properties": {}}),
    ("screen", {"type": "screen", "userId": "u", "name": "Home", "properties": {}}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "event"), ENVELOPE_OK, ids=[c for c, _ in ENVELOPE_OK])
def test_envelope_accepts(case: str, event: dict[str, Any]) -> None:
    result = compile_plan(make_plan()).enforce(event)
    assert result.allowed and result.violations == (), (case, result.violations)


# -- real SDK shapes ----------------------------------------------------------------
def _segment_messages() -> list[dict[str, Any]]:
    """Messages exactly as segment-analytics-python builds them (send=False), via JSON."""
    client_mod = pytest.importorskip("segment.analytics.client")
    utils = pytest.importorskip("segment.analytics.utils")
    client = client_mod.Client("test-write-key", send=False)
    calls = [
        client.track(user_id="usr_1", event="Signed Up", properties={"method": "email"}),
        client.track(anonymous_id="anon-1", event="Product Viewed",
                     properties={"product_id": "p-1", "price": 9.5}),
        client.identify(user_id="usr_1", traits={"email": "ada@example.com", "plan": "pro"}),
        client.group(user_id="usr_1", group_id="g-1", traits={"name": "ACME"}),
        client.page(user_id="usr_1", name="Home", properties={"path": "/"}),
        client.screen(user_id="usr_1", name="Cart", properties={}),
        client.alias(previous_id="anon-1", user_id="usr_1"),
    ]  # fmt: skip
    serializer = getattr(utils, "DatetimeSerializer", None)
    return [json.loads(json.dumps(msg, cls=serializer)) for ok, msg in calls if ok]


def test_segment_python_sdk_messages_pass(ecommerce_plan: Plan) -> None:
    messages = _segment_messages()
    assert len(messages) == 7
    track_msg = messages[0]
    assert track_msg["anonymousId"] is None and track_msg["integrations"] == {}
    enforcer = compile_plan(ecommerce_plan)
    for msg in messages:
        result = enforcer.enforce(msg)
        assert result.allowed, (msg["type"], result.violations)
        assert [v for v in result.violations if v.type == "Envelope"] == []


RUDDER_IDENTIFY: dict[str, Any] = {
    "type": "identify",
    "channel": "server",
    "userId": "usr_1",
    "anonymousId": "4d3c2b1a-0000-4000-8000-000000000001",
    "messageId": "7e1d0c9b-1111-4222-8333-444455556666",
    "originalTimestamp": "2026-11-29T10:00:00.000Z",
    "sentAt": "2026-11-29T10:00:00.100Z",
    "integrations": {"All": True},
    "context": {
        "library": {"name": "rudder-sdk-python", "version": "2.1.0"},
        "traits": {"email": "ada@example.com", "plan": "pro"},
    },
}


def test_rudder_shapes_pass(ecommerce_plan: Plan) -> None:
    enforcer = compile_plan(ecommerce_plan)
    event = copy.deepcopy(RUDDER_IDENTIFY)
    result = enforcer.enforce(event)
    assert result.allowed and result.violations == ()
    # only the email trait changes: the plan hashes it (x-pii); the input is never mutated
    assert event == RUDDER_IDENTIFY
    out_traits = result.event["context"]["traits"]
    assert out_traits["plan"] == "pro" and len(out_traits["email"]) == 64
    rudder_track = {**RUDDER_IDENTIFY, "type": "track", "event": "Signed Up",
                    "properties": {"method": "google"}}  # fmt: skip
    assert enforcer.enforce(rudder_track).allowed


def test_traits_in_context_are_enforced(ecommerce_plan: Plan) -> None:
    enforcer = compile_plan(ecommerce_plan)  # identify: violations block, unplanned omit
    bad = copy.deepcopy(RUDDER_IDENTIFY)
    bad["context"]["traits"]["email"] = "nope"
    result = enforcer.enforce(bad)
    assert not result.allowed
    assert [(v.type, v.pointer) for v in result.violations] == [("Format", "/context/traits/email")]
    extra = copy.deepcopy(RUDDER_IDENTIFY)
    extra["context"]["traits"]["shoe_size"] = 44
    result = enforcer.enforce(extra)
    assert result.allowed
    assert "shoe_size" not in result.event["context"]["traits"]
    assert protocols(result)["omitted"] == ["context.traits.shoe_size"]


# -- versions ----------------------------------------------------------------------------
ORDER = {
    "order_id": "o-1",
    "total": 10.0,
    "currency": "EUR",
    "products": [{"product_id": "p-1", "price": 10.0}],
}


def _order(version: Any = None, **props: Any) -> dict[str, Any]:
    event = track("Order Completed", {**ORDER, **props})
    if version is not None:
        event["context"]["protocols"] = {"event_version": version}
    return event


@pytest.mark.parametrize(
    ("version", "selected"), [(None, 1), (1, 1), (2, 2), (99, 1), ("2", 1), (2.5, 1)]
)
def test_event_version_selection(ecommerce_plan: Plan, version: Any, selected: int) -> None:
    result = compile_plan(ecommerce_plan).enforce(_order(version))
    assert result.rule is not None and result.rule.version == selected
    missing = {(v.type, v.pointer) for v in result.violations}
    # v2 requires checkout_id; v1 does not
    assert (("Required-Missing", "/properties/checkout_id") in missing) == (selected == 2)


def test_event_version_two_accepts_its_own_shape(ecommerce_plan: Plan) -> None:
    result = compile_plan(ecommerce_plan).enforce(_order(2, checkout_id="c-1", loyalty_points=5))
    assert result.allowed and result.violations == ()
    assert result.rule is not None and result.rule.version == 2


# -- values never echoed, input never mutated ---------------------------------------------
def test_messages_never_echo_values() -> None:
    enforcer = compile_plan(make_plan({"track": {"violations": "omit"}}))
    props = {
        "order_id": 12345,  # type mismatch on a number is safe; below the strings
        "count": SECRET,
        "email": SECRET,
        "tier": SECRET,
        "code": SECRET,
        "tags": [SECRET, SECRET],
        "strict": {"a": SECRET, "b": SECRET},
    }
    results = [
        enforcer.enforce(track(properties=props)),
        enforcer.enforce(track(properties=props, messageId=SECRET * 10)),
        enforcer.enforce(track(properties=props, timestamp=SECRET)),
        enforcer.enforce({"type": "identify", "userId": "u", "traits": {"x": SECRET},
                          "context": SECRET}),
    ]  # fmt: skip
    for result in results:
        assert result.violations
        text = json.dumps([v.to_dict() for v in result.violations])
        text += "".join(str(v) + repr(v) + v.message for v in result.violations)
        text += json.dumps(protocols(result).get("violations", []))
        assert SECRET not in text
    assert {"Datatype-Mismatch", "Format", "Enum", "Pattern", "Other",
            "Additional-Properties"} <= types(results[0])  # fmt: skip
    assert "Envelope" in types(results[1]) and "Envelope" in types(results[2])


def _example_events() -> list[Any]:
    if not EXAMPLES.is_file():
        pytest.skip(f"{EXAMPLES} is absent")
    return [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("mode", ["allow", "omit", "block"])
def test_input_never_mutated(ecommerce_plan: Plan, mode: str) -> None:
    controls = {k: {"unplanned_properties": mode, "violations": mode}
                for k in ("track", "identify", "group", "page", "screen")}  # fmt: skip
    enforcers = [compile_plan(ecommerce_plan), compile_plan(make_plan(controls))]
    events = _example_events() + [
        track(properties={**BAD_PROPS, "extra": {"deep": [1, 2]}}),
        copy.deepcopy(RUDDER_IDENTIFY),
        {**copy.deepcopy(RUDDER_IDENTIFY), "context": {"traits": {"email": "x", "z": 1}}},
    ]
    changed = 0
    for enforcer in enforcers:
        for event in events:
            before = copy.deepcopy(event)
            result = enforcer.enforce(event)
            assert event == before
            if result.event is not event:
                changed += 1
                assert result.event != before or result.violations or not result.allowed
    assert changed > 0


# -- violation types -----------------------------------------------------------------------
def test_every_violation_type_is_produced() -> None:
    enforcer = compile_plan(make_plan(
        {"track": {"unplanned_events": "block", "unplanned_properties": "block"}},
        pii={"detection": "off"},  # PII findings are tests/pii's
    ))
    seen: set[str] = set()
    cases = [
        track("Unknown Event"),  # Unplanned-Event
        track(properties={"count": 1}),  # Required-Missing
        track(properties={"order_id": 5}),  # Datatype-Mismatch
        track(properties={"order_id": "o", "extra": 1}),  # Additional-Properties (unplanned)
        track(properties={"order_id": "o", "email": "@"}),  # Format
        track(properties={"order_id": "o", "tier": "x"}),  # Enum
        track(properties={"order_id": "o", "count": 0}),  # Range
        track(properties={"order_id": "o", "code": "1"}),  # Pattern
        {"type": "track", "event": "Sink", "properties": {"order_id": "o"}},  # Envelope
        track(properties={"order_id": "o", "tags": [1, 1]}),  # Other
    ]
    expected = [
        "Unplanned-Event", "Required-Missing", "Datatype-Mismatch", "Additional-Properties",
        "Format", "Enum", "Range", "Pattern", "Envelope", "Other",
    ]  # fmt: skip
    for event, want in zip(cases, expected, strict=True):
        got = types(enforcer.enforce(event))
        assert got == {want}, (want, got)
        seen |= got
    assert seen == set(VIOLATION_TYPES)


def test_schema_additional_properties_false_is_additional_properties() -> None:
    result = (
        compile_plan(make_plan())
        .enforce(track(properties={"order_id": "o", "strict": {"a": "x", "b": 1}}))
    )
    assert [(v.type, v.keyword) for v in result.violations] == [
        ("Additional-Properties", "additionalProperties")
    ]
    assert result.violations[0].pointer.startswith("/properties/strict")


def test_violation_locations_point_into_plan_files(ecommerce_plan: Plan) -> None:
    enforcer = compile_plan(ecommerce_plan)
    result = enforcer.enforce(_order(None, total=-1))
    (v,) = result.violations
    assert (v.type, v.pointer) == ("Range", "/properties/total")
    # reached through $ref: located in the plan's definitions
    assert "definitions" in v.schema_location and v.schema_location.endswith("/minimum")
    result = enforcer.enforce(_order(None, order_id=7))
    (v,) = result.violations
    assert v.schema_location.startswith(str(ROOT / "plans" / "ecommerce" / "events")) or (
        "order-completed.yaml#" in v.schema_location
    )


def test_enforce_many_is_lazy_and_ordered(ecommerce_plan: Plan) -> None:
    enforcer = compile_plan(ecommerce_plan)
    events = _example_events()
    results = list(enforcer.enforce_many(iter(events)))
    assert len(results) == len(events)
    assert [r.decision for r in results] == [enforcer.enforce(e).decision for e in events]
    # a realistic share of violations, and both decisions present
    assert 0 < sum(not r.allowed for r in results) < len(results)
