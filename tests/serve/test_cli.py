"""``trackplan serve`` run as a user would: alone, with --output-json, with --workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.serve.helpers import PLAN, ServeProcess, event, ndjson_dir, request, wait_for


def test_plan_alone_is_a_local_collector_and_streams_decisions(tmp_path: Path) -> None:
    stream = tmp_path / "decisions.ndjson"
    server = ServeProcess([str(PLAN), "--output-json", str(stream)], cwd=tmp_path).start()
    try:
        ident = {"userId": "u1", "traits": {"email": "jane@example.com"}}
        assert request(f"{server.url}/v1/identify", ident)[0] == 200
        assert request(f"{server.url}/v1/track", event("Nope"))[0] == 200
        status, counts = request(f"{server.url}/trackplan/all")
        assert counts["received"] == 2 and counts["blocked"] == 1
    finally:
        assert server.stop() == 0
    lines = [orjson.loads(line) for line in stream.read_bytes().splitlines()]
    assert [d["decision"] for d in lines] == ["allowed", "blocked"]
    assert b"jane@example.com" not in stream.read_bytes()
    log = server.log()
    assert "every write key is accepted" in log and "jane@example.com" not in log
    for line in log.splitlines():
        if line.startswith("{"):
            assert orjson.loads(line)["level"] in ("info", "warning")  # structured
    assert not (tmp_path / ".trackplan-spool").exists()  # no outputs: nothing spooled


def _two_workers(tmp_path: Path) -> ServeProcess:
    """Two workers writing every allowed event to ``tmp_path/wh``, spools under ``spool``."""
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"outputs:\n  - {{name: wh, destination: Snowflake, "
                   f"file: {{dir: '{tmp_path / 'wh'}'}}}}\n")
    return ServeProcess([str(PLAN), "--config", str(cfg), "--workers", "2",
                         "--spool", str(tmp_path / "spool")], cwd=tmp_path).start()


def test_two_workers_share_the_port_each_with_its_own_spool(tmp_path: Path) -> None:
    server = _two_workers(tmp_path)
    try:
        ids = [f"w-{i}" for i in range(200)]
        for i in range(0, 200, 10):
            # a new connection per request: the kernel spreads them over the workers
            assert request(f"{server.url}/v1/batch",
                           {"batch": [event(mid=m) for m in ids[i:i + 10]]})[0] == 200
        wait_for(lambda: len(ndjson_dir(tmp_path / "wh")) == 200)
    finally:
        assert server.stop() == 0
    assert sorted(e["messageId"] for e in ndjson_dir(tmp_path / "wh")) == sorted(ids)
    spools = sorted(p.name for p in (tmp_path / "spool").iterdir())
    assert spools == ["worker-0", "worker-1"]
    writers = {p.name.rsplit("-", 2)[1] for p in (tmp_path / "wh").glob("*.ndjson")}
    assert len(writers) == 2, "both workers took requests"
    assert os.environ.get("TRACKPLAN_HASH_KEY")


def test_two_workers_answer_qa_from_one_shared_view(tmp_path: Path) -> None:
    server = _two_workers(tmp_path)
    try:
        ids = [f"q-{i}" for i in range(100)]
        for i in range(0, 100, 10):
            batch = [event(mid=m) for m in ids[i:i + 10]] + [event("Nope", mid=f"bad-{i}")]
            assert request(f"{server.url}/v1/batch", {"batch": batch})[0] == 200
        wait_for(lambda: len(ndjson_dir(tmp_path / "wh")) == 100)
        writers = {p.name.rsplit("-", 2)[1] for p in (tmp_path / "wh").glob("*.ndjson")}
        assert len(writers) == 2, "both workers took requests"
        for _ in range(8):  # a new connection each: whichever worker answers, one view
            counts = request(f"{server.url}/trackplan/all")[1]
            assert (counts["received"], counts["allowed"], counts["blocked"]) == (110, 100, 10)
            good = request(f"{server.url}/trackplan/good", {"limit": 15})[1]
            assert [g["event"]["messageId"] for g in good] == ids[-15:]  # in arrival order
            bad = request(f"{server.url}/trackplan/bad?limit=100")[1]
            assert sorted(b["event"]["messageId"] for b in bad) == sorted(
                f"bad-{i}" for i in range(0, 100, 10))
        assert request(f"{server.url}/trackplan/reset", method="POST")[1]["received"] == 0
        for _ in range(4):
            assert request(f"{server.url}/trackplan/all")[1]["received"] == 0
            assert request(f"{server.url}/trackplan/good")[1] == []
    finally:
        assert server.stop() == 0


def _metric(text: str, line_start: str) -> float:
    [value] = [line.rsplit(" ", 1)[1] for line in text.splitlines()
               if line.startswith(line_start + " ")]  # fmt: skip
    return float(value)


def test_two_workers_answer_metrics_summed_over_both(tmp_path: Path) -> None:
    server = _two_workers(tmp_path)
    try:
        for i in range(0, 100, 10):
            batch = [event(mid=f"m-{j}") for j in range(i, i + 10)] + [event("Nope")]
            assert request(f"{server.url}/v1/batch", {"batch": batch})[0] == 200
        wait_for(lambda: len(ndjson_dir(tmp_path / "wh")) == 100)
        writers = {p.name.rsplit("-", 2)[1] for p in (tmp_path / "wh").glob("*.ndjson")}
        assert len(writers) == 2, "both workers took requests"
        allowed = 'trackplan_events_total{decision="allowed",source="default"}'
        blocked = 'trackplan_events_total{decision="blocked",source="default"}'
        for _ in range(6):  # a new connection each: whichever worker answers, every event
            status, text = request(f"{server.url}/metrics")
            assert status == 200
            assert _metric(text, allowed) == 100 and _metric(text, blocked) == 10
            assert _metric(text, 'trackplan_requests_total{kind="batch"}') == 10
            assert "trackplan_spool_bytes" in text and "m-1" not in text
    finally:
        assert server.stop() == 0


def test_config_errors_name_the_file_and_pointer(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("outputs:\n  - {name: x, http: {url: 'http://127.0.0.1:9/v1/batch'}}\n")
    out = subprocess.run([sys.executable, "-m", "trackplan", "serve", str(PLAN), "--config",
                          str(cfg)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert out.returncode != 0
    assert f"{cfg}#/outputs/0" in out.stderr and "destination" in out.stderr
