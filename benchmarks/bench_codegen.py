"""Cost of sending an event through the generated typed client vs a hand-built dict.

Generates the example plan's package into a temporary directory, then times, per
event, building the call and handing it to a no-op SDK with segment-analytics-python's
signatures (so only our side is timed):

* hand: the same properties dict written by hand, ``sdk.track(...)`` called directly;
* hand + jsonschema-rs: the hand-built dict validated with the payload schema first;
* client: ``Client(sdk).order_completed(...)`` with validation off (production);
* client + validate: development mode, jsonschema-rs importable (the default here);
* client + validate, stdlib: development mode with the generated stdlib-only validator
  (the package imported a second time with jsonschema-rs unimportable).

Two events: Order Completed v2 with two nested products, and the flat Product Added.
The figure of issue 17 target 5 is "validation on" over "hand-built + jsonschema-rs"
(at most 3x), printed as ``target``.

    python benchmarks/bench_codegen.py [--number 100000]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

import jsonschema_rs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackplan.codegen.python import generate_python  # noqa: E402
from trackplan.plan.assemble import call_schema  # noqa: E402
from trackplan.plan.load import load_plan  # noqa: E402


class NoopSdk:
    """segment-analytics-python's call signatures, doing nothing."""

    def track(self, user_id: Any = None, event: Any = None, properties: Any = None,
              context: Any = None, timestamp: Any = None, anonymous_id: Any = None,
              integrations: Any = None, message_id: Any = None) -> None:
        return None


def _package(tmp: Path, name: str, *, rs: bool = True) -> Any:
    """Generate the example plan's package as ``name`` and import it (with jsonschema-rs
    unimportable while it is imported when ``rs`` is false)."""
    plan = load_plan(ROOT / "plans" / "ecommerce")
    out = tmp / name
    out.mkdir()
    for file, text in generate_python(plan, package=out.name).items():
        (out / file).write_text(text, encoding="utf-8")
    if str(tmp) not in sys.path:
        sys.path.insert(0, str(tmp))
    saved = sys.modules.get("jsonschema_rs")
    if not rs:
        sys.modules["jsonschema_rs"] = None  # type: ignore[assignment]
    try:
        return importlib.import_module(out.name), plan
    finally:
        if saved is not None:
            sys.modules["jsonschema_rs"] = saved


def _time(fn: Any, number: int) -> float:
    """Best of five runs (the least disturbed by other processes), in microseconds."""
    runs = timeit.repeat(fn, number=number, repeat=5)
    return min(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args()
    n = args.number
    with tempfile.TemporaryDirectory() as tmp:
        mod, plan = _package(Path(tmp), "bench_tracking")
        slow, _ = _package(Path(tmp), "bench_tracking_stdlib", rs=False)
        assert slow._runtime._rs is None and mod._runtime._rs is not None
        sdk = NoopSdk()
        off = mod.Client(sdk)
        on = mod.Client(sdk, validate=True)
        stdlib = slow.Client(sdk, validate=True)
        product = mod.Product
        order_schema = call_schema(plan, plan.event("Order Completed", 2))
        added_schema = call_schema(plan, plan.event("Product Added"))
        check_order = jsonschema_rs.validator_for(
            {**order_schema, "allOf": order_schema["allOf"]}, validate_formats=True)
        check_added = jsonschema_rs.validator_for(added_schema, validate_formats=True)

        def hand_order() -> None:
            sdk.track(user_id="u-1", event="Order Completed", properties={
                "order_id": "o-1", "checkout_id": "c-1", "total": 30.0, "currency": "EUR",
                "products": [
                    {"product_id": "p-1", "price": 10.0, "quantity": 1, "name": "Mug"},
                    {"product_id": "p-2", "price": 20.0, "quantity": 1, "name": "Cup"},
                ],
            }, context={"protocols": {"event_version": 2}})

        def hand_order_checked() -> None:
            props = {
                "order_id": "o-1", "checkout_id": "c-1", "total": 30.0, "currency": "EUR",
                "products": [
                    {"product_id": "p-1", "price": 10.0, "quantity": 1, "name": "Mug"},
                    {"product_id": "p-2", "price": 20.0, "quantity": 1, "name": "Cup"},
                ],
            }
            context = {"protocols": {"event_version": 2}}
            if not check_order.is_valid({"type": "track", "event": "Order Completed",
                                         "properties": props, "context": context}):
                raise ValueError("invalid")
            sdk.track(user_id="u-1", event="Order Completed", properties=props, context=context)

        def client_order(client: Any) -> Any:
            def run() -> None:
                client.order_completed(
                    user_id="u-1", order_id="o-1", checkout_id="c-1", total=30.0,
                    currency="EUR", products=[
                        product(product_id="p-1", price=10.0, quantity=1, name="Mug"),
                        product(product_id="p-2", price=20.0, quantity=1, name="Cup"),
                    ])
            return run

        def client_order_literals(client: Any) -> Any:
            def run() -> None:  # mypy checks dict literals against the TypedDict too
                client.order_completed(
                    user_id="u-1", order_id="o-1", checkout_id="c-1", total=30.0,
                    currency="EUR", products=[
                        {"product_id": "p-1", "price": 10.0, "quantity": 1, "name": "Mug"},
                        {"product_id": "p-2", "price": 20.0, "quantity": 1, "name": "Cup"},
                    ])
            return run

        def hand_added() -> None:
            sdk.track(user_id="u-1", event="Product Added", properties={
                "cart_id": "c-1", "product_id": "p-1", "price": 10.0, "quantity": 1,
            }, context={"protocols": {"event_version": 1}})

        def hand_added_checked() -> None:
            props = {"cart_id": "c-1", "product_id": "p-1", "price": 10.0, "quantity": 1}
            context = {"protocols": {"event_version": 1}}
            if not check_added.is_valid({"type": "track", "event": "Product Added",
                                         "properties": props, "context": context}):
                raise ValueError("invalid")
            sdk.track(user_id="u-1", event="Product Added", properties=props, context=context)

        def client_added(client: Any) -> Any:
            def run() -> None:
                client.product_added(user_id="u-1", cart_id="c-1", product_id="p-1",
                                     price=10.0, quantity=1)
            return run

        suites = (
            ("Order Completed v2 (2 nested products)", [
                ("hand-built dict", hand_order),
                ("hand-built + jsonschema-rs", hand_order_checked),
                ("client, Product(...), validation off", client_order(off)),
                ("client, dict literals, validation off", client_order_literals(off)),
                ("client, Product(...), validation on", client_order(on)),
                ("client, dict literals, validation on", client_order_literals(on)),
                ("client, Product(...), validation on, stdlib", client_order(stdlib)),
            ]),
            ("Product Added (flat)", [
                ("hand-built dict", hand_added),
                ("hand-built + jsonschema-rs", hand_added_checked),
                ("client, validation off", client_added(off)),
                ("client, validation on", client_added(on)),
                ("client, validation on, stdlib", client_added(stdlib)),
            ]),
        )
        best: dict[str, float] = {}
        for _round in range(3):  # interleaved rounds: a noisy neighbour hits every case
            for _title, cases in suites:
                for label, fn in cases:
                    count = max(1, n // 20) if label.endswith("stdlib") else n
                    us = _time(fn, count)
                    best[_title + label] = min(us, best.get(_title + label, us))
        for title, cases in suites:
            print(f"\n{title}")
            base = None
            peer = best[title + "hand-built + jsonschema-rs"]
            print(f"  {'':44s} {'us/event':>8s} {'x hand':>7s} {'x hand+rs':>9s}")
            for label, _fn in cases:
                us = best[title + label]
                base = base or us
                print(f"  {label:44s} {us:8.2f} {us / base:7.2f} {us / peer:9.2f}")
            for label, _fn in cases:
                if "validation on" in label and not label.endswith("stdlib"):
                    ratio = best[title + label] / peer
                    verdict = "met" if ratio <= 3.0 else "MISSED"
                    print(f"  target ({label} <= 3x hand-built + jsonschema-rs): "
                          f"{ratio:.2f}x {verdict}")


if __name__ == "__main__":
    main()
