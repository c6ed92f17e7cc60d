"""Rules are compiled at first use: same results as compiling everything up front, errors
reported by ``compile_all``, and a handed-out schema that cannot change what is enforced."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from trackplan.engine import compile_plan
from trackplan.engine.compiled import Result
from trackplan.errors import CompileError
from trackplan.plan.load import load_plan

from .helpers import make_plan, track

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events.ndjson"


def _summary(result: Result) -> Any:
    return (result.allowed, orjson.dumps(result.event, option=orjson.OPT_SORT_KEYS),
            [v.to_dict() for v in result.violations], result.omitted,
            result.omitted_on_violation)  # fmt: skip


def test_first_use_compilation_gives_what_compiling_everything_first_gives() -> None:
    plan = load_plan(ROOT / "plans" / "ecommerce")
    lazy, eager = compile_plan(plan), compile_plan(plan).warm_up()
    events = [orjson.loads(line) for line in EXAMPLES.read_bytes().splitlines()]
    assert len(events) > 100
    for event in events:
        assert _summary(lazy.enforce(event)) == _summary(eager.enforce(event))


def test_a_rule_the_engine_cannot_compile_is_reported_by_compile_all() -> None:
    plan = make_plan(events=[
        {"name": "Good", "properties": {"type": "object"}},
        {"name": "Broken", "properties": {"type": "object"}},
    ])  # fmt: skip
    # past the loader (which refuses an undeclared anchor): a plan built in memory
    broken = dataclasses.replace(
        plan.versions("Broken")[0],
        payload={"type": "object", "properties": {"a": {"$ref": "#nowhere"}}},
    )
    rules = tuple(broken if r.name == "Broken" else r for r in plan.rules)
    enforcer = compile_plan(dataclasses.replace(plan, rules=rules))
    assert enforcer.enforce(track("Good", {})).allowed  # other rules work
    with pytest.raises(CompileError, match=r"\[Broken\]: cannot compile schema"):
        enforcer.compile_all()
    with pytest.raises(CompileError, match="cannot compile schema"):
        enforcer.enforce(track("Broken", {"a": 1}))


def test_changing_a_handed_out_schema_does_not_change_what_is_enforced() -> None:
    plan = make_plan()
    enforcer, reference = compile_plan(plan), compile_plan(plan)
    compiled = enforcer.track_rules["Sink"][0]
    schema = compiled.schema
    schema["allOf"].clear()  # a caller breaking the read-only contract
    bad = track("Sink", {"order_id": "o-1", "count": 99})
    assert _summary(enforcer.enforce(bad)) == _summary(reference.enforce(bad))
    assert not enforcer.enforce(bad).allowed or enforcer.enforce(bad).violations
