"""The generated client drives segment-analytics-python against a loopback HTTP server.

The server captures the batches the real SDK posts; the captured events must pass the
plan's enforcer and carry the plan's wire names.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest

from trackplan.engine import compile_plan
from trackplan.plan.model import Plan

analytics = pytest.importorskip("segment.analytics", reason="segment-analytics-python")


class _Capture(BaseHTTPRequestHandler):
    batches: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).batches.append({"path": self.path, "body": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    batches: list[dict[str, Any]] = []
    handler = type("Capture", (_Capture,), {"batches": batches})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", batches
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_real_sdk_sends_what_the_plan_allows(
    shop: ModuleType, ecommerce: Plan, server: tuple[str, list[dict[str, Any]]]
) -> None:
    host, batches = server
    sdk = analytics.Client("write-key", host=host, sync_mode=True, max_retries=0, gzip=False)
    client = shop.Client(sdk, validate=True)
    client.order_completed(
        user_id="u-1", order_id="o-1", checkout_id="c-1", total=25.5, currency="EUR",
        products=[shop.Product(product_id="p-1", price=12.75, quantity=2, name="Mug")],
        payment_method="card", loyalty_points=25,
    )
    client.order_completed_v1(
        anonymous_id="a-1", order_id="o-2", total=9.0, currency="USD",
        products=[shop.Product(product_id="p-2", price=9.0)],
        shipping_address=shop.OrderCompletedV1ShippingAddress(city="Lyon", country="FR"),
    )
    client.signed_up(user_id="u-2", method="google", referral_code="R1")
    client.identify(user_id="u-1", plan="pro", newsletter=True)
    client.group(user_id="u-1", group_id="g-1", name="ACME", employees=40)
    sdk.flush()  # sync_mode posts each call at once; flush is a no-op kept for clarity

    assert batches and all(b["path"] == "/v1/batch" for b in batches)
    events = [e for b in batches for e in b["body"]["batch"]]
    assert [(e["type"], e.get("event")) for e in events] == [
        ("track", "Order Completed"),
        ("track", "Order Completed"),
        ("track", "Signed Up"),
        ("identify", None),
        ("group", None),
    ]
    os.environ.setdefault("TRACKPLAN_HASH_KEY", "test-key-not-secret")
    enforcer = compile_plan(ecommerce)
    for event in events:
        result = enforcer.enforce(event)
        assert result.allowed, (event.get("event"), result.violations)
        # PII findings (detectors on random strings) may change the event, never the schema
        assert [v for v in result.violations if v.type != "PII"] == []
        assert result.omitted == ()
    first, second = events[0], events[1]
    assert first["context"]["protocols"]["event_version"] == 2
    assert second["context"]["protocols"]["event_version"] == 1
    assert first["properties"]["products"] == [
        {"product_id": "p-1", "price": 12.75, "quantity": 2, "name": "Mug"}
    ]
    assert second["properties"]["shipping_address"] == {"city": "Lyon", "country": "FR"}
    assert events[2]["properties"] == {"method": "google", "referral_code": "R1"}
    assert events[4]["groupId"] == "g-1" and events[4]["traits"]["employees"] == 40
    # the enforcer picked the rule version the client stamped into the context
    assert enforcer.enforce(first).rule.version == 2  # type: ignore[union-attr]


def test_page_and_alias_reach_the_real_sdk(
    shop: ModuleType, ecommerce: Plan, server: tuple[str, list[dict[str, Any]]]
) -> None:
    host, batches = server
    sdk = analytics.Client("write-key", host=host, sync_mode=True, max_retries=0, gzip=False)
    client = shop.Client(sdk, validate=True)
    client.page(anonymous_id="a-9", name="Home", category="Shop", path="/", title="Welcome")
    client.alias(previous_id="a-9", user_id="u-9")
    events = [e for b in batches for e in b["body"]["batch"]]
    assert [e["type"] for e in events] == ["page", "alias"]
    page, alias = events
    assert page["name"] == "Home" and page["properties"]["path"] == "/"
    assert page["anonymousId"] == "a-9"
    assert alias["previousId"] == "a-9" and alias["userId"] == "u-9"
    enforcer = compile_plan(ecommerce)
    assert enforcer.enforce(page).allowed
    assert not hasattr(client, "screen")  # the plan has no screen rule
