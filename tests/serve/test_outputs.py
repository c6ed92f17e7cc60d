"""Outputs: forwarding per destination, NDJSON files, the quarantine and replay; an upstream
that fails, stalls and recovers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.serve.helpers import PLAN, ROOT, FakeUpstream, event, ndjson_dir, request, wait_for
from trackplan.serve.outputs import FileOutput, RetryPolicy
from trackplan.testing import collector

FAST = RetryPolicy(initial=0.05, maximum=0.3)


def _config(tmp_path: Path, upstream: str, *, timeout: float = 10) -> Path:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(
        "outputs:\n"
        f"  - {{name: amplitude, destination: Amplitude, http: {{url: '{upstream}', "
        f"write_key_env: AMP_KEY, batch_events: 7, timeout: {timeout}}}}}\n"
        f"  - {{name: warehouse, destination: Snowflake, file: {{dir: '{tmp_path / 'wh'}'}}}}\n"
        f"  - {{name: quarantine, quarantine: {{dir: '{tmp_path / 'q'}'}}}}\n"
    )
    return cfg


def test_each_destination_gets_its_own_copy(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_KEY", "amp-secret")
    with FakeUpstream() as up, collector(PLAN, config=_config(tmp_path, up.url),
                                         retry=FAST) as qa:
        ident = {"userId": "u1", "traits": {"email": "jane@example.com", "first_name": "Jane",
                                            "plan": "pro"}}
        consent = {"consent": {"categoryPreferences": {"analytics": False}}}
        request(f"{qa.url}/v1/batch", {"batch": [
            {**ident, "type": "identify", "messageId": "m-ident"},
            {**event(mid="m-1")},
            {**event(mid="m-2"), "context": consent},   # Amplitude needs analytics consent
            event("Nope", mid="m-3"),                    # blocked: quarantined
        ]})
        wait_for(lambda: len(up.events()) == 2)
        wait_for(lambda: len(ndjson_dir(tmp_path / "q")) == 1)
        wait_for(lambda: len(ndjson_dir(tmp_path / "wh")) == 3)
    amp = up.events()
    assert [e["messageId"] for e in amp] == ["m-ident", "m-1"]
    assert all(e["integrations"] == {"All": False, "Amplitude": True} for e in amp)
    assert up.auth[0] is not None and up.auth[0].startswith("Basic ")
    # Amplitude gets the email hashed and no name (its pii map: {email: hash, ip: mask})
    traits = amp[0]["traits"]
    assert "first_name" not in traits and traits["email"] != "jane@example.com"
    wh = ndjson_dir(tmp_path / "wh")
    assert [e["messageId"] for e in wh] == ["m-ident", "m-1", "m-2"]
    assert wh[0]["integrations"] == {"All": False, "Snowflake": True}
    assert wh[0]["traits"]["first_name"] != "Jane"  # Snowflake: name redacted
    quarantined = ndjson_dir(tmp_path / "q")
    assert quarantined[0]["event"]["messageId"] == "m-3"
    assert quarantined[0]["violations"][0]["type"] == "Unplanned-Event"
    everything = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"jane@example.com" not in everything and b"amp-secret" not in everything


def test_upstream_that_fails_stalls_and_recovers_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_KEY", "k")
    sent = [f"m-{i}" for i in range(60)]
    with FakeUpstream() as up, collector(PLAN, config=_config(tmp_path, up.url, timeout=0.5),
                                         retry=FAST) as qa:
        up.mode = "fail"
        for i in range(0, 20, 5):
            request(f"{qa.url}/v1/batch", {"batch": [event(mid=m) for m in sent[i:i + 5]]})
        wait_for(lambda: up.requests >= 3)
        up.mode, up.stall = "stall", 1.0   # longer than the output's 0.5 s timeout
        for i in range(20, 40, 5):
            request(f"{qa.url}/v1/batch", {"batch": [event(mid=m) for m in sent[i:i + 5]]})
        wait_for(lambda: up.requests >= 6)
        up.mode = "ok"
        for i in range(40, 60, 5):
            request(f"{qa.url}/v1/batch", {"batch": [event(mid=m) for m in sent[i:i + 5]]})
        wait_for(lambda: {e["messageId"] for e in up.events()} >= set(sent), timeout=30)
        status, metrics = request(f"{qa.url}/metrics")
    got = [e["messageId"] for e in up.events()]
    assert set(got) == set(sent)
    # order per source is kept: first deliveries appear in the order sent
    first_seen = list(dict.fromkeys(got))
    assert first_seen == sent
    assert 'trackplan_output_failures_total{output="amplitude",reason="retry"}' in metrics


def test_replay_sends_what_a_newer_plan_allows(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"outputs:\n  - {{name: q, quarantine: {{dir: '{tmp_path / 'q'}'}}}}\n")
    with collector(PLAN, config=cfg) as qa:
        request(f"{qa.url}/v1/batch", {"batch": [
            event("Wishlist Added", mid="w-1", product_id="p-1"),
            event("Other Thing", mid="o-1")]})
        wait_for(lambda: len(ndjson_dir(tmp_path / "q")) == 2)
    newer = tmp_path / "newer"
    subprocess.run(["cp", "-r", str(PLAN), str(newer)], check=True)
    (newer / "events" / "wishlist-added.yaml").write_text(
        "name: Wishlist Added\ndescription: A product was added to the wishlist.\n"
        "properties:\n  type: object\n  properties:\n    product_id: {type: string}\n")
    env = {"PYTHONPATH": str(ROOT), "TRACKPLAN_HASH_KEY": "k", "PATH": "/usr/bin:/bin",
           "REPLAY_KEY": "replay-key"}
    with FakeUpstream() as up:
        out = subprocess.run(
            [sys.executable, "-m", "trackplan", "replay", str(tmp_path / "q"), str(newer),
             "--blocked", str(tmp_path / "still.ndjson"), "--forward", up.url,
             "--write-key-env", "REPLAY_KEY"],
            capture_output=True, env=env, check=True)
    assert [e["messageId"] for e in up.events()] == ["w-1"]
    assert up.auth == ["Basic cmVwbGF5LWtleTo="]  # base64 of "replay-key:"
    passed = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert [e["messageId"] for e in passed] == ["w-1"]
    still = [orjson.loads(line) for line in (tmp_path / "still.ndjson").read_bytes().splitlines()]
    assert [r["event"]["messageId"] for r in still] == ["o-1"]
    assert b"1 pass, 1 still blocked" in out.stderr


def test_a_destination_can_declare_its_output_in_the_plan(tmp_path: Path) -> None:
    plan = tmp_path / "plan"
    subprocess.run(["cp", "-r", str(PLAN), str(plan)], check=True)
    text = (plan / "plan.yaml").read_text()
    out_dir = tmp_path / "snowflake"
    text = text.replace("  - name: Snowflake\n",
                        f"  - name: Snowflake\n    x-serve: {{file: {{dir: '{out_dir}'}}}}\n")
    (plan / "plan.yaml").write_text(text)
    with collector(plan) as qa:
        assert sorted(qa.gateway.outputs) == ["Snowflake"]
        request(f"{qa.url}/v1/track", event(mid="x-1"))
        wait_for(lambda: ndjson_dir(out_dir))
    assert [e["messageId"] for e in ndjson_dir(out_dir)] == ["x-1"]


def test_a_refused_batch_is_counted_and_skipped_not_retried_forever(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_KEY", "k")
    with FakeUpstream() as up, collector(PLAN, config=_config(tmp_path, up.url),
                                         retry=FAST) as qa:
        up.mode = "reject"
        request(f"{qa.url}/v1/batch", {"batch": [event(mid="r-1")]})
        wait_for(lambda: up.requests >= 1)
        wait_for(lambda: 'reason="rejected"' in request(f"{qa.url}/metrics")[1])
        up.mode = "ok"
        request(f"{qa.url}/v1/batch", {"batch": [event(mid="r-2")]})
        wait_for(lambda: up.events())
        assert [e["messageId"] for e in up.events()] == ["r-2"]
        assert up.requests == 2


def test_files_rotate_by_size(tmp_path: Path) -> None:
    output = FileOutput("wh", tmp_path, rotate_bytes=2000)
    events = [orjson.dumps(event(mid=f"f{i}")) for i in range(40)]

    async def write() -> None:
        for start in range(0, 40, 5):
            await output.deliver(events[start:start + 5])
        await output.close()

    asyncio.run(write())
    files = sorted(tmp_path.glob("wh-*.ndjson"))
    assert len(files) >= 3
    assert all(f.stat().st_size < 2000 + 1500 for f in files)
    assert [e["messageId"] for e in ndjson_dir(tmp_path)] == [f"f{i}" for i in range(40)]


def test_quarantine_keeps_the_review_copy_with_pii_handled(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"outputs:\n  - {{name: q, quarantine: {{dir: '{tmp_path / 'q'}'}}}}\n")
    with collector(PLAN, config=cfg) as qa:
        # identify violations block in the example plan: plan is not one of its enum values
        ident = {"userId": "u1", "traits": {"email": "jane@example.com", "plan": "platinum"}}
        request(f"{qa.url}/v1/identify", ident)
        wait_for(lambda: ndjson_dir(tmp_path / "q"))
    record = ndjson_dir(tmp_path / "q")[0]
    assert record["violations"][0]["field"] == "traits.plan"
    assert b"jane@example.com" not in (tmp_path / "q").joinpath(
        next(p.name for p in (tmp_path / "q").iterdir())).read_bytes()
    assert record["event"]["traits"]["email"] != "jane@example.com"
