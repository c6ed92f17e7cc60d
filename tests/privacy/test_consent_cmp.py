"""Consent categories read from the ids a CMP sends (OneTrust's C0002, Cookiebot's names)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.privacy.privacy_helpers import DESTINATIONS, make_plan, run_cli, viewed
from tests.serve.helpers import request
from trackplan.engine import compile_plan
from trackplan.errors import PlanError
from trackplan.privacy.consent import route
from trackplan.privacy.destinations import load_privacy
from trackplan.privacy.report import build_report
from trackplan.testing import collector

ONETRUST = {"categories": {
    "analytics": {"description": "Analytics.", "ids": ["C0002"]},
    "advertising": {"description": "Ads.", "ids": ["C0004"]},
    "functional": "Chat.",
}}


def _plan_file(tmp_path: Path) -> Path:
    """The plan of :func:`make_plan` with OneTrust ids, as a file for the CLI and serve."""
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(orjson.dumps({
        "trackplan": 1, "name": "privacy-test",
        "controls": {"track": {"unplanned_events": "block"}},
        "events": [{"name": "Viewed", "properties": {
            "type": "object", "properties": {"item": {"type": "string"}}}}],
        "destinations": DESTINATIONS, "consent": ONETRUST}))
    return plan


def _sent(consent: dict[str, Any], prefs: dict[str, Any]) -> dict[str, bool]:
    enforcer = compile_plan(make_plan(consent=consent))
    routing = route(enforcer, viewed(context={"consent": {"categoryPreferences": prefs}}))
    return {d.destination: d.send for d in routing.deliveries}


def test_onetrust_ids_grant_the_plan_categories() -> None:
    # Segment's OneTrust wrapper: every group id, true or false, not renamed
    everything = {"C0001": True, "C0002": True, "C0003": True, "C0004": True, "C0005": True}
    assert _sent(ONETRUST, everything) == {"A": True, "B": True, "C": True, "D": False}
    analytics_only = {"C0001": True, "C0002": True, "C0004": False}
    assert _sent(ONETRUST, analytics_only) == {"A": True, "B": True, "C": False, "D": False}


def test_without_ids_a_onetrust_user_is_blocked_as_before() -> None:
    plain = {"categories": {"analytics": "A.", "advertising": "B.", "functional": "C."}}
    assert _sent(plain, {"C0002": True, "C0004": True})["B"] is False


def test_plan_names_still_work_and_a_conflict_fails_closed() -> None:
    assert _sent(ONETRUST, {"analytics": True})["B"] is True
    assert _sent(ONETRUST, {"analytics": True, "C0002": False})["B"] is False
    assert _sent(ONETRUST, {"C0002": "yes"})["B"] is False


def test_presets_name_the_ids_of_each_cmp() -> None:
    cookiebot = {"preset": "cookiebot",
                 "categories": {"analytics": "A.", "advertising": "B.", "functional": "C."}}
    privacy = load_privacy(make_plan(consent=cookiebot))
    assert {c.id: c.ids for c in privacy.categories} == {
        "analytics": ("statistics",), "advertising": ("marketing",),
        "functional": ("preferences",)}
    prefs = {"necessary": True, "preferences": True, "statistics": True, "marketing": False}
    assert _sent(cookiebot, prefs) == {"A": True, "B": True, "C": False, "D": True}


def test_bad_ids_and_presets_name_the_pointer() -> None:
    with pytest.raises(PlanError) as bad:
        load_privacy(make_plan(consent={"preset": "nope", "categories": {
            "analytics": {"ids": [3]}, "advertising": "B.", "functional": "C."}}))
    text = str(bad.value)
    assert "/consent/preset" in text and "/consent/categories/analytics" in text


def test_dpia_report_lists_the_ids() -> None:
    report = build_report(make_plan(consent=ONETRUST))
    data = report.to_dict()
    assert data["consent_category_ids"] == {"analytics": ["C0002"], "advertising": ["C0004"]}


def test_dpia_text_and_route_cli_use_the_ids(tmp_path: Path) -> None:
    plan = _plan_file(tmp_path)
    out = run_cli("report", "dpia", str(plan), "--format", "markdown")
    assert out.returncode == 0, out.stderr
    assert "advertising (C0004), analytics (C0002)" in out.stdout
    event = viewed(context={"consent": {"categoryPreferences": {"C0002": True}}})
    routed = run_cli("route", str(plan), "-", stdin=orjson.dumps(event) + b"\n")
    assert routed.returncode == 0, routed.stderr
    assert orjson.loads(routed.stdout)["destinations"]["B"]["send"] is True


def test_serve_routes_a_onetrust_user_by_the_ids(tmp_path: Path) -> None:
    plan = _plan_file(tmp_path)
    with collector(plan) as qa:
        event = viewed(context={"consent": {"categoryPreferences": {
            "C0001": True, "C0002": True, "C0003": False, "C0004": False}}})
        assert request(f"{qa.url}/v1/track", event)[0] == 200
        assert qa.good()[0]["destinations"] == {"A": "sent", "B": "sent", "C": "consent",
                                                "D": "consent"}
