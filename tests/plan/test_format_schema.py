"""The plan format, published as a JSON Schema, checks the bundled and written plan files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from plan_helpers import ECOMMERCE, ROOT, TYPEWRITER, run_cli, shared_fixture

from trackplan.errors import PlanError
from trackplan.plan.format_schema import EDITOR_SCHEMA_IDS, PLAN_FORMAT_SCHEMA
from trackplan.plan.load import load_plan
from trackplan.plan.segment import import_segment
from trackplan.plan.write import write_plan


def _printed(kind: str) -> dict[str, Any]:
    result = run_cli("schema", "--kind", kind)
    assert result.returncode == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


@pytest.fixture(scope="module")
def printed() -> dict[str, Any]:
    """The plan schema as ``trackplan schema`` prints it: what an editor would be given."""
    return _printed("plan")


@pytest.fixture(scope="module")
def printed_event() -> dict[str, Any]:
    """The event-file schema as ``trackplan schema --kind event`` prints it."""
    return _printed("event")


def validators(schema: dict[str, Any]) -> tuple[Any, Any]:
    """Draft-07 validators for plan.yaml and for one file under events/."""
    plan_file = jsonschema.Draft7Validator(schema)
    event_file = jsonschema.Draft7Validator(_printed("event"))
    return plan_file, event_file


MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.M)


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_printed_schemas_are_draft_07_with_stable_https_ids(
    printed: dict[str, Any], printed_event: dict[str, Any]
) -> None:
    for kind, schema in (("plan", printed), ("event", printed_event)):
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["$id"] == EDITOR_SCHEMA_IDS[kind]
        assert schema["$id"].startswith("https://")
        jsonschema.Draft7Validator.check_schema(schema)
    # the same content the loader checks with (2020-12), under draft-07
    body = {k: v for k, v in printed.items() if k not in ("$schema", "$id", "title")}
    assert body == {
        k: v
        for k, v in json.loads(json.dumps(PLAN_FORMAT_SCHEMA)).items()
        if k not in ("$schema", "$id", "title")
    }
    assert printed_event["required"] == ["name"]


def test_every_bundled_plan_file_names_its_schema_and_satisfies_it(
    printed: dict[str, Any], printed_event: dict[str, Any], tmp_path: Path
) -> None:
    by_id = {printed["$id"]: printed, printed_event["$id"]: printed_event}
    files = sorted(p for p in (ROOT / "plans").rglob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        text = path.read_text(encoding="utf-8")
        found = MODELINE.search(text.split("\n", 1)[0])
        assert found, f"{path}: first line must be a yaml-language-server $schema line"
        expected = "event" if path.parent.name == "events" else "plan"
        assert found.group(1) == EDITOR_SCHEMA_IDS[expected], path
        validator = jsonschema.Draft7Validator(by_id[found.group(1)])
        assert list(validator.iter_errors(yaml.safe_load(text))) == [], path
    out = tmp_path / "plan.schema.json"
    written = run_cli("schema", "--kind", "plan", "-o", str(out))
    assert written.returncode == 0 and json.loads(out.read_text()) == printed


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
