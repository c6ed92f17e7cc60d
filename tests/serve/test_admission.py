"""Who may reach what: 429s for rate limits and backpressure, a token for the QA endpoints
and /metrics, loopback only without one. Real processes and SDKs on loopback."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.serve.helpers import (
    PLAN,
    FakeUpstream,
    event,
    request,
    serving,
    wait_for,
)
from trackplan.serve.limits import RateSpec, TokenBucket, retry_after

TOKEN = "qa-token-7f3a9c"  # a test value: must never reach a log


def _batch(count: int, prefix: str) -> dict[str, object]:
    return {"batch": [event(mid=f"{prefix}-{i}") for i in range(count)]}


def test_token_bucket_refills_and_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=10.0, burst=20.0)
    assert bucket.take(15, now=0.0) == 0.0
    assert bucket.take(10, now=0.0) == pytest.approx(0.5)  # 5 left, 5 more in 0.5 s
    assert bucket.take(10, now=0.5) == 0.0
    assert bucket.take(50, now=10.0) == 0.0  # larger than the bucket: granted when full
    assert bucket.take(1, now=10.0) > 0
    assert retry_after(0.2) == "1" and retry_after(2.1) == "3"
    assert RateSpec(100.0).share(2) == RateSpec(50.0, 50.0)


def test_over_the_rate_limit_is_429_with_retry_after_and_nothing_decided(
        tmp_path: Path) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("limits: {events_per_second: 5, burst: 20}\n")
    with serving([str(PLAN), "--config", str(cfg)], cwd=tmp_path) as server:
        assert request(server.url + "/v1/batch", _batch(15, "a"), key="k")[0] == 200
        status, body = request(server.url + "/v1/batch", _batch(15, "b"), key="k")
        assert status == 429 and body["code"] == "too_many_requests"
        req = urllib.request.Request(server.url + "/v1/batch", method="POST",
                                     data=orjson.dumps(_batch(15, "b")))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)  # noqa: S310 - loopback
        assert refused.value.code == 429
        assert 1 <= int(refused.value.headers["Retry-After"]) <= 3
        assert request(server.url + "/trackplan/all")[1]["received"] == 15
        metrics = request(server.url + "/metrics")[1]
        assert 'trackplan_requests_refused_total{reason="rate_limited"} 2' in metrics
        # after the wait the answer named, the refused events are taken
        time.sleep(2.2)
        assert request(server.url + "/v1/batch", _batch(10, "b"), key="k")[0] == 200
        assert request(server.url + "/trackplan/all")[1]["received"] == 25


def test_python_sdk_backs_off_on_429_and_loses_nothing(tmp_path: Path) -> None:
    analytics = pytest.importorskip("segment.analytics", reason="segment-analytics-python")
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("limits: {events_per_second: 20, burst: 20}\n")
    with serving([str(PLAN), "--config", str(cfg)], cwd=tmp_path) as server:
        errors: list[object] = []
        client = analytics.Client("any-key", host=server.url, upload_size=20,
                                  on_error=lambda e, batch: errors.append(e))
        for i in range(100):
            client.track("u1", "Product Viewed", {"product_id": f"p-{i}", "price": 1.0})
        client.flush()
        client.shutdown()
        assert errors == []
        counts = wait_for(lambda: (c := request(server.url + "/trackplan/all")[1])
                          ["received"] >= 100 and c)
        assert counts["received"] == 100, "every event decided once: 429 retries add none"
        good = request(server.url + "/trackplan/good", {"limit": 500})[1]
        assert sorted(g["event"]["properties"]["product_id"] for g in good) == sorted(
            f"p-{i}" for i in range(100))
        metrics = request(server.url + "/metrics")[1]
        assert 'reason="rate_limited"' in metrics, "the SDK met the limit and retried"


def test_an_output_far_behind_turns_new_requests_away_then_recovers(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        upstream.mode = "fail"
        cfg = tmp_path / "serve.yaml"
        cfg.write_text(
            "spool: {max_mb: 0.002}\n"  # about 2 KB undelivered
            f"outputs:\n  - {{name: crm, destination: Salesforce, http: {{url: '{upstream.url}'"
            ", timeout: 1}}\n")
        with serving([str(PLAN), "--config", str(cfg), "--spool", str(tmp_path / "spool")],
                     cwd=tmp_path) as server:
            assert request(server.url + "/v1/batch", _batch(20, "a"), key="k")[0] == 200
            time.sleep(0.6)
            status, _ = request(server.url + "/v1/batch", _batch(5, "b"), key="k")
            assert status == 429
            upstream.mode = "ok"
            wait_for(lambda: len(upstream.events()) >= 20, timeout=30)
            time.sleep(0.6)
            assert request(server.url + "/v1/batch", _batch(5, "b"), key="k")[0] == 200
            metrics = request(server.url + "/metrics")[1]
            assert 'reason="spool_full"' in metrics
            wait_for(lambda: len(upstream.events()) >= 25, timeout=30)
            ids = [e["messageId"] for e in upstream.events()]
            assert sorted(set(ids)) == sorted(ids[:25]) and len(set(ids)) == 25


def test_qa_and_metrics_need_the_token_when_it_is_set(tmp_path: Path) -> None:
    with serving([str(PLAN)], cwd=tmp_path, env={"TRACKPLAN_SERVE_TOKEN": TOKEN}) as server:
        assert request(server.url + "/v1/track", event(), key="k")[0] == 200
        for path in ("/trackplan/all", "/trackplan/good", "/metrics"):
            assert request(server.url + path)[0] == 401
            wrong = {"Authorization": "Bearer not-it"}
            assert request(server.url + path, headers=wrong)[0] == 401
            right = {"Authorization": f"Bearer {TOKEN}"}
            assert request(server.url + path, headers=right)[0] == 200
        status, body = request(server.url + "/trackplan/reset", method="POST",
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and body["received"] == 0
        assert request(server.url + "/health")[0] == 200
        assert request(server.url + "/v1/projects/k/settings")[0] == 200
    log = server.log()
    assert "trackplan serve listening" in log
    assert TOKEN not in log


def _external_address() -> str | None:
    """An address of this host that is not loopback (None: none to test with)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_without_a_token_qa_answers_loopback_clients_only(tmp_path: Path) -> None:
    address = _external_address()
    if address is None:
        pytest.skip("this host has no address besides loopback")
    with serving([str(PLAN), "--host", "0.0.0.0"], cwd=tmp_path) as server:  # noqa: S104
        outside = f"http://{address}:{server.port}"
        assert request(outside + "/v1/track", event(), key="k")[0] == 200
        status, body = request(outside + "/trackplan/all")
        assert status == 403 and "TRACKPLAN_SERVE_TOKEN" in body["message"]
        assert request(outside + "/metrics")[0] == 403
        assert request(server.url + "/trackplan/all")[1]["received"] == 1
    assert "loopback clients only" in server.log()
