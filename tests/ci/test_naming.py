"""Naming conventions and the PII-looking-name matcher lint uses."""

from __future__ import annotations

import pytest

from trackplan.ci.naming import (
    _builtin_matcher,
    collision_key,
    conforms,
    majority_convention,
    pii_name_matcher,
)


@pytest.mark.parametrize(
    ("name", "convention", "expected"),
    [
        ("Order Completed", "title", True),
        ("Order completed", "title", False),
        ("order_completed", "title", False),
        ("Order completed", "sentence", True),
        ("order_id", "snake", True),
        ("orderId", "snake", False),
        ("orderId", "camel", True),
        ("OrderId", "pascal", True),
        ("order-id", "kebab", True),
        ("ORDER_ID", "constant", True),
    ],
)
def test_conventions(name: str, convention: str, expected: bool) -> None:
    assert conforms(name, convention) is expected


def test_collision_keys_ignore_case_and_separators() -> None:
    keys = {collision_key(n) for n in ("orderId", "order_id", "Order ID", "order-id", "ORDERID")}
    assert len(keys) == 1
    assert collision_key("order_id") != collision_key("order_ids")


def test_majority_convention() -> None:
    names = ["order_id", "cart_id", "total", "couponCode"]
    assert majority_convention(names, ("snake", "camel")) == "snake"
    assert majority_convention([], ("snake",)) is None


@pytest.mark.parametrize(
    ("name", "schema", "category"),
    [
        ("email", {"type": "string"}, "email"),
        ("customerEmail", {"type": "string"}, "email"),
        ("email_opt_in", {"type": "boolean"}, None),
        ("first_name", {"type": "string"}, "name"),
        ("product_name", {"type": "string"}, None),
        ("event_name", {"type": "string"}, None),
        ("phone_number", {"type": "string"}, "phone"),
        ("ip", {"type": "string"}, "ip"),
        ("shipping_address", {"type": "object"}, "address"),
        ("password", {"type": "string"}, "credentials"),
        ("order_id", {"type": "string"}, None),
        ("currency", {"type": "string"}, None),
    ],
)
def test_builtin_pii_looking_names(name: str, schema: dict[str, str], category: str | None) -> None:
    assert _builtin_matcher(name, schema) == category


def test_the_active_matcher_agrees_on_plain_cases() -> None:
    """Whether the shared detector or the built-in one is active, these hold."""
    match = pii_name_matcher()
    assert match("email", {"type": "string"}) == "email"
    assert match("order_id", {"type": "string"}) is None
