"""Segment import and export: both export forms, nothing lost, errors point into the file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from plan_helpers import ECOMMERCE, ROOT, TYPEWRITER, shared_fixture

from trackplan import pointer as jp
from trackplan.engine import compile_plan
from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.assemble import call_schema
from trackplan.plan.jsonutil import walk_schemas
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan
from trackplan.plan.segment import export_segment, import_segment
from trackplan.plan.write import write_plan
from trackplan.schema.validator import make_validator

DRAFT7 = "http://json-schema.org/draft-07/schema#"
HOSTILE = "42_--terrible==\\\"event'++name~!3"


def round_trip(plan: Plan, tmp: Path) -> Plan:
    """import -> write_plan -> load_plan -> export -> import."""
    write_plan(plan, tmp)
    return import_segment(export_segment(load_plan(tmp)), source="again.json")


def import_errors(doc: Any, source: str = "plan.json") -> tuple[PlanIssue, ...]:
    with pytest.raises(PlanError) as info:
        import_segment(doc, source=source)
    return info.value.issues


# -- Segment's own end-to-end plan (legacy form, hostile names) --------------------------------
@pytest.fixture(scope="module")
def typewriter() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(shared_fixture(TYPEWRITER).read_text(encoding="utf-8"))
    return doc


def test_typewriter_plan_imports_every_event(typewriter: dict[str, Any]) -> None:
    events = typewriter["rules"]["events"]
    plan = import_segment(typewriter, source=str(TYPEWRITER))
    # The issue says 25 events; the fixture holds 24 (each once, version 1).
    assert len(events) == 24
    assert len(plan.events) == len(events)
    assert sorted(plan.event_names) == sorted(e["name"] for e in events)
    assert HOSTILE in plan.event_names
    assert plan.name == typewriter["display_name"]
    assert plan.extra["x-segment-resource_name"] == typewriter["name"]
    for ev in events:
        rule = plan.event(ev["name"])
        assert rule.description == ev["description"]
        assert rule.version == ev["version"]
        assert rule.pointer.startswith("/rules/events/")


def test_typewriter_rules_export_exactly_as_imported(typewriter: dict[str, Any]) -> None:
    original = {e["name"]: e["rules"] for e in typewriter["rules"]["events"]}
    exported = export_segment(import_segment(typewriter, source="tw.json"))
    keys = [r["key"] for r in exported["rules"]]
    assert sorted(keys) == sorted(original) and len(keys) == len(original)
    for rule in exported["rules"]:
        assert rule["type"] == "TRACK"
        assert rule["jsonSchema"] == original[rule["key"]], rule["key"]
    by_key = {r["key"]: r for r in exported["rules"]}
    for ev in typewriter["rules"]["events"]:
        assert by_key[ev["name"]]["description"] == ev["description"]


def test_typewriter_plan_written_reloads_and_round_trips(
    typewriter: dict[str, Any], tmp_path: Path
) -> None:
    plan = import_segment(typewriter, source="tw.json")
    write_plan(plan, tmp_path)
    reloaded = load_plan(tmp_path)
    assert reloaded.content() == plan.content()
    assert len(list((tmp_path / "events").glob("*.yaml"))) == len(plan.events)
    again = import_segment(export_segment(reloaded), source="again.json")
    assert again.content() == plan.content()
    assert HOSTILE in reloaded.event_names


def test_typewriter_events_enforce_like_the_original_schema(typewriter: dict[str, Any]) -> None:
    """The imported rule accepts and rejects what the Segment jsonSchema does."""
    plan = import_segment(typewriter, source="tw.json")
    enforcer = compile_plan(plan)
    ev = next(e for e in typewriter["rules"]["events"] if e["name"] == "Custom Violation Handler")
    original = jsonschema.Draft7Validator(ev["rules"])
    for value in ("Evil Morty", "Rick"):
        call = {
            "type": "track",
            "event": ev["name"],
            "userId": "u",
            "messageId": "m",
            "properties": {"regex property": value},
        }
        result = enforcer.enforce(call)
        assert (result.violations == ()) == original.is_valid(call)


# -- the Public API form -----------------------------------------------------------------------
def public_doc() -> dict[str, Any]:
    """A Public API export touching every rule type and every part a rule can hold."""
    track_v1 = {
        "$schema": DRAFT7,
        "type": "object",
        "description": "An order was placed.",
        "labels": {"team": "checkout"},
        "properties": {
            "messageId": {"type": "string", "pattern": "^msg-[0-9a-f]{8}$"},
            "context": {
                "type": "object",
                "required": ["app"],
                "properties": {"app": {"type": "object", "required": ["version"]}},
            },
            "traits": {"type": "object"},
            "properties": {
                "type": "object",
                "required": ["total"],
                "properties": {
                    "total": {"type": "number", "minimum": 0},
                    "email": {"type": "string", "x-pii": {"category": "email", "action": "hash"}},
                    "address": {"$ref": "#/definitions/address"},
                },
            },
        },
        "required": ["properties"],
        "definitions": {"address": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    track_v2 = copy.deepcopy(track_v1)
    track_v2["properties"]["properties"]["required"] = ["total", "currency"]
    return {
        "id": "tp_2abc",
        "name": "Shop",
        "slug": "shop",
        "description": "The shop's plan.",
        "type": "LIVE",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-02-01T00:00:00.000Z",
        "rules": [
            {
                "type": "COMMON",
                "key": "",
                "version": 1,
                "jsonSchema": {
                    "$schema": DRAFT7,
                    "type": "object",
                    "properties": {
                        "context": {
                            "type": "object",
                            "properties": {"ip": {"type": "string", "format": "ipv4"}},
                        }
                    },
                },
            },
            {
                "type": "IDENTIFY",
                "version": 1,
                "jsonSchema": {
                    "type": "object",
                    "properties": {
                        "traits": {
                            "type": "object",
                            "required": ["email"],
                            "properties": {"email": {"type": "string", "format": "email"}},
                        }
                    },
                },
            },
            {
                "type": "GROUP",
                "version": 1,
                "jsonSchema": {
                    "properties": {"traits": {"properties": {"plan": {"enum": ["free", "pro"]}}}},
                },
            },
            {
                "type": "PAGE",
                "key": "",
                "version": 1,
                "jsonSchema": {
                    "properties": {"properties": {"properties": {"path": {"type": "string"}}}},
                },
            },
            {
                "type": "SCREEN",
                "version": 1,
                "jsonSchema": {"properties": {"name": {"type": "string"}}},
            },
            {"type": "TRACK", "key": HOSTILE, "version": 1, "jsonSchema": {}},
            {
                "type": "TRACK",
                "key": "Order Placed",
                "version": 1,
                "jsonSchema": track_v1,
                "createdAt": "2024-01-02T00:00:00.000Z",
                "updatedAt": "2024-01-03T00:00:00.000Z",
                "deprecatedAt": None,
            },
            {
                "type": "TRACK",
                "key": "Order Placed",
                "version": 2,
                "jsonSchema": track_v2,
                "x-owner": "checkout",
            },
        ],
    }


def test_public_form_imports_every_rule_type() -> None:
    plan = import_segment(public_doc(), source="shop.json")
    assert [r.kind for r in plan.rules] == [
        "common",
        "identify",
        "group",
        "page",
        "screen",
        "track",
        "track",
        "track",
    ]
    assert plan.event_names == (HOSTILE, "Order Placed")
    assert plan.name == "Shop" and plan.description == "The shop's plan."
    assert plan.extra["x-segment-id"] == "tp_2abc" and plan.extra["x-segment-slug"] == "shop"
    assert [r.version for r in plan.versions("Order Placed")] == [1, 2]
    v1 = plan.event("Order Placed", 1)
    assert v1.description == "An order was placed."
    assert v1.payload is not None and "total" in v1.payload["properties"]  # type: ignore[index]
    assert v1.call is not None and v1.call["properties"]["messageId"]["pattern"]
    assert v1.call["labels"] == {"team": "checkout"} and v1.call["$schema"] == DRAFT7
    assert v1.extra["x-segment-createdAt"] == "2024-01-02T00:00:00.000Z"
    assert plan.event("Order Placed", 2).extra["x-owner"] == "checkout"
    # rules and sections point into the Segment file, for later messages
    assert [r.pointer for r in plan.rules] == [f"/rules/{i}" for i in range(8)]
    assert plan.sections["identify"] == "shop.json#/rules/1"
    assert plan.rule("screen") is not None and plan.rule("screen").payload is None  # type: ignore[union-attr]


def test_public_form_exports_back_exactly() -> None:
    doc = public_doc()
    assert export_segment(import_segment(doc, source="shop.json")) == doc


def test_public_form_round_trips_through_a_plan_directory(tmp_path: Path) -> None:
    plan = import_segment(public_doc(), source="shop.json")
    assert round_trip(plan, tmp_path).content() == plan.content()
    assert export_segment(load_plan(tmp_path)) == public_doc()


def test_export_order_is_deterministic() -> None:
    doc = public_doc()
    doc["rules"].reverse()
    exported = export_segment(import_segment(doc, source="shop.json"))
    again = export_segment(import_segment(exported, source="shop.json"))
    assert json.dumps(exported) == json.dumps(again)
    assert [r["type"] for r in exported["rules"]][:5] == [
        "COMMON",
        "IDENTIFY",
        "GROUP",
        "PAGE",
        "SCREEN",
    ]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda d: {"data": {"trackingPlan": d}},
        lambda d: {
            "trackingPlan": {k: v for k, v in d.items() if k != "rules"},
            "rules": d["rules"],
        },
        lambda d: {
            "data": {
                "trackingPlan": {k: v for k, v in d.items() if k != "rules"},
                "rules": d["rules"],
            }
        },
        lambda d: {"tracking_plans": [d]},
    ],
    ids=["data-trackingPlan", "rules-beside", "data-rules-beside", "list-of-one"],
)
def test_wrapped_public_exports_import_the_same(wrap: Any) -> None:
    plain = import_segment(public_doc(), source="shop.json")
    assert import_segment(wrap(public_doc()), source="shop.json").content() == plain.content()


def test_a_bare_rules_list_imports_named_after_the_file() -> None:
    plan = import_segment(public_doc()["rules"], source="/tmp/exports/shop-rules.json")
    assert plan.name == "shop-rules"
    assert len(plan.rules) == len(public_doc()["rules"])


# -- context and messageId survive import, enforcement and export -----------------------------
def good_call(**over: Any) -> dict[str, Any]:
    call = {
        "type": "track",
        "event": "Order Placed",
        "userId": "u-1",
        "messageId": "msg-0123abcd",
        "timestamp": "2026-11-29T10:00:00Z",
        "context": {"app": {"version": "1.0"}},
        "properties": {"total": 12.5},
    }
    call.update(over)
    return call


def test_rule_on_message_id_and_context_is_enforced_after_import(tmp_path: Path) -> None:
    plan = import_segment(public_doc(), source="shop.json")
    write_plan(plan, tmp_path)
    for loaded in (plan, load_plan(tmp_path)):
        enforcer = compile_plan(loaded)
        ok = enforcer.enforce(good_call())
        assert ok.violations == () and ok.rule is not None and ok.rule.name == "Order Placed"
        bad_id = enforcer.enforce(good_call(messageId="not-a-segment-id"))
        assert [(v.type, v.pointer) for v in bad_id.violations] == [("Pattern", "/messageId")]
        assert bad_id.rule is not None and bad_id.rule.name == "Order Placed"
        assert "not-a-segment-id" not in str(bad_id.violations)
        no_app = enforcer.enforce(good_call(context={}))
        assert [(v.type, v.pointer) for v in no_app.violations] == [
            ("Required-Missing", "/context/app")
        ]
    exported = export_segment(load_plan(tmp_path))
    track = next(r for r in exported["rules"] if r.get("key") == "Order Placed")
    assert track["jsonSchema"]["properties"]["messageId"] == {
        "type": "string",
        "pattern": "^msg-[0-9a-f]{8}$",
    }
    assert track["jsonSchema"]["properties"]["context"]["required"] == ["app"]


def test_event_version_selects_the_imported_rule() -> None:
    enforcer = compile_plan(import_segment(public_doc(), source="shop.json"))
    v2 = good_call(context={"app": {"version": "1"}, "protocols": {"event_version": 2}})
    result = enforcer.enforce(v2)
    assert result.rule is not None and result.rule.version == 2
    assert [v.pointer for v in result.violations] == ["/properties/currency"]
    assert enforcer.enforce(good_call()).violations == ()


# -- the legacy form ---------------------------------------------------------------------------
def legacy_doc(section_shape: str) -> dict[str, Any]:
    common = {
        "$schema": DRAFT7,
        "type": "object",
        "properties": {"context": {"properties": {"locale": {"type": "string"}}}},
    }
    identify = {"type": "object", "properties": {"traits": {"required": ["email"]}}}
    group = {"type": "object", "properties": {"traits": {"required": ["name"]}}}
    sections: dict[str, Any]
    if section_shape == "list":
        sections = {
            "global": [{"name": "global", "rules": common, "version": 1}],
            "identify_traits": [{"name": "identify", "description": "who", "rules": identify}],
            "group_traits": [{"name": "group", "rules": group}],
        }
    else:
        sections = {"global": common, "identify_traits": identify, "group_traits": group}
    return {
        "name": "workspaces/acme/tracking-plans/rs_1",
        "display_name": "Acme",
        "create_time": "2022-01-01T00:00:00.000Z",
        "rules": {
            "events": [
                {
                    "name": "Signed Up",
                    "description": "",
                    "version": 1,
                    "rules": {"properties": {"properties": {"required": ["plan"]}}},
                }
            ],
            **sections,
        },
    }


@pytest.mark.parametrize("shape", ["list", "schema"])
def test_legacy_sections_become_common_identify_and_group(shape: str, tmp_path: Path) -> None:
    doc = legacy_doc(shape)
    plan = import_segment(doc, source="acme.json")
    assert plan.name == "Acme"
    assert plan.extra["x-segment-createdAt"] == "2022-01-01T00:00:00.000Z"
    assert [r.kind for r in plan.rules] == ["common", "identify", "group", "track"]
    identify = plan.rule("identify")
    assert identify is not None and identify.payload == {"required": ["email"]}
    assert plan.event("Signed Up").description == ""
    exported = {r["type"]: r for r in export_segment(plan)["rules"]}
    rules = doc["rules"]
    for typ, section in (
        ("COMMON", "global"),
        ("IDENTIFY", "identify_traits"),
        ("GROUP", "group_traits"),
    ):
        original = rules[section][0]["rules"] if shape == "list" else rules[section]
        assert exported[typ]["jsonSchema"] == original
    assert round_trip(plan, tmp_path).content() == plan.content()
    result = compile_plan(plan).enforce(
        {"type": "identify", "userId": "u", "messageId": "m", "traits": {"name": "x"}}
    )
    # no pii section, detection on all the same: a person's name in traits is found
    assert [(v.type, v.pointer) for v in result.violations] == [
        ("Required-Missing", "/traits/email"), ("PII", "/traits/name")
    ]
    assert result.event["traits"]["name"] == "[REDACTED]"


def test_two_legacy_rules_for_one_call_type_are_refused() -> None:
    doc = legacy_doc("list")
    doc["rules"]["identify_traits"].append({"name": "more", "rules": {}})
    issues = import_errors(doc)
    assert [(i.pointer, "one identify rule" in i.message) for i in issues] == [
        ("/rules/identify_traits", True)
    ]


# -- errors point into the Segment file --------------------------------------------------------
def test_every_problem_is_reported_with_its_place_in_the_segment_file(tmp_path: Path) -> None:
    doc = public_doc()
    rules = doc["rules"]
    rules[6]["jsonSchema"]["properties"]["properties"]["properties"]["total"]["type"] = "money"
    rules[6]["jsonSchema"]["properties"]["messageId"]["maxLength"] = -1
    rules[7]["jsonSchema"]["properties"]["properties"]["properties"]["x"] = {
        "$ref": "https://127.0.0.1:1/remote.json"
    }
    rules[1]["type"] = "ALIAS"
    rules.append({"type": "TRACK", "key": "Order Placed", "version": 2, "jsonSchema": {}})
    rules.append({"type": "TRACK", "version": 1, "jsonSchema": {}})
    rules.append({"type": "TRACK", "key": "Bad Version", "version": "two", "jsonSchema": {}})
    rules.append({"type": "TRACK", "key": "No Schema", "version": 1})
    issues = import_errors(doc, source="shop.json")
    found = {(i.pointer, i.event) for i in issues}
    props = "/jsonSchema/properties/properties/properties"
    expected = {
        (f"/rules/6{props}/total/type", "Order Placed"),
        ("/rules/6/jsonSchema/properties/messageId/maxLength", "Order Placed"),
        (f"/rules/7{props}/x/$ref", "Order Placed"),
        ("/rules/1/type", None),
        ("/rules/8", "Order Placed"),
        ("/rules/9/key", None),
        ("/rules/10/version", "Bad Version"),
        ("/rules/11/jsonSchema", "No Schema"),
    }
    assert expected <= found, "\n".join(map(str, issues))
    assert all(i.file == "shop.json" for i in issues)
    remote = next(i for i in issues if i.pointer.endswith("/x/$ref"))
    assert "never fetches" in remote.message


def test_legacy_errors_point_at_the_event_rules(typewriter: dict[str, Any]) -> None:
    doc = copy.deepcopy(typewriter)
    events = doc["rules"]["events"]
    index = next(i for i, e in enumerate(events) if e["name"] == HOSTILE)
    events[index]["rules"]["properties"]["properties"]["minProperties"] = "many"
    doc["display_name"] = ""
    issues = import_errors(doc, source="tw.json")
    found = {(i.pointer, i.event) for i in issues}
    assert (f"/rules/events/{index}/rules/properties/properties/minProperties", HOSTILE) in found
    assert ("/display_name", None) in found


@pytest.mark.parametrize(
    "doc", [None, 3, "plan", {"rules": 5}, {"rules": {"events": {}}}, {"rules": {"tracks": []}}]
)
def test_documents_that_are_not_tracking_plans_are_refused(doc: Any) -> None:
    issues = import_errors(doc, source="x.json")
    assert issues and all(i.file == "x.json" for i in issues)


def test_ten_thousand_levels_give_a_plan_error() -> None:
    schema: Any = {"type": "string"}
    for _ in range(10_000):
        schema = {"properties": {"x": schema}}
    issues = import_errors(
        {
            "name": "Deep",
            "rules": [{"type": "TRACK", "key": "D", "version": 1, "jsonSchema": schema}],
        }
    )
    assert len(issues) == 1 and "deeper than" in issues[0].message


# -- native plans exported to Segment ----------------------------------------------------------
def test_native_x_keys_survive_export_and_import(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(
        "name: N\nx-owner: data-team\nevents:\n"
        "- {name: E, x-pii-reviewed: true, labels: {area: core}, properties: {type: object}}\n",
        encoding="utf-8",
    )
    native = load_plan(tmp_path)
    exported = export_segment(native)
    assert exported["x-owner"] == "data-team"
    assert exported["rules"][0]["x-pii-reviewed"] is True
    assert exported["rules"][0]["labels"] == {"area": "core"}
    back = import_segment(exported, source="n.json")
    assert back.content() == native.content()
    assert back.extra == native.extra
    assert back.event("E").extra == native.event("E").extra
    assert back.event("E").payload == native.event("E").payload


def test_native_plan_exports_standalone_rules_that_validate_alike() -> None:
    native = load_plan(ECOMMERCE)
    exported = export_segment(native)
    refs = 0
    for rule in exported["rules"]:
        schema = rule["jsonSchema"]
        jsonschema.Draft7Validator.check_schema(schema)
        # every $ref resolves inside the rule itself: Segment rules stand alone
        for _path, node in walk_schemas(schema):
            if "$ref" in node:
                target: Any = schema
                for token in jp.parse(node["$ref"][1:]):
                    target = target[token]
                assert isinstance(target, dict)
                refs += 1
    assert refs > 0
    reimported = import_segment(exported, source="ecommerce.json")
    assert export_segment(reimported) == exported
    assert reimported.event_names == native.event_names
    events_file = ROOT / "examples" / "events.ndjson"
    if not events_file.is_file():
        pytest.skip("examples/events.ndjson is absent")
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    checked = 0
    for event in events:
        if event.get("type") != "track" or event.get("event") not in native.event_names:
            continue
        version = (event.get("context") or {}).get("protocols", {}).get("event_version")
        a = native.event(event["event"], version)
        b = reimported.event(event["event"], version)
        va = make_validator(call_schema(native, a))
        vb = make_validator(call_schema(reimported, b))
        assert va.is_valid(event) == vb.is_valid(event)
        checked += 1
    assert checked > 50


def test_rules_declaring_draft_04_import_as_draft_07_and_export_as_declared(
    tmp_path: Path,
) -> None:
    draft4 = "http://json-schema.org/draft-04/schema#"
    doc = legacy_doc("schema")
    doc["rules"]["global"]["$schema"] = draft4
    doc["rules"]["events"][0]["rules"]["$schema"] = "http://json-schema.org/draft-06/schema"
    plan = import_segment(doc, source="acme.json")
    common = plan.common
    assert common is not None and common.draft == "draft-07"
    assert common.call is not None and common.call["$schema"] == DRAFT7
    exported = {r["type"]: r for r in export_segment(plan)["rules"]}
    assert exported["COMMON"]["jsonSchema"] == doc["rules"]["global"]
    assert exported["TRACK"]["jsonSchema"] == doc["rules"]["events"][0]["rules"]
    assert round_trip(plan, tmp_path).content() == plan.content()
