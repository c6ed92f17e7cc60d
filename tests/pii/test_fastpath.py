"""The transform generated per rule for valid events equals the general walk, exactly.

:mod:`trackplan.pii.fastpath` specialises each rule's PII transform on what validation
guarantees; the general :class:`~trackplan.pii.engine.Transformer` walk is the reference.
On every valid event (the example file, generated calls, and generated calls with PII
planted in their strings) both must forward the same event and report the same
violations, and neither may mutate its input.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from trackplan.engine.enforcer import Enforcer
from trackplan.pii import detect
from trackplan.pii.detect import prefilter_for
from trackplan.plan.load import load_plan

from .pii_helpers import PROPERTIES, compile_with_key, make_plan, track

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(
    max_examples=int(os.environ.get("TP_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
PII_SAMPLES = [
    "jane.doe@example.com",
    "write to ada@example.org today",
    "+44 20 7946 0958",
    "(415) 555-2671",
    "4242 4242 4242 4242",
    "DE89 3704 0044 0532 0130 00",
    "203.0.113.79",
    "2001:db8::1",
    "123-45-6789",
    "sk_live_abcdefghijklmnop1234",
    "ORD-2026-0001",
    "a plain clean sentence",
]


def _example() -> Enforcer:
    return compile_with_key(load_plan(ROOT / "plans" / "ecommerce"))


def _example_undeclared_ids() -> Enforcer:
    """The example plan with Product Added's ids undeclared (no ``x-pii: false``), so the
    detectors scan them: new ids per event are what the generated transform must rule out."""
    root = Path(tempfile.mkdtemp()) / "ecommerce"
    shutil.copytree(ROOT / "plans" / "ecommerce", root)
    events = root / "events" / "product-added.yaml"
    text = events.read_text(encoding="utf-8")
    assert ", x-pii: false}" in text
    events.write_text(text.replace(", x-pii: false}", "}"), encoding="utf-8")
    return compile_with_key(load_plan(root))


def _nested() -> Enforcer:
    # every action inside nested objects and arrays; unplanned keys allowed
    return compile_with_key(make_plan(PROPERTIES))


# warmed up: each rule's generated transform is built now instead of at its first event
ENFORCERS = {"example": _example().warm_up(), "nested": _nested().warm_up()}


def _rules(enforcer: Enforcer) -> list[Any]:
    return [c for c in enforcer.compiled_rules() if c.transform is not None]


def _outcome(fn: Any, event: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
    violations: list[Any] = []
    out = fn(event, violations)
    body = "blocked" if out is None else json.dumps(out, sort_keys=True)
    return body, [(v.type, v.pointer, v.message) for v in violations]


def agree(compiled: Any, event: dict[str, Any], enforcer: Enforcer | None = None) -> None:
    """Both transforms give the same result on ``event``, and leave it as it was; through
    the enforcer (which reports in the walk's order), the result is the walk's exactly."""
    before = copy.deepcopy(event)
    transform = compiled.transform
    fast = _outcome(transform.valid, event)
    assert event == before, "the generated transform mutated its input"
    walk = _outcome(transform, event)
    assert event == before, "the walk mutated its input"
    assert fast[0] == walk[0]
    assert sorted(fast[1]) == sorted(walk[1])  # same findings; the enforcer orders them
    _agree_through_enforcer(compiled, event, enforcer)


def _agree_through_enforcer(compiled: Any, event: dict[str, Any], enforcer: Enforcer | None
                            ) -> None:  # fmt: skip
    """The enforcer's result for a valid event is the walk's, violations in order."""
    from trackplan.engine.compiled import stamp

    if enforcer is None:
        enforcer = next(e for e in ENFORCERS.values() if compiled in list(e.compiled_rules()))
    result = compiled.enforce_valid(event)
    walk_violations: list[Any] = []
    out = compiled.transform(event, walk_violations)
    assert [(v.type, v.pointer, v.message) for v in result.violations] == [
        (v.type, v.pointer, v.message) for v in walk_violations]
    if out is None:
        assert not result.allowed
        return
    assert result.allowed
    if walk_violations:
        out = stamp(out if out is not event else dict(event), walk_violations, [], [])
    assert json.dumps(result.event, sort_keys=True) == json.dumps(out, sort_keys=True)


def _strings(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _strings(v, (*path, i))]
    return []


def _draw_call(which: str, data: st.DataObject) -> tuple[Any, dict[str, Any]]:
    """A rule with a transform of ``ENFORCERS[which]`` and a call drawn from its schema."""
    compiled = data.draw(st.sampled_from(_rules(ENFORCERS[which])))
    # hypothesis-jsonschema resolves $refs in the schema it is given: hand it a copy
    event = data.draw(from_schema(copy.deepcopy(compiled.schema)))
    assume(isinstance(event, dict))
    return compiled, event


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for token in path[:-1]:
        value = value[token]
    value[path[-1]] = new


def test_a_rules_transform_is_generated_at_its_first_event() -> None:
    enforcer = _example()
    rule = enforcer.track_rules["Signed Up"][0]
    assert rule.transform is not None
    assert not hasattr(rule.transform.valid, "source")  # not generated yet
    event = {"type": "track", "event": "Signed Up", "userId": "u1",
             "properties": {"email": "jane@example.com", "method": "email"}}  # fmt: skip
    first = enforcer.enforce(event)
    assert rule.transform.valid.source.startswith("def transform(event, violations):")
    assert rule.transform_valid is rule.transform.valid  # later events call it directly
    again = enforcer.enforce(event)
    assert (again.allowed, again.event, again.violations) == (
        first.allowed, first.event, first.violations)
    assert again.event["properties"]["email"] != "jane@example.com"  # hashed both times


def test_every_rule_with_a_transform_gets_a_generated_one() -> None:
    for enforcer in ENFORCERS.values():
        rules = _rules(enforcer)
        assert rules
        for compiled in rules:
            source = compiled.transform.valid.source
            assert source.startswith("def transform(event, violations):")


def test_example_events_agree() -> None:
    enforcer = ENFORCERS["example"]
    lines = (ROOT / "examples" / "events.ndjson").read_bytes().splitlines()
    checked = 0
    for line in lines:
        event = orjson.loads(line)
        for compiled in _rules(enforcer):
            if compiled.fast.is_valid(event):
                agree(compiled, event)
                checked += 1
    assert checked > 300


def test_cold_cache_agrees_too() -> None:
    # every string scanned afresh: the generated code's slow path
    enforcer = ENFORCERS["example"]
    lines = (ROOT / "examples" / "events.ndjson").read_bytes().splitlines()[:150]
    for line in lines:
        event = orjson.loads(line)
        for compiled in _rules(enforcer):
            if compiled.fast.is_valid(event):
                detect.CLEAN.clear()
                agree(compiled, event)


@pytest.mark.parametrize("which", sorted(ENFORCERS))
@SETTINGS
@given(data=st.data())
def test_generated_valid_events_agree(which: str, data: st.DataObject) -> None:
    compiled, event = _draw_call(which, data)
    assume(compiled.fast.is_valid(event))
    agree(compiled, event)


@pytest.mark.parametrize("which", sorted(ENFORCERS))
@SETTINGS
@given(data=st.data())
def test_planted_pii_agrees(which: str, data: st.DataObject) -> None:
    compiled, event = _draw_call(which, data)
    paths = _strings(event)
    assume(paths)
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3)):
        _set(event, path, data.draw(st.sampled_from(PII_SAMPLES)))
    assume(compiled.fast.is_valid(event))
    agree(compiled, event)


def test_nested_actions_on_a_valid_event() -> None:
    enforcer = ENFORCERS["nested"]
    event = track({
        "order_id": "o-1",
        "email": "Jane@Example.com",
        "phone": "+44 20 7946 0958",
        "street": "1 Main St",
        "buyer": {"email": "a@example.com", "first_name": "Ada", "age": 36},
        "recipients": [{"email": "b@example.com", "phones": ["+1 415 555 2671"]}],
        "note": "call me on +44 20 7946 0958",
        "extra": "mail ada@example.com",
    })
    compiled = enforcer._single["Order"]
    assert compiled.fast.is_valid(event)
    agree(compiled, event)
    result = enforcer.enforce(event)
    body = orjson.dumps(result.event)
    for secret in (b"Jane@Example.com", b"1 Main St", b"Ada", b"b@example.com",
                   b"7946 0958", b"ada@example.com"):
        assert secret not in body
    assert "street" not in result.event["properties"]


def test_plan_text_never_enters_the_generated_source() -> None:
    hostile = [
        "x'); import os; os.system('echo pwned') #",
        'a"\n    raise SystemExit\n#',
        "__import__('os')",
        "}{ ]) except: pass",
    ]
    props = {k: {"type": "string"} for k in hostile}
    props[hostile[0]] = {"type": "string", "x-pii": {"category": "email", "action": "hash"}}
    props["nested"] = {
        "type": "object",
        "properties": {hostile[2]: {"type": "string", "x-pii": "name"}},
    }
    enforcer = compile_with_key(make_plan({"type": "object", "properties": props})).warm_up()
    compiled = enforcer.track_rules["Order"][0]
    source = compiled.transform.valid.source
    for key in hostile:
        assert key not in source
    assert "os" not in source.replace("pos", "").split()  # no identifier from the plan
    event = track({hostile[0]: "ada@example.com", hostile[1]: "x" * 8,
                   "nested": {hostile[2]: "Ada Lovelace"}})
    assert compiled.fast.is_valid(event)
    agree(compiled, event, enforcer)
    out = enforcer.enforce(event).event["properties"]
    assert out[hostile[0]] != "ada@example.com"
    assert out["nested"][hostile[2]] == "[REDACTED]"


# -- the prefilter ------------------------------------------------------------------------
CORPUS = Path(__file__).resolve().parent / "corpus"
KEYS = [None, "note", "order_id", "sku", "product_code", "app_version", "email", "query"]


def _flagged_but_not_matched(key: str | None, value: str) -> bool:
    import re

    found = detect.findings_for(key, value)
    return bool(found) and re.search(prefilter_for(key), value) is None


def test_prefilter_matches_every_corpus_finding() -> None:
    values = []
    for name in ("positives.tsv", "negatives.tsv"):
        for line in (CORPUS / name).read_text(encoding="utf-8").splitlines():
            values.append(line.split("\t", 2)[2])
    assert len(values) >= 400
    missed = [(k, v) for v in values for k in KEYS if _flagged_but_not_matched(k, v)]
    assert missed == []


PIECES = st.sampled_from([
    "a", "Z", "x9", "0", "1", "4", "7", " ", "-", ".", "(", ")", "+", "/", ":", "::", "@",
    "%40", "eyJ", "sk_live_", "AKIA", "DE89", "GB82 WEST ", "555", "2671", "4242",
    "203.0.113.", "fe80", "Bearer ", "_", "com", "ghp_",
])  # fmt: skip


@settings(max_examples=int(os.environ.get("TP_EXAMPLES", "300")), deadline=None)
@given(parts=st.lists(PIECES, min_size=1, max_size=14), key=st.sampled_from(KEYS))
def test_prefilter_matches_whatever_the_detectors_find(parts: list[str], key: str | None
                                                        ) -> None:  # fmt: skip
    value = "".join(parts)
    detect.CLEAN.clear()
    assert not _flagged_but_not_matched(key, value)


def test_prefiltered_validator_clears_new_strings_and_routes_candidates() -> None:
    enforcer = ENFORCERS["example"]
    compiled = enforcer._single["Product Viewed"]
    source = compiled.transform.valid.source
    assert "clean = " in source  # the prefiltered validator is wired in
    fresh = "Mug of the week 4711"  # new to every cache, and clean
    event = track({"product_id": "p-1", "price": 9.5, "name": "Mug", "brand": fresh},
                  name="Product Viewed")
    event["context"]["ip"] = "203.0.113.9"
    detect.CLEAN.clear()
    result = enforcer.enforce(event)
    assert result.allowed and not result.violations
    assert fresh in detect.clean_set("brand")  # cached without a Python scan
    event["properties"]["brand"] = "write to ada@example.com"
    assert compiled.fast.is_valid(event)
    result = enforcer.enforce(event)
    assert result.allowed
    assert "ada@example.com" not in json.dumps(result.event)
    assert [v.type for v in result.violations] == ["PII"]


# -- end to end: the enforcer with generated transforms against the walk alone -----------
class _WalkOnly:
    """A rule's transform with no specialised variant: the general walk everywhere."""

    def __init__(self, walk: Any) -> None:
        self.walk = walk

    def __call__(self, event: dict[str, Any], violations: list[Any]) -> Any:
        return self.walk(event, violations)

    def scrub(self, event: Any) -> Any:
        return self.walk.scrub(event)


def _walk_only() -> Enforcer:
    enforcer = compile_with_key(load_plan(ROOT / "plans" / "ecommerce"))
    for compiled in enforcer.compiled_rules():
        if compiled.transform is not None:
            compiled.transform = _WalkOnly(compiled.transform)
    return enforcer


def _same_result(a: Any, b: Any) -> None:
    assert a.allowed == b.allowed
    assert [(v.type, v.pointer, v.message) for v in a.violations] == [
        (v.type, v.pointer, v.message) for v in b.violations]
    assert a.omitted == b.omitted and a.omitted_on_violation == b.omitted_on_violation
    assert json.dumps(a.event, sort_keys=True) == json.dumps(b.event, sort_keys=True)


def test_enforcer_equals_the_walk_on_every_example_event_with_and_without_pii() -> None:
    fast, walk = ENFORCERS["example"], _walk_only()
    lines = (ROOT / "examples" / "events.ndjson").read_bytes().splitlines()
    planted = 0
    for number, line in enumerate(lines):
        event = orjson.loads(line)
        _same_result(fast.enforce(event), walk.enforce(event))
        props = event.get("properties")
        if isinstance(props, dict) and props:
            key = sorted(props)[number % len(props)]
            event = copy.deepcopy(event)
            event["properties"][key] = PII_SAMPLES[number % len(PII_SAMPLES)]
            _same_result(fast.enforce(event), walk.enforce(event))
            planted += 1
    assert planted > 200


def test_a_prefilter_guard_without_its_place_is_reported() -> None:
    from trackplan.pii.fastpath import _prefiltered

    props = {"note": {"type": "string"}}
    schema = {"type": "object", "properties": props}
    guarded, placed = _prefiltered(schema, [(id(props), "note", None)])
    assert placed and guarded["properties"]["note"]["allOf"][0] == {"type": "string"}
    assert schema["properties"]["note"] == {"type": "string"}  # the original untouched
    elsewhere: dict[str, Any] = {"note": {}}  # not part of the schema
    _, placed = _prefiltered(schema, [(id(props), "note", None), (id(elsewhere), "note", None)])
    assert not placed


def test_new_strings_are_ruled_out_in_rust_and_cached() -> None:
    enforcer = _example_undeclared_ids()
    event = track({"product_id": "p-1", "price": 9.5, "quantity": 1,
                   "cart_id": "cart-77-zq", "sku": "SKU-BOOK-9780262033848"},
                  name="Product Added")
    detect.CLEAN.clear()
    detect.clean_set("cart_id").clear()
    result = enforcer.enforce(event)
    assert result.allowed and not result.violations
    # the sku holds a digit run the general prefilter matches: clean only under its key
    assert "SKU-BOOK-9780262033848" in detect.clean_set("sku")
    assert "SKU-BOOK-9780262033848" not in detect.CLEAN
    assert "cart-77-zq" in detect.clean_set("cart_id")
    event["properties"]["cart_id"] = "+44 20 7946 0958"  # a phone where an id should be
    result = enforcer.enforce(event)
    assert [(v.type, v.pointer) for v in result.violations] == [("PII", "/properties/cart_id")]
    assert "7946" not in json.dumps(result.event)


def test_a_string_rust_refuses_takes_the_walk() -> None:
    enforcer, walk = _example(), _walk_only()
    event = track({"query": "lone \ud800 surrogate"}, name="Products Searched")
    got, want = enforcer.enforce(event), walk.enforce(event)
    _same_result(got, want)


def test_a_new_id_per_event_costs_no_whole_event_check() -> None:
    enforcer = _example_undeclared_ids().warm_up()
    compiled = enforcer._single["Product Added"]
    calls: list[int] = []
    scope = compiled.transform_valid.__globals__
    name = next(k for k, v in scope.items() if getattr(v, "__name__", "") == "is_valid")
    check = scope[name]
    scope[name] = lambda event: calls.append(1) or check(event)
    for i in range(5):
        event = track({"product_id": f"p-{i}", "price": 9.5, "quantity": 1,
                       "cart_id": f"cart-{i}-x9z"}, name="Product Added")
        assert compiled.fast.is_valid(event)
        result = enforcer.enforce(event)
        assert result.allowed and not result.violations
    assert calls == []


def _warm(enforcer: Enforcer, event: dict[str, Any]) -> None:
    """Enforce ``event`` twice, so its clean strings are in the caches (the guards' case)."""
    enforcer.enforce(copy.deepcopy(event))
    enforcer.enforce(copy.deepcopy(event))


def test_a_clean_object_guard_falls_back_on_an_unknown_key_with_pii() -> None:
    # page properties: every planned key free text, so the guard checks keys and values in
    # one go; an unplanned key must still reach the walk's extras, with its email found
    enforcer = ENFORCERS["example"]
    compiled = enforcer.call_rules["page"]
    base = {"type": "page", "userId": "u1", "name": "Home",
            "context": {"ip": "203.0.113.79"},
            "properties": {"path": "/", "url": "https://shop.example.com/", "title": "Shop"}}
    _warm(enforcer, base)
    assert ".values())" in compiled.transform.valid.source  # the one-call form
    event = copy.deepcopy(base)
    event["properties"]["contact"] = "mail jane.doe@example.com"
    assert compiled.fast.is_valid(event)
    agree(compiled, event)
    result = enforcer.enforce(event)
    assert "jane.doe@example.com" not in json.dumps(result.event)
    assert [v.pointer for v in result.violations] == ["/properties/contact"]
    planted = copy.deepcopy(base)
    planted["properties"]["title"] = "Call +44 20 7946 0958"  # a known key, a new string
    agree(compiled, planted)
    assert enforcer.enforce(planted).violations


def test_a_list_precheck_hands_a_later_item_with_pii_to_the_loop() -> None:
    # the first items are clean and cached: the precheck passes them and must stop at the
    # third, whose brand holds an email; earlier items are kept as they are (shared)
    enforcer = ENFORCERS["example"]
    compiled = enforcer.track_rules["Checkout Started"][0]
    product = {"product_id": "p-1", "sku": "SKU-1", "name": "Mug", "brand": "Acme",
               "price": 9.5, "quantity": 1}
    base = track({"order_id": "o-1", "value": 28.5, "currency": "EUR",
                  "products": [dict(product), dict(product), dict(product)]},
                 name="Checkout Started")
    _warm(enforcer, base)
    assert enforcer.enforce(base).event["properties"]["products"] is base["properties"]["products"]
    for at in range(3):
        event = copy.deepcopy(base)
        event["properties"]["products"][at]["brand"] = "ada@example.org"
        assert compiled.fast.is_valid(event)
        agree(compiled, event)
        result = enforcer.enforce(event)
        items = result.event["properties"]["products"]
        assert "ada@example.org" not in json.dumps(items)
        assert [v.pointer for v in result.violations] == [f"/properties/products/{at}/brand"]
        assert all(items[i] is event["properties"]["products"][i] for i in range(3) if i != at)
    extra = copy.deepcopy(base)
    extra["properties"]["products"][1]["gift_note"] = "for jane.doe@example.com"
    if compiled.fast.is_valid(extra):  # an unlisted key in an item: the walk's extras
        agree(compiled, extra)
        assert "jane.doe@example.com" not in json.dumps(enforcer.enforce(extra).event)


def test_an_object_with_nothing_to_do_emits_no_code() -> None:
    # Product Added with detection off: its properties hold nothing declared, so the
    # generated code never looks at them (only at context.ip, which it masks)
    plan = load_plan(ROOT / "plans" / "ecommerce")
    import dataclasses

    enforcer = compile_with_key(
        dataclasses.replace(plan, pii={**plan.pii, "detection": False})).warm_up()
    compiled = enforcer.track_rules["Product Added"][0]
    source = compiled.transform.valid.source
    scope = compiled.transform.valid.__globals__
    names = {name for name, value in scope.items() if value == "properties"}
    assert names and not any(name in source for name in names)
    event = track({"product_id": "p-1", "price": 1.0}, name="Product Added")
    event["context"] = {"ip": "203.0.113.79"}
    agree(compiled, event, enforcer)
    assert enforcer.enforce(event).event["context"]["ip"] == "203.0.113.0"


# -- events that break only assertions the transform does not rely on -------------------
_WALKS = {"example": _walk_only()}


def _walk_only_nested() -> Enforcer:
    enforcer = compile_with_key(make_plan(PROPERTIES))
    for compiled in enforcer.compiled_rules():
        if compiled.transform is not None:
            compiled.transform = _WalkOnly(compiled.transform)
    return enforcer


_WALKS["nested"] = _walk_only_nested()


def _shape_only(compiled: Any, event: dict[str, Any]) -> bool:
    """Invalid, but of a valid event's shape (the case the shape check sends to the
    generated transform)."""
    return not compiled.fast.is_valid(event) and compiled.shape_is_valid(event)


@pytest.mark.parametrize("which", sorted(ENFORCERS))
@SETTINGS
@given(data=st.data())
def test_events_of_a_valid_shape_agree_with_the_walk(which: str, data: st.DataObject) -> None:
    """Calls drawn from a rule's shape (required properties, patterns and bounds dropped),
    PII planted in some strings: where the event breaks the rule only there, the enforcer
    (which then runs the generated transform) gives the general walk's result exactly."""
    from trackplan.schema.relax import shape_of

    compiled = data.draw(st.sampled_from(_rules(ENFORCERS[which])))
    event = data.draw(from_schema(shape_of(copy.deepcopy(compiled.schema))))
    assume(isinstance(event, dict))
    paths = _strings(event)
    if paths:
        for path in data.draw(st.lists(st.sampled_from(paths), max_size=3)):
            _set(event, path, data.draw(st.sampled_from(PII_SAMPLES)))
    assume(_shape_only(compiled, event))
    before = copy.deepcopy(event)
    fast = ENFORCERS[which].enforce(event)
    assert event == before, "enforce mutated its input"
    _same_result(fast, _WALKS[which].enforce(event))


def test_example_events_missing_a_required_property_take_the_generated_transform() -> None:
    """Each example event made to miss a required property (every other one also with PII
    planted in another string): the generated transform runs for it, and the result is the
    walk's."""
    enforcer, walk = ENFORCERS["example"], _WALKS["example"]
    lines = (ROOT / "examples" / "events.ndjson").read_bytes().splitlines()
    calls = {"n": 0}
    for compiled in _rules(enforcer):
        generated = compiled.transform_valid

        def counting(event: Any, violations: list[Any], generated: Any = generated) -> Any:
            calls["n"] += 1
            return generated(event, violations)

        compiled.transform_valid = counting
    try:
        broken = 0
        for number, line in enumerate(lines):
            event = orjson.loads(line)
            props = event.get("properties")
            versions = enforcer.track_rules.get(event.get("event"), [])
            if event.get("type") != "track" or len(versions) != 1 or not isinstance(props, dict):
                continue
            rule = versions[0]
            payload = rule.schema["allOf"][2].get("properties", {}).get("properties", {})
            required = [k for k in payload.get("required", []) if k in props]
            if not required or not rule.fast.is_valid(event):
                continue
            del props[required[number % len(required)]]
            strings = [k for k, v in props.items() if isinstance(v, str)]
            if number % 2 and strings:
                props[strings[0]] = PII_SAMPLES[number % len(PII_SAMPLES)]
            if not _shape_only(rule, event):
                continue
            before, calls_before = broken, calls["n"]
            broken += 1
            _same_result(enforcer.enforce(event), walk.enforce(event))
            assert calls["n"] == calls_before + 1, (number, before)
        assert broken > 100
    finally:
        for compiled in _rules(enforcer):
            compiled.transform_valid = compiled.transform.valid
