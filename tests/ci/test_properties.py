"""Properties of diff: a plan never differs from itself; a new constraint is never an ADDITION."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ci.ci_helpers import make_plan
from trackplan.ci.diff import diff_plans

NAMES = st.sampled_from(["id", "total", "email", "tags", "note", "count", "kind", "box"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    string = st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "maxLength": st.integers(1, 300),
            "format": st.sampled_from(["email", "uri"]),
            "description": st.text(max_size=10),
        },
    )
    number = st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number", ["integer", "null"]])},
        optional={"minimum": st.integers(-5, 0), "maximum": st.integers(1, 99)},
    )
    enum = st.fixed_dictionaries(
        {
            "enum": st.lists(
                st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True
            )
        }
    )
    boolean = st.just({"type": "boolean"})
    return st.one_of(string, number, enum, boolean)


def _object(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(props: dict[str, Any], closed: bool, req: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "properties": props}
        if closed:
            out["additionalProperties"] = False
        required = [n for n in req if n in props]
        if required:
            out["required"] = required
        return out

    return st.builds(
        build,
        st.dictionaries(NAMES, children, max_size=4),
        st.booleans(),
        st.lists(NAMES, max_size=2, unique=True),
    )


SCHEMAS = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        _object(inner), st.builds(lambda items: {"type": "array", "items": items}, inner)
    ),
    max_leaves=8,
)
PAYLOADS = _object(SCHEMAS)

# (keyword, value, types it applies to) added to a property that lacks the keyword
CONSTRAINTS: list[tuple[str, Any, set[str] | None]] = [
    ("maxLength", 3, {"string"}),
    ("minLength", 2, {"string"}),
    ("pattern", "^[a-z]+$", {"string"}),
    ("format", "uuid", {"string"}),
    ("minimum", 1, {"integer", "number"}),
    ("maximum", 2, {"integer", "number"}),
    ("multipleOf", 7, {"integer", "number"}),
    ("minItems", 1, {"array"}),
    ("maxItems", 1, {"array"}),
    ("uniqueItems", True, {"array"}),
    ("minProperties", 1, {"object"}),
    ("additionalProperties", False, {"object"}),
    ("enum", ["zz"], None),
    ("const", "zz", None),
    ("not", {"type": "null"}, None),
    ("type", "null", None),
]


def _types(schema: dict[str, Any]) -> set[str]:
    raw = schema.get("type")
    if raw is None:
        return set()
    return {raw} if isinstance(raw, str) else set(raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS)
def test_a_plan_never_differs_from_itself(payload: dict[str, Any]) -> None:
    plan = make_plan(payload)
    assert diff_plans(plan, plan).changes == ()
    rebuilt = make_plan(copy.deepcopy(payload))
    report = diff_plans(plan, rebuilt)
    assert report.changes == ()
    assert report.ok


# the classifier's counterexample search runs Hypothesis inside this test
@settings(
    max_examples=80,
    deadline=None,
    # (nested_given exists from some hypothesis 6.1xx on; older ones do not check nesting)
    suppress_health_check=[HealthCheck.too_slow]
    + [h for h in HealthCheck if h.name == "nested_given"],
)
@given(PAYLOADS, st.data())
def test_adding_a_constraint_is_never_an_addition(
    payload: dict[str, Any], data: st.DataObject
) -> None:
    props = payload["properties"]
    if not props:
        return
    name = data.draw(st.sampled_from(sorted(props)))
    target = props[name]
    applicable = [
        (k, v)
        for k, v, types in CONSTRAINTS
        if k not in target and (types is None or _types(target) & types)
    ]
    if name not in payload.get("required", []):
        applicable.append(("required", name))
    if not applicable:
        return
    key, value = data.draw(st.sampled_from(applicable))
    new = copy.deepcopy(payload)
    if key == "required":
        new["required"] = [*new.get("required", []), name]
    else:
        new["properties"][name][key] = value
    changes = diff_plans(make_plan(payload), make_plan(new)).changes
    assert changes, (key, target)
    assert all(c.cls != "ADDITION" for c in changes), [(c.kind, c.cls) for c in changes]
    assert all(c.cls != "PATCH" for c in changes)
