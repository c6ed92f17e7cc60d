"""Real export shapes, scanned as a user runs ``trackplan scan``: Segment rules with root
definitions and ``call.required``, timestamp-typed columns, empty CSV fields, row and
line numbers in every report, malformed NDJSON lines, and refused inputs and outputs."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.conftest import ECOMMERCE_DIR
from trackplan.batch.scan import ScanOptions, scan
from trackplan.engine import compile_plan
from trackplan.plan.load import load_plan


def trackplan(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *map(str, args)],
        capture_output=True, text=True, timeout=180, env=dict(os.environ),
    )  # fmt: skip


def run(plan: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return trackplan("scan", plan, *args)


#: A Segment rule as its export writes it: definitions at the root of the jsonSchema, a
#: ``$ref`` to them inside ``properties``, and ``properties`` listed in ``required``.
SEGMENT_RULE = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "definitions": {
        "product": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "price": {"type": "number", "minimum": 0}},
            "required": ["sku"],
        }
    },
    "properties": {
        "properties": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string"},
                "products": {"type": "array", "items": {"$ref": "#/definitions/product"}},
            },
            "required": ["order_id"],
        },
        "context": {"type": "object"},
    },
    "required": ["properties"],
}


@pytest.fixture(scope="module")
def segment_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("segment")
    export = base / "segment.json"
    export.write_text(json.dumps({"name": "Shop", "rules": [
        {"type": "TRACK", "key": "Order Completed", "version": 1, "jsonSchema": SEGMENT_RULE}
    ]}))  # fmt: skip
    out = base / "plan"
    result = trackplan("import", "segment", export, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def _orders(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        price = -1.0 if i % 10 == 3 else 5.0
        product: dict[str, Any] = {"sku": None if i % 10 == 7 else f"s{i}", "price": price}
        rows.append(
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": f"m{i}",
                "userId": "u",
                "properties": {"order_id": f"o{i}", "products": [product]},
            }
        )
    return rows


def _enforced_rows(plan_dir: Path, events: list[dict[str, Any]]) -> set[int]:
    """Rows the enforcer finds payload violations in (``userId`` is present in each)."""
    enforcer = compile_plan(load_plan(plan_dir))
    return {
        i
        for i, e in enumerate(events)
        if any(v.pointer.startswith("/properties") for v in enforcer.enforce(e).violations)
    }


def test_segment_root_definitions_and_required_payload(tmp_path: Path, segment_plan: Path) -> None:
    events = _orders(200)
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in e.items() if k != "type"}
                                         for e in events]), nested)  # fmt: skip
    result = run(segment_plan, nested, "--format", "json", "-q", "--report", tmp_path / "n.json")
    assert result.returncode == 1, result.stderr  # not a traceback: exit 1, rows failing
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "n.json").read_text())
    expected = _enforced_rows(segment_plan, events)
    assert len(expected) == 40 and report["invalid_rows"] == len(expected)
    rules = {(r["field"], r["keyword"]): r["rows_failing"] for r in report["by_rule"].values()}
    assert rules == {("products[].price", "minimum"): 20, ("products[].sku", "required"): 20}
    # a flat warehouse table of the same rows: call.required [properties] cannot fail there
    flat = tmp_path / "order_completed.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": e["messageId"], "event": "order_completed",
                                          "user_id": e["userId"],
                                          "event_text": e["event"], **e["properties"]}
                                         for e in events]), flat)  # fmt: skip
    result = run(segment_plan, flat, "--format", "json", "-q", "--report", tmp_path / "f.json")
    assert result.returncode == 1, result.stderr
    assert json.loads((tmp_path / "f.json").read_text())["invalid_rows"] == len(expected)


def test_absent_required_payload_is_reported_where_the_layout_can_tell(
    tmp_path: Path, segment_plan: Path
) -> None:
    events = _orders(20)
    for e in events[:5]:
        del e["properties"]
    path = tmp_path / "e.ndjson"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    enforcer = compile_plan(load_plan(segment_plan))
    want = {i + 1 for i, e in enumerate(events)
            if any(v.pointer == "/properties" for v in enforcer.enforce(e).violations)}  # fmt: skip
    assert want == {1, 2, 3, 4, 5}
    outcome = scan(load_plan(segment_plan), [path])
    rule = outcome.report["by_rule"]["Order Completed v1: properties required"]
    assert rule["rows_failing"] == 5
    assert {s["line"] for s in rule["samples"]} == {1, 2, 3}


def test_timestamp_columns_are_date_times_by_type(tmp_path: Path) -> None:
    plan_dir = tmp_path / "plan"
    (plan_dir / "events").mkdir(parents=True)
    (plan_dir / "plan.yaml").write_text("trackplan: 1\nname: T\nversion: '1'\n")
    (plan_dir / "events" / "shipped.yaml").write_text(
        "name: Order Shipped\nversion: 1\nproperties:\n  type: object\n  properties:\n"
        "    shipped_at: {type: string, format: date-time}\n"
        "    due_at: {format: date-time}\n"
        "    count: {type: integer}\n"
    )
    n = 5000
    base = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    stamps = [base + dt.timedelta(seconds=i) for i in range(n)]
    table = pa.table({
        "event": ["order_shipped"] * n,
        "event_text": ["Order Shipped"] * n,
        "user_id": ["u1"] * n,
        "shipped_at": pa.array([s.replace(tzinfo=None) for s in stamps], pa.timestamp("ms")),
        "due_at": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "count": pa.array([None if i % 2 else s for i, s in enumerate(stamps)],
                          pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    path = tmp_path / "order_shipped.parquet"
    pq.write_table(table, path)
    report = scan(load_plan(plan_dir), [path]).report
    rules = {(r["field"], r["keyword"]): r["rows_failing"] for r in report["by_rule"].values()}
    assert rules == {("count", "type"): n // 2}  # a timestamp is no integer
    assert "Order Shipped" not in report["per_row"]  # by type, vectorised: none per row


def test_empty_csv_fields_are_absent_unless_asked(tmp_path: Path) -> None:
    rows = [{"event": "order_completed", "event_text": "Order Completed", "order_id": "o1",
             "total": 5.0, "currency": "EUR"} for _ in range(30)]  # fmt: skip
    for row in rows[:17]:
        row["order_id"] = ""
    csv = tmp_path / "order_completed.csv"
    pacsv.write_csv(pa.Table.from_pylist(rows), csv)
    args = ("--format", "json", "-q", "--report")
    absent = run(ECOMMERCE_DIR, csv, *args, tmp_path / "a.json")
    kept = run(ECOMMERCE_DIR, csv, *args, tmp_path / "k.json", "--csv-empty-as-string")
    assert absent.returncode == 1 and kept.returncode == 1, absent.stderr + kept.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    k = json.loads((tmp_path / "k.json").read_text())
    assert a["by_rule"]["Order Completed v1: order_id required"]["rows_failing"] == 17
    assert not any(key.endswith("order_id required") for key in k["by_rule"])
    assert any("CSV: an empty field" in note for note in a["representation"])
    text = run(ECOMMERCE_DIR, csv, "-q", "--report", tmp_path / "a.txt")
    assert "cannot be told from an absent value" in (tmp_path / "a.txt").read_text(), text.stderr


def test_rows_and_lines_are_numbered_from_one_in_every_report(tmp_path: Path) -> None:
    events = [{"type": "track", "event": "Products Searched", "messageId": f"m{i}",
               "userId": "u", "properties": {"query": "mugs"}} for i in range(6)]  # fmt: skip
    events[3]["properties"] = {}  # query is required
    lines = [orjson.dumps(e) for e in events]
    lines.insert(2, b"")  # a blank line is still a line
    lines.insert(4, b"{not json")  # malformed: counted, reported, skipped
    path = tmp_path / "e.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    bad_line = 1 + [i for i, line in enumerate(lines) if b'"m3"' in line][0]
    parquet = tmp_path / "e.parquet"
    pq.write_table(pa.Table.from_pylist(events), parquet)
    for fmt in ("text", "json", "html"):
        out = tmp_path / f"r.{fmt}"
        result = run(ECOMMERCE_DIR, path, parquet, "--format", fmt, "-q", "--report", out)
        assert result.returncode == 1, result.stderr
        text = out.read_text()
        assert f"e.ndjson:{bad_line}" in text, fmt
        assert "e.ndjson:5" in text, fmt  # the malformed line
        assert "e.parquet row 4" in text, fmt
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["malformed"] == 1 and not report["valid"]
    assert report["files"][str(path)]["malformed"] == 1
    samples = report["by_rule"]["Products Searched v1: query required"]["samples"]
    assert {(s["file"], s.get("line"), s.get("row")) for s in samples} == {
        (str(path), bad_line, None),
        (str(parquet), None, 4),
    }


def test_only_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b"{oops\n[1, 2\n")
    outcome = scan(load_plan(ECOMMERCE_DIR), [path], ScanOptions())
    assert outcome.report["malformed"] == 2 and outcome.report["rows"] == 0
    assert [w["at"] for w in outcome.report["malformed_lines"]] == [f"{path}:1", f"{path}:2"]


def test_redact_to_refuses_two_inputs_to_one_output(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "x.parquet", tmp_path / "b" / "x.parquet"
    for path in (a, b):
        path.parent.mkdir()
        pq.write_table(pa.Table.from_pylist(_orders(5)), path)
    out = tmp_path / "clean"
    result = run(ECOMMERCE_DIR, a, b, "--redact-to", out, "-q")
    assert result.returncode == 2
    assert "one file" in result.stderr and str(a) in result.stderr and str(b) in result.stderr
    assert not out.exists() or not any(out.rglob("*.parquet"))
    # a directory keeps its files' relative paths: no collision
    result = run(ECOMMERCE_DIR, tmp_path / "a", tmp_path / "b", "--redact-to", out, "-q")
    assert result.returncode == 2  # a/x.parquet and b/x.parquet both land on clean/x.parquet
    result = run(ECOMMERCE_DIR, tmp_path, "--redact-to", tmp_path.parent / "clean2", "-q")
    assert result.returncode in (0, 1), result.stderr
    clean = tmp_path.parent / "clean2"
    written = {p.relative_to(clean).as_posix() for p in clean.rglob("*.parquet")}
    assert written == {"a/x.parquet", "b/x.parquet"}


def test_a_path_matching_no_file_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "day=1").mkdir(parents=True)
    (empty / "_SUCCESS").write_text("")
    result = run(ECOMMERCE_DIR, empty)
    assert result.returncode == 2 and "no parquet, NDJSON or CSV file" in result.stderr
    assert run(ECOMMERCE_DIR, tmp_path / "missing.parquet").returncode == 2
