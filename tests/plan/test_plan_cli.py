"""The plan commands run as a user runs them: ``python -m trackplan ...`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plan_helpers import ECOMMERCE, TYPEWRITER, run_cli, shared_fixture

from trackplan.errors import PlanError
from trackplan.plan.load import load_plan
from trackplan.plan.segment import export_segment


@pytest.fixture(scope="module")
def typewriter_file() -> Path:
    return shared_fixture(TYPEWRITER)


def test_check_a_valid_plan_prints_one_summary_line() -> None:
    result = run_cli("check", str(ECOMMERCE))
    assert result.returncode == 0, result.stderr
    plan = load_plan(ECOMMERCE)
    others = len(plan.rules) - len(plan.events)
    assert result.stdout.splitlines() == [
        f"{ECOMMERCE}: valid plan {plan.name!r}: {len(plan.event_names)} events, "
        f"{len(plan.events)} event versions, {others} other rules"
    ]


def test_check_a_missing_plan_exits_1() -> None:
    result = run_cli("check", "no/such/plan")
    assert result.returncode == 1
    assert "no/such/plan at /: no such file or directory" in result.stdout


def test_import_export_round_trip_on_the_typewriter_plan(
    typewriter_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plan"
    imported = run_cli("import", "segment", str(typewriter_file), "--out", str(out))
    assert imported.returncode == 0, imported.stderr
    source = json.loads(typewriter_file.read_text(encoding="utf-8"))
    count = len(source["rules"]["events"])
    assert f"imported {count} events" in imported.stderr
    checked = run_cli("check", str(out))
    assert checked.returncode == 0 and f": {count} events," in checked.stdout
    exported = run_cli("export", "segment", str(out))
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(exported.stdout)
    original = {e["name"]: e["rules"] for e in source["rules"]["events"]}
    assert {r["key"]: r["jsonSchema"] for r in doc["rules"]} == original
    # a second trip through the CLI gives byte-identical output
    again_file = tmp_path / "again.json"
    again_file.write_text(exported.stdout, encoding="utf-8")
    second = tmp_path / "second"
    assert run_cli("import", "segment", str(again_file), "--out", str(second)).returncode == 0
    to_file = tmp_path / "exported.json"
    assert run_cli("export", "segment", str(second), "--out", str(to_file)).returncode == 0
    assert to_file.read_text(encoding="utf-8") == exported.stdout
    assert load_plan(second).content() == load_plan(out).content()


def test_import_refuses_a_non_empty_directory_without_force(
    typewriter_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plan"
    (out / "events").mkdir(parents=True)
    (out / "README.md").write_text("keep me\n", encoding="utf-8")
    stale = out / "events" / "stale-event.yaml"
    stale.write_text("name: Stale Event\n", encoding="utf-8")
    refused = run_cli("import", "segment", str(typewriter_file), "--out", str(out))
    assert refused.returncode == 2
    assert "--force" in refused.stderr and not (out / "plan.yaml").exists()
    forced = run_cli("import", "segment", str(typewriter_file), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not stale.exists(), "a stale event file would join the imported plan"
    assert (out / "README.md").read_text(encoding="utf-8") == "keep me\n"
    assert "Stale Event" not in load_plan(out).event_names
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temp dir left"


def test_import_of_a_broken_export_writes_nothing(tmp_path: Path) -> None:
    bad = {
        "name": "Shop",
        "rules": [
            {"type": "TRACK", "key": "A", "version": 1, "jsonSchema": {"type": "objekt"}},
            {"type": "TRACK", "key": "B", "version": 0, "jsonSchema": {}},
        ],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("import", "segment", str(path), "--out", str(out))
    assert result.returncode == 1
    assert "bad.json [A] at /rules/0/jsonSchema/type:" in result.stderr
    assert "bad.json [B] at /rules/1/version:" in result.stderr
    assert not out.exists()


def test_import_of_invalid_json_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"rules": [', encoding="utf-8")
    result = run_cli("import", "segment", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "invalid JSON" in result.stderr
    missing = run_cli("import", "segment", str(tmp_path / "no.json"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_import_reads_stdin_and_keeps_large_integers(tmp_path: Path) -> None:
    big = 2**70 + 1
    doc: dict[str, Any] = {
        "name": "Big",
        "rules": [
            {
                "type": "TRACK",
                "key": "Big Number",
                "version": 1,
                "jsonSchema": {"properties": {"properties": {"maximum": big}}},
            }
        ],
    }
    out = tmp_path / "plan"
    result = run_cli("import", "segment", "-", "--out", str(out), stdin=json.dumps(doc).encode())
    assert result.returncode == 0, result.stderr
    exported = run_cli("export", "segment", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["rules"][0]["jsonSchema"]["properties"]["properties"] == {
        "maximum": big
    }


def test_export_of_the_bundled_plan_matches_the_library() -> None:
    result = run_cli("export", "segment", str(ECOMMERCE))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == export_segment(load_plan(ECOMMERCE))


def test_export_of_a_broken_plan_exits_1(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text("name: X\nevents: [{name: E, version: 0}]\n", "utf-8")
    result = run_cli("export", "segment", str(tmp_path))
    assert result.returncode == 1 and "/events/0/version" in result.stderr
    assert result.stdout == ""


def test_check_also_compiles_the_plan(tmp_path: Path) -> None:
    """Python's re accepts ``a{,3}``; the engine's regex dialect does not: the plan is refused."""
    (tmp_path / "events").mkdir()
    (tmp_path / "plan.yaml").write_text("name: P\n", encoding="utf-8")
    (tmp_path / "events" / "e.yaml").write_text(
        'name: E\nproperties:\n  properties:\n    a: {type: string, pattern: "a{,3}"}\n',
        encoding="utf-8",
    )
    with pytest.raises(PlanError) as caught:  # the loader checks the engine's dialect too
        load_plan(tmp_path)
    assert "/properties/properties/a/pattern" in str(caught.value)
    result = run_cli("check", str(tmp_path))
    assert result.returncode == 1
    assert "e.yaml [E] at /properties/properties/a/pattern" in result.stdout + result.stderr


def test_unwritable_outputs_are_reported_not_tracebacks(tmp_path: Path) -> None:
    target = tmp_path / "a-directory"
    target.mkdir()
    result = run_cli("export", "segment", str(ECOMMERCE), "--out", str(target))
    assert result.returncode == 2 and "cannot write" in result.stderr
    assert "Traceback" not in result.stderr
