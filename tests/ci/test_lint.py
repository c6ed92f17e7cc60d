"""Lint rules on the example plan and on crafted bad plans; the lint CLI as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.ci_helpers import ECOMMERCE, make_plan, run, trackplan_exe
from trackplan.ci.lint import RULE_IDS, RULES, LintConfig, lint_plan
from trackplan.errors import PlanError
from trackplan.plan.format_schema import PLAN_FORMAT_SCHEMA
from trackplan.plan.load import load_plan
from trackplan.plan.segment import import_segment


def _ok_prop(**extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": 10, "description": "A value.", "x-pii": False, **extra}


def _event(name: str = "Order Completed", **props: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": 1,
        "description": "When it happens.",
        "properties": {"type": "object", "properties": props},
    }


def _rules(plan: Any, **config: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in lint_plan(plan, config=LintConfig(**config) if config else None).findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_example_plan_is_clean_under_strict() -> None:
    report = lint_plan(load_plan(ECOMMERCE))
    assert report.findings == (), [str(f) for f in report.findings]
    assert not report.failed(strict=True)


def test_pii_status_is_asked_only_where_a_value_could_hold_text() -> None:
    quiet = {
        "n": {"type": "integer", "description": "N."},
        "x": {"type": "number", "description": "X."},
        "ok": {"type": "boolean", "description": "Ok."},
        "tier": {"enum": ["free", "pro"], "description": "Tier."},
        "kind": {"type": "string", "const": "a", "description": "Kind."},
        "ints": {"type": "array", "items": {"type": "integer"}, "description": "Ints."},
        "box": {"type": "object", "properties": {"w": {"type": "number"}}, "description": "B."},
    }
    loud = {
        "note": {"type": "string", "maxLength": 9, "description": "Note."},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 9},
                 "description": "Tags."},
        "bag": {"type": "object", "description": "Anything."},
        "any": {"description": "Untyped."},
        "either": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 3}],
                   "description": "Either."},
    }  # fmt: skip
    found = _rules(make_plan([_event(**quiet, **loud)]))
    flagged = {f.pointer.rsplit("/", 1)[1] for f in found.get("piiStatus", [])}
    assert flagged == set(loud)


def test_imported_segment_plan_has_no_false_required_errors(tmp_path: Path) -> None:
    call = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["properties"],
        "properties": {
            "properties": {
                "type": "object",
                "required": ["count"],
                "properties": {"count": {"type": "integer", "description": "Count."}},
            },
            "context": {"type": "object", "required": ["locale"]},
        },
    }
    export = {
        "display_name": "Imported",
        "rules": {"events": [{"name": "Thing Done", "description": "D.", "version": 1,
                              "rules": call}]},
    }  # fmt: skip
    plan = import_segment(export, source="segment.json")
    found = _rules(plan)
    assert "requiredPropertiesExist" in found  # context requires an undefined 'locale'
    pointers = [f.pointer for f in found["requiredPropertiesExist"]]
    assert all("/call/required/" not in p for p in pointers), pointers
    assert any(p.endswith("/context/required/0") for p in pointers), pointers


def test_clean_plan_has_no_findings() -> None:
    plan = make_plan([_event(order_id=_ok_prop())])
    assert lint_plan(plan).findings == ()


# (rule id, events of a bad plan, pointer the finding must carry)
BAD: list[tuple[str, list[dict[str, Any]], str]] = [
    (
        "numericMinimumMaximum",
        [
            _event(
                n={
                    "type": "integer",
                    "minimum": 5,
                    "maximum": 1,
                    "description": "N.",
                    "x-pii": False,
                }
            )
        ],
        "/events/0/properties/properties/n",
    ),
    ("stringMinMaxLength", [_event(s=_ok_prop(minLength=20))], "/events/0/properties/properties/s"),
    (
        "arrayMinMaxItems",
        [
            _event(
                a={
                    "type": "array",
                    "minItems": 3,
                    "maxItems": 1,
                    "items": _ok_prop(),
                    "description": "A.",
                    "x-pii": False,
                }
            )
        ],
        "/events/0/properties/properties/a",
    ),
    (
        "numericProperties",
        [_event(s=_ok_prop(minimum=1))],
        "/events/0/properties/properties/s/minimum",
    ),
    (
        "stringProperties",
        [
            _event(
                n={
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 1,
                    "maxLength": 3,
                    "description": "N.",
                    "x-pii": False,
                }
            )
        ],
        "/events/0/properties/properties/n/maxLength",
    ),
    (
        "arrayProperties",
        [_event(s=_ok_prop(maxItems=2))],
        "/events/0/properties/properties/s/maxItems",
    ),
    (
        "objectProperties",
        [_event(s=_ok_prop(required=["x"]))],
        "/events/0/properties/properties/s/required",
    ),
    (
        "requiredPropertiesExist",
        [
            {
                **_event(a=_ok_prop()),
                "properties": {
                    "type": "object",
                    "required": ["a", "b"],
                    "properties": {"a": _ok_prop()},
                },
            }
        ],
        "/events/0/properties/required/1",
    ),
    ("rootObject", [{**_event(), "properties": {"type": "array"}}], "/events/0/properties"),
    (
        "stringMaxLengthRange",
        [_event(s=_ok_prop(maxLength=70000))],
        "/events/0/properties/properties/s/maxLength",
    ),
    (
        "unknownFormats",
        [_event(s=_ok_prop(format="colour"))],
        "/events/0/properties/properties/s/format",
    ),
    (
        "numericMinMax",
        [_event(n={"type": "number", "minimum": 0, "description": "N.", "x-pii": False})],
        "/events/0/properties/properties/n",
    ),
    (
        "stringLength",
        [_event(s={"type": "string", "description": "S.", "x-pii": False})],
        "/events/0/properties/properties/s",
    ),
    (
        "typedProperties",
        [_event(s={"description": "S.", "x-pii": False})],
        "/events/0/properties/properties/s",
    ),
    ("eventNameCase", [_event("order_completed", a=_ok_prop())], "/events/0/name"),
    (
        "propertyNameCase",
        [_event(order_id=_ok_prop(), cart_id=_ok_prop(), couponCode=_ok_prop())],
        "/events/0/properties/properties/couponCode",
    ),
    (
        "eventNameCollision",
        [_event("Order Completed", a=_ok_prop()), _event("Order completed", a=_ok_prop())],
        "/events/1/name",
    ),
    (
        "propertyNameCollision",
        [_event(order_id=_ok_prop(), orderid=_ok_prop())],
        "/events/0/properties/properties/orderid",
    ),
    (
        "conflictingPropertyTypes",
        [
            _event("Order Completed", total=_ok_prop()),
            _event(
                "Order Refunded",
                total={
                    "type": "number",
                    "minimum": 0,
                    "maximum": 9,
                    "description": "T.",
                    "x-pii": False,
                },
            ),
        ],
        "/events/1/properties/properties/total",
    ),
    ("eventDescription", [{**_event(a=_ok_prop()), "description": ""}], "/events/0"),
    (
        "propertyDescription",
        [_event(a={"type": "string", "maxLength": 3, "x-pii": False})],
        "/events/0/properties/properties/a",
    ),
    (
        "piiStatus",
        [_event(coupon={"type": "string", "maxLength": 3, "description": "C."})],
        "/events/0/properties/properties/coupon",
    ),
    (
        "piiUndeclared",
        [_event(user_email={"type": "string", "maxLength": 99, "description": "E."})],
        "/events/0/properties/properties/user_email",
    ),
    (
        "piiAnnotation",
        [_event(e=_ok_prop(**{"x-pii": {"category": "emial"}}))],
        "/events/0/properties/properties/e/x-pii",
    ),
]


@pytest.mark.parametrize(("rule", "events", "pointer"), BAD, ids=[b[0] for b in BAD])
def test_each_rule_finds_its_problem(rule: str, events: list[dict[str, Any]], pointer: str) -> None:
    found = _rules(make_plan(events))
    assert rule in found, sorted(found)
    finding = next(f for f in found[rule] if f.pointer == pointer)
    assert finding.file == "plan.yaml"
    assert finding.event is not None
    assert finding.level == {r.id: r.level for r in RULES}[rule]


def test_every_rule_is_tested_documented_and_in_the_format_schema() -> None:
    tested = {b[0] for b in BAD} | {"optionalNull", "piiDetectionOff"}
    assert tested == set(RULE_IDS)
    assert PLAN_FORMAT_SCHEMA["properties"]["lint"]["x-rules"] == list(RULE_IDS)
    assert all(r.reason and r.level in ("error", "warning", "info") for r in RULES)


def test_optional_null_runs_only_when_the_plan_asks() -> None:
    plan = make_plan([_event(a=_ok_prop(), b=_ok_prop(type=["string", "null"]))])
    assert "optionalNull" not in _rules(plan)
    asked = make_plan(
        [_event(a=_ok_prop(), b=_ok_prop(type=["string", "null"]))], lint={"optional_null": True}
    )
    found = lint_plan(asked).findings
    assert [f.pointer for f in found if f.rule == "optionalNull"] == [
        "/events/0/properties/properties/a"
    ]


def test_pii_inside_a_declared_object_needs_no_declaration() -> None:
    address = {
        "type": "object",
        "description": "Where.",
        "x-pii": {"category": "address"},
        "properties": {
            "street": {"type": "string", "maxLength": 9},
            "city": {"type": "string", "maxLength": 9},
        },
    }
    found = _rules(make_plan([_event(shipping=address)]))
    assert "piiUndeclared" not in found and "piiStatus" not in found


def test_plan_configuration_skips_and_relevels_rules() -> None:
    events = [
        _event(
            s={"type": "string", "description": "S.", "x-pii": False},
            user_email={"type": "string", "maxLength": 9, "description": "E."},
        )
    ]
    plan = make_plan(events, lint={"skip": ["piiUndeclared"], "levels": {"stringLength": "error"}})
    report = lint_plan(plan)
    assert {f.rule for f in report.findings} == {"stringLength", "piiStatus"}
    assert [f.level for f in report.findings if f.rule == "stringLength"] == ["error"]
    assert lint_plan(plan, skip=["stringLength", "piiStatus"]).findings == ()
    with pytest.raises(ValueError, match="unknown lint rule"):
        lint_plan(plan, skip=["noSuchRule"])


def test_bad_lint_configuration_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="lint"):
        make_plan([_event(a=_ok_prop())], lint={"skip": ["noSuchRule"]})
    with pytest.raises(PlanError):
        make_plan([_event(a=_ok_prop())], lint={"event_case": "shouting"})


def test_event_case_is_configurable() -> None:
    plan = make_plan([_event("order_completed", a=_ok_prop())], lint={"event_case": "snake"})
    assert "eventNameCase" not in _rules(plan)


# -- the CLI -------------------------------------------------------------------------------
def _write_plan(tmp: Path, events: list[dict[str, Any]]) -> Path:
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump({"trackplan": 1, "name": "T", "events": events}))
    return path


def test_cli_exit_codes_and_formats(tmp_path: Path) -> None:
    exe = trackplan_exe()
    clean = run([exe, "lint", str(ECOMMERCE)], tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 error(s)" in clean.stdout
    strict = run([exe, "lint", str(ECOMMERCE), "--strict"], tmp_path)
    assert strict.returncode == 0, strict.stdout

    bad = _write_plan(tmp_path, [_event(user_email={"type": "string", "description": "E."})])
    text = run([exe, "lint", str(bad)], tmp_path)
    assert text.returncode == 1
    assert (
        "piiUndeclared" in text.stdout
        and "/events/0/properties/properties/user_email" in text.stdout
    )
    as_json = run([exe, "lint", str(bad), "--format", "json"], tmp_path)
    body = json.loads(as_json.stdout)
    assert body["errors"] == 1 and all(f["reason"] for f in body["findings"])
    gh = run([exe, "lint", "plan.yaml", "--format", "github"], tmp_path)
    error = next(line for line in gh.stdout.splitlines() if line.startswith("::error"))
    assert "file=plan.yaml" in error and "line=" in error and "piiUndeclared" in error
    skipped = run([exe, "lint", str(bad), "--skip", "piiUndeclared,stringLength"], tmp_path)
    assert skipped.returncode == 0
    usage = run([exe, "lint", str(bad), "--skip", "nope"], tmp_path)
    assert usage.returncode == 2 and "unknown rule" in usage.stderr
    missing = run([exe, "lint", str(tmp_path / "absent")], tmp_path)
    assert missing.returncode == 1 and "no such file" in missing.stderr


@pytest.mark.parametrize("off", [False, "off", {"enabled": False}])
def test_detection_turned_off_is_a_warning(off: Any) -> None:
    plan = make_plan([_event(order_id=_ok_prop())], pii={"detection": off})
    found = lint_plan(plan).findings
    assert [(f.rule, f.level, f.file, f.pointer) for f in found] == [
        ("piiDetectionOff", "warning", "plan.yaml", "/pii/detection")
    ]
    assert "forwarded" in found[0].message
    # on (the default, with or without a pii section): nothing to report
    for on in ({}, {"detection": {"context": ["ip"]}}, {"defaults": {"email": "hash"}}):
        assert lint_plan(make_plan([_event(order_id=_ok_prop())], pii=on)).findings == ()


def test_lint_cli_warns_about_detection_off(tmp_path: Path) -> None:
    import subprocess
    import sys

    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "plan.yaml").write_text(
        "trackplan: 1\nname: T\npii: {detection: off}\nevents:\n"
        "- name: Order Completed\n  description: When it happens.\n"
        "  properties: {type: object, properties: {order_id: "
        "{type: string, maxLength: 9, description: Id., x-pii: false}}}\n",
        encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "trackplan", "lint", str(plan)]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stdout + plain.stderr  # a warning fails only --strict
    assert "piiDetectionOff" in plain.stdout and "/pii/detection" in plain.stdout
    strict = subprocess.run([*cmd, "--strict"], capture_output=True, text=True, timeout=60)
    assert strict.returncode == 1 and "piiDetectionOff" in strict.stdout
