"""Import what users have: Segment rules of every draft (normalised, with notes),
RudderStack tracking plans, and Snowplow Iglu schema folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plan_helpers import run_cli

from trackplan.ci.diff import diff_plans
from trackplan.engine import compile_plan
from trackplan.errors import PlanError
from trackplan.plan.iglu import SELF_DESC, import_iglu
from trackplan.plan.segment import import_rudderstack, read_segment

D4 = "http://json-schema.org/draft-04/schema#"
D6 = "http://json-schema.org/draft-06/schema#"
D7 = "http://json-schema.org/draft-07/schema#"
D2019 = "https://json-schema.org/draft/2019-09/schema"
D2020 = "https://json-schema.org/draft/2020-12/schema"


def _track(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "TRACK", "key": key, "version": 1, "jsonSchema": schema}


def _call(props: dict[str, Any], declared: str | None, nested: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": "object", "properties": props}
    if nested is not None:
        payload["$schema"] = nested
    schema: dict[str, Any] = {"type": "object", "properties": {"properties": payload}}
    if declared is not None:
        schema["$schema"] = declared
    return schema


def _clean(enforcer: Any, event: dict[str, Any]) -> bool:
    """The event passes its rule: allowed, with no violation other than PII findings."""
    result = enforcer.enforce(event)
    return bool(result.allowed) and not [v for v in result.violations if v.type != "PII"]


def _event(name: str, props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "track", "event": name, "userId": "u1", "properties": props}


EXCLUSIVE_04 = {"n": {"type": "integer", "maximum": 10, "exclusiveMaximum": True}}
TUPLE_2019 = {"pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}],
                       "additionalItems": False}}  # fmt: skip
TUPLE_2020 = {"pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}],
                       "items": False}}  # fmt: skip


def test_segment_rules_of_every_draft_are_normalised_with_notes() -> None:
    doc = {
        "name": "Drafts",
        "rules": [
            _track("Draft Four", _call(EXCLUSIVE_04, D4)),
            _track("Draft Six", _call({"s": {"type": "string", "const": "x"}}, D6)),
            _track("Draft Seven", _call({"s": {"type": "string"}}, D7)),
            _track("Nested Four", _call(EXCLUSIVE_04, D7, nested=D4)),
            _track("Draft 2019", _call(TUPLE_2019, D2019)),
            _track("Draft 2020", _call(TUPLE_2020, D2020)),
        ],
    }
    imported = read_segment(doc, source="drafts.json")
    plan = imported.plan
    assert sorted(plan.event_names) == sorted(r["key"] for r in doc["rules"])
    notes = "\n".join(imported.notes)
    n_ptr = "/rules/0/jsonSchema/properties/properties/properties/n/exclusiveMaximum"
    assert f"Draft Four: {n_ptr}" in notes
    assert "Nested Four: /rules/3/jsonSchema/properties/properties: nested $schema" in notes
    assert "Draft 2019: /rules/4/jsonSchema/properties/properties/properties/pair/items" in notes
    assert "Draft Seven" not in notes and "Draft 2020" not in notes  # nothing to rewrite
    enforcer = compile_plan(plan)
    # the meaning survives: exclusive maximum 10, tuples of (string, integer) and no more
    for name in ("Draft Four", "Nested Four"):
        assert _clean(enforcer, _event(name, {"n": 9}))
        assert not _clean(enforcer, _event(name, {"n": 10}))
    for name in ("Draft 2019", "Draft 2020"):
        assert _clean(enforcer, _event(name, {"pair": ["a", 1]}))
        assert not _clean(enforcer, _event(name, {"pair": ["a", "b"]}))
        assert not _clean(enforcer, _event(name, {"pair": ["a", 1, 2]}))
    assert not _clean(enforcer, _event("Draft Six", {"s": "y"}))


def test_a_draft_04_declaration_alone_round_trips_its_uri() -> None:
    from trackplan.plan.segment import export_segment

    doc = {"name": "P", "rules": [_track("Plain", _call({"s": {"type": "string"}}, D4))]}
    plan = read_segment(doc, source="p.json").plan
    [rule] = export_segment(plan)["rules"]
    assert rule["jsonSchema"]["$schema"] == D4


RUDDER_CONFIG = {
    "id": "tp_1",
    "name": "Rudder Shop",
    "version": 3,
    "rules": {
        "events": [
            {
                "name": "Product Viewed",
                "description": "A product page view.",
                "rules": {
                    "$schema": D7,
                    "type": "object",
                    "properties": {
                        "properties": {
                            "type": "object",
                            "required": ["sku"],
                            "properties": {"sku": {"type": "string", "maxLength": 32}},
                        }
                    },
                },
            }
        ],
        "identify": {
            "$schema": D7,
            "type": "object",
            "properties": {"context": {"type": "object", "properties": {
                "traits": {"type": "object", "properties": {"plan": {"enum": ["free", "pro"]}}}
            }}},
        },  # fmt: skip
        "page": {
            "$schema": D7,
            "type": "object",
            "properties": {"properties": {"type": "object", "properties": {
                "path": {"type": "string", "maxLength": 9}}}},
        },  # fmt: skip
    },
}


def test_rudderstack_tracking_plan_imports_events_identify_and_page() -> None:
    imported = import_rudderstack(RUDDER_CONFIG, source="rudder.json")
    plan = imported.plan
    assert plan.name == "Rudder Shop"
    assert list(plan.event_names) == ["Product Viewed"]
    assert plan.rule("page") is not None and plan.rule("identify") is not None
    enforcer = compile_plan(plan)
    assert _clean(enforcer, _event("Product Viewed", {"sku": "S1"}))
    assert not _clean(enforcer, _event("Product Viewed", {}))
    page = {"type": "page", "userId": "u", "properties": {"path": "/much/too/long"}}
    assert not _clean(enforcer, page)
    # rudder-sdk-python puts identify traits in context.traits
    identify = {"type": "identify", "userId": "u", "context": {"traits": {"plan": "gold"}}}
    assert not _clean(enforcer, identify)


def test_rudderstack_data_catalog_form_and_errors() -> None:
    doc = {
        "name": "Catalog",
        "events": [
            {"name": "Signed Up", "eventType": "track", "description": "S.",
             "rules": _call({"method": {"enum": ["email"]}}, D7)},
            {"name": "", "eventType": "identify", "rules": {"$schema": D7, "type": "object"}},
        ],
    }  # fmt: skip
    plan = import_rudderstack(doc, source="catalog.json").plan
    assert plan.event("Signed Up").description == "S."
    assert plan.rule("identify") is not None
    with pytest.raises(PlanError) as caught:
        import_rudderstack({"name": "X", "events": [{"eventType": "track"}]}, source="x.json")
    assert caught.value.issues[0].file == "x.json"


# -- Snowplow Iglu --------------------------------------------------------------------------
def _iglu(root: Path, vendor: str, name: str, version: str, props: dict[str, Any],
          required: list[str] | None = None) -> None:  # fmt: skip
    path = root / "schemas" / vendor / name / "jsonschema" / version
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "$schema": SELF_DESC,
        "description": f"{name} {version}",
        "self": {"vendor": vendor, "name": name, "format": "jsonschema", "version": version},
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        body["required"] = required
    path.write_text(json.dumps(body))


def test_iglu_folder_imports_one_event_version_per_model(tmp_path: Path) -> None:
    click = {"targetUrl": {"type": "string", "maxLength": 4096, "description": "Where."}}
    _iglu(tmp_path, "com.acme", "link_click", "1-0-0", click, ["targetUrl"])
    wider = {**click, "elementId": {"type": "string", "maxLength": 64, "description": "Id."}}
    _iglu(tmp_path, "com.acme", "link_click", "1-0-1", wider, ["targetUrl"])
    _iglu(tmp_path, "com.acme", "link_click", "2-0-0", {"url": click["targetUrl"]}, ["url"])
    _iglu(tmp_path, "com.other", "signup", "1-0-0", {"plan": {"enum": ["a"]}})
    _iglu(tmp_path, "com.acme", "signup", "1-0-0", {"plan": {"enum": ["b"]}})
    imported = import_iglu(tmp_path)
    plan = imported.plan
    assert sorted(plan.event_names) == ["com.acme/signup", "com.other/signup", "link_click"]
    assert [r.version for r in plan.versions("link_click")] == [1, 2]
    v1 = plan.event("link_click", 1)
    assert v1.extra["x-iglu"] == "iglu:com.acme/link_click/jsonschema/1-0-1"
    assert "elementId" in v1.payload["properties"]
    assert imported.notes == (
        "iglu:com.acme/link_click/jsonschema/1-0-0: replaced by "
        "iglu:com.acme/link_click/jsonschema/1-0-1 (same MODEL)",
    )


def test_snowplow_users_can_diff_two_states_of_their_folder(tmp_path: Path) -> None:
    click = {"targetUrl": {"type": "string", "maxLength": 4096}}
    _iglu(tmp_path / "old", "com.acme", "link_click", "1-0-0", click, ["targetUrl"])
    wider = {**click, "elementId": {"type": "string", "maxLength": 64}}
    _iglu(tmp_path / "new", "com.acme", "link_click", "1-0-1", wider, ["targetUrl"])
    diff = diff_plans(import_iglu(tmp_path / "old").plan, import_iglu(tmp_path / "new").plan)
    assert [(c.kind, c.cls) for c in diff.changes if c.cls != "PATCH"] == [
        ("property added", "ADDITION")
    ]
    assert diff.ok


def test_iglu_errors_name_the_file(tmp_path: Path) -> None:
    _iglu(tmp_path, "com.acme", "x", "1-0-0", {})
    bad = tmp_path / "schemas" / "com.acme" / "x" / "jsonschema" / "1-0-1"
    bad.write_text(json.dumps({"self": {"vendor": "com.acme", "name": "y",
                                        "format": "jsonschema", "version": "1-0-1"}}))  # fmt: skip
    with pytest.raises(PlanError) as caught:
        import_iglu(tmp_path)
    [issue] = caught.value.issues
    assert issue.file == str(bad) and issue.pointer == "/self/name"


def test_import_commands_write_plans_with_notes(tmp_path: Path) -> None:
    rudder = tmp_path / "rudder.json"
    rudder.write_text(json.dumps(RUDDER_CONFIG))
    done = run_cli("import", "rudderstack", str(rudder), "-o", str(tmp_path / "r"),
                   "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"] == 1
    assert run_cli("check", str(tmp_path / "r")).returncode == 0

    segment = tmp_path / "segment.json"
    segment.write_text(json.dumps({"name": "S", "rules": [_track("E", _call(EXCLUSIVE_04, D4))]}))
    done = run_cli("import", "segment", str(segment), "-o", str(tmp_path / "s"))
    assert done.returncode == 0, done.stderr
    assert "note: E: /rules/0/jsonSchema" in done.stderr
    header = (tmp_path / "s" / "plan.yaml").read_text().split("\n\n")[0]
    assert "Rewritten to fit a supported JSON Schema draft" in header and "exclusiveMaximum" in (
        header
    )

    _iglu(tmp_path / "iglu", "com.acme", "link_click", "1-0-0",
          {"targetUrl": {"type": "string", "maxLength": 99, "description": "U.",
                         "x-pii": False}})  # fmt: skip
    done = run_cli("import", "iglu", str(tmp_path / "iglu"), "-o", str(tmp_path / "i"))
    assert done.returncode == 0, done.stderr
    lint = run_cli("lint", str(tmp_path / "i"), "--strict")
    assert lint.returncode == 0, lint.stdout
