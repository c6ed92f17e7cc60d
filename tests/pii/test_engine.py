"""PII actions and detectors in enforce: declared, undeclared, nested, never leaking."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trackplan.engine import compile_plan
from trackplan.errors import CompileError, MissingSecretError
from trackplan.pii.actions import hash_value
from trackplan.pii.policy import PiiPolicy
from trackplan.plan.load import load_plan

from .pii_helpers import KEY, compile_with_key, make_plan, track

ROOT = Path(__file__).resolve().parents[2]

SECRETS = {
    "email": "Jane.Doe@Example.com",
    "phone": "+44 20 7946 0958",
    "nickname": "Janie Doe",
    "street": "221B Baker Street",
    "buyer_email": "buyer.one@example.org",
    "buyer_name": "Bartholomew",
    "r1_email": "first.recipient@example.net",
    "r2_email": "second.recipient@example.net",
    "r_phone": "+1 415 555 2671",
    "r_street": "742 Evergreen Terrace",
    "note_email": "hidden.in.text@example.com",
    "unplanned_phone": "+33 6 12 34 56 78",
    "ctx_email": "ctx.trait@example.com",
    "ctx_ip": "198.51.100.23",
}


def full_event() -> dict[str, Any]:
    s = SECRETS
    return track(
        {
            "order_id": "o-1",
            "email": s["email"],
            "phone": s["phone"],
            "nickname": s["nickname"],
            "street": s["street"],
            "consented_email": "allowed@example.com",
            "buyer": {"email": s["buyer_email"], "first_name": s["buyer_name"], "age": 41},
            "recipients": [
                {
                    "email": s["r1_email"],
                    "phones": [s["r_phone"]],
                    "address": {"street": s["r_street"]},
                },
                {"email": s["r2_email"], "first_name": "Zebedee"},
            ],
            "product_name": "Jane's favourite socks",
            "note": f"please mail {s['note_email']} about it",
            "contact_line": s["unplanned_phone"],  # unplanned, let through by the controls
        },
        context={
            "ip": s["ctx_ip"],
            "traits": {"email": s["ctx_email"]},
            "library": {"name": "analytics-python", "version": "2.4.0"},
        },
    )


@pytest.fixture(scope="module")
def enforcer() -> Any:
    return compile_with_key(make_plan())


def test_every_action_inside_objects_and_arrays(enforcer: Any) -> None:
    event = full_event()
    before = copy.deepcopy(event)
    result = enforcer.enforce(event)
    assert event == before  # never mutated
    assert result.allowed
    p = result.event["properties"]
    key = KEY.encode()
    assert p["email"] == hash_value("email", "jane.doe@example.com", key)
    assert p["phone"] == "+**********58"
    assert p["nickname"] == "[REDACTED]"
    assert "street" not in p
    assert p["consented_email"] == "allowed@example.com"
    assert p["buyer"] == {
        "email": hash_value("email", SECRETS["buyer_email"], key),
        "first_name": "[REDACTED]",
        "age": 0,
    }
    r1, r2 = p["recipients"]
    assert r1 == {
        "email": hash_value("email", SECRETS["r1_email"], key),
        "phones": ["+*********71"],
    }
    assert r2["email"] == hash_value("email", SECRETS["r2_email"], key)
    assert r2["first_name"] == "[REDACTED]"
    assert p["product_name"] == "Jane's favourite socks"  # x-pii: false
    assert p["note"] == "please mail [REDACTED] about it"
    assert p["contact_line"] == "[REDACTED]"
    ctx = result.event["context"]
    assert ctx["ip"] == "[REDACTED]" and ctx["traits"]["email"] == "[REDACTED]"
    pointers = sorted(v.pointer for v in result.violations if v.type == "PII")
    assert pointers == [
        "/context/ip",
        "/context/traits/email",
        "/properties/contact_line",
        "/properties/note",
    ]


def test_no_output_or_message_holds_an_original_value(enforcer: Any) -> None:
    result = enforcer.enforce(full_event())
    text = json.dumps(result.event) + json.dumps([v.to_dict() for v in result.violations])
    text += " ".join(repr(v) for v in result.violations)
    lowered = text.lower()
    for name, secret in SECRETS.items():
        assert secret.lower() not in lowered, name


def test_reject_blocks_and_the_review_copy_holds_no_pii(enforcer: Any) -> None:
    event = full_event()
    event["properties"]["card"] = "4242 4242 4242 4242"
    result = enforcer.enforce(event)
    assert not result.allowed
    v = [v for v in result.violations if v.type == "PII" and v.pointer == "/properties/card"]
    assert v and "payment_card" in v[0].message and "reject" in v[0].message
    text = json.dumps(result.event) + json.dumps([v.to_dict() for v in result.violations])
    assert "4242" not in text
    for secret in SECRETS.values():
        assert secret.lower() not in text.lower()


def test_detection_action_reject_blocks_on_an_undeclared_card() -> None:
    enf = compile_with_key(
        make_plan(pii={"detection": {"action": "default"}, "defaults": {"payment_card": "reject"}})
    )
    result = enf.enforce(track({"order_id": "o-1", "note": "card 4242-4242-4242-4242"}))
    assert not result.allowed
    assert "4242" not in json.dumps(result.event)
    assert [v.type for v in result.violations] == ["PII"]


def test_unplanned_events_get_detection_and_common_declarations() -> None:
    common = {
        "call": {
            "properties": {
                "context": {
                    "properties": {
                        "ip": {"type": "string", "x-pii": {"category": "ip", "action": "mask"}}
                    }
                }
            }
        }
    }
    enf = compile_with_key(make_plan(common=common))
    event = track(
        {"contact": "ada@example.com", "color": "red"},
        name="Not In Plan",
        context={"ip": "203.0.113.79"},
    )
    result = enf.enforce(event)
    assert result.allowed
    assert result.event["context"]["ip"] == "203.0.113.0"
    assert result.event["properties"] == {"contact": "[REDACTED]", "color": "red"}


def test_identify_traits_declared_in_the_plan_apply_in_context(ecommerce_plan: Any) -> None:
    enf = compile_with_key(ecommerce_plan)
    event = {
        "type": "track",
        "event": "Signed Up",
        "userId": "u1",
        "anonymousId": None,
        "properties": {"method": "email"},
        "context": {
            "traits": {"email": "Ada@Example.com", "first_name": "Ada", "newsletter": True}
        },
    }
    result = enf.enforce(event)
    traits = result.event["context"]["traits"]
    assert traits["email"] == hash_value("email", "ada@example.com", KEY.encode())
    assert traits["first_name"] == "[REDACTED]" and traits["newsletter"] is True
    assert result.violations == ()  # declared: handled, not a violation


def test_unchanged_events_are_forwarded_as_they_are(enforcer: Any) -> None:
    event = track({"order_id": "o-1", "product_name": "Socks", "note": "size 42, blue"})
    result = enforcer.enforce(event)
    assert result.allowed and result.violations == () and result.event is event


def test_detection_can_be_turned_off_and_narrowed() -> None:
    off = compile_with_key(make_plan(pii={"detection": False}))
    event = track({"order_id": "o-1", "note": "jane@example.com"}, context={"ip": "198.51.100.23"})
    assert off.enforce(event).event is event
    narrow = compile_with_key(make_plan(pii={"detection": {"context": []}}))
    out = narrow.enforce(event).event
    assert out["context"]["ip"] == "198.51.100.23" and out["properties"]["note"] == "[REDACTED]"
    for off_too in ({"detection": "off"}, {"detection": {"enabled": False}}):
        assert compile_with_key(make_plan(pii=off_too)).enforce(event).event is event
    # silence is not "off": a plan without a pii section detects (the category defaults)
    no_pii_section = compile_with_key(make_plan(pii={})).enforce(event).event
    assert no_pii_section["properties"]["note"] == "[REDACTED]"
    assert no_pii_section["context"]["ip"] == "[REDACTED]"


def test_hash_differs_with_the_key() -> None:
    plan = make_plan()
    a = compile_with_key(plan, "key-a").enforce(full_event()).event["properties"]["email"]
    b = compile_with_key(plan, "key-b").enforce(full_event()).event["properties"]["email"]
    assert a != b and len(a) == len(b) == 64


def test_missing_key_is_a_compile_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKPLAN_HASH_KEY", raising=False)
    with pytest.raises(MissingSecretError) as err:
        compile_plan(make_plan())
    assert "TRACKPLAN_HASH_KEY" in str(err.value)
    monkeypatch.setenv("MY_KEY", "s3cr3t-value")
    plan = make_plan(pii={"hash_key_env": "MY_KEY"})
    policy = PiiPolicy.from_plan(plan)
    assert policy.key == b"s3cr3t-value"
    assert "s3cr3t" not in repr(policy) and "s3cr3t" not in str(policy)
    with pytest.raises(MissingSecretError, match="OTHER_KEY"):
        PiiPolicy.from_plan(make_plan(pii={"hash_key_env": "OTHER_KEY"}))


def test_no_hash_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKPLAN_HASH_KEY", raising=False)
    props = {"type": "object", "properties": {"email": {"type": "string", "x-pii": "email"}}}
    enf = compile_plan(make_plan(props))  # email defaults to redact: no key needed
    assert enf.enforce(track({"email": "a@b.co"})).event["properties"]["email"] == "[REDACTED]"


@pytest.mark.parametrize(
    ("annotation", "fragment"),
    [
        ({"category": "mail"}, "unknown PII category"),
        ({"category": "email", "action": "shred"}, "unknown PII action"),
        (17, "x-pii must be"),
    ],
)
def test_bad_annotations_are_compile_errors(annotation: object, fragment: str) -> None:
    props = {"type": "object", "properties": {"e": {"type": "string", "x-pii": annotation}}}
    with pytest.raises(CompileError, match=fragment):
        compile_with_key(make_plan(props))


def test_cli_missing_key_exit_code_and_message(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if k != "TRACKPLAN_HASH_KEY"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trackplan",
            "validate",
            str(ROOT / "plans" / "ecommerce"),
            str(events),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "TRACKPLAN_HASH_KEY" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_output_holds_no_declared_pii(tmp_path: Path) -> None:
    event = {
        "type": "identify",
        "userId": "u1",
        "anonymousId": None,
        "messageId": "m1",
        "timestamp": "2026-11-29T10:00:00.000Z",
        "context": {
            "ip": "203.0.113.79",
            "library": {"name": "analytics-python", "version": "2.4.0"},
        },
        "traits": {
            "email": "Ada.Lovelace@Example.com",
            "phone": "+44 20 7946 0958",
            "first_name": "Augusta",
            "last_name": "Byron",
            "plan": "pro",
        },
    }
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(event) + "\n")
    out = tmp_path / "out.ndjson"
    env = dict(os.environ, TRACKPLAN_HASH_KEY="cli-key")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trackplan",
            "validate",
            str(ROOT / "plans" / "ecommerce"),
            str(events),
            "--out",
            str(out),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    written = out.read_text() + proc.stdout + proc.stderr
    for secret in ("ada.lovelace", "7946", "Augusta", "Byron", "203.0.113.79"):
        assert secret.lower() not in written.lower(), secret
    forwarded = json.loads(out.read_text().splitlines()[0])
    assert forwarded["traits"]["email"] == hash_value(
        "email", "ada.lovelace@example.com", b"cli-key"
    )


def test_blocked_unplanned_events_and_properties_keep_no_pii() -> None:
    controls = {"track": {"unplanned_events": "block", "unplanned_properties": "block"}}
    enf = compile_with_key(make_plan(controls=controls))
    secret = "blocked.person@example.com"
    for event in (
        track({"contact": secret}, name="Not In Plan"),
        track({"order_id": "o-1", "email": secret, "contact": secret}),
    ):
        result = enf.enforce(event)
        assert not result.allowed
        assert secret not in json.dumps(result.event)
        assert event["properties"]["contact"] == secret  # the input is untouched


# -- review copies of blocked values no rule describes ------------------------------------
def _review_case_enforcer() -> Any:
    return compile_with_key(load_plan(Path(__file__).resolve().parents[2] / "plans" / "ecommerce"))


@pytest.mark.parametrize(
    "value",
    [
        "call +44 20 7946 0958 or write to jane.doe@example.com",  # not an object
        ["jane.doe@example.com", {"phone": "+44 20 7946 0958"}],
        {"type": "purchase", "traits": {"email": "jane.doe@example.com"},
         "note": "call +44 20 7946 0958"},  # a call type that does not exist
        {"type": "track", "event": "Products Searched", "userId": "u1",  # not plain JSON
         "context": {"note": "jane.doe@example.com"}, "properties": {"query": {1, 2}}},
    ],
    ids=["string", "array", "unknown-type", "not-json"],
)
def test_blocked_values_no_rule_describes_keep_no_pii_for_review(value: Any) -> None:
    result = _review_case_enforcer().enforce(value)
    assert not result.allowed
    kept = repr(result.event)
    for secret in ("jane.doe@example.com", "7946 0958"):
        assert secret not in kept, result.event


def test_a_blocked_event_too_deep_to_walk_keeps_nothing_for_review() -> None:
    deep: Any = "jane.doe@example.com"
    for _ in range(5000):
        deep = [deep]
    event = {"type": "track", "event": "Signed Up", "userId": "u1", "properties": {"x": deep}}
    result = _review_case_enforcer().enforce(event)
    assert not result.allowed and "deeper" in result.violations[0].message
    assert result.event is None or "jane.doe@example.com" not in repr(result.event)
