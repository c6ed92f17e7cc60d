"""Per-destination PII forms: each destination gets only the categories and forms it may."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from trackplan.engine import compile_plan
from trackplan.errors import MissingSecretError
from trackplan.plan.model import Plan
from trackplan.privacy.consent import route
from trackplan.privacy.forms import effective_form

from .privacy_helpers import make_plan

KEY = "test-key-for-forms"
EMAIL = "Jo.Doe@Example.COM"
PHONE = "+44 20 7946 0958"
IP = "203.0.113.77"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)


def _plan(plan_email: str = "allow", dests: list[dict[str, Any]] | None = None) -> Plan:
    props = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "x-pii": {"category": "email", "action": plan_email}},
            "phone": {"type": "string", "x-pii": "phone"},
            "note": {"type": "string"},
            "contacts": {"type": "array", "items": {
                "type": "object",
                "properties": {"email": {"type": "string", "x-pii": {"category": "email",
                                                                    "action": plan_email}}}}},
        },
    }
    base = {"legal_basis": "contract", "region": "EU", "dpa": True}
    destinations = dests if dests is not None else [
        {"name": "CRM", **base, "pii": {"email": "allow", "phone": "allow", "ip": "allow"}},
        {"name": "Ads", **base, "pii": {"email": "hash", "phone": "hash"}},
        {"name": "Analytics", **base, "pii": {"email": "mask", "ip": "mask"}},
        {"name": "Warehouse", **base, "pii": {"email": "redact", "phone": "drop"}},
        {"name": "Strict", **base, "pii": {"email": "reject"}},
        {"name": "Legacy", **base},
    ]
    return make_plan(
        destinations,
        {"categories": {}},
        events=[{"name": "Viewed", "properties": props}],
        pii={"defaults": {"phone": "allow", "ip": "allow"}},
        common={"call": {"type": "object", "properties": {"context": {
            "type": "object", "properties": {"ip": {"type": "string", "x-pii": "ip"}}}}}},
    )


def _event() -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": "u-1",
            "context": {"ip": IP},
            "properties": {"email": EMAIL, "phone": PHONE, "note": "hello",
                           "contacts": [{"email": EMAIL}, {"email": "b@example.org"}]}}


def _hmac(normalised: str) -> str:
    return hmac.new(KEY.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def test_each_destination_gets_its_own_form() -> None:
    routing = route(compile_plan(_plan()), _event())
    crm = routing.delivery("CRM").event
    assert crm["properties"]["email"] == EMAIL and crm["properties"]["phone"] == PHONE
    assert crm["context"]["ip"] == IP

    ads = routing.delivery("Ads").event
    assert ads["properties"]["email"] == _hmac("jo.doe@example.com")
    assert ads["properties"]["contacts"][1]["email"] == _hmac("b@example.org")
    assert len(ads["properties"]["phone"]) == 64 and PHONE not in orjson.dumps(ads).decode()
    assert "ip" not in ads["context"]  # not listed: the destination may not receive it

    analytics = routing.delivery("Analytics").event
    assert analytics["properties"]["email"] == "****@example.com"
    assert analytics["context"]["ip"] == "203.0.113.0"
    assert "phone" not in analytics["properties"]

    warehouse = routing.delivery("Warehouse").event
    assert warehouse["properties"]["email"] == "[REDACTED]"
    assert warehouse["properties"]["contacts"] == [{"email": "[REDACTED]"}] * 2
    assert "phone" not in warehouse["properties"]

    strict = routing.delivery("Strict")
    assert not strict.send and strict.reason == "pii" and strict.detail == ("email",)

    legacy = routing.delivery("Legacy").event  # no pii map: the plan's forms as they are
    assert legacy["properties"]["email"] == EMAIL
    for d in routing.deliveries:
        if d.send:
            assert d.event["properties"]["note"] == "hello"


def test_no_destination_copy_leaks_a_value_it_may_not_receive() -> None:
    routing = route(compile_plan(_plan()), _event())
    for name in ("Ads", "Analytics", "Warehouse"):
        text = orjson.dumps(routing.delivery(name).event).decode()
        assert EMAIL not in text and "b@example.org" not in text and PHONE not in text


def test_destination_forms_never_loosen_the_plan_action() -> None:
    routing = route(compile_plan(_plan(plan_email="hash")), _event())
    hashed = _hmac("jo.doe@example.com")
    assert routing.delivery("CRM").event["properties"]["email"] == hashed  # allow: stays hashed
    assert routing.delivery("Ads").event["properties"]["email"] == hashed  # same form
    # mask on top of a hash: the raw value is gone, so the field is redacted
    assert routing.delivery("Analytics").event["properties"]["email"] == "[REDACTED]"


def test_the_enforced_event_and_the_input_are_left_alone() -> None:
    enforcer = compile_plan(_plan())
    event = _event()
    before = orjson.dumps(event)
    routing = route(enforcer, event)
    assert orjson.dumps(event) == before
    assert routing.result.event["properties"]["email"] == EMAIL


def test_an_event_without_pii_is_shared_not_copied() -> None:
    enforcer = compile_plan(_plan())
    event = {"type": "track", "event": "Viewed", "userId": "u", "properties": {"note": "x"}}
    routing = route(enforcer, event)
    assert all(d.event is routing.result.event for d in routing.deliveries if d.send)


def test_a_destination_hash_without_the_key_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRACKPLAN_HASH_KEY")
    plan = _plan()
    with pytest.raises(MissingSecretError) as info:
        route(compile_plan(plan), _event())
    assert "TRACKPLAN_HASH_KEY" in str(info.value)


@pytest.mark.parametrize(("plan_action", "form", "expected"), [
    ("allow", None, None), ("allow", "allow", None), ("allow", "hash", "hash"),
    ("allow", "mask", "mask"), ("allow", "redact", "redact"), ("allow", "drop", "drop"),
    ("allow", "reject", "reject"), ("hash", "allow", None), ("hash", "hash", None),
    ("hash", "mask", "redact"), ("mask", "hash", "redact"), ("hash", "drop", "drop"),
    ("redact", "hash", None), ("redact", "mask", None), ("drop", "reject", "reject"),
    ("redact", "redact", None),
])
def test_effective_form_table(plan_action: str, form: str | None, expected: str | None) -> None:
    assert effective_form(plan_action, form) == expected


def test_example_plan_routes_an_identify_call(monkeypatch: pytest.MonkeyPatch,
                                              ecommerce_plan: Plan) -> None:
    event = {"type": "identify", "userId": "u1",
             "traits": {"email": EMAIL, "phone": PHONE, "first_name": "Jo", "plan": "pro"},
             "context": {"ip": IP, "consent": {"categoryPreferences": {"analytics": True}}}}
    routing = route(compile_plan(ecommerce_plan), event)
    assert set(routing.sent) == {"Amplitude", "Salesforce", "Snowflake"}
    assert routing.delivery("Google Ads").reason == "consent"
    amplitude = routing.delivery("Amplitude").event
    assert set(amplitude["traits"]) == {"email", "plan"}  # phone and names not listed
    assert amplitude["context"]["ip"] == "203.0.113.0"
    assert "ip" not in routing.delivery("Salesforce").event["context"]
