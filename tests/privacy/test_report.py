"""The data-protection report and the route/report commands, run as a user would."""

from __future__ import annotations

import html.parser
from pathlib import Path
from typing import Any

import orjson
import pytest

from trackplan.plan.model import Plan
from trackplan.privacy.report import build_report, render

from .privacy_helpers import EXAMPLE, ROOT, make_plan, run_cli


def _gappy_plan() -> Plan:
    props = {"type": "object", "properties": {
        "email": {"type": "string", "x-pii": "email"},          # default from pii.defaults
        "nick": {"type": "string", "x-pii": "name"},            # no action anywhere
        "card": {"type": "string", "x-pii": {"category": "payment_card", "action": "reject"}},
    }}
    dests = [
        {"name": "US Tool", "legal_basis": "legitimate_interest", "region": "US", "dpa": True,
         "pii": {"email": "hash"}},
        {"name": "Ads", "legal_basis": "consent", "region": "EU", "dpa": False,
         "pii": {"email": "hash"}},
        {"name": "Legacy", "legal_basis": "contract", "region": "EU", "dpa": True},
        {"name": "UK", "legal_basis": "contract", "region": "GB", "transfer": "adequacy",
         "dpa": True, "pii": {"email": "allow", "name": "mask"}},
    ]
    return make_plan(dests, {"categories": {"analytics": "x"}},
                     events=[{"name": "Viewed", "properties": props}],
                     pii={"defaults": {"email": "allow"}})


def _kinds(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for g in build_report(plan).gaps:
        out.setdefault(g.kind, []).append(g.destination or g.where)
    return out


def test_every_gap_kind_is_found() -> None:
    kinds = _kinds(_gappy_plan())
    assert kinds["transfer"] == ["US Tool"]
    assert kinds["consent"] == ["Ads"]
    assert kinds["dpa"] == ["Ads"]
    assert kinds["pii-destination"] == ["Legacy", "Legacy"]  # email and name reach it
    assert kinds["pii-action"] == ["Viewed#/properties/nick"]


def test_gap_locations_point_into_the_plan() -> None:
    report = build_report(_gappy_plan())
    where = {g.kind: g.where for g in report.gaps if g.destination in ("US Tool", "Ads")}
    assert where["transfer"] == "plan.yaml#/destinations/0/transfer"
    assert where["consent"] == "plan.yaml#/destinations/1/consent"


def test_flows_show_the_form_each_destination_receives() -> None:
    flows = {f.pointer: f for f in build_report(_gappy_plan()).flows}
    email = flows["/properties/email"]
    assert email.action == "allow" and email.declared
    assert email.forms == {"US Tool": "hash", "Ads": "hash", "Legacy": "allow", "UK": "allow"}
    nick = flows["/properties/nick"]
    assert nick.action == "redact" and not nick.declared
    assert nick.forms["US Tool"] == "not received" and nick.forms["UK"] == "redact"
    card = flows["/properties/card"]
    assert set(card.forms.values()) == {"not received"}


def test_the_example_plan_has_no_gaps_and_lists_its_pii(ecommerce_plan: Plan) -> None:
    report = build_report(ecommerce_plan)
    assert report.gaps == ()
    pointers = {(f.event, f.pointer) for f in report.flows}
    assert ("identify", "/traits/email") in pointers
    assert ("every call", "/context/ip") in pointers
    ip = next(f for f in report.flows if f.pointer == "/context/ip")
    assert ip.forms == {"Amplitude": "mask", "Salesforce": "not received",
                        "Google Ads": "not received", "Snowflake": "mask"}


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.external.append(value)


def test_renderings() -> None:
    report = build_report(_gappy_plan())
    md = render(report, "markdown")
    assert "## Gaps (6)" in md and "| US Tool |" in md and "**transfer**" in md
    doc = orjson.loads(render(report, "json"))
    assert {g["kind"] for g in doc["gaps"]} == {"transfer", "consent", "dpa", "pii-destination",
                                                "pii-action"}
    assert doc["destinations"][0]["outside_eea"] is True
    page = render(report, "html")
    parser = _Collector()
    parser.feed(page)
    assert parser.external == [] and "script" not in parser.tags and "style" in parser.tags
    assert page.count("<tr>") == len(report.privacy.destinations) + len(report.flows) + 2


def test_hostile_names_are_escaped_in_html() -> None:
    dests = [{"name": "<script>alert(1)</script>", "legal_basis": "contract", "region": "EU",
              "dpa": True, "vendor": "A & B | C"}]
    report = build_report(make_plan(dests))
    page = render(report, "html")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "A &amp; B | C" in page
    assert "A & B \\| C" in render(report, "markdown")


# -- commands ---------------------------------------------------------------------------------
def _write_plan(tmp_path: Path, plan: Plan) -> Path:
    from trackplan.plan.write import write_plan

    write_plan(plan, tmp_path / "plan")
    return tmp_path / "plan"


@pytest.mark.parametrize("fmt", ["markdown", "html", "json"])
def test_report_command_and_strict(tmp_path: Path, fmt: str) -> None:
    gappy = _write_plan(tmp_path, _gappy_plan())
    ok = run_cli("report", "dpia", str(gappy), "--format", fmt)
    assert ok.returncode == 0, ok.stderr
    strict = run_cli("report", "dpia", str(gappy), "--format", fmt, "--strict")
    assert strict.returncode == 1 and strict.stdout == ok.stdout
    clean = run_cli("report", "dpia", str(EXAMPLE), "--format", fmt, "--strict")
    assert clean.returncode == 0, clean.stderr


def test_route_command_on_the_example_events(tmp_path: Path) -> None:
    events = ROOT / "examples" / "events.ndjson"
    if not events.exists():
        pytest.skip("examples/events.ndjson is absent")
    lines = events.read_bytes().splitlines()[:40]
    consented = orjson.loads(lines[1])
    consented.setdefault("context", {})["consent"] = {"categoryPreferences": {"analytics": True}}
    stdin = b"\n".join([*lines, orjson.dumps(consented)]) + b"\n"
    result = run_cli("route", str(EXAMPLE), "-", "--stamp", stdin=stdin,
                     env={"TRACKPLAN_HASH_KEY": "route-test-key"})
    assert result.returncode == 0, result.stderr
    docs: list[dict[str, Any]] = [orjson.loads(x) for x in result.stdout.splitlines()]
    assert len(docs) == len(lines) + 1
    last = docs[-1]
    assert last["destinations"]["Google Ads"] == {"send": False, "reason": "consent",
                                                  "detail": ["advertising"]}
    assert last["stamped"]["integrations"]["Google Ads"] is False
    for doc in docs:
        if not doc["allowed"]:
            assert not any(d["send"] for d in doc["destinations"].values())
    text = run_cli("route", str(EXAMPLE), "-", "--format", "text", stdin=stdin,
                   env={"TRACKPLAN_HASH_KEY": "route-test-key"})
    assert "not sent (consent: advertising)" in text.stdout


def test_route_command_with_a_suppression_list(tmp_path: Path) -> None:
    from trackplan.privacy.suppression import SuppressionList

    slist = tmp_path / "s.txt"
    SuppressionList.from_ids(["u-9"], key=None).write(slist)
    event = {"type": "track", "event": "Viewed", "userId": "u-9", "properties": {}}
    plan = _write_plan(tmp_path, make_plan())
    result = run_cli("route", str(plan), "-", "--suppression", str(slist), "--no-events",
                     stdin=orjson.dumps(event) + b"\n{bad\n")
    assert result.returncode == 1  # the unreadable line
    first, second = (orjson.loads(x) for x in result.stdout.splitlines())
    assert first["allowed"] is False and first["violations"][0]["type"] == "Suppressed"
    assert "error" in second
