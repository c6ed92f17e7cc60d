"""Detection is on for every plan; a detected value gets its category's action from the plan.

A Segment export with ``x-pii`` declarations but no ``pii`` section, imported and run
through ``trackplan validate --out`` as a user would, must keep none of the planted PII
(:mod:`tests.pii.planted`); ``pii: {detection: off}`` turns detection off, and lint says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from trackplan.pii.actions import ACTIONS, REDACTED, hash_value, mask_value
from trackplan.pii.policy import PiiPolicy

from .pii_helpers import KEY, compile_with_key, make_plan
from .pii_helpers import track as track_call
from .planted import POSITIONS, corpus, leaked, segment_export

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACKPLAN_HASH_KEY": KEY, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Segment export, imported with the CLI, and the planted corpus beside it."""
    base = tmp_path_factory.mktemp("imported")
    (base / "segment.json").write_text(json.dumps(segment_export()), encoding="utf-8")
    done = _cli("import", "segment", "segment.json", "--out", "plan", cwd=base)
    assert done.returncode == 0, done.stderr
    assert "pii" not in yaml.safe_load((base / "plan" / "plan.yaml").read_text())
    events, _ = corpus()
    (base / "in.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    return base


def _forwarded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_imported_segment_plan_without_pii_section_detects_planted_pii(imported: Path) -> None:
    events, planted = corpus()
    done = _cli("validate", "plan", "in.ndjson", "--out", "out.ndjson", cwd=imported)
    assert done.returncode == 1, done.stderr  # PII findings are violations
    forwarded = _forwarded(imported / "out.ndjson")
    assert len(forwarded) == len(events)  # the plan's defaults block nothing: all redacted
    assert {p.position for p in planted} == set(POSITIONS)  # every position is exercised
    through = leaked(forwarded, planted)
    assert through == [], [(p.category, p.position) for p in through[:10]]
    # ordinary ids are kept as they came
    assert [e["properties"]["order_id"] for e in forwarded] == [
        e["properties"]["order_id"] for e in events
    ]
    assert all(e["context"]["ip"] == REDACTED for e in forwarded)
    # the values the report names are never printed
    for p in planted:
        assert p.text not in done.stdout + done.stderr


def test_detection_off_forwards_undeclared_pii_and_lint_warns(imported: Path) -> None:
    plan_file = imported / "plan" / "plan.yaml"
    original = plan_file.read_text(encoding="utf-8")
    try:
        plan_file.write_text(original + "pii: {detection: off}\n", encoding="utf-8")
        done = _cli("validate", "plan", "in.ndjson", "--out", "off.ndjson", cwd=imported)
        lint = _cli("lint", "plan", cwd=imported)
    finally:
        plan_file.write_text(original, encoding="utf-8")
    assert done.returncode == 0, done.stdout + done.stderr  # nothing reported
    _, planted = corpus()
    through = {(p.category, p.position) for p in leaked(_forwarded(imported / "off.ndjson"),
                                                       planted)}  # fmt: skip
    assert ("email", "unplanned") in through and ("ip", "context") in through
    assert not any(position == "declared" for _, position in through)  # x-pii still holds
    assert "piiDetectionOff" in lint.stdout and "warning" in lint.stdout


#: A value each detector finds, in free text (the category a plan's default names).
IN_TEXT = {
    "email": "jane.roe@example.org",
    "phone": "+44 20 7946 0958",
    "payment_card": "4242 4242 4242 4242",
    "bank_account": "DE89370400440532013000",
    "ip": "198.51.100.23",
    "government_id": "536-22-1234",
    "credentials": "sk_live_" + "a1B2c3D4e5F6g7H8i9J0k1L2",
}


@pytest.mark.parametrize("category", sorted(IN_TEXT))
@pytest.mark.parametrize("action", ACTIONS)
def test_a_detected_value_gets_its_categorys_default(category: str, action: str) -> None:
    enforcer = compile_with_key(make_plan(pii={"defaults": {category: action}}))
    value = IN_TEXT[category]
    note = f"reach me: {value} thanks"
    result = enforcer.enforce(track_call({"order_id": "o-1", "note": note}))
    found = [v for v in result.violations if v.type == "PII"]
    assert [v.pointer for v in found] == ["/properties/note"]
    assert f"{category} " in found[0].message and f"action {action}" in found[0].message
    if action == "reject":
        assert not result.allowed
        assert value not in json.dumps(result.event)  # the review copy is redacted too
        return
    assert result.allowed
    props = result.event["properties"]
    if action == "drop":
        assert "note" not in props
        return
    want = {
        "redact": REDACTED,
        "allow": value,
        "mask": mask_value(category, value),
        "hash": hash_value(category, value, KEY.encode()),
    }[action]
    assert props["note"] == f"reach me: {want} thanks"


def test_detection_action_is_a_floor_under_the_category_default() -> None:
    plan = make_plan(pii={"detection": {"action": "redact"},
                          "defaults": {"payment_card": "reject", "email": "hash"}})  # fmt: skip
    policy = PiiPolicy.from_plan(plan, environ={"TRACKPLAN_HASH_KEY": KEY})
    assert policy.detection_action("payment_card") == "reject"  # stricter default wins
    assert policy.detection_action("email") == "redact"  # the floor is stricter than hash
    blocked = compile_with_key(plan).enforce(
        track_call({"order_id": "o-1", "note": "card 4242 4242 4242 4242 please"})
    )
    assert not blocked.allowed


def test_undeclared_card_in_free_text_is_blocked_by_the_example_plan(tmp_path: Path) -> None:
    line = json.dumps({
        "type": "track", "event": "Products Searched", "userId": "u-1", "messageId": "m-1",
        "timestamp": "2026-12-01T10:00:00Z",
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "properties": {"query": "pay with 4242 4242 4242 4242"},
    })  # fmt: skip
    (tmp_path / "in.ndjson").write_text(line + "\n")
    plan = str(ROOT / "plans" / "ecommerce")
    done = _cli("validate", plan, "in.ndjson", "--out", "out.ndjson", cwd=tmp_path)
    assert done.returncode == 1
    assert "1 blocked" in done.stdout and "payment_card" in done.stdout
    assert (tmp_path / "out.ndjson").read_text() == ""
    assert "4242" not in done.stdout
