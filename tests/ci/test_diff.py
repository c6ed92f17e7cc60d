"""Plan diffs: version pairing, the version policy, privacy call-outs, output formats."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.ci.ci_helpers import ECOMMERCE, make_plan
from trackplan.ci.diff import diff_plans, policy_of
from trackplan.ci.render import diff_github, diff_json, diff_markdown, diff_text, line_of
from trackplan.plan.load import load_plan

V1: dict[str, Any] = {
    "name": "Order Completed",
    "version": 1,
    "description": "An order.",
    "properties": {
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "maxLength": 9},
            "n": {"type": "integer", "minimum": 0, "maximum": 9},
        },
    },
}


def _variant(version: int = 1, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(V1)
    event["version"] = version
    for key, value in changes.items():
        if key == "required":
            event["properties"]["required"] = value
        else:
            event["properties"]["properties"][key] = value
    return event


def test_in_place_model_change_violates_the_default_policy() -> None:
    old = make_plan([V1])
    new = make_plan([_variant(required=["id", "n"])])
    diff = diff_plans(old, new)
    assert not diff.ok
    [event] = diff.violations
    assert event.needs_new_version and event.cls == "MODEL"
    assert "add version 2" in (event.violation or "")


def test_a_new_version_file_satisfies_the_policy() -> None:
    old = make_plan([V1])
    new = make_plan([V1, _variant(2, required=["id", "n"])])
    diff = diff_plans(old, new)
    assert diff.ok
    [event] = diff.events
    assert (event.old_version, event.new_version, event.status) == (1, 2, "new version")
    assert event.needs_new_version and event.cls == "MODEL"


def test_raising_the_version_number_in_place_satisfies_the_policy() -> None:
    diff = diff_plans(make_plan([V1]), make_plan([_variant(2, required=["id", "n"])]))
    assert diff.ok
    kinds = {(e.status, c.kind) for e in diff.events for c in e.changes}
    assert ("new version", "required added") in kinds
    assert ("removed", "version removed") in kinds


def test_revision_in_place_is_allowed_unless_the_policy_says_otherwise() -> None:
    narrower = _variant(n={"type": "integer", "minimum": 0, "maximum": 5})
    assert diff_plans(make_plan([V1]), make_plan([narrower])).ok
    wider = _variant(n={"type": "integer", "minimum": 0, "maximum": 99})
    assert diff_plans(
        make_plan([V1]), make_plan([wider], policy={"new_version_for": "REVISION"})
    ).ok
    strict = make_plan([narrower], policy={"new_version_for": "REVISION"})
    assert policy_of(strict).new_version_for == "REVISION"
    assert not diff_plans(make_plan([V1]), strict).ok
    off = make_plan([_variant(required=["id", "n"])], policy={"new_version_for": "never"})
    relaxed = diff_plans(make_plan([V1]), off)
    assert relaxed.ok
    [note] = relaxed.plan_changes
    assert note.kind == "policy changed" and "MODEL -> never" in note.reason


def test_events_added_and_removed() -> None:
    other = {**copy.deepcopy(V1), "name": "Order Refunded"}
    added = diff_plans(make_plan([V1]), make_plan([V1, other]))
    assert [(c.event, c.kind, c.cls) for c in added.changes] == [
        ("Order Refunded", "event added", "ADDITION")
    ]
    removed = diff_plans(make_plan([V1, other]), make_plan([V1]))
    assert [(c.kind, c.cls) for c in removed.changes] == [("event removed", "MODEL")]
    assert removed.ok
    failing = make_plan([V1], policy={"removed_events": "fail"})
    assert not diff_plans(make_plan([V1, other]), failing).ok


def test_event_description_is_a_patch() -> None:
    new = {**copy.deepcopy(V1), "description": "A completed order."}
    diff = diff_plans(make_plan([V1]), make_plan([new]))
    assert [(c.kind, c.cls, c.pointer) for c in diff.changes] == [
        ("description changed", "PATCH", "/events/0/description")
    ]


def test_privacy_changes_are_called_out() -> None:
    pii = {"defaults": {"email": "hash", "phone": "hash"}}
    where = {"legal_basis": "consent", "region": "EU"}
    dests = [{"name": "Ads", **where, "pii": {"email": "hash"}}]
    old = make_plan([V1], pii=pii, destinations=dests)
    marked = _variant(id={"type": "string", "maxLength": 9, "x-pii": "email"})
    new = make_plan(
        [marked],
        pii={"defaults": {"email": "allow", "phone": "hash"}},
        destinations=[
            {"name": "Ads", **where, "pii": {"email": "hash", "phone": "hash"}},
            {"name": "CRM", **where, "pii": {"name": "allow", "ip": "drop"}},
        ],
    )
    diff = diff_plans(old, new)
    reasons = [c.reason for c in diff.privacy]
    assert any(r.startswith("becomes PII (email, action allow)") for r in reasons)
    assert any("default action for email loosened from hash to allow" in r for r in reasons)
    assert any("Ads newly receives PII: phone" in r for r in reasons)
    assert any("CRM newly receives PII: name" in r for r in reasons)
    assert not any("ip" in r.split(":")[-1] for r in reasons if "CRM" in r)
    assert all(c.privacy for c in diff.privacy)


def test_example_plan_diffs_clean_against_itself_and_renders() -> None:
    plan = load_plan(ECOMMERCE)
    diff = diff_plans(plan, plan)
    assert diff.changes == () and diff.ok
    assert "no changes" in diff_text(diff)
    assert json.loads(diff_json(diff))["changes"] == []


def _copy_plan(tmp: Path) -> Path:
    import shutil

    dest = tmp / "ecommerce"
    shutil.copytree(ECOMMERCE, dest)
    return dest


def test_outputs_on_a_changed_example_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new_dir = _copy_plan(tmp_path)
    v2 = new_dir / "events" / "order-completed.v2.yaml"
    text = v2.read_text()
    v2.write_text(
        text.replace(
            "required: [order_id, checkout_id, total, currency, products]",
            "required: [order_id, checkout_id, total, currency, products, tax]",
        )
    )
    monkeypatch.chdir(tmp_path)
    diff = diff_plans(load_plan(ECOMMERCE), load_plan("ecommerce"))
    assert not diff.ok
    body = json.loads(diff_json(diff))
    [change] = body["changes"]
    assert {k: change[k] for k in ("event", "pointer", "class")} == {
        "event": "Order Completed",
        "pointer": "/properties/required",
        "class": "MODEL",
    }
    assert "tax" in change["reason"]
    md = diff_markdown(diff)
    assert md.startswith("### trackplan diff: 1 breaking")
    assert "| Order Completed | v2 | changed | MODEL | yes :x: |" in md
    gh = diff_github(diff).splitlines()
    assert gh[0].startswith("::error file=ecommerce/events/order-completed.v2.yaml,line=")
    line = int(gh[0].split("line=")[1].split(",")[0])
    assert "required:" in v2.read_text().splitlines()[line - 1]


def test_line_of_finds_yaml_pointers() -> None:
    file = str(ECOMMERCE / "plan.yaml")
    lines = Path(file).read_text().splitlines()
    assert "email:" in lines[line_of(file, "/identify/traits/properties/email") - 1]  # type: ignore[operator]
    assert line_of(file, "/no/such/place") == line_of(file, "") == lines.index("trackplan: 1") + 1
    assert line_of(str(ECOMMERCE / "absent.yaml"), "/x") is None


def test_pii_without_a_default_takes_the_pii_modules_default_action() -> None:
    marked = _variant(id={"type": "string", "maxLength": 9, "x-pii": "phone"})
    diff = diff_plans(make_plan([V1]), make_plan([marked]))
    [change] = diff.privacy
    assert change.reason.startswith("becomes PII (phone, action redact)")
    not_pii = _variant(id={"type": "string", "maxLength": 9, "x-pii": False})
    assert [c.cls for c in diff_plans(make_plan([V1]), make_plan([not_pii])).changes] == ["PATCH"]
