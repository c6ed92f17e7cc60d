"""The plan loader: every error reported with file, event and pointer; refs checked safely."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plan_helpers import ECOMMERCE, run_cli

from trackplan.engine import compile_plan
from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.load import build_plan, load_plan
from trackplan.plan.write import dump_yaml


def write(root: Path, files: dict[str, Any]) -> Path:
    """Write a plan directory: each value is YAML text or a JSON value dumped as YAML."""
    for name, value in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value if isinstance(value, str) else dump_yaml(value), encoding="utf-8")
    return root


def issues_of(path: Path) -> tuple[PlanIssue, ...]:
    with pytest.raises(PlanError) as info:
        load_plan(path)
    return info.value.issues


def find(issues: tuple[PlanIssue, ...], file: str, pointer: str) -> PlanIssue:
    """The one issue at ``file`` (suffix) and ``pointer``; fails listing all when absent."""
    hits = [i for i in issues if i.file.endswith(file) and i.pointer == pointer]
    assert hits, f"no issue at {file} {pointer}; got:\n" + "\n".join(map(str, issues))
    return hits[0]


# -- every error, with its place -------------------------------------------------------------
def broken_plan(root: Path) -> Path:
    return write(
        root,
        {
            "plan.yaml": "name: Broken\ndraft: draft-07\n",
            "identify.yaml": {"traits": {"type": "object", "properties": {"age": {"type": "int"}}}},
            "events/alpha.yaml": {
                "name": "Alpha",
                "properties": {
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer", "minimum": "zero"},
                        "code": {"type": "string", "pattern": "([a-z]"},
                    },
                },
            },
            "events/beta.yaml": {
                "name": "Beta",
                "version": 2,
                "properties": {"properties": {"a/b": {"$ref": "#/definitions/nowhere"}}},
            },
            "events/beta-again.yaml": {"name": "Beta", "version": 2},
            "events/gamma.yaml": {"name": "Gamma", "colour": "red"},
        },
    )


def test_loader_reports_every_error_with_file_event_and_pointer(tmp_path: Path) -> None:
    issues = issues_of(broken_plan(tmp_path))
    age = find(issues, "identify.yaml", "/traits/properties/age/type")
    assert age.event == "identify"
    count = find(issues, "events/alpha.yaml", "/properties/properties/count/minimum")
    assert count.event == "Alpha" and "not a valid draft-07 schema" in count.message
    code = find(issues, "events/alpha.yaml", "/properties/properties/code/pattern")
    assert "regex" in code.message or "regular expression" in code.message
    ref = find(issues, "events/beta.yaml", "/properties/properties/a~1b/$ref")
    assert ref.event == "Beta" and "does not resolve" in ref.message
    dup = [i for i in issues if "also defined" in i.message]
    assert len(dup) == 1 and dup[0].event == "Beta"
    gamma = find(issues, "events/gamma.yaml", "")
    assert "colour" in gamma.message and gamma.event == "Gamma"
    files = {Path(i.file).name for i in issues}
    assert {"identify.yaml", "alpha.yaml", "beta.yaml", "gamma.yaml"} <= files


def test_event_files_are_checked_even_when_plan_yaml_is_wrong(tmp_path: Path) -> None:
    broken_plan(tmp_path)
    (tmp_path / "plan.yaml").write_text("name: Broken\nunknown_key: 1\n", encoding="utf-8")
    issues = issues_of(tmp_path)
    find(issues, "plan.yaml", "")
    find(issues, "events/alpha.yaml", "/properties/properties/count/minimum")
    find(issues, "identify.yaml", "/traits/properties/age/type")


def test_check_command_lists_every_issue_and_exits_1(tmp_path: Path) -> None:
    broken_plan(tmp_path)
    result = run_cli("check", str(tmp_path))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    expected = len(issues_of(tmp_path))
    assert lines[0].endswith(f"{expected} errors")
    assert len(lines) == 1 + expected
    assert any("alpha.yaml [Alpha] at /properties/properties/count/minimum:" in x for x in lines)
    assert any("identify.yaml [identify] at /traits/properties/age/type:" in x for x in lines)


def test_broken_yaml_and_json_are_reported_per_file(tmp_path: Path) -> None:
    write(tmp_path, {"plan.yaml": "name: P\n", "events/a.yaml": "name: [unclosed\n"})
    (tmp_path / "events" / "b.json").write_text('{"name": ', encoding="utf-8")
    issues = issues_of(tmp_path)
    assert "invalid YAML" in find(issues, "events/a.yaml", "").message
    assert "invalid JSON" in find(issues, "events/b.json", "").message


# -- remote refs are refused, never fetched ----------------------------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        _Recorder.requests.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def schema_server() -> Iterator[str]:
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_recording_server_really_records(schema_server: str) -> None:
    import urllib.request

    with urllib.request.urlopen(schema_server + "/probe.json", timeout=10) as response:
        assert json.load(response) == {"type": "string"}
    assert _Recorder.requests == ["/probe.json"]


def test_remote_and_file_refs_are_refused_and_never_fetched(
    tmp_path: Path, schema_server: str
) -> None:
    (tmp_path / "other.json").write_text('{"type": "string"}', encoding="utf-8")
    refs = {
        "http": f"{schema_server}/schema.json",
        "https": "https://127.0.0.1:1/schema.json",
        "file": (tmp_path / "other.json").as_uri(),
        "relative": "other.json#/type",
    }
    props = {key: {"$ref": ref} for key, ref in refs.items()}
    props["nested"] = {"$id": f"{schema_server}/base.json", "items": {"$ref": "item.json"}}
    write(
        tmp_path,
        {
            "plan.yaml": {"name": "Remote", "common": {"call": {"$ref": f"{schema_server}/c"}}},
            "events/remote.yaml": {"name": "Remote Refs", "properties": {"properties": props}},
        },
    )
    issues = issues_of(tmp_path)
    for key in [*refs, "nested"]:
        where = f"/properties/properties/{key}/$ref"
        if key == "nested":
            where = "/properties/properties/nested/items/$ref"
        issue = find(issues, "events/remote.yaml", where)
        assert "never fetches" in issue.message and issue.event == "Remote Refs"
    assert "never fetches" in find(issues, "plan.yaml", "/common/call/$ref").message
    result = run_cli("check", str(tmp_path))
    assert result.returncode == 1 and result.stdout.count("never fetches") == len(refs) + 2
    assert _Recorder.requests == []


def test_refs_to_an_embedded_id_are_allowed(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {
            "money": {"$id": "urn:example:money", "type": "number", "minimum": 0},
            "total": {"$ref": "urn:example:money"},
        },
    }
    write(
        tmp_path,
        {"plan.yaml": {"name": "Ids"}, "events/e.yaml": {"name": "E", "properties": schema}},
    )
    enforcer = compile_plan(load_plan(tmp_path))
    base = {"type": "track", "event": "E", "userId": "u", "messageId": "m"}
    assert enforcer.enforce({**base, "properties": {"total": 3}}).violations == ()
    assert enforcer.enforce({**base, "properties": {"total": -3}}).violations != ()


def test_a_ref_to_an_undeclared_anchor_is_a_plan_error(tmp_path: Path) -> None:
    """Found by the loader, not at the rule's first event (rules compile on first use)."""
    props = {
        "type": "object",
        "properties": {
            "money": {"$anchor": "money", "type": "number", "minimum": 0},
            "total": {"$ref": "#money"},
            "lost": {"$ref": "#nowhere"},
        },
    }
    write(tmp_path, {"plan.yaml": {"name": "Anchors", "draft": "2020-12"},
                     "events/e.yaml": {"name": "E", "properties": props}})  # fmt: skip
    issue = find(issues_of(tmp_path), "e.yaml", "/properties/properties/lost/$ref")
    assert "anchor" in issue.message and "#nowhere" in issue.message
    del props["properties"]["lost"]
    write(tmp_path, {"events/e.yaml": {"name": "E", "properties": props}})
    enforcer = compile_plan(load_plan(tmp_path)).compile_all()
    base = {"type": "track", "event": "E", "userId": "u", "messageId": "m"}
    assert enforcer.enforce({**base, "properties": {"total": -3}}).violations != ()


# -- cycles and recursion --------------------------------------------------------------------
def test_ref_cycles_are_reported_not_hanging(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "plan.yaml": {
                "name": "Cycles",
                "definitions": {
                    "a": {"$ref": "#/definitions/b"},
                    "b": {"$ref": "#/definitions/a"},
                    "self": {"$ref": "#/definitions/self"},
                },
            },
            "events/loop.yaml": {
                "name": "Loop",
                "properties": {
                    "properties": {
                        "x": {"$ref": "#/definitions/a"},
                        "y": {"$ref": "#/definitions/self"},
                    },
                },
            },
        },
    )
    issues = issues_of(tmp_path)
    for prop in ("x", "y"):
        issue = find(issues, "events/loop.yaml", f"/properties/properties/{prop}/$ref")
        assert "cycle" in issue.message and issue.event == "Loop"


def test_an_indirect_cycle_through_allof_compiles_and_validates(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "plan.yaml": {
                "name": "Indirect",
                "definitions": {"a": {"allOf": [{"$ref": "#/definitions/a"}]}},
            },
            "events/e.yaml": {
                "name": "E",
                "properties": {"properties": {"x": {"$ref": "#/definitions/a"}}},
            },
        },
    )
    enforcer = compile_plan(load_plan(tmp_path))
    result = enforcer.enforce(
        {"type": "track", "event": "E", "userId": "u", "messageId": "m", "properties": {"x": 1}}
    )
    assert result.allowed


def tree_plan(root: Path) -> Path:
    node = {
        "type": "object",
        "required": ["label"],
        "properties": {
            "label": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
        },
        "additionalProperties": False,
    }
    return write(
        root,
        {
            "plan.yaml": {"name": "Trees", "definitions": {"node": node}},
            "events/tree.yaml": {
                "name": "Tree Saved",
                "properties": {
                    "type": "object",
                    "properties": {"root": {"$ref": "#/definitions/node"}},
                },
            },
        },
    )


def nested_tree(depth: int, bad_leaf: bool = False) -> dict[str, Any]:
    leaf: dict[str, Any] = {"label": 7} if bad_leaf else {"label": "leaf"}
    node = leaf
    for i in range(depth):
        node = {"label": f"n{i}", "children": [node, {"label": "sibling"}]}
    return node


def test_a_recursive_tree_schema_loads_and_enforces(tmp_path: Path) -> None:
    enforcer = compile_plan(load_plan(tree_plan(tmp_path)))
    base = {"type": "track", "event": "Tree Saved", "userId": "u", "messageId": "m"}
    assert enforcer.enforce({**base, "properties": {"root": nested_tree(30)}}).violations == ()
    bad = enforcer.enforce({**base, "properties": {"root": nested_tree(5, bad_leaf=True)}})
    pointers = [v.pointer for v in bad.violations]
    assert pointers == ["/properties/root" + "/children/0" * 5 + "/label"]


# -- deep nesting ------------------------------------------------------------------------------
def deep(levels: int) -> Any:
    value: Any = {"type": "string"}
    for _ in range(levels):
        value = {"properties": {"x": value}}
    return value


def test_ten_thousand_levels_in_a_plan_file_give_a_plan_error(tmp_path: Path) -> None:
    # json.dumps recurses, so the text is built by hand
    schema = '{"properties": {"x": ' * 10_000 + '{"type": "string"}' + "}}" * 10_000
    path = tmp_path / "plan.json"
    path.write_text(
        '{"name": "Deep", "events": [{"name": "D", "properties": ' + schema + "}]}",
        encoding="utf-8",
    )
    issues = issues_of(path)
    assert len(issues) == 1 and "depth" in issues[0].message.replace("deeper", "depth")


def test_ten_thousand_levels_of_yaml_give_a_plan_error(tmp_path: Path) -> None:
    text = "name: Deep\nevents:\n- name: D\n  properties: " + "[" * 10_000 + "]" * 10_000 + "\n"
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    issues = issues_of(path)
    assert len(issues) == 1 and "deeper than" in issues[0].message


def test_ten_thousand_levels_given_to_build_plan_give_a_plan_error() -> None:
    doc = {"name": "Deep", "events": [{"name": "D", "properties": deep(10_000)}]}
    with pytest.raises(PlanError) as info:
        build_plan("plan.json", doc)
    assert "deeper than" in str(info.value)


def test_the_bundled_plan_loads() -> None:
    plan = load_plan(ECOMMERCE)
    assert plan.event("Order Completed", 2).version == 2
    assert len(plan.event_names) >= 7


def test_a_ref_under_an_embedded_id_is_read_against_that_schema() -> None:
    """``$id`` inside a rule starts a schema of its own: ``#/definitions/a`` below it
    points into that schema, not at the plan's definitions. Where it does not resolve
    there, the plan is refused at load with the pointer (the validator would refuse to
    compile it at the rule's first event); where it does, the plan loads and enforces it."""
    doc: dict[str, Any] = {
        "name": "Ids", "definitions": {"a": {"type": "string"}},
        "events": [{"name": "A", "properties": {
            "$id": "urn:example:a", "type": "object",
            "properties": {"x": {"$ref": "#/definitions/a"}}}}],
    }
    with pytest.raises(PlanError) as caught:
        build_plan("plan.yaml", doc)
    issue = find(caught.value.issues, "plan.yaml", "/events/0/properties/properties/x/$ref")
    assert issue.event == "A"
    assert "urn:example:a" in issue.message and "/events/0/properties" in issue.message
    own = json.loads(json.dumps(doc))
    own["events"][0]["properties"]["definitions"] = {"a": {"type": "integer"}}
    enforcer = compile_plan(build_plan("plan.yaml", own)).compile_all()
    call = {"type": "track", "event": "A", "userId": "u", "properties": {"x": "text"}}
    result = enforcer.enforce(call)
    assert [v.type for v in result.violations] == ["Datatype-Mismatch"]  # its own integer
    assert not enforcer.enforce({**call, "properties": {"x": 7}}).violations
