"""Generate the example warehouse exports of the e-commerce plan, with violations and PII.

Writes, deterministically (fixed seed, no timestamps from the clock):

* ``examples/export.parquet``: 1,200 calls in the nested layout (``properties`` and
  ``context`` structs), zstd-compressed;
* ``examples/warehouse/order_completed.parquet``: the Order Completed rows as a flat
  Segment warehouse table (snake_case columns, ``context_*`` columns, ``event_text``).

About one row in eight breaks the plan (a negative total, a lower-case currency, a
malformed email, an unknown payment method, a missing order id, a product without an id),
and the rows carry PII the plan declares (emails, phones, names, IP addresses) plus some
it does not (phone numbers typed into the search box).

Run: ``python examples/make_parquet.py`` then
``trackplan scan plans/ecommerce examples/export.parquet``.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
START = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
FIRST = ["ada", "grace", "alan", "edsger", "barbara", "ken", "margaret", "linus"]
LAST = ["lovelace", "hopper", "turing", "dijkstra", "liskov", "thompson", "hamilton"]
PRODUCTS = [("p-100", "Mug", 12.0), ("p-101", "Tee", 25.0), ("p-102", "Cap", 18.5),
            ("p-103", "Poster", 9.99), ("p-104", "Hoodie", 49.0)]  # fmt: skip


def _product(rnd: random.Random) -> dict[str, Any]:
    pid, name, price = rnd.choice(PRODUCTS)
    return {"product_id": pid, "name": name, "price": price, "quantity": rnd.randint(1, 3),
            "url": f"https://shop.example.com/p/{pid}"}  # fmt: skip


def _call(rnd: random.Random, i: int) -> dict[str, Any]:
    first, last = rnd.choice(FIRST), rnd.choice(LAST)
    email = f"{first}.{last}{i}@example.com"
    pick = rnd.random()
    version = None
    if pick < 0.45:
        event = "Order Completed"
        products = [_product(rnd) for _ in range(rnd.randint(1, 3))]
        props: dict[str, Any] = {
            "order_id": f"ord-{10000 + i}",
            "total": round(sum(p["price"] * p["quantity"] for p in products), 2),
            "currency": "EUR",
            "payment_method": rnd.choice(["card", "paypal", "invoice"]),
            "email": email,
            "products": products,
        }
        if rnd.random() < 0.3:
            version = 2
            props["checkout_id"] = f"chk-{i}"
            props["loyalty_points"] = rnd.randint(0, 500)
        broken = rnd.random()
        if broken < 0.04:
            props["total"] = -props["total"]
        elif broken < 0.07:
            props["currency"] = "eur"
        elif broken < 0.10:
            props["email"] = f"{first} at {last}.com"
        elif broken < 0.12:
            props["payment_method"] = "bitcoin"
        elif broken < 0.14:
            props["order_id"] = None
        elif broken < 0.16:
            products[0]["product_id"] = None
    elif pick < 0.7:
        event = "Product Added"
        pid, name, price = rnd.choice(PRODUCTS)
        props = {"cart_id": f"cart-{i // 3}", "product_id": pid, "name": name, "price": price,
                 "quantity": rnd.randint(1, 4) if rnd.random() > 0.05 else 0}  # fmt: skip
    elif pick < 0.85:
        event = "Signed Up"
        props = {
            "method": rnd.choice(["email", "google", "apple"]),
            "email": email,
            "phone": f"+44 7700 900{rnd.randint(100, 999)}",
            "first_name": first.title(),
        }
        if rnd.random() < 0.06:
            props["method"] = "fax"
    else:
        event = "Products Searched"
        query = rnd.choice(["mug", "blue hoodie", "cap size m", "poster"])
        if rnd.random() < 0.1:
            query = f"call me on 07700 900{rnd.randint(100, 999)}"  # undeclared PII
        props = {"query": query}
    return {
        "message_id": f"msg-{i:06d}",
        "type": "track",
        "event": event,
        "user_id": f"usr_{rnd.randint(1000, 1999)}",
        "timestamp": START + dt.timedelta(seconds=37 * i),
        "properties": props,
        "context": {
            "ip": f"203.0.113.{rnd.randint(1, 254)}",
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "protocols": {"event_version": version},
        },
    }


def main() -> None:
    """Write both example files."""
    rnd = random.Random(20261101)
    calls = [_call(rnd, i) for i in range(1200)]
    nested = pa.Table.from_pylist(calls)
    pq.write_table(nested, HERE / "export.parquet", compression="zstd")
    flat_rows = []
    for c in calls:
        if c["event"] != "Order Completed":
            continue
        row = {"id": c["message_id"], "event": "order_completed", "event_text": c["event"],
               "user_id": c["user_id"], "timestamp": c["timestamp"],
               "context_ip": c["context"]["ip"],
               "context_protocols_event_version": c["context"]["protocols"]["event_version"],
               }  # fmt: skip
        row.update(c["properties"])
        flat_rows.append(row)
    keys = list(dict.fromkeys(k for r in flat_rows for k in r))
    flat = pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in flat_rows])
    (HERE / "warehouse").mkdir(exist_ok=True)
    pq.write_table(flat, HERE / "warehouse" / "order_completed.parquet", compression="zstd")


if __name__ == "__main__":
    main()
