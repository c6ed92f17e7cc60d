"""Round trip: instances of every generated class, sent by the client, pass the enforcer.

Valid payloads come from the plan's own schemas (hypothesis-jsonschema); the client is
called with them as keyword arguments; what reaches the SDK must be the same payload
under the wire names, typed as the generated classes say, and allowed by the plan's
enforcer with no violation. Development-mode validation catches what types cannot.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import types
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from trackplan.engine import compile_plan
from trackplan.plan.model import Plan
from trackplan.schema.validator import make_validator

from .conftest import RecordingSdk, to_message


def _closed(schema: Any) -> Any:
    """A copy where objects allow no undeclared properties (what the types can send)."""
    out = copy.deepcopy(schema)
    stack = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            is_object = isinstance(node.get("properties"), dict) or node.get("type") == "object"
            if is_object and "additionalProperties" not in node:
                node["additionalProperties"] = False
            stack.extend(v for k, v in node.items() if k not in ("enum", "const"))
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _full(schema: Any) -> Any:
    """A narrower copy: every property required, arrays non-empty, no null alternative."""
    out = copy.deepcopy(schema)
    stack = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                node["required"] = list(node["properties"])
            if isinstance(node.get("items"), dict) and node.get("maxItems", 1) >= 1:
                node["minItems"] = max(1, node.get("minItems", 0))
            if isinstance(node.get("type"), list) and len(node["type"]) > 1:
                node["type"] = [t for t in node["type"] if t != "null"]
            stack.extend(v for k, v in node.items() if k not in ("enum", "const"))
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _draw_full(schema: Any) -> dict[str, Any]:
    """One payload of :func:`_full`, drawn the same way every run."""
    from hypothesis import find

    found: dict[str, Any] = find(
        from_schema(_full(schema)),
        lambda _: True,
        settings=settings(database=None, deadline=None, derandomize=True,
                          phases=[Phase.generate]),  # shrinking is slow and not needed
    )
    return found


def conforms(value: Any, annotation: Any, seen: set[str]) -> bool:
    """Whether ``value`` is an instance of a generated annotation (TypedDicts included)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None) or annotation is None:
        return value is None
    if typing.is_typeddict(annotation):
        seen.add(annotation.__name__)
        if not isinstance(value, dict):
            return False
        hints = typing.get_type_hints(annotation)
        required = annotation.__required_keys__
        return (required <= value.keys() <= hints.keys()) and all(
            conforms(v, hints[k], seen) for k, v in value.items()
        )
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, a, seen) for a in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(conforms(v, item, seen) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _cases(shop: ModuleType, plan: Plan) -> list[tuple[str, str, Any, Any]]:
    """(method, kind, payload schema, class) for every method that has a rule."""
    out = []
    for method, (kind, name, version, _mapping, _cls) in shop.METHODS.items():
        rule = plan.event(name, version) if kind == "track" else plan.rule(kind)
        if rule is None or not isinstance(rule.payload, dict):
            continue
        schema = {**_closed(rule.payload), "definitions": _closed(dict(plan.definitions))}
        hint = typing.get_type_hints(getattr(shop.Client, method))
        out.append((method, kind, schema, hint))
    return out


@pytest.fixture(scope="module")
def enforcer(ecommerce: Plan) -> Any:
    os.environ.setdefault("TRACKPLAN_HASH_KEY", "test-key-not-secret")
    return compile_plan(ecommerce)


def _round_trip(
    shop: ModuleType,
    enforcer: Any,
    case: tuple[str, str, Any, Any],
    seen: set[str],
    *,
    examples: int = 12,
) -> None:
    method, kind, schema, hints = case
    kind_sent, name, version, mapping, payload_class = shop.METHODS[method]
    # hypothesis-jsonschema and the enforcer's format checker disagree on a few exotic
    # values (IDN e-mail domains): keep the ones the enforcer calls valid
    reference = make_validator(schema)

    # random valid payloads, plus a few with every property present and every array
    # non-empty, so each nested class is built at least once whatever the draw
    strategy = from_schema(schema) | from_schema(_full(schema))

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @example(data=_draw_full(schema), validate=True)
    @given(data=strategy, validate=st.booleans())
    def check(data: dict[str, Any], validate: bool) -> None:
        assume(reference.is_valid(data))
        sdk = RecordingSdk()
        client = shop.Client(sdk, validate=validate)
        kwargs = {arg: data[wire] for arg, wire in mapping.items() if wire in data}
        for arg, value in kwargs.items():  # each argument is an instance of its type
            assert conforms(value, hints[arg], seen), (method, arg)
        extra = {"group_id": "g-1"} if kind == "group" else {}
        getattr(client, method)(user_id="u-1", **extra, **kwargs)
        [(sent_kind, call)] = sdk.calls
        assert sent_kind == kind == kind_sent
        payload = call["properties" if kind in ("track", "page", "screen") else "traits"]
        assert payload == data  # wire names, nothing added or lost
        assert conforms(payload, getattr(shop, payload_class), seen)
        if kind == "track":
            assert call["event"] == name
            assert call["context"]["protocols"]["event_version"] == version
        result = enforcer.enforce(to_message(kind, call))
        # PII detectors may find something in a random string (a Luhn-valid "card" in an
        # order id) and change or block the event; the schema itself must never complain
        assert [v for v in result.violations if v.type != "PII"] == []
        assert result.allowed or result.violations, method
        assert result.omitted == () and result.omitted_on_violation == ()

    check()


def test_round_trip_every_method(shop: ModuleType, ecommerce: Plan, enforcer: Any) -> None:
    cases = _cases(shop, ecommerce)
    # every event version, and identify, group and page (the call types the plan has rules for)
    assert len(cases) == len(ecommerce.events) + 3
    seen: set[str] = set()
    for case in cases:
        _round_trip(shop, enforcer, case, seen)
    classes = {n for n in shop.__all__ if typing.is_typeddict(getattr(shop, n))}
    assert classes <= seen, classes - seen  # every generated class was built


def _order(shop: ModuleType, **changes: Any) -> dict[str, Any]:
    args = dict(user_id="u-1", order_id="o-1", checkout_id="c-1", total=30.0, currency="EUR",
                products=[shop.Product(product_id="p-1", price=30.0, quantity=1)])
    args.update(changes)
    return args


@pytest.mark.parametrize(
    ("changes", "pointer", "keyword"),
    [
        ({"currency": "eur"}, "/currency", "pattern"),
        ({"total": -1.0}, "/total", "minimum"),
        ({"loyalty_points": 2_000_000}, "/loyalty_points", "maximum"),
        ({"email": "not an email"}, "/email", "format"),
        ({"products": []}, "/products", "minItems"),
    ],
)
def test_development_mode_raises_under_pytest(
    any_shop: ModuleType, changes: dict[str, Any], pointer: str, keyword: str
) -> None:
    shop = any_shop
    sdk = RecordingSdk()
    client = shop.Client(sdk, validate=True)
    with pytest.raises(shop.ValidationError) as info:
        client.order_completed(**_order(shop, **changes))
    assert [(v.pointer, v.keyword) for v in info.value.violations] == [(pointer, keyword)]
    assert "Order Completed" in str(info.value)
    for value in changes.values():  # messages never echo the value (it may be PII)
        if isinstance(value, str):
            assert value not in str(info.value)
    assert sdk.calls == []  # raised before sending


def test_validation_off_sends_without_checking_and_never_loads_schemas(
    shop: ModuleType,
) -> None:
    sys.modules.pop(f"{shop.__name__}._schemas", None)
    sdk = RecordingSdk()
    shop.Client(sdk).order_completed(**_order(shop, currency="eur"))
    assert sdk.calls[0][1]["properties"]["currency"] == "eur"
    assert f"{shop.__name__}._schemas" not in sys.modules


def test_custom_handler_hears_violations_and_the_event_is_still_sent(shop: ModuleType) -> None:
    heard: list[tuple[str, list[Any]]] = []
    sdk = RecordingSdk()
    client = shop.Client(sdk, validate=True, on_violation=lambda m, v: heard.append((m, list(v))))
    client.order_completed(**_order(shop, total=-5.0))
    assert len(heard) == 1 and heard[0][1][0].keyword == "minimum"
    assert len(sdk.calls) == 1


def test_default_handler_warns_outside_pytest(shop_pkg: Path) -> None:
    script = (
        "import warnings, sys\n"
        f"from {shop_pkg.name} import Client, Product, TrackingPlanWarning\n"
        "calls = []\n"
        "class Sdk:\n"
        "    def track(self, **kw): calls.append(kw)\n"
        "client = Client(Sdk(), validate=True)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    client.order_completed(user_id='u', order_id='o', checkout_id='c', total=1.0,\n"
        "        currency='eur', products=[Product(product_id='p', price=1.0)])\n"
        "assert 'pytest' not in sys.modules\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'trackplan']\n"
        "assert [w.category for w in caught] == [TrackingPlanWarning], caught\n"
        "assert '/currency' in str(caught[0].message)\n"
        "assert len(calls) == 1\n"
        "print('warned')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    done = subprocess.run([sys.executable, "-c", script], cwd=shop_pkg.parent, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "warned"


def test_context_is_stamped_with_the_event_version_and_not_mutated(shop: ModuleType) -> None:
    sdk = RecordingSdk()
    context = {"ip": "192.0.2.1", "protocols": {"sourceId": "s"}}
    shop.Client(sdk).order_completed_v1(**_order(shop, context=context))
    sent = sdk.calls[0][1]["context"]
    assert sent == {"ip": "192.0.2.1", "protocols": {"sourceId": "s", "event_version": 1}}
    assert context == {"ip": "192.0.2.1", "protocols": {"sourceId": "s"}}


def test_round_trip_typewriter_e2e_plan(
    segment_plan: Plan, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Nullable, union, nested-array and hostile-name events of Segment's own test plan."""
    from .conftest import import_package, write_package

    pkg = write_package(segment_plan, tmp_path_factory.mktemp("tw"), "tw_roundtrip")
    mod = import_package(pkg)
    enforcer = compile_plan(segment_plan)
    cases = _cases(mod, segment_plan)
    assert len(cases) == len(segment_plan.events)  # no identify or group rules in it
    seen: set[str] = set()
    for case in cases:
        _round_trip(mod, enforcer, case, seen, examples=5)
    classes = {n for n in mod.__all__ if typing.is_typeddict(getattr(mod, n))}
    assert classes <= seen, classes - seen
