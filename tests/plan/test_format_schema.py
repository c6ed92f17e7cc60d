"""The plan format, published as a JSON Schema, checks the bundled and written plan files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import yaml
from plan_helpers import ECOMMERCE, TYPEWRITER, run_cli, shared_fixture

from trackplan.errors import PlanError
from trackplan.plan.format_schema import PLAN_FORMAT_SCHEMA
from trackplan.plan.load import load_plan
from trackplan.plan.segment import import_segment
from trackplan.plan.write import write_plan


@pytest.fixture(scope="module")
def printed() -> dict[str, Any]:
    """The schema as ``trackplan schema`` prints it: what an editor would be given."""
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def validators(schema: dict[str, Any]) -> tuple[Any, Any]:
    """Validators for plan.yaml and for one file under events/, from the printed schema."""
    resource = referencing.Resource.from_contents(schema)
    registry = referencing.Registry().with_resource(schema["$id"], resource)
    plan_file = jsonschema.Draft202012Validator(schema, registry=registry)
    event_file = jsonschema.Draft202012Validator(
        {"$ref": schema["$id"] + "#/properties/events/items"}, registry=registry
    )
    return plan_file, event_file


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_printed_schema_is_the_published_one_and_a_valid_schema(printed: dict[str, Any]) -> None:
    assert printed == json.loads(json.dumps(PLAN_FORMAT_SCHEMA))
    jsonschema.Draft202012Validator.check_schema(printed)


def test_bundled_plan_files_satisfy_the_format_schema(printed: dict[str, Any]) -> None:
    plan_file, event_file = validators(printed)
    errors = list(plan_file.iter_errors(read(ECOMMERCE / "plan.yaml")))
    assert errors == []
    events = sorted((ECOMMERCE / "events").glob("*.yaml"))
    assert len(events) >= 7
    for path in events:
        assert list(event_file.iter_errors(read(path))) == [], path.name


def test_the_format_schema_rejects_what_the_loader_rejects(
    printed: dict[str, Any], tmp_path: Path
) -> None:
    plan_file, event_file = validators(printed)
    doc = read(ECOMMERCE / "plan.yaml")
    doc["controls"]["track"]["violations"] = "explode"
    doc["colour"] = "red"
    pointers = sorted("/" + "/".join(map(str, e.absolute_path)) for e in plan_file.iter_errors(doc))
    assert pointers == ["/", "/controls/track/violations"]
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(PlanError) as info:
        load_plan(tmp_path / "plan.yaml")
    assert sorted(i.pointer or "/" for i in info.value.issues) == pointers
    assert not event_file.is_valid({"version": 1})  # an event file needs its name
    assert not event_file.is_valid({"name": "E", "traits": {}, "colour": 1})


def test_a_written_import_satisfies_the_format_schema(
    printed: dict[str, Any], tmp_path: Path
) -> None:
    doc = json.loads(shared_fixture(TYPEWRITER).read_text(encoding="utf-8"))
    write_plan(import_segment(doc, source="tw.json"), tmp_path)
    plan_file, event_file = validators(printed)
    assert plan_file.is_valid(read(tmp_path / "plan.yaml"))
    written = sorted((tmp_path / "events").glob("*.yaml"))
    assert len(written) == len(doc["rules"]["events"])
    for path in written:
        assert list(event_file.iter_errors(read(path))) == [], path.name


@pytest.mark.parametrize(
    ("text", "detects"),
    [
        ("pii: {detection: off}\n", False),  # YAML reads off as false
        ("pii: {detection: {enabled: false}}\n", False),
        ("pii: {detection: {context: [ip]}}\n", True),
        ("pii: {defaults: {email: hash}}\n", True),
        ("", True),  # no pii section: detection is on all the same
    ],
)
def test_detection_off_is_explicit_in_the_format(
    printed: dict[str, Any], tmp_path: Path, text: str, detects: bool
) -> None:
    plan_file, _ = validators(printed)
    (tmp_path / "plan.yaml").write_text("trackplan: 1\nname: T\n" + text, encoding="utf-8")
    assert list(plan_file.iter_errors(read(tmp_path / "plan.yaml"))) == []
    assert load_plan(tmp_path / "plan.yaml").detects_pii is detects
    # JSON has no YAML booleans: the string "off" says the same
    (tmp_path / "plan.yaml").unlink()
    as_json = {"trackplan": 1, "name": "T", "pii": {"detection": "off"}}
    (tmp_path / "plan.json").write_text(json.dumps(as_json), encoding="utf-8")
    assert plan_file.is_valid(as_json)
    assert load_plan(tmp_path / "plan.json").detects_pii is False
    assert not plan_file.is_valid({**as_json, "pii": {"detection": "maybe"}})
