"""Generate event exports of the example plan with known, injected violations."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa

Row = dict[str, Any]

PRODUCT_TYPE = pa.struct(
    [
        ("product_id", pa.string()),
        ("sku", pa.string()),
        ("name", pa.string()),
        ("price", pa.float64()),
        ("quantity", pa.int64()),
        ("url", pa.string()),
    ]
)
ORDER_TYPE = pa.struct(
    [
        ("order_id", pa.string()),
        ("checkout_id", pa.string()),
        ("total", pa.float64()),
        ("revenue", pa.float64()),
        ("currency", pa.string()),
        ("payment_method", pa.string()),
        ("email", pa.string()),
        (
            "shipping_address",
            pa.struct([("street", pa.string()), ("city", pa.string()), ("country", pa.string())]),
        ),
        ("products", pa.list_(PRODUCT_TYPE)),
        ("loyalty_points", pa.int64()),
        ("method", pa.string()),
        ("phone", pa.string()),
        ("cart_id", pa.string()),
        ("product_id", pa.string()),
        ("price", pa.float64()),
        ("quantity", pa.int64()),
    ]
)
NESTED_SCHEMA = pa.schema(
    [
        ("type", pa.string()),
        ("event", pa.string()),
        ("message_id", pa.string()),
        ("user_id", pa.string()),
        ("properties", ORDER_TYPE),
        (
            "context",
            pa.struct(
                [
                    ("ip", pa.string()),
                    ("user_agent", pa.string()),  # snake_cased, as some exports write it
                    ("protocols", pa.struct([("event_version", pa.int64())])),
                ]
            ),
        ),
    ]
)


def _product(rnd: random.Random, i: int) -> Row:
    return {
        "product_id": f"p{rnd.randrange(1000)}",
        "sku": f"SKU-{i}",
        "name": rnd.choice(["Mug", "Tee", "Cap"]),
        "price": round(rnd.uniform(1, 100), 2),
        "quantity": rnd.randint(1, 5),
        "url": f"https://shop.example.com/p/{i}",
    }


def valid_row(rnd: random.Random, i: int) -> Row:
    """One valid call of Order Completed (v1 or v2), Signed Up or Product Added."""
    kind = rnd.random()
    ctx = {"ip": f"203.0.113.{i % 250}", "userAgent": "Mozilla/5.0", "protocols": None}
    if kind < 0.6:
        v2 = rnd.random() < 0.3
        props: Row = {
            "order_id": f"o{i}",
            "total": round(rnd.uniform(1, 500), 2),
            "currency": rnd.choice(["EUR", "USD"]),
            "payment_method": rnd.choice(["card", "paypal"]),
            "email": f"user{i}@example.com",
            "shipping_address": {"street": f"{i} High St", "city": "Leeds", "country": "GB"},
            "products": [_product(rnd, i * 10 + k) for k in range(rnd.randint(1, 3))],
        }
        if v2:
            props["checkout_id"] = f"c{i}"
            props["loyalty_points"] = rnd.randint(0, 100)
            ctx["protocols"] = {"event_version": 2}
        return {"type": "track", "event": "Order Completed", "messageId": f"m{i}",
                "userId": f"u{i}",
                "properties": props, "context": ctx}  # fmt: skip
    if kind < 0.8:
        props = {"method": rnd.choice(["email", "google"]), "email": f"new{i}@example.org",
                 "phone": f"+44 7700 900{i % 1000:03d}"}  # fmt: skip
        return {"type": "track", "event": "Signed Up", "messageId": f"m{i}",
                "userId": f"u{i}",
                "properties": props, "context": ctx}  # fmt: skip
    props = {"cart_id": f"cart{i}", "product_id": f"p{i}", "price": 9.5, "quantity": 2}
    return {"type": "track", "event": "Product Added", "messageId": f"m{i}",
                "userId": f"u{i}",
            "properties": props, "context": ctx}  # fmt: skip


def _set(path: str, value: Any) -> Callable[[Row], None]:
    def apply(row: Row) -> None:
        target = row["properties"]
        parts = path.split(".")
        for p in parts[:-1]:
            target = target[p][0] if p == "products" else target[p]
        target[parts[-1]] = value

    return apply


#: event -> [(field, keyword, mutation)]: each mutation breaks exactly that one check.
INJECTIONS: dict[str, list[tuple[str, str, Callable[[Row], None]]]] = {
    "Order Completed": [
        ("total", "minimum", _set("total", -5.0)),
        ("total", "maximum", _set("total", 2_000_000.0)),
        ("currency", "pattern", _set("currency", "eur")),
        ("order_id", "maxLength", _set("order_id", "x" * 65)),
        ("order_id", "required", _set("order_id", None)),
        ("email", "format", _set("email", "not-an-email")),
        ("payment_method", "enum", _set("payment_method", "cash")),
        ("products", "minItems", _set("products", [])),
        ("products[].price", "minimum", _set("products.price", -1.0)),
        ("products[].quantity", "maximum", _set("products.quantity", 5000)),
        ("products[].product_id", "required", _set("products.product_id", None)),
        ("products[].url", "format", _set("products.url", "not a uri")),
        ("shipping_address.country", "pattern", _set("shipping_address.country", "gb")),
    ],
    "Signed Up": [
        ("method", "enum", _set("method", "fax")),
        ("email", "format", _set("email", "a@@b")),
        ("phone", "maxLength", _set("phone", "9" * 40)),
    ],
    "Product Added": [
        ("quantity", "minimum", _set("quantity", 0)),
        ("price", "required", _set("price", None)),
    ],
}


def _call(path: str, value: Any) -> Callable[[Row], None]:
    def apply(row: Row) -> None:
        if path == "messageId":
            row["messageId"] = value
        else:
            row["context"][path.split(".", 1)[1]] = value

    return apply


#: Violations of the plan's common rule (the call's envelope and context), any event.
CALL_INJECTIONS: list[tuple[str, str, Callable[[Row], None]]] = [
    ("context.ip", "anyOf", _call("context.ip", "not-an-ip")),
    ("context.ip", "anyOf", _call("context.ip", "300.1.2.3")),
    ("context.userAgent", "maxLength", _call("context.userAgent", "u" * 1025)),
    ("messageId", "maxLength", _call("messageId", "m" * 101)),
    ("messageId", "minLength", _call("messageId", "")),
]


def generate(
    n: int, seed: int = 7, rate: float = 0.3, *, call: bool = False
) -> tuple[list[Row], Counter[tuple[str, int, str, str]], set[int]]:
    """``n`` rows; about ``rate`` of them with exactly one injected violation.

    With ``call``, violations of the common rule (``context.ip``, ``messageId``...) are
    injected too.

    Returns:
        The rows, the injected count per (event, version, field, keyword), the bad rows.
    """
    rnd = random.Random(seed)
    rows: list[Row] = []
    injected: Counter[tuple[str, int, str, str]] = Counter()
    bad: set[int] = set()
    for i in range(n):
        row = valid_row(rnd, i)
        if rnd.random() < rate:
            protocols = row["context"]["protocols"]
            version = protocols["event_version"] if protocols else 1
            choices = [
                c for c in INJECTIONS[row["event"]]
                if version == 1 or not c[0].startswith("shipping_address")  # not in v2
            ]  # fmt: skip
            if call:
                choices += CALL_INJECTIONS
            field, keyword, mutate = rnd.choice(choices)
            mutate(row)
            injected[(row["event"], version, field, keyword)] += 1
            if (field, keyword) == ("messageId", "maxLength"):  # the envelope's limit too
                injected[(row["event"], version, field, "envelope")] += 1
            bad.add(i)
        rows.append(row)
    return rows, injected, bad


def nested_table(rows: list[Row]) -> pa.Table:
    """The rows in the nested layout."""
    out = []
    for i, r in enumerate(rows):
        ctx = dict(r["context"])
        ctx["user_agent"] = ctx.pop("userAgent", None)  # exports often snake_case nested names
        out.append({**r, "message_id": r.get("messageId", f"m{i}"), "user_id": r.get("userId"),
                    "context": ctx})
    return pa.Table.from_pylist(out, schema=NESTED_SCHEMA)


def flat_table(rows: list[Row], event: str) -> pa.Table:
    """The rows of one event as a Segment warehouse table (snake_case columns)."""
    out = []
    for i, r in enumerate(rows):
        if r["event"] != event:
            continue
        flat = {"id": r.get("messageId", f"m{i}"), "user_id": r.get("userId"),
                "event_text": r["event"],
                "event": "order_completed", "context_ip": r["context"]["ip"],
                "context_user_agent": r["context"]["userAgent"]}  # fmt: skip
        protocols = r["context"]["protocols"]
        flat["context_protocols_event_version"] = protocols["event_version"] if protocols else None
        flat.update(r["properties"])
        out.append(flat)
    keys = list(dict.fromkeys(k for row in out for k in row))  # from_pylist reads row 0's keys
    return pa.Table.from_pylist([{k: row.get(k) for k in keys} for row in out])
