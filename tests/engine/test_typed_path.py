"""The NDJSON bytes path: ``enforce_bytes(line)`` gives what ``enforce(orjson.loads(line))`` does.

Every comparison runs both paths on the same bytes. Besides equality, tests check that the
typed path is really taken for valid events (a bytes path that always fell back would pass
the equality tests and be useless).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from trackplan.engine import compile_plan
from trackplan.engine.enforcer import Enforcer, Result
from trackplan.engine.typed import LineResult, TypedPath, whole_call_schema
from trackplan.plan.load import load_plan

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "plans" / "ecommerce"
EVENTS = ROOT / "examples" / "events.ndjson"
TYPED_EVENTS = [
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Product Added",
    "Product Viewed",
    "Products Searched",
    "Signed Up",
]
SINGLE_EVENTS = [n for n in TYPED_EVENTS if n != "Order Completed"]
#: number literals beyond the double range: valid JSON orjson refuses (documented exception)
OVERFLOW = re.compile(rb"[0-9][eE]\+?[0-9]{3}|[0-9]{309}")
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def enforcer() -> Enforcer:
    """The example plan: PII actions give every rule a transform (``context.ip`` is masked)."""
    return compile_plan(load_plan(PLAN))


def _strip_pii(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_pii(v) for k, v in node.items() if k != "x-pii"}
    if isinstance(node, list):
        return [_strip_pii(v) for v in node]
    return node


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example plan without ``x-pii`` annotations, detection off."""
    out = tmp_path_factory.mktemp("plain") / "plan"
    shutil.copytree(PLAN, out)
    for path in out.rglob("*.yaml"):
        doc = _strip_pii(yaml.safe_load(path.read_text()))
        if path.name == "plan.yaml":
            doc["pii"] = {"detection": "off"}
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def plain(plain_dir: Path) -> Enforcer:
    """The example plan without PII actions: valid events forward their input bytes."""
    enforcer = compile_plan(load_plan(plain_dir))
    assert all(c.transform is None for c in enforcer.compiled_rules())
    return enforcer


def dumps(event: Any) -> bytes:
    """JSON bytes of any JSON value (orjson refuses ints beyond 64 bits; json does not)."""
    try:
        return orjson.dumps(event)
    except TypeError:
        return json.dumps(event).encode()


def same(enforcer: Enforcer, line: bytes) -> Result | None:
    """Assert both paths agree on ``line``; the bytes path's result (None if both raise)."""
    try:
        expected: Result | None = enforcer.enforce(orjson.loads(line))
    except orjson.JSONDecodeError:
        expected = None
    try:
        got = enforcer.enforce_bytes(line)
    except orjson.JSONDecodeError:
        assert expected is None, "the bytes path refused a line orjson reads"
        return None
    if expected is None:
        assert OVERFLOW.search(line), "the bytes path accepted a line orjson refuses"
        return got
    assert got.allowed == expected.allowed
    assert got.violations == expected.violations
    assert got.omitted == expected.omitted
    assert got.omitted_on_violation == expected.omitted_on_violation
    assert got.rule is expected.rule
    assert got.event == expected.event
    return got


def base_event(**over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "9eb22b5a-9059-486a-9d97-fce60131d9b6",
        "timestamp": "2026-11-01T08:06:25.000Z",
        "userId": "usr_100000",
        "anonymousId": None,
        "context": {
            "ip": "203.0.113.79",
            "userAgent": "Mozilla/5.0",
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "locale": "en-GB",
        },
        "integrations": {},
        "properties": {
            "product_id": "p-3001",
            "sku": "SKU-1",
            "name": "Mug",
            "price": 89.0,
            "url": "https://shop.example.com/p/p-3001",
            "currency": "EUR",
        },
    }
    event.update(over)
    return event


def with_path(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(event)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


# -- what is typed ---------------------------------------------------------------------------
def test_rules_with_pii_actions_stay_on_the_dict_path(enforcer: Enforcer) -> None:
    path = TypedPath(enforcer)
    assert not path.entries
    assert set(path.untyped.values()) == {
        "has a transform (PII actions): needs the event as a dict"}


def test_every_rule_of_the_example_without_pii_is_typed(plain: Enforcer) -> None:
    path = TypedPath(plain)
    typed = sorted(
        e.compiled.rule.label for e in path.entries.values() if e.compiled.rule is not None
    )
    assert len(typed) == len(TYPED_EVENTS) + 3  # and page, identify, group
    assert path.untyped == {"(screen)": "no rule for this call type"}
    versioned = [e for e in path.entries.values() if e.versioned]
    assert [e.compiled.rule.version for e in versioned if e.compiled.rule] == [1]


def test_base_event_takes_the_typed_path(plain: Enforcer, enforcer: Enforcer) -> None:
    line = orjson.dumps(base_event())
    result = same(plain, line)
    assert isinstance(result, LineResult)
    assert result.line == line and result.allowed and result.rule_label == "Product Viewed"
    masked = same(enforcer, line)  # a PII transform needs the dict: the dict path
    assert masked is not None and not isinstance(masked, LineResult)
    assert masked.event["context"]["ip"] != base_event()["context"]["ip"]


@pytest.mark.parametrize("which", ["enforcer", "plain"])
def test_examples_file_agrees_and_every_valid_event_is_typed(
    which: str, request: pytest.FixtureRequest
) -> None:
    enforcer: Enforcer = request.getfixturevalue(which)
    path = TypedPath.of(enforcer)
    typed = 0
    for line in EVENTS.read_bytes().splitlines():
        result = same(enforcer, line)
        assert result is not None
        event = orjson.loads(line)
        clean = result.allowed and not result.violations and not result.omitted
        planned = event.get("type") != "track" or event.get("event") in TYPED_EVENTS
        named_version = b"event_version" in line and event.get("event") == "Order Completed"
        if clean and planned and not named_version and which == "plain":
            assert path.match(line) is not None, line
            assert isinstance(result, LineResult)
            typed += 1
        elif not clean or which == "enforcer":
            assert path.match(line) is None
    assert typed > 300 if which == "plain" else typed == 0


# -- edge cases where msgspec, orjson and jsonschema-rs could disagree ------------------------
EDGE_VALUES: list[tuple[tuple[str, ...], Any]] = [
    (("properties", "price"), 1),  # int for number
    (("properties", "price"), -0.0),
    (("properties", "price"), 1000000),
    (("properties", "price"), 1000000.0000000001),  # rounds to the bound
    (("properties", "price"), 1000000.1),
    (("properties", "price"), 10**30),  # orjson: float; msgspec: float
    (("properties", "price"), True),
    (("properties", "price"), "89"),
    (("properties", "currency"), "EUR\n"),  # Python's $ matches before a final newline
    (("properties", "currency"), "eur"),
    (("properties", "currency"), "EURO"),
    (("properties", "product_id"), "\U0001f600" * 64),  # lengths count code points
    (("properties", "product_id"), "\U0001f600" * 65),
    (("properties", "product_id"), "e\u0301" * 32),
    (("properties", "product_id"), None),
    (("properties", "url"), "android-app://com.example/https/x"),
    (("properties", "url"), "not a uri"),
    (("properties", "url"), "//no-scheme"),
    (("properties", "extra"), 1),  # unplanned: omitted
    (("properties",), {}),
    (("properties",), []),
    (("context", "ip"), "::1"),
    (("context", "ip"), "01.2.3.4"),
    (("context", "ip"), "256.1.1.1"),
    (("context", "ip"), "1.2.3.4\n"),
    (("context", "ip"), "fe80::1%eth0"),
    (("context", "ip"), "::ffff:1.2.3.4"),
    (("context", "ip"), ""),
    (("context", "ip"), 12),
    (("context", "library"), None),
    (("context", "library"), {"name": 1}),
    (("context", "locale"), 10**30),
    (("context",), "ctx"),
    (("timestamp",), "2026-11-29t10:00:00z"),
    (("timestamp",), "2026-11-29T10:00:00"),
    (("timestamp",), "2026-02-30T10:00:00Z"),
    (("timestamp",), "2026-11-29T23:59:60Z"),
    (("timestamp",), "2026-11-29T10:00:00+25:00"),
    (("timestamp",), 5),
    (("messageId",), "m" * 100),
    (("messageId",), "m" * 101),
    (("messageId",), ""),
    (("userId",), ""),
    (("userId",), 0),
    (("userId",), 1.5),
    (("userId",), True),
    (("userId",), None),
    (("anonymousId",), "anon"),
    (("integrations",), {"All": True}),
    (("integrations",), []),
    (("type",), "Track"),
    (("type",), None),
    (("event",), "product viewed"),
    (("event",), "Order Completed"),
    (("event",), ""),
    (("event",), 5),
]


@pytest.mark.parametrize(("path", "value"), EDGE_VALUES, ids=[repr(v)[:30] for v in EDGE_VALUES])
def test_edge_values_agree(enforcer: Enforcer, plain: Enforcer, path: tuple[str, ...],
                           value: Any) -> None:
    line = dumps(with_path(base_event(), path, value))
    same(enforcer, line)
    same(plain, line)


def test_ints_and_int_valued_floats_agree(plain: Enforcer) -> None:
    cart = {"cart_id": "c1", "product_id": "p-1", "price": 1.0}
    for quantity in (1, 1.0, 1000, 1001, 0, 2.5, 1e3, True, 2**63, 2**64, -(2**63) - 1):
        line = dumps(base_event(event="Product Added", properties={**cart, "quantity": quantity}))
        same(plain, line)


RAW_LINES = [
    b'{"type":"track","event":"Products Searched","userId":"u","properties":{"query":"x"}}',
    b'  {"type":"track","event":"Products Searched","userId":"u"}  \r\n',
    b'{"type":"tr\\u0061ck","event":"Products\\u0020Searched","userId":"u"}',
    b'{"event":"Products Searched","userId":"u"}',  # no type: a track call, untyped
    b'{"type":"track","event":"Products Searched","event":"Signed Up","userId":"u"}',
    b'{"type":"track","event":"Products Searched","userId":"u","properties":{"query":1},'
    b'"properties":{"query":"x"}}',
    b'{"type":"track","event":"Products Searched","userId":"u","properties":{"query":"x"},'
    b'"properties":{"query":1}}',
    b'{"type":"track","event":"Products Searched","userId":"u","x":"\xff"}',  # bad UTF-8
    b'{"type":"track","event":"Products Searched","userId":"u","x":"\xed\xa0\x80"}',
    b'{"type":"track","event":"Products Searched","userId":"u","x":"\\ud800"}',
    b'{"type":"track","event":"Products Searched","userId":"u","x":"caf\xc3\xa9"}',
    b'{"type":"track","event":"Products Searched","userId":"u","x":1e400}',  # documented
    b'{"type":"track","event":"Products Searched","userId":"u","x":-1e400}',
    b'{"type":"track","event":"Products Searched","userId":"u","x":' + b"9" * 400 + b"}",
    b'{"type":"track","event":"Products Searched","userId":"u","x":NaN}',
    b'{"type":"track","event":"Products Searched","userId":"u","x":01}',
    b'{"type":"track","event":"Products Searched","userId":"u"} trailing',
    b'\xef\xbb\xbf{"type":"track","event":"Products Searched","userId":"u"}',
    b'{"type":"track","event":"Products Searched","userId":"u","x":'
    + b"[" * 900
    + b"]" * 900
    + b"}",
    b'{"type":"track","event":"Products Searched","userId":"u","x":'
    + b"[" * 2000
    + b"]" * 2000
    + b"}",
    b"",
    b"[]",
    b"null",
    b'"track"',
    b"{}",
]


@pytest.mark.parametrize("line", RAW_LINES, ids=[repr(x)[:40] for x in RAW_LINES])
def test_raw_lines_agree(enforcer: Enforcer, plain: Enforcer, line: bytes) -> None:
    same(enforcer, line)
    same(plain, line)


def _first_clean(enforcer: Enforcer, kind: str, name: str | None = None) -> dict[str, Any]:
    for line in EVENTS.read_bytes().splitlines():
        event = orjson.loads(line)
        if (
            event.get("type") == kind
            and (name is None or event.get("event") == name)
            and (b"event_version" not in line)
        ):
            result = enforcer.enforce(event)
            if result.allowed and not result.violations and not result.omitted:
                return dict(event)
    raise AssertionError(f"no clean {kind} {name} in the examples")


@pytest.mark.parametrize("which", ["enforcer", "plain"])
def test_versions_and_other_call_types_agree(which: str, request: pytest.FixtureRequest) -> None:
    enforcer: Enforcer = request.getfixturevalue(which)
    path = TypedPath.of(enforcer)
    order = _first_clean(enforcer, "track", "Order Completed")
    line = orjson.dumps(order)
    typed = which == "plain"  # PII actions keep every rule of the example on the dict path
    assert same(enforcer, line) is not None and (path.match(line) is not None) == typed
    ctx = order["context"]
    for version in (1, 2, "2", 3, None, 1.0):
        event = {**order, "context": {**ctx, "protocols": {"event_version": version}}}
        same(enforcer, orjson.dumps(event))
        assert path.match(orjson.dumps(event)) is None  # a named version: the dict decides
    escaped = line.replace(b'"context":{', b'"context":{"protocols":{"event\\u005fversion":2},')
    assert escaped != line and orjson.loads(escaped)["context"]["protocols"]["event_version"] == 2
    same(enforcer, escaped)
    assert path.match(escaped) is None
    ident = _first_clean(enforcer, "identify")
    traits = ident.pop("traits")
    for variant in (
        {**ident, "traits": traits},
        {**ident, "context": {**ident["context"], "traits": traits}},  # RudderStack style
        {**ident, "traits": {}, "context": {**ident["context"], "traits": traits}},
        {**ident, "traits": {**traits, "plan": "gold"}},
        {**ident, "traits": {**traits, "email": "not-an-email"}},
        {**ident, "traits": None},
    ):
        same(enforcer, orjson.dumps(variant))
    page = _first_clean(enforcer, "page")
    for name in ("Home", None, 5, ""):
        same(enforcer, orjson.dumps({**page, "name": name}))
    group = {**ident, "type": "group", "groupId": "org_1", "traits": {"name": "Initech"}}
    for variant in (
        group,
        {**group, "groupId": ""},
        {**group, "groupId": 7},
        {**group, "traits": {}},
        {k: v for k, v in group.items() if k != "groupId"},
        {**group, "type": "screen"},
        {**group, "type": "alias"},
    ):
        same(enforcer, orjson.dumps(variant))
    assert (path.match(orjson.dumps(group)) is not None) == typed
    reordered = b'{"userId":"u","traits":{"name":"Initech"},"groupId":"g","type":"group"}'
    assert same(enforcer, reordered) is not None
    assert (path.match(reordered) is not None) == typed


def test_number_beyond_double_range_in_a_free_field_is_accepted_as_documented(
    plain: Enforcer,
) -> None:
    line = b'{"type":"track","event":"Products Searched","userId":"u","x":1e400}'
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(line)
    result = plain.enforce_bytes(line)
    assert isinstance(result, LineResult) and result.allowed
    assert result.event["x"] == float("inf")  # parsed on demand, by the stdlib then


# -- generated events -------------------------------------------------------------------------
@pytest.mark.parametrize("name", SINGLE_EVENTS)
@SETTINGS
@given(data=st.data())
def test_generated_events_agree(plain: Enforcer, name: str, data: st.DataObject) -> None:
    enforcer = plain
    compiled = enforcer._single[name]
    schema = whole_call_schema(compiled)
    # hypothesis-jsonschema resolves $refs in the schema it is given: hand it a copy
    event: Any = data.draw(from_schema(copy.deepcopy(schema)))
    event["type"], event["event"] = "track", name
    line = dumps(event)
    result = same(enforcer, line)
    assert result is not None
    if result.allowed and not result.violations and not result.omitted:
        assert TypedPath.of(enforcer).match(line) is not None  # decided on the typed path
    # mutate: replace or delete one value somewhere in the event
    paths: list[tuple[Any, ...]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(event, ())]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((*where, k))
                stack.append((v, (*where, k)))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((*where, i))
                stack.append((v, (*where, i)))
    if not paths:
        return
    target = data.draw(st.sampled_from(sorted(paths, key=repr)))
    mutated = copy.deepcopy(event)
    node = mutated
    for key in target[:-1]:
        node = node[key]
    if data.draw(st.booleans()) and isinstance(node, dict):
        del node[target[-1]]
    else:
        node[target[-1]] = data.draw(json_values)
    same(enforcer, dumps(mutated))


@SETTINGS
@given(
    event=st.dictionaries(
        st.sampled_from(
            ["type", "event", "userId", "anonymousId", "properties", "context", "timestamp"]
        ),
        json_values,
    )
)
def test_arbitrary_envelopes_agree(plain: Enforcer, event: dict[str, Any]) -> None:
    same(plain, dumps(event))


@SETTINGS
@given(value=json_values)
def test_arbitrary_json_agrees(plain: Enforcer, value: Any) -> None:
    same(plain, dumps(value))


@SETTINGS
@given(data=st.data())
def test_damaged_bytes_agree(plain: Enforcer, data: st.DataObject) -> None:
    enforcer = plain
    line = bytearray(orjson.dumps(base_event()))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(line) - 1))
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        byte = data.draw(st.sampled_from(b'"{}[],:\\ 0e9-+.\xff\xc3tnu'))
        if op == "delete":
            del line[at]
        elif op == "insert":
            line.insert(at, byte)
        elif op == "replace":
            line[at] = byte
        else:
            del line[at:]
        if not line:
            line.extend(b" ")
    same(enforcer, bytes(line))


# -- rules the bytes path cannot type ---------------------------------------------------------
def write_plan(tmp: Path, events: dict[str, dict[str, Any]]) -> Path:
    (tmp / "events").mkdir()
    (tmp / "plan.yaml").write_text(
        json.dumps(
            {
                "trackplan": 1,
                "name": "t",
                "version": "1",
                "draft": "draft-07",
                "controls": {"track": {"unplanned_properties": "allow"}},
                "pii": {"detection": "off"},  # the typed path serves rules with no PII work
                "definitions": {
                    "tree": {
                        "type": "object",
                        "properties": {
                            "kids": {"type": "array", "items": {"$ref": "#/definitions/tree"}}
                        },
                    }
                },
            }
        )
    )
    for index, (name, props) in enumerate(events.items()):
        (tmp / "events" / f"e{index}.yaml").write_text(
            json.dumps(
                {"name": name, "version": 1, "properties": {"type": "object", "properties": props}}
            )
        )
    return tmp


UNTYPED_RULES: dict[str, tuple[dict[str, Any], str, list[Any]]] = {
    "unique": (
        {"tags": {"type": "array", "uniqueItems": True}},
        "uniqueItems",
        [["a", "a"], ["a", "b"]],
    ),
    "pattern props": (
        {"p": {"type": "object", "patternProperties": {"^x": {"type": "integer"}}}},
        "patternProperties",
        [{"x1": 1}, {"x1": "s"}],
    ),
    "oneOf object": (
        {"o": {"type": ["object", "array"], "oneOf": [{"type": "object"}, {"maxItems": 1}]}},
        "non-string",
        [{}, [], [1, 2], 1],
    ),
    "recursive": (
        {"t": {"$ref": "#/definitions/tree"}},
        "recursive",
        [{"kids": [{"kids": []}]}, {"kids": [{"kids": 1}]}],
    ),
    "multipleOf": ({"n": {"type": "number", "multipleOf": 0.5}}, "multipleOf", [1.5, 1.25]),
    "float enum": ({"f": {"enum": [1.5, 2.5]}}, "enum", [1.5, 2]),
    "untyped format": ({"d": {"format": "date"}}, "no type", ["2026-01-01", "x", 5]),
}


@pytest.mark.parametrize("case", sorted(UNTYPED_RULES))
def test_untyped_rules_fall_back_and_agree(tmp_path: Path, case: str) -> None:
    props, reason, values = UNTYPED_RULES[case]
    plan_dir = write_plan(tmp_path, {"Untyped": props, "Typed": {"q": {"type": "string"}}})
    enforcer = compile_plan(load_plan(plan_dir))
    path = TypedPath.of(enforcer)
    assert reason in path.untyped["Untyped"]
    assert "Typed" not in path.untyped
    key = next(iter(props))
    for value in values:
        line = dumps(
            {"type": "track", "event": "Untyped", "userId": "u", "properties": {key: value}}
        )
        same(enforcer, line)
        assert path.match(line) is None
    typed_line = b'{"type":"track","event":"Typed","userId":"u","properties":{"q":"x","z":1}}'
    assert isinstance(same(enforcer, typed_line), LineResult)


def test_a_transform_set_after_the_path_is_built_still_runs(plain_dir: Path) -> None:
    enforcer = compile_plan(load_plan(plain_dir))
    compiled = enforcer._single["Product Viewed"]
    TypedPath.of(enforcer)  # typed while the rule had no transform

    def redact_name(event: dict[str, Any], violations: list[Any]) -> Any:
        props = event.get("properties")
        if not isinstance(props, dict) or "name" not in props:
            return event
        return {**event, "properties": {**props, "name": "[redacted]"}}

    compiled.transform = redact_name
    line = orjson.dumps(base_event())
    result = same(enforcer, line)
    assert result is not None and not isinstance(result, LineResult)
    assert result.event["properties"]["name"] == "[redacted]"
    assert TypedPath.of(enforcer).match(line) is not None  # validated on the typed path


# -- the Segment end-to-end plan ---------------------------------------------------------------
@pytest.fixture(scope="module")
def segment_enforcer() -> Enforcer:
    segment = pytest.importorskip("trackplan.plan.segment")
    fixture = ROOT / ".." / "shared" / "fixtures" / "segment" / "typewriter-e2e-plan.json"
    if not fixture.exists():
        pytest.skip(f"shared fixture {fixture} is absent")
    plan = segment.import_segment(json.loads(fixture.read_text()), source=str(fixture))
    # detection off: the typed path serves rules with no PII work (its x-pii-free rules)
    enforcer: Enforcer = compile_plan(dataclasses.replace(plan, pii={"detection": "off"}))
    return enforcer


def test_segment_plan_is_typed(segment_enforcer: Enforcer) -> None:
    path = TypedPath.of(segment_enforcer)
    assert len(path.entries) >= 20, path.untyped


@SETTINGS
@given(data=st.data())
def test_segment_generated_events_agree(segment_enforcer: Enforcer, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(segment_enforcer._single)))
    compiled = segment_enforcer._single[name]
    # hypothesis-jsonschema resolves $refs in the schema it is given: hand it a copy
    event: Any = data.draw(from_schema(copy.deepcopy(whole_call_schema(compiled))))
    event["type"], event["event"] = "track", name
    same(segment_enforcer, dumps(event))
    props = event.get("properties")
    if isinstance(props, dict) and props:
        key = data.draw(st.sampled_from(sorted(props)))
        same(
            segment_enforcer, dumps({**event, "properties": {**props, key: data.draw(json_values)}})
        )


# -- the CLI ------------------------------------------------------------------------------------
@pytest.mark.parametrize("pii", [True, False], ids=["example", "without-pii"])
def test_validate_ndjson_matches_dict_input_and_forwards_typed_lines_verbatim(
    tmp_path: Path, plain_dir: Path, plain: Enforcer, pii: bool
) -> None:
    plan_dir = PLAN if pii else plain_dir
    lines = EVENTS.read_bytes().splitlines()
    array = tmp_path / "events.json"
    array.write_bytes(b"[" + b",\n".join(lines) + b"]")
    reports = {}
    outputs = {}
    for label, source, fmt in (("ndjson", EVENTS, "auto"), ("dicts", array, "json")):
        out = tmp_path / f"{label}.out"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "trackplan",
                "validate",
                str(plan_dir),
                str(source),
                "--out",
                str(out),
                "--format",
                "json",
                "--input-format",
                fmt,
            ],
            capture_output=True,
            cwd=ROOT,
            timeout=120,
        )
        assert proc.returncode == 1, proc.stderr  # the examples hold violations
        reports[label] = json.loads(proc.stdout)
        outputs[label] = out.read_bytes().splitlines()
    for key in ("events", "allowed", "blocked", "violations", "omitted", "by_type", "by_event"):
        assert reports["ndjson"][key] == reports["dicts"][key], key
    assert [orjson.loads(x) for x in outputs["ndjson"]] == [
        orjson.loads(x) for x in outputs["dicts"]
    ]
    if pii:
        return  # every rule masks context.ip: nothing is forwarded as it came
    path = TypedPath.of(plain)
    typed = [line for line in lines if path.match(line) is not None]
    assert len(typed) > 300 and set(typed) <= set(outputs["ndjson"])  # the input bytes


def test_hostile_names_never_enter_the_generated_check(tmp_path: Path) -> None:
    names = ["'); import os; os._exit(3) #", "__class__", "f1", "v1 = 1", "a b", "é", ""]
    props = {n: {"type": "string", "format": "date"} for n in names}
    plan_dir = write_plan(tmp_path, {"Hostile\"'); x": props})
    enforcer = compile_plan(load_plan(plan_dir))
    path = TypedPath.of(enforcer)
    assert not path.untyped.get("Hostile\"'); x"), path.untyped
    for value in ("2026-11-29", "2026-02-30", 5):
        event = {"type": "track", "event": "Hostile\"'); x", "userId": "u",
                 "properties": dict.fromkeys(names, value)}
        line = dumps(event)
        result = same(enforcer, line)
        assert result is not None and (path.match(line) is not None) == (value == "2026-11-29")


def test_names_msgspec_refuses_leave_the_rule_untyped(tmp_path: Path) -> None:
    plan_dir = write_plan(tmp_path, {"Quoted": {'a"b': {"type": "string"}},
                                     "Newline": {"a\nb": {"type": "string"}}})
    enforcer = compile_plan(load_plan(plan_dir))
    path = TypedPath.of(enforcer)
    assert path.untyped["Quoted"].startswith("msgspec:")
    assert path.untyped["Newline"].startswith("msgspec:")
    for name, key in (("Quoted", 'a"b'), ("Newline", "a\nb")):
        for value in ("x", 1):
            same(enforcer, dumps({"type": "track", "event": name, "userId": "u",
                                  "properties": {key: value}}))
