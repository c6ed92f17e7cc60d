"""The generated development-mode validator agrees with the enforcer on payloads."""

from __future__ import annotations

import http.server
import threading
from importlib import import_module
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from trackplan.plan.model import Plan
from trackplan.schema.validator import make_validator

scalars = st.none() | st.booleans() | st.integers(-10, 2_000_000) | st.floats(
    -10, 2e6, allow_nan=False) | st.sampled_from(["", "EUR", "eur", "x" * 70, "a@b.co", "card"])


def _payloads(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid payloads, half of them with one property replaced by an arbitrary value."""
    names = sorted(schema.get("properties", {})) or ["x"]

    def mutate(args: tuple[dict[str, Any], bool, str, Any]) -> dict[str, Any]:
        data, broken, name, value = args
        if broken:
            data = {**data, name: value}
        return data

    return st.tuples(
        from_schema({**schema, "definitions": defs}), st.booleans(), st.sampled_from(names),
        scalars | st.lists(scalars, max_size=3),
    ).map(mutate)


def _agree(runtime: ModuleType, root: Any, pointer: str, defs: dict[str, Any]) -> None:
    key = pointer.rsplit("/", 1)[1]
    payload_schema = root["properties"][key]
    reference = make_validator(
        {**root, "properties": {key: payload_schema}, "required": [key]}
    )

    @settings(max_examples=15, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_payloads(payload_schema, defs))
    def agree(data: dict[str, Any]) -> None:
        ours = runtime.validate(root, pointer, data)
        theirs = reference.is_valid({key: data})
        assert (not ours) == theirs, ours

    agree()


def test_dev_validator_and_enforcer_agree(any_shop: ModuleType, ecommerce: Plan) -> None:
    schemas = import_module(f"{any_shop.__name__}._schemas").SCHEMAS
    runtime = import_module(f"{any_shop.__name__}._runtime")
    for root, pointer in schemas:
        _agree(runtime, root, pointer, dict(ecommerce.definitions))
    assert len(schemas) == len(ecommerce.events) + 3  # events, identify, group, page


def test_both_validators_report_the_same_violations(
    shop: ModuleType, shop_stdlib: ModuleType, ecommerce: Plan
) -> None:
    """jsonschema-rs decides; the explanation is the interpreter's on both paths."""
    fast, slow = shop._runtime, shop_stdlib._runtime
    client = shop.Client(None, validate=True)  # the order's schema, found as the client does
    with pytest.raises(shop.ValidationError):
        client.order_completed(user_id="u", order_id="o", checkout_id="c", total=-1.0,
                               currency="EUR", products=[])
    [index] = client._tp_checks
    root, pointer = shop._schemas.SCHEMAS[index]
    bad = {"order_id": 5, "total": -1, "currency": "eur", "products": [{"price": "x"}]}
    good = {"order_id": "o", "total": 1.0, "currency": "EUR", "checkout_id": "c",
            "products": [{"product_id": "p", "price": 1.0, "quantity": 1}]}  # fmt: skip
    assert fast.checker(root, pointer)(good) == () and slow.validate(root, pointer, good) == []
    assert fast.checker(root, pointer) is fast.checker(root, pointer)  # compiled once
    found = [(v.pointer, v.keyword, v.message) for v in fast.validate(root, pointer, bad)]
    assert found == [(v.pointer, v.keyword, v.message) for v in slow.validate(root, pointer, bad)]
    assert {p for p, _k, _m in found} >= {"/order_id", "/total", "/currency", "/products/0/price"}


def test_a_keyword_only_jsonschema_rs_knows_is_reported_by_pointer_and_keyword(
    shop: ModuleType, shop_stdlib: ModuleType
) -> None:
    """Where the interpreter finds nothing but jsonschema-rs rejects, its pointers and
    keywords are reported, never its messages (they quote the value)."""
    root = {"properties": {"properties": {"type": "object", "properties": {
        "a": {"type": "object", "dependentRequired": {"card_last4": ["card_secret_x"]}}}}}}
    payload = {"a": {"card_last4": "4242-secret"}}
    assert shop_stdlib._runtime.validate(root, "/properties/properties", payload) == []
    [found] = shop._runtime.validate(root, "/properties/properties", payload)
    assert (found.pointer, found.keyword) == ("/a", "dependentRequired")
    assert "4242" not in str(found)


def test_a_remote_ref_is_never_fetched(shop: ModuleType) -> None:
    """A ``$ref`` to a server is refused by the compiled validator (the interpreter
    ignores it): no request reaches a live server on loopback."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            hits.append(self.path)
            body = b'{"type": "integer"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/s.json"
        root = {"properties": {"properties": {"type": "object",
                                              "properties": {"n": {"$ref": url}}}}}
        assert shop._runtime.validate(root, "/properties/properties", {"n": "text"}) == []
        assert shop._runtime.validate(root, "/properties/properties", {"n": 1}) == []
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
