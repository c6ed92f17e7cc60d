"""Segment's tracking API as the gateway answers it, over real HTTP on loopback."""

from __future__ import annotations

import base64
import gzip
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.serve.helpers import PLAN, event, request
from trackplan.privacy.suppression import SuppressionList
from trackplan.serve.http import Limits
from trackplan.testing import Collector, collector


@pytest.fixture(scope="module")
def qa() -> Iterator[Collector]:
    with collector(PLAN) as running:
        yield running


@pytest.fixture()
def fresh(qa: Collector) -> Collector:
    qa.reset()
    return qa


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    cfg = tmp_path_factory.mktemp("keyed") / "serve.yaml"
    cfg.write_text("sources:\n  - {name: web, write_keys: [WEBKEY]}\n"
                   "  - {name: server, write_keys: [SRVKEY]}\n")
    with collector(PLAN, config=cfg) as running:
        yield running


def test_every_path_long_and_short_is_accepted(fresh: Collector) -> None:
    calls = {
        "track": event(), "identify": {"userId": "u1", "traits": {"plan": "pro"}},
        "page": {"userId": "u1", "name": "Home", "properties": {"path": "/"}},
        "screen": {"userId": "u1", "name": "Home"},
        "group": {"userId": "u1", "groupId": "g1", "traits": {"name": "ACME"}},
        "alias": {"userId": "u1", "previousId": "anon-1"},
    }
    for kind, body in calls.items():
        assert request(f"{fresh.url}/v1/{kind}", body)[0] == 200
        assert request(f"{fresh.url}/v1/{kind[0]}", body)[0] == 200
    batch = {"batch": [dict(body, type=kind) for kind, body in calls.items()]}
    assert request(f"{fresh.url}/v1/batch", batch)[0] == 200
    assert request(f"{fresh.url}/v1/b", batch)[0] == 200
    types = sorted(i["event"]["type"] for i in fresh.good() + fresh.bad())
    assert types == sorted([k for k in calls] * 4)


def test_plan_blocked_events_are_answered_200_and_land_in_bad(fresh: Collector) -> None:
    status, body = request(f"{fresh.url}/v1/track", event("Not In Plan"))
    assert (status, body) == (200, {"success": True})
    bad = fresh.bad(violation="Unplanned-Event")
    assert [b["event"]["event"] for b in bad] == ["Not In Plan"]
    assert fresh.all() == {"received": 1, "allowed": 0, "blocked": 1, "with_violations": 1,
                           "outputs": {}}


def test_text_plain_and_gzip_bodies(fresh: Collector) -> None:
    body = orjson.dumps({"writeKey": "k", **event()})
    assert request(f"{fresh.url}/v1/t", raw=body, headers={"Content-Type": "text/plain"})[0] == 200
    assert request(f"{fresh.url}/v1/batch", {"batch": [event()]}, gzipped=True)[0] == 200
    assert fresh.all()["allowed"] == 2


def test_received_at_and_timestamp_corrected_from_sent_at(fresh: Collector) -> None:
    body = {"batch": [event(mid="m-1")], "sentAt": "2026-11-01T08:00:10.000Z"}
    request(f"{fresh.url}/v1/batch", body)
    got = fresh.good()[0]["event"]
    received = got["receivedAt"]
    assert got["originalTimestamp"] == "2026-11-01T08:00:00.000Z"
    # the client's clock said the event was 10 s old when sent: so it is 10 s before receipt
    from datetime import datetime

    skew = datetime.fromisoformat(received) - datetime.fromisoformat(got["timestamp"])
    assert skew.total_seconds() == pytest.approx(10.0)
    assert got["messageId"] == "m-1"


def test_missing_message_id_is_given_one(fresh: Collector) -> None:
    request(f"{fresh.url}/v1/track", event())
    assert fresh.good()[0]["event"]["messageId"].startswith("trackplan-")


def test_batch_context_and_integrations_merge_into_items(fresh: Collector) -> None:
    body = {"batch": [event(), event()], "context": {"locale": "de-DE"},
            "integrations": {"Amplitude": False}}
    request(f"{fresh.url}/v1/batch", body)
    for item in fresh.good():
        assert item["event"]["context"]["locale"] == "de-DE"
        assert item["destinations"]["Amplitude"] == "integrations"


def test_pii_is_handled_in_what_qa_holds(fresh: Collector) -> None:
    ident = {"userId": "u1", "traits": {"email": "jane@example.com", "plan": "pro"}}
    request(f"{fresh.url}/v1/identify", ident)
    stored = orjson.dumps(fresh.good())
    assert b"jane@example.com" not in stored


def test_consent_decides_per_destination(fresh: Collector) -> None:
    ev = event()
    ev["context"] = {"consent": {"categoryPreferences": {"analytics": True}}}
    request(f"{fresh.url}/v1/track", ev)
    dests = fresh.good()[0]["destinations"]
    assert dests == {"Amplitude": "sent", "Salesforce": "sent", "Google Ads": "consent",
                     "Snowflake": "sent"}


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "invalid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"[" * 10000 + b"]" * 10000, "invalid JSON"),
])
def test_bad_json_is_400(fresh: Collector, body: bytes, fragment: str) -> None:
    status, answer = request(f"{fresh.url}/v1/track", raw=body)
    assert status == 400 and fragment in answer["error"]


def test_deep_nesting_within_json_limits(fresh: Collector) -> None:
    head = orjson.dumps(event())[:-1]
    too_deep = head + b',"context":' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}"
    status, answer = request(f"{fresh.url}/v1/track", raw=too_deep)
    assert status == 400 and "too deep" in answer["error"]
    # parseable and writable: the plan decides (here: allowed, context is open)
    deep = head + b',"context":' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}"
    assert request(f"{fresh.url}/v1/track", raw=deep)[0] == 200
    assert fresh.all()["received"] == 1
    assert request(f"{fresh.url}/health")[0] == 200


def test_segment_size_limits(fresh: Collector) -> None:
    big = event(note="x" * (33 * 1024))
    assert request(f"{fresh.url}/v1/track", big)[0] == 400
    assert request(f"{fresh.url}/v1/batch", {"batch": [big]})[0] == 400
    many = {"batch": [event()] * 2501}
    status, answer = request(f"{fresh.url}/v1/batch", many)
    assert status == 400
    fat = {"batch": [event(note="y" * 30000) for _ in range(20)]}  # 600 KB
    assert request(f"{fresh.url}/v1/batch", fat)[0] == 400
    assert fresh.all()["received"] == 0


def test_gzip_bomb_is_refused_without_inflating(fresh: Collector) -> None:
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))  # 64 MB of spaces in about 64 KB
    status, answer = request(f"{fresh.url}/v1/batch", raw=bomb,
                             headers={"Content-Encoding": "gzip"})
    assert status == 400 and "decompressed" in answer["error"]
    assert request(f"{fresh.url}/health")[0] == 200


def test_not_gzip_is_400(fresh: Collector) -> None:
    status, _ = request(f"{fresh.url}/v1/track", raw=b"plain", headers={"Content-Encoding": "gzip"})
    assert status == 400


def test_cors_preflight_and_headers(fresh: Collector) -> None:
    with socket.create_connection(("127.0.0.1", int(fresh.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"OPTIONS /v1/t HTTP/1.1\r\nHost: x\r\nOrigin: https://shop.example\r\n"
                     b"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 204")
    assert b"Access-Control-Allow-Origin: https://shop.example" in answer
    assert b"Access-Control-Allow-Methods: GET, POST, OPTIONS" in answer


def test_settings_point_analytics_js_back_at_the_gateway(fresh: Collector) -> None:
    status, settings = request(f"{fresh.url}/v1/projects/KEY1/settings")
    assert status == 200
    seg = settings["integrations"]["Segment.io"]
    assert seg["apiKey"] == "KEY1"
    assert seg["apiHost"] == fresh.url.removeprefix("http://") + "/v1"


def test_qa_filters_and_limit(fresh: Collector) -> None:
    request(f"{fresh.url}/v1/batch", {"batch": [
        event("Product Viewed"), event("Cart Viewed", cart_id="c1"), event("Product Viewed"),
        event("Nope"), {"type": "page", "userId": "u", "name": "Home"}]})
    assert len(fresh.good(event="Product Viewed")) == 2
    assert len(fresh.good(type="page")) == 1
    assert len(fresh.good(limit=1)) == 1
    status, got = request(f"{fresh.url}/trackplan/good?event=Cart%20Viewed")
    assert status == 200 and len(got) == 1
    assert fresh.bad(violation="Required-Missing") == []
    fresh.reset()
    assert fresh.all()["received"] == 0 and fresh.good() == []


def test_health_ready_metrics_and_unknown_paths(fresh: Collector) -> None:
    request(f"{fresh.url}/v1/track", event("Nope"))
    assert request(f"{fresh.url}/health") == (200, {"status": "ok"})
    assert request(f"{fresh.url}/ready") == (200, {"ready": True})
    status, text = request(f"{fresh.url}/metrics")
    assert status == 200
    assert 'trackplan_violations_total{type="Unplanned-Event"}' in text
    assert request(f"{fresh.url}/nothing")[0] == 404
    assert request(f"{fresh.url}/v1/track")[0] == 405


def test_write_keys_map_to_sources(keyed: Collector) -> None:
    keyed.reset()
    assert request(f"{keyed.url}/v1/track", event(), key="WEBKEY")[0] == 200
    assert request(f"{keyed.url}/v1/track", {**event(), "writeKey": "SRVKEY"})[0] == 200
    bearer = {"Authorization": "Bearer some-token"}
    assert request(f"{keyed.url}/v1/t", {**event(), "writeKey": "WEBKEY"}, headers=bearer)[0] == 200
    assert sorted(g["source"] for g in keyed.good()) == ["server", "web", "web"]
    status, answer = request(f"{keyed.url}/v1/track", event(), key="WRONG")
    assert status == 401 and "WRONG" not in answer["error"]
    assert request(f"{keyed.url}/v1/track", event())[0] == 401
    assert request(f"{keyed.url}/v1/projects/WRONG/settings")[0] == 404
    bad_basic = {"Authorization": "Basic !!!"}
    assert request(f"{keyed.url}/v1/track", event(), headers=bad_basic)[0] == 400
    assert keyed.all()["received"] == 3


def test_slow_clients_get_408_and_the_server_stays_up(tmp_path: Path) -> None:
    limits = Limits(header_timeout=0.5, body_timeout=0.5, max_body_bytes=2 * 1024 * 1024)
    with collector(PLAN, limits=limits) as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow_head:
            slow_head.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\n")  # never finishes
            slow_head.settimeout(5)
            assert slow_head.recv(4096).startswith(b"HTTP/1.1 408")
        with socket.create_connection(("127.0.0.1", port)) as slow_body:
            slow_body.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            slow_body.settimeout(5)
            started = time.monotonic()
            assert slow_body.recv(4096).startswith(b"HTTP/1.1 408")
            assert time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", port)) as huge_head:
            huge_head.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
            huge_head.settimeout(5)
            assert huge_head.recv(4096).startswith(b"HTTP/1.1 431")
        with socket.create_connection(("127.0.0.1", port)) as huge_body:
            # refused from the announced length, before a byte of the body is read
            huge_body.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 3145728\r\n\r\n")
            huge_body.settimeout(5)
            assert huge_body.recv(4096).startswith(b"HTTP/1.1 400")
        assert request(running.url + "/health")[0] == 200


def test_keep_alive_serves_several_requests_on_one_connection(fresh: Collector) -> None:
    port = int(fresh.url.rsplit(":", 1)[1])
    body = orjson.dumps(event())
    auth = base64.b64encode(b"k:").decode()
    one = (f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(one * 3)
        sock.settimeout(5)
        answer = b""
        while answer.count(b"HTTP/1.1 200") < 3:
            answer += sock.recv(65536)
    assert fresh.all()["allowed"] == 3


def test_chunked_body(fresh: Collector) -> None:
    port = int(fresh.url.rsplit(":", 1)[1])
    body = orjson.dumps(event())
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 50]), body[i:i + 50])
                      for i in range(0, len(body), 50)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n" + chunks)
        sock.settimeout(5)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200")
    assert fresh.all()["allowed"] == 1


def test_suppressed_subjects_are_blocked(tmp_path: Path) -> None:
    listing = tmp_path / "suppressed.txt"
    SuppressionList.from_ids(["u-gone"], key=None).write(listing)
    with collector(PLAN, suppression=str(listing)) as running:
        request(f"{running.url}/v1/batch", {"batch": [event(user="u-gone"), event(user="u-ok")]})
        assert [g["event"]["userId"] for g in running.good()] == ["u-ok"]
        assert running.bad()[0]["violations"][0]["type"] == "Suppressed"
        assert "u-gone" not in running.bad()[0]["violations"][0]["description"]


def test_qa_memory_is_bounded(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("qa: {max_events: 5}\n")
    with collector(PLAN, config=cfg) as running:
        request(f"{running.url}/v1/batch", {"batch": [event(mid=f"m{i}") for i in range(40)]})
        kept = running.good()
        assert [g["event"]["messageId"] for g in kept] == [f"m{i}" for i in range(35, 40)]
        assert running.all()["received"] == 40


def test_connections_beyond_the_cap_get_503_and_the_rest_are_served() -> None:
    with collector(PLAN, limits=Limits(max_connections=2)) as running:
        port = int(running.url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            time.sleep(0.2)
            with socket.create_connection(("127.0.0.1", port)) as extra:
                extra.settimeout(5)
                answer = extra.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.2)
        assert request(running.url + "/health")[0] == 200
