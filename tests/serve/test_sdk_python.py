"""segment-analytics-python, unmodified, sending to a running ``trackplan serve``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.serve.helpers import PLAN, FakeUpstream, ServeProcess, ndjson_dir, wait_for
from trackplan.testing import collector

analytics = pytest.importorskip("segment.analytics", reason="segment-analytics-python absent")
APIError = pytest.importorskip("segment.analytics.request").APIError


@pytest.mark.parametrize("gzipped", [False, True])
def test_python_sdk_through_the_collector(gzipped: bool) -> None:
    with collector(PLAN) as qa:
        errors: list[object] = []
        client = analytics.Client("any-key", host=qa.url, sync_mode=True, gzip=gzipped,
                                  on_error=lambda e, batch: errors.append(e))
        client.identify("u1", {"email": "jane@example.com", "plan": "pro"})
        client.track("u1", "Product Viewed", {"product_id": "p-1", "price": 12.5})
        client.track("u1", "Product Viewed", {"product_id": "p-1", "price": "cheap"})
        client.track("u1", "Coupon Entered", {"coupon": "X"})
        client.page("u1", name="Home", properties={"path": "/"})
        client.flush()
        assert errors == []
        good, bad = qa.good(), qa.bad()
    assert [g["event"].get("event", g["event"]["type"]) for g in good] == [
        "identify", "Product Viewed", "Product Viewed", "page"]
    assert good[0]["event"]["context"]["library"]["name"] == "analytics-python"
    # the example plan omits properties that violate it, and records why
    invalid = good[2]
    assert "price" not in invalid["event"]["properties"]
    assert invalid["violations"][0]["field"] == "properties.price"
    assert [b["event"]["event"] for b in bad] == ["Coupon Entered"]
    assert "jane@example.com" not in str(good)


def test_python_sdk_to_a_keyed_gateway_forwarding_upstream(tmp_path: Path) -> None:
    with FakeUpstream() as up:
        cfg = tmp_path / "serve.yaml"
        cfg.write_text(
            "sources:\n  - {name: backend, write_keys_env: BACKEND_KEYS}\n"
            "outputs:\n"
            f"  - {{name: segment, stamped: true, http: {{url: '{up.url}'}}}}\n"
            f"  - {{name: wh, destination: Snowflake, file: {{dir: '{tmp_path / 'wh'}'}}}}\n")
        server = ServeProcess([str(PLAN), "--config", str(cfg), "--spool",
                               str(tmp_path / "spool")], cwd=tmp_path,
                              env={"BACKEND_KEYS": "key-a,key-b"}).start()
        try:
            errors: list[object] = []
            good = analytics.Client("key-b", host=server.url, sync_mode=True,
                                    on_error=lambda e, batch: errors.append(e))
            good.track("u1", "Product Viewed", {"product_id": "p-1", "price": 3.0},
                       context={"consent": {"categoryPreferences": {"analytics": True}}})
            good.flush()
            wrong = analytics.Client("nope", host=server.url, sync_mode=True, max_retries=0)
            with pytest.raises(APIError) as refused:
                wrong.track("u1", "Product Viewed", {"product_id": "p-2", "price": 1.0})
            assert refused.value.status == 401
            wait_for(lambda: len(up.events()) == 1 and ndjson_dir(tmp_path / "wh"))
        finally:
            assert server.stop() == 0
    assert errors == []
    stamped = up.events()[0]
    assert stamped["integrations"] == {"All": False, "Amplitude": True, "Salesforce": True,
                                       "Google Ads": False, "Snowflake": True}
    assert stamped["properties"]["product_id"] == "p-1"
    assert "key-b" not in server.log() and "key-a" not in server.log()
    assert os.environ.get("BACKEND_KEYS") is None
