"""The ``trackplan validate`` command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "plans" / "ecommerce"
EVENTS = ROOT / "examples" / "events.ndjson"


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "TRACKPLAN_HASH_KEY": "test-key-not-secret", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args],
        input=stdin, capture_output=True, env=full_env, cwd=ROOT, timeout=120,
    )


def good_event(**over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": "Product Viewed",
        "userId": "usr_1",
        "anonymousId": None,
        "messageId": "m-1",
        "timestamp": "2026-11-29T10:00:00.000Z",
        "properties": {"product_id": "p-1", "price": 10.0},
        "integrations": {},
    }
    event.update(over)
    return event


def ndjson(events: list[Any]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_bundled_example_reports_and_exits_one() -> None:
    proc = run("validate", str(PLAN), str(EVENTS), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    lines = [ln for ln in EVENTS.read_bytes().splitlines() if ln.strip()]
    assert report["events"] == len(lines)
    assert report["allowed"] + report["blocked"] == report["events"]
    assert report["violations"] == sum(report["by_type"].values()) - report["by_type"].get(
        "Malformed", 0
    )
    assert report["blocked"] > 0 and report["violations"] > 0
    for v in report["first_violations"]:
        assert v["file"].endswith("events.ndjson") and v["line"] >= 1
        assert v["pointer"] == "" or v["pointer"].startswith("/")


def test_clean_input_exits_zero_and_writes_forwarded_events(tmp_path: Path) -> None:
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([good_event(), good_event(messageId="m-2")]))
    out = tmp_path / "out.ndjson"
    proc = run("validate", str(PLAN), str(src), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = [json.loads(x) for x in out.read_bytes().splitlines()]
    assert [e["messageId"] for e in written] == ["m-1", "m-2"]
    assert b"2 events: 2 allowed, 0 blocked" in proc.stdout


def test_malformed_line_is_reported_with_its_number(tmp_path: Path) -> None:
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([good_event()]) + b"{not json\n" + ndjson([good_event()]))
    proc = run("validate", str(PLAN), str(src), "--format", "json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["events"] == 3 and report["malformed"] == 1 and report["allowed"] == 2
    bad = [v for v in report["first_violations"] if v["type"] == "Malformed"]
    assert bad and bad[0]["line"] == 2


def test_batch_body_pretty_printed_and_stdin(tmp_path: Path) -> None:
    item = good_event()
    del item["integrations"]
    body = {"batch": [item, dict(item, messageId="m-9")], "integrations": {"All": True},
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}}}
    text = json.dumps(body, indent=2).encode()
    out = tmp_path / "out.ndjson"
    proc = run("validate", str(PLAN), "-", "--out", str(out), stdin=text)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = [json.loads(x) for x in out.read_bytes().splitlines()]
    assert len(written) == 2
    assert all(e["integrations"] == {"All": True} for e in written)
    assert all(e["context"]["library"]["name"] == "analytics-python" for e in written)


def test_json_array_and_gzip_inputs(tmp_path: Path) -> None:
    arr = tmp_path / "events.json"
    arr.write_text(json.dumps([good_event(), good_event(event="Nope Event")], indent=1))
    gz = tmp_path / "events.ndjson.gz"
    gz.write_bytes(gzip.compress(ndjson([good_event()])))
    proc = run("validate", str(PLAN), str(arr), str(gz), "--format", "json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1  # the unplanned event is blocked by the example controls
    assert report["events"] == 3 and report["blocked"] == 1
    assert report["by_type"] == {"Unplanned-Event": 1}


def test_unreadable_input_and_bad_usage_exit_two(tmp_path: Path) -> None:
    proc = run("validate", str(PLAN), str(tmp_path / "missing.ndjson"))
    assert proc.returncode == 2
    assert b"missing.ndjson" in proc.stderr
    proc = run("validate", str(PLAN))
    assert proc.returncode == 2


def test_output_never_echoes_violating_values(tmp_path: Path) -> None:
    secret = "zz-distinctive-value-4711"
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([good_event(properties={"product_id": 7, "price": secret})]))
    proc = run("validate", str(PLAN), str(src), "--format", "json")
    assert proc.returncode == 1
    assert secret.encode() not in proc.stdout + proc.stderr


def test_failed_run_leaves_no_partial_output(tmp_path: Path) -> None:
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([good_event()] * 50))
    broken = tmp_path / "broken.ndjson.gz"
    broken.write_bytes(gzip.compress(ndjson([good_event()] * 500))[:-40])  # truncated
    out = tmp_path / "out.ndjson"
    proc = run("validate", str(PLAN), str(src), str(broken), "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert b"broken.ndjson.gz" in proc.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ndjson.gz", "in.ndjson"]


@pytest.mark.parametrize("fmt", ["ndjson", "json"])
def test_input_format_override(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "in.txt"
    data = ndjson([good_event()]) if fmt == "ndjson" else json.dumps([good_event()]).encode()
    src.write_bytes(data)
    proc = run("validate", str(PLAN), str(src), "--input-format", fmt, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["allowed"] == 1


def test_deeply_nested_context_is_written_not_a_traceback(tmp_path: Path) -> None:
    # orjson parses 1,024 levels but writes only 255: the command must not crash on it
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([good_event(context={"x": deep})]))
    out = tmp_path / "out.ndjson"
    proc = run("validate", str(PLAN), str(src), "--out", str(out))
    assert b"Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = json.loads(out.read_bytes())
    assert written["context"]["x"] == deep


def test_include_blocked_stamps_events_blocked_before_validation(tmp_path: Path) -> None:
    # an unplanned event is blocked before any schema runs: its written copy still says why
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([good_event(event="Not In The Plan", messageId="m-unplanned")]))
    out = tmp_path / "out.ndjson"
    proc = run("validate", str(PLAN), str(src), "--out", str(out), "--include-blocked")
    assert proc.returncode == 1, proc.stderr
    (line,) = out.read_bytes().splitlines()
    written = json.loads(line)
    violations = written["context"]["protocols"]["violations"]
    assert violations and all(v["type"] and "pointer" in v for v in violations)
    assert written["event"] == "Not In The Plan"
