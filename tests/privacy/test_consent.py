"""Consent routing: Segment's truth table, integrations, the reserved consent event."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackplan.engine import compile_plan
from trackplan.engine.enforcer import Enforcer
from trackplan.errors import PlanError
from trackplan.privacy.consent import CONSENT_EVENT, consent_allows, preferences, route
from trackplan.privacy.destinations import load_privacy

from .privacy_helpers import DESTINATIONS, make_plan, viewed

ALL = {"A", "B", "C", "D"}
_ABSENT = object()


@pytest.fixture(scope="module")
def enforcer() -> Enforcer:
    return compile_plan(make_plan())


def _with(consent: Any = _ABSENT, integrations: Any = _ABSENT) -> dict[str, Any]:
    event = viewed(context={"library": {"name": "test"}})
    if consent is not _ABSENT:
        event["context"]["consent"] = consent
    if integrations is not _ABSENT:
        event["integrations"] = integrations
    return event


# Segment's documented consent semantics, one row each (REFERENCE.md "Consent (Segment)").
CONSENT_TABLE: list[tuple[str, Any, set[str]]] = [
    ("no consent object: every destination", _ABSENT, ALL),
    ("empty consent object: every destination", {}, ALL),
    ("consent without categoryPreferences: every destination", {"other": 1}, ALL),
    ("empty categoryPreferences: only destinations without a category",
     {"categoryPreferences": {}}, {"A"}),
    ("one category granted", {"categoryPreferences": {"analytics": True}}, {"A", "B"}),
    ("several categories need all of them",
     {"categoryPreferences": {"advertising": True}}, {"A"}),
    ("all categories of C granted",
     {"categoryPreferences": {"analytics": True, "advertising": True}}, {"A", "B", "C"}),
    ("a false category denies",
     {"categoryPreferences": {"analytics": True, "advertising": False}}, {"A", "B"}),
    ("everything granted",
     {"categoryPreferences": {"analytics": True, "advertising": True, "functional": True}}, ALL),
    ("functional only", {"categoryPreferences": {"functional": True}}, {"A", "D"}),
    ("a category unknown to the plan is ignored",
     {"categoryPreferences": {"marketing": True}}, {"A"}),
    ("unknown categories beside known ones are ignored",
     {"categoryPreferences": {"marketing": False, "analytics": True}}, {"A", "B"}),
    ("category ids are case-sensitive", {"categoryPreferences": {"Analytics": True}}, {"A"}),
    ("only true counts as granted", {"categoryPreferences": {"analytics": "true"}}, {"A"}),
    ("malformed consent fails closed", "yes", {"A"}),
    ("null categoryPreferences fails closed", {"categoryPreferences": None}, {"A"}),
    ("all denied", {"categoryPreferences": {"analytics": False, "advertising": False,
                                            "functional": False}}, {"A"}),
]


@pytest.mark.parametrize(("consent", "expected"), [(c, e) for _, c, e in CONSENT_TABLE],
                         ids=[i for i, _, _ in CONSENT_TABLE])
def test_consent_truth_table(enforcer: Enforcer, consent: Any, expected: set[str]) -> None:
    routing = route(enforcer, _with(consent))
    assert routing.result.allowed
    assert set(routing.sent) == expected
    for delivery in routing.deliveries:
        if delivery.destination not in expected:
            assert delivery.reason == "consent" and delivery.event is None
            assert delivery.detail  # names the missing categories


INTEGRATIONS_TABLE: list[tuple[str, Any, Any, set[str]]] = [
    ("All false turns everything off", _ABSENT, {"All": False}, set()),
    ("All false, one named on", _ABSENT, {"All": False, "B": True}, {"B"}),
    ("one named off", _ABSENT, {"B": False}, {"A", "C", "D"}),
    ("an options object means on", _ABSENT, {"All": False, "C": {"id": 1}}, {"C"}),
    ("integrations cannot override consent",
     {"categoryPreferences": {"analytics": True}}, {"C": True, "D": True}, {"A", "B"}),
    ("consent first, then integrations",
     {"categoryPreferences": {"analytics": True}}, {"B": False}, {"A"}),
    ("an empty integrations object (what SDKs send)", _ABSENT, {}, ALL),
    ("All true is the default", _ABSENT, {"All": True}, ALL),
]


@pytest.mark.parametrize(("consent", "integrations", "expected"),
                         [(c, i, e) for _, c, i, e in INTEGRATIONS_TABLE],
                         ids=[n for n, _, _, _ in INTEGRATIONS_TABLE])
def test_integrations_apply_after_consent(enforcer: Enforcer, consent: Any, integrations: Any,
                                          expected: set[str]) -> None:
    routing = route(enforcer, _with(consent, integrations))
    assert set(routing.sent) == expected
    for d in routing.deliveries:
        if d.destination not in expected and d.reason == "integrations":
            assert consent_allows(load_privacy(enforcer.plan).destination(d.destination).consent,
                                  preferences(routing.result.event))


def test_blocked_event_goes_nowhere(enforcer: Enforcer) -> None:
    routing = route(enforcer, viewed(event="Not Planned"))
    assert not routing.result.allowed
    assert routing.sent == ()
    assert {d.reason for d in routing.deliveries} == {"blocked"}


def test_routing_never_mutates_the_input(enforcer: Enforcer) -> None:
    event = _with({"categoryPreferences": {"analytics": True}}, {"All": True})
    before = copy.deepcopy(event)
    routing = route(enforcer, event)
    routing.stamped()
    assert event == before


def test_stamped_event_carries_the_decisions(enforcer: Enforcer) -> None:
    event = _with({"categoryPreferences": {"analytics": True}}, {"B": {"apiKey": "k"}})
    stamped = route(enforcer, event).stamped()
    assert stamped["integrations"] == {"All": False, "A": True, "B": {"apiKey": "k"},
                                       "C": False, "D": False}
    # a downstream workspace applying integrations alone reaches the same destinations
    again = route(enforcer, {**stamped, "context": {}})
    assert set(again.sent) == {"A", "B"}


def test_route_to_dict_is_json_ready(enforcer: Enforcer) -> None:
    doc = route(enforcer, _with({"categoryPreferences": {}})).to_dict()
    assert doc["allowed"] is True
    assert doc["destinations"]["A"]["send"] is True and "event" in doc["destinations"]["A"]
    assert doc["destinations"]["B"] == {"send": False, "reason": "consent",
                                        "detail": ["analytics"]}


# -- the reserved consent event --------------------------------------------------------------
def _consent_event(prefs: Any = _ABSENT) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "track", "event": CONSENT_EVENT, "anonymousId": "a-1",
                             "context": {"consent": {}}}
    if prefs is not _ABSENT:
        event["context"]["consent"]["categoryPreferences"] = prefs
    return event


def test_reserved_event_is_accepted_even_when_unplanned_events_are_blocked(
    enforcer: Enforcer,
) -> None:
    assert enforcer.plan.controls.track.unplanned_events == "block"
    result = enforcer.enforce(_consent_event({"analytics": True, "advertising": False}))
    assert result.allowed and not result.violations


@pytest.mark.parametrize("prefs", [_ABSENT, None, ["analytics"], {"analytics": "yes"}],
                         ids=["missing", "null", "array", "non-boolean"])
def test_reserved_event_without_category_preferences_is_rejected(enforcer: Enforcer,
                                                                 prefs: Any) -> None:
    result = enforcer.enforce(_consent_event(prefs))
    assert not result.allowed
    assert result.violations[0].pointer.startswith("/context/consent")


def test_reserved_event_defined_by_the_plan_keeps_its_rule_and_the_requirement() -> None:
    plan = make_plan(events=[
        {"name": "Viewed", "properties": {"type": "object"}},
        {"name": CONSENT_EVENT, "properties": {
            "type": "object", "required": ["source"],
            "properties": {"source": {"enum": ["banner", "settings"]}}}},
    ])
    enforcer = compile_plan(plan)
    ok = _consent_event({"analytics": True})
    ok["properties"] = {"source": "banner"}
    assert enforcer.enforce(ok).allowed
    no_prefs = _consent_event()
    no_prefs["properties"] = {"source": "banner"}
    assert not enforcer.enforce(no_prefs).allowed
    bad_source = _consent_event({"analytics": True})
    bad_source["properties"] = {"source": "popup"}
    assert not enforcer.enforce(bad_source).allowed


def test_enforce_bytes_agrees_on_the_reserved_event(enforcer: Enforcer) -> None:
    import orjson

    for event in (_consent_event({"analytics": True}), _consent_event()):
        assert enforcer.enforce_bytes(orjson.dumps(event)).allowed == enforcer.enforce(
            event).allowed


# -- validation of the sections ---------------------------------------------------------------
@pytest.mark.parametrize(("cid", "ok"), [
    ("analytics", True), ("C0001", True), ("a" * 34, True), ("Ads & marketing", True),
    ("1st_party", False), ("a" * 35, False), ("", False),
])
def test_consent_category_ids_follow_segment(cid: str, ok: bool) -> None:
    consent = {"categories": {cid: "x"}}
    dests = [{"name": "X", "legal_basis": "consent", "region": "EU", "consent": [cid]}]
    if ok:
        assert load_privacy(make_plan(dests, consent)).category_ids == {cid}
    else:
        with pytest.raises(PlanError) as info:
            load_privacy(make_plan(dests, consent))
        # the plan format rejects the id (at the categories object) before routing sees it
        assert any(i.file == "plan.yaml" and i.pointer.startswith("/consent/categories")
                   for i in info.value.issues)


def test_destination_format_errors_name_file_and_pointer() -> None:
    dests: list[Any] = [
        {"name": "X", "legal_basis": "because", "region": "Mars", "transfer": "hope",
         "dpa": "yes", "consent": ["analytics"], "pii": {"email": "shout"}, "colour": "red"},
        "not a mapping",
    ]
    with pytest.raises(PlanError) as info:
        make_plan(dests)
    found = {(i.file, i.pointer) for i in info.value.issues}
    for tail in ("0/legal_basis", "0/region", "0/transfer", "0/dpa", "0/pii/email", "0", "1"):
        assert ("plan.yaml", f"/destinations/{tail}") in found, (tail, found)


def test_cross_references_are_checked_with_file_and_pointer() -> None:
    dests: list[Any] = [
        {"name": "X", "legal_basis": "consent", "region": "EU", "consent": ["nope"]},
        {"name": "Y", "legal_basis": "contract", "region": "EU"},
        {"name": "Y", "legal_basis": "contract", "region": "EU"},
    ]
    with pytest.raises(PlanError) as info:
        load_privacy(make_plan(dests))
    found = {(i.file, i.pointer) for i in info.value.issues}
    assert found == {("plan.yaml", "/destinations/0/consent/0"),
                     ("plan.yaml", "/destinations/2/name")}


def test_format_schema_lists_match_the_privacy_module() -> None:
    from trackplan.plan.format_schema import PLAN_FORMAT_SCHEMA
    from trackplan.privacy.destinations import DESTINATION_FORMS, LEGAL_BASES, TRANSFER_MECHANISMS

    props = PLAN_FORMAT_SCHEMA["properties"]["destinations"]["items"]["properties"]
    assert set(props["legal_basis"]["enum"]) == set(LEGAL_BASES)
    assert set(props["transfer"]["enum"]) == set(TRANSFER_MECHANISMS)
    assert set(props["pii"]["additionalProperties"]["enum"]) == set(DESTINATION_FORMS)


def test_the_example_plan_declares_realistic_destinations(ecommerce_plan: Any) -> None:
    privacy = load_privacy(ecommerce_plan)
    amplitude = privacy.destination("Amplitude")
    assert amplitude.outside_eea and amplitude.transfer == "scc"
    assert privacy.destination("Salesforce").legal_basis == "contract"
    assert privacy.destination("Google Ads").consent == ("advertising", "analytics")
    assert {d.name for d in privacy.destinations} >= {"Amplitude", "Salesforce", "Google Ads",
                                                      "Snowflake"}
    assert len(DESTINATIONS) == 4


# -- properties ------------------------------------------------------------------------------
_PREFS = st.dictionaries(st.sampled_from(["analytics", "advertising", "functional", "other",
                                          "Analytics"]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(prefs=_PREFS, extra=st.sampled_from(["analytics", "advertising", "functional"]))
def test_granting_a_category_never_removes_a_destination(enforcer: Enforcer,
                                                          prefs: dict[str, bool],
                                                          extra: str) -> None:
    before = set(route(enforcer, _with({"categoryPreferences": prefs})).sent)
    after = set(route(enforcer, _with({"categoryPreferences": {**prefs, extra: True}})).sent)
    assert before <= after
    assert "A" in before  # no category: always receives
    unknown_only = {k: v for k, v in prefs.items() if k not in ("analytics", "advertising",
                                                               "functional")}
    assert set(route(enforcer, _with({"categoryPreferences": unknown_only})).sent) == {"A"}
