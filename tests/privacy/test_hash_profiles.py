"""Per-destination hash profiles: plain SHA-256 where a destination's matching needs it."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trackplan.engine import compile_plan
from trackplan.plan.model import Plan
from trackplan.privacy.consent import route
from trackplan.privacy.forms import effective_form
from trackplan.privacy.report import build_report, render

from .privacy_helpers import make_plan

KEY = "test-key-for-profiles"
EMAIL = "  Jo.Doe@Example.COM "
ROOT = Path(__file__).resolve().parents[2]
SPELL = ["+44 20 7946 0958", "020 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958"]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _plan(plan_action: str = "hash", **pii: Any) -> Plan:
    props = {
        "type": "object",
        "properties": {
            "email": {"type": "string", "x-pii": {"category": "email", "action": plan_action}},
            "phone": {"type": "string", "x-pii": {"category": "phone", "action": plan_action}},
            "contacts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "email": {
                            "type": "string",
                            "x-pii": {"category": "email", "action": plan_action},
                        }
                    },
                },
            },
        },
    }
    base = {"legal_basis": "consent", "region": "EU", "dpa": True, "consent": ["ads"]}
    return make_plan(
        [
            {"name": "Ads", **base, "pii": {"email": "sha256", "phone": "sha256"}},
            {"name": "Warehouse", **base, "pii": {"email": "hash", "phone": "hash"}},
        ],
        {"categories": {"ads": "Advertising"}},
        events=[{"name": "Viewed", "properties": props}],
        pii={"defaults": {}, **pii},
    )


def _event(phone: str = "020 7946 0958") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Viewed",
        "userId": "u-1",
        "context": {"consent": {"categoryPreferences": {"ads": True}}},
        "properties": {"email": EMAIL, "phone": phone, "contacts": [{"email": "B@x.org"}, {}]},
    }


def test_the_ad_destination_gets_plain_sha256_of_the_normalised_raw_value() -> None:
    routing = route(compile_plan(_plan(default_region="GB")), _event())
    ads = routing.delivery("Ads").event["properties"]
    assert ads["email"] == _sha("jo.doe@example.com")
    assert ads["phone"] == _sha("+442079460958")  # E.164, as the platforms document
    assert ads["contacts"] == [{"email": _sha("b@x.org")}, {}]
    hmac_of = hmac.new(KEY.encode(), b"jo.doe@example.com", hashlib.sha256).hexdigest()
    assert routing.delivery("Warehouse").event["properties"]["email"] == hmac_of
    assert routing.result.event["properties"]["email"] == hmac_of  # the plan's own form


def test_every_spelling_of_a_phone_gives_the_platforms_hash() -> None:
    enforcer = compile_plan(_plan(default_region="GB"))
    got = {route(enforcer, _event(p)).delivery("Ads").event["properties"]["phone"] for p in SPELL}
    assert got == {_sha("+442079460958")}


def test_without_the_raw_event_a_plan_hashed_field_is_redacted_not_passed_as_sha256() -> None:
    from trackplan.privacy.consent import router_of

    enforcer = compile_plan(_plan())
    routing = router_of(enforcer).decide(enforcer.enforce(_event()))  # no source given
    assert routing.delivery("Ads").event["properties"]["email"] == "[REDACTED]"


def test_a_plan_allow_needs_no_source_and_a_stricter_plan_action_stands() -> None:
    from trackplan.privacy.consent import router_of

    enforcer = compile_plan(_plan("allow"))
    routing = router_of(enforcer).decide(enforcer.enforce(_event()))
    assert routing.delivery("Ads").event["properties"]["email"] == _sha("jo.doe@example.com")
    routing = route(compile_plan(_plan("redact")), _event())
    assert routing.delivery("Ads").event["properties"]["email"] == "[REDACTED]"


@pytest.mark.parametrize(
    ("plan_action", "expected"),
    [("allow", "sha256"), ("hash", "sha256"), ("mask", "redact"), ("redact", None),
     ("drop", None), ("reject", None)],
)  # fmt: skip
def test_effective_form_of_sha256(plan_action: str, expected: str | None) -> None:
    assert effective_form(plan_action, "sha256") == expected


def test_the_report_shows_and_flags_plain_hashes() -> None:
    report = build_report(_plan())
    assert [(g.kind, g.destination) for g in report.flags] == [("plain-hash", "Ads")]
    assert "email, phone" in report.flags[0].message
    email = next(f for f in report.flows if f.pointer == "/properties/email")
    assert email.forms == {"Ads": "sha256", "Warehouse": "hash"}
    md = render(report, "markdown")
    assert "## Flags (1)" in md and "plain SHA-256 (flagged): email, phone" in md
    doc = json.loads(render(report, "json"))
    assert doc["flags"][0]["kind"] == "plain-hash"
    assert [d["plain_hash"] for d in doc["destinations"]] == [["email", "phone"], []]
    assert "Flags (1)" in render(report, "html")


def test_the_example_plan_sends_plain_hashes_to_google_ads_and_flags_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trackplan", "report", "dpia", str(ROOT / "plans" / "ecommerce"),
         "--format", "json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    assert doc["gaps"] == []
    assert [(f["kind"], f["destination"]) for f in doc["flags"]] == [("plain-hash", "Google Ads")]
