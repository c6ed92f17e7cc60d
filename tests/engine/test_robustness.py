"""Robustness: ``enforce`` never raises, whatever it is handed."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackplan.engine import compile_plan
from trackplan.engine.enforcer import Enforcer, Result
from trackplan.errors import TrackplanError
from trackplan.plan.model import Plan

from .helpers import make_plan, track

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def enforcers(ecommerce_plan: Plan) -> list[Enforcer]:
    strict = {"unplanned_events": "block", "unplanned_properties": "block", "violations": "block"}
    omit = {"unplanned_properties": "omit", "violations": "omit"}
    return [
        compile_plan(ecommerce_plan),
        compile_plan(make_plan({"track": strict, "identify": strict})),
        compile_plan(make_plan({"track": omit, "identify": omit, "group": omit})),
    ]


def check(enforcers: list[Enforcer], event: Any) -> list[Result]:
    results = []
    for enforcer in enforcers:
        result = enforcer.enforce(event)
        assert isinstance(result, Result)
        assert result.decision in ("allowed", "blocked")
        for violation in result.violations:
            assert violation.type and isinstance(violation.message, str)
            json.dumps(violation.to_dict())  # always serialisable
        results.append(result)
    return results


def test_arbitrary_json_values(enforcers: list[Enforcer]) -> None:
    @SETTINGS
    @given(JSON)
    def run(value: Any) -> None:
        check(enforcers, value)

    run()


EVENT_NAMES = st.sampled_from(
    ["Order Completed", "Product Viewed", "Signed Up", "Sink", "Nope", ""]
) | st.text(max_size=10)  # fmt: skip


def test_arbitrary_event_shaped_dicts(enforcers: list[Enforcer]) -> None:
    """Dicts that look like calls, so the checks below the envelope get exercised too."""
    calls = st.fixed_dictionaries(
        {"type": st.sampled_from(["track", "identify", "group", "page", "screen", "alias", "x"])},
        optional={
            "event": EVENT_NAMES | JSON,
            "userId": st.sampled_from(["u-1", "", None, 0]) | JSON,
            "anonymousId": st.none() | st.text(max_size=5),
            "properties": st.dictionaries(st.text(max_size=12), JSON, max_size=6) | JSON,
            "traits": st.dictionaries(st.text(max_size=12), JSON, max_size=6) | JSON,
            "context": st.fixed_dictionaries(
                {},
                optional={
                    "traits": st.dictionaries(st.text(max_size=8), JSON, max_size=4) | JSON,
                    "protocols": st.fixed_dictionaries({"event_version": JSON}) | JSON,
                    "ip": st.text(max_size=40) | JSON,
                },
            )
            | JSON,
            "groupId": JSON,
            "previousId": JSON,
            "messageId": JSON,
            "timestamp": JSON,
        },
    )

    @SETTINGS
    @given(calls)
    def run(event: dict[str, Any]) -> None:
        check(enforcers, event)

    run()


def _deep_dict(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(levels):
        node = {"a": node}
    return node


def _deep_list(levels: int) -> list[Any]:
    node: list[Any] = []
    for _ in range(levels):
        node = [node]
    return node


DEEP = 10_000


@pytest.mark.parametrize(
    "where",
    ["planned property", "unplanned property", "context", "traits", "top level", "list"],
)
def test_deep_nesting_gets_a_clear_answer(enforcers: list[Enforcer], where: str) -> None:
    deep: Any = _deep_list(DEEP) if where == "list" else _deep_dict(DEEP)
    for index, enforcer in enumerate(enforcers):
        name = "Order Completed" if index == 0 else "Sink"  # planned in each plan
        if where == "planned property":
            event = track(name, {"order_id": deep})
        elif where in ("unplanned property", "list"):
            event = track(name, {"order_id": "o-1", "deep": deep})
        elif where == "context":
            event = track(name, {"order_id": "o-1"}, context=deep)
        elif where == "traits":
            event = {"type": "identify", "userId": "u", "traits": {"plan": deep}}
        else:
            event = {"type": "track", "event": name, "userId": "u", "x": deep}
        try:
            result = enforcer.enforce(event)
        except RecursionError:  # pragma: no cover - the failure this test exists for
            pytest.fail("RecursionError on deep nesting")
        except TrackplanError as exc:
            assert "deep" in str(exc) or "nest" in str(exc)
            continue
        messages = " ".join(v.message for v in result.violations)
        if where in ("context", "top level") and result.allowed:
            # Outside anything the plan constrains, the fast path does not walk the value
            # (a depth walk per event would cost more than the validation itself).
            assert result.violations == () and result.event is event
            continue
        assert not result.allowed
        assert "nest" in messages or "deep" in messages, result.violations
        # the batch API agrees
        (again,) = list(enforcer.enforce_many([event]))
        assert not again.allowed


def test_moderate_nesting_is_still_validated(enforcers: list[Enforcer]) -> None:
    """Depth well inside the limit is ordinary JSON: no depth error."""
    event = track("Sink", {"order_id": "o-1", "extra": _deep_dict(100)})
    result = enforcers[1].enforce(event)  # unplanned properties block
    assert [v.type for v in result.violations] == ["Additional-Properties"]


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(SECRET-OPAQUE)"


NON_JSON = [
    {1, 2},
    frozenset({"a"}),
    b"bytes-value",
    bytearray(b"xy"),
    math.nan,
    math.inf,
    -math.inf,
    2**200,
    -(2**200),
    10**400,
    (1, 2),
    Opaque(),
    datetime.datetime(2026, 1, 1),
    decimal.Decimal("1.5"),
    {1: "int key"},
    {("a", "b"): "tuple key"},
    {None: 1},
    complex(1, 2),
]


@pytest.mark.parametrize("value", NON_JSON, ids=[type(v).__name__ + str(i) for i, v in
                                                enumerate(NON_JSON)])  # fmt: skip
def test_non_json_values_are_handled(enforcers: list[Enforcer], value: Any) -> None:
    events = [
        value,
        track("Order Completed", {"order_id": value}),
        track("Order Completed", {"order_id": "o-1", "extra": value}),
        track("Product Viewed", {"product_id": "p", "price": value}),
        {"type": "identify", "userId": value, "traits": {"plan": value}},
        {"type": "track", "event": value, "userId": "u"},
        {"type": value, "userId": "u"},
        track("Sink", {"order_id": "o"}, context={"protocols": {"event_version": value}}),
    ]
    for event in events:
        for result in check(enforcers, event):
            text = json.dumps([v.to_dict() for v in result.violations])
            assert "SECRET-OPAQUE" not in text and "bytes-value" not in text


def test_huge_ints_are_numbers(enforcers: list[Enforcer]) -> None:
    """Ints beyond 64 bits are valid JSON numbers: compared, not refused."""
    sink = compile_plan(make_plan())
    too_big = sink.enforce(track("Sink", {"order_id": "o", "count": 2**200}))
    assert [v.type for v in too_big.violations] == ["Range"]
    unconstrained = sink.enforce(track("Sink", {"order_id": "o", "other": -(2**200)}))
    assert unconstrained.allowed and unconstrained.violations == ()


def test_uncompilable_pattern_properties_is_a_compile_error() -> None:
    """An ECMA-262 regex Python's ``re`` lacks gives CompileError, never ``re.error``."""
    import dataclasses

    from trackplan.errors import CompileError

    plan = make_plan({"track": {"unplanned_properties": "omit"}})
    payload = {"type": "object", "patternProperties": {"^\\p{Letter}+$": {"type": "string"}}}
    rule = dataclasses.replace(plan.events[0], payload=payload)
    with pytest.raises(CompileError, match="patternProperties"):
        compile_plan(dataclasses.replace(plan, rules=(rule,)))
