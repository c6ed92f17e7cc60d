"""The scan's PII pass against the enforcer: the same events through ``enforce`` and through
``scan`` (NDJSON typed and per-row, nested parquet, a flat warehouse table) give the same
PII violations (row, pointer, message), the same blocked rows, and the same values in the
cleaned copy as in the enforcer's forwarded events."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ECOMMERCE_DIR
from trackplan import pointer as jp
from trackplan.batch.engines import numbered
from trackplan.batch.mapping import snake_case
from trackplan.batch.pii import strings_mask
from trackplan.batch.readers import Chunk
from trackplan.batch.rules import to_json
from trackplan.batch.scan import ScanOptions, scan
from trackplan.engine import compile_plan
from trackplan.pii.detect import findings_for
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan

#: Free text with PII of several categories in it, and without.
TEXTS = [
    "red mugs",
    "call me on 07700 900742 after six",
    "mail jane.doe@example.org please",
    "card 4111 1111 1111 1111 expires soon",  # payment_card: reject (blocks the event)
    "iban GB82 WEST 1234 5698 7654 32",
    "size 10 posters",
    "order 12345678",
    "from 198.51.100.23 today",
    "+44 20 7946 0958",
    "winter sale",
]

_MISSING = object()


def make_events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Valid calls of the example plan with PII planted in free text, undeclared strings,
    arrays of objects, ``context.traits``; every call has a user id and an IP address."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        event: dict[str, Any] = {
            "type": "track",
            "messageId": f"m-{i:05d}",
            "userId": f"u{i}",
            "timestamp": "2024-05-01T10:00:00Z",
            "context": {"ip": f"203.0.113.{i % 250}", "library": {"name": "analytics.js"}},
        }
        kind = i % 4
        if kind == 0:
            event["event"] = "Products Searched"
            event["properties"] = {"query": rnd.choice(TEXTS)}
        elif kind == 1:
            event["event"] = "Product Viewed"
            event["properties"] = {
                "product_id": f"p-{i}",
                "price": 9.5,
                "name": "Mug jane.doe@example.org",  # x-pii: false: left alone
                "brand": rnd.choice(TEXTS)[:100],
                "category": rnd.choice(["Mugs", "Posters"]),
            }
        elif kind == 2:
            event["event"] = "Order Completed"
            event["properties"] = {
                "order_id": f"ord-{i}",
                "total": 20.0,
                "currency": "EUR",
                "email": f"buyer{i}@example.com",
                "affiliation": rnd.choice(TEXTS)[:120],
                "products": [
                    {"product_id": f"p-{i}", "price": 10.0, "brand": rnd.choice(TEXTS)[:100]},
                    {"product_id": f"q-{i}", "price": 10.0, "coupon": rnd.choice(TEXTS)[:60]},
                ],
            }
        else:
            event["event"] = "Products Searched"
            event["properties"] = {"query": "mugs"}
            event["context"]["traits"] = {"nickname": rnd.choice(TEXTS)}
        out.append(event)
    return out


def _enforced(plan: Plan, events: list[dict[str, Any]]) -> tuple[
    set[tuple[int, str, str]], list[Any], set[int]
]:  # fmt: skip
    """(index, pointer, message) of PII violations, each result, and the blocked indexes."""
    enforcer = compile_plan(plan)
    found: set[tuple[int, str, str]] = set()
    results, blocked = [], set()
    for i, event in enumerate(events):
        result = enforcer.enforce(event)
        results.append(result)
        if not result.allowed:
            blocked.add(i)
        for v in result.violations:
            assert v.type == "PII", (i, v)  # the events are valid but for their PII
            found.add((i, v.pointer, v.message))
    return found, results, blocked


def _scanned(plan: Plan, path: Path, **options: Any) -> tuple[
    set[tuple[int, str, str]], set[int], set[int], dict[str, Any]
]:  # fmt: skip
    """(row, pointer, message) of the scan's PII findings, the rows they block, the rows
    with any other violation, and the report."""
    found: set[tuple[int, str, str]] = set()
    blocked: set[int] = set()
    other: set[int] = set()

    def collect(chunk: Chunk, result: pa.RecordBatch) -> None:
        for r in result.to_pylist():
            if r["kind"] != "violation":
                continue
            if r["keyword"] != "PII":
                other.add(r["row"])
                continue
            found.add((r["row"], r["pointer"], r["detail"]))
            if r["count"] == 1:
                blocked.add(r["row"])

    outcome = scan(plan, [path], ScanOptions(**options), on_chunk=collect)
    return found, blocked, other, outcome.report


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plan with detections acting as each category's default (``reject`` for
    card numbers), so findings both redact and block."""
    out = tmp_path_factory.mktemp("plan") / "ecommerce"
    shutil.copytree(ECOMMERCE_DIR, out)
    text = (out / "plan.yaml").read_text()
    assert "\npii:\n" in text
    text = text.replace("\npii:\n", "\npii:\n  detection: {action: default}\n")
    (out / "plan.yaml").write_text(text)
    return out


@pytest.fixture(scope="module")
def ecommerce_plan(plan_dir: Path) -> Plan:
    return load_plan(plan_dir)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return make_events(400)


@pytest.fixture(scope="module")
def reference(ecommerce_plan: Plan, events: list[dict[str, Any]]) -> Any:
    return _enforced(ecommerce_plan, events)


def test_the_events_plant_every_kind_of_finding(reference: Any) -> None:
    found, _, blocked = reference
    pointers = {p for _, p, _ in found}
    assert {"/properties/query", "/properties/brand", "/properties/affiliation",
            "/properties/products/0/brand", "/properties/products/1/coupon",
            "/context/traits/nickname"} <= pointers  # fmt: skip
    messages = " ".join(m for _, _, m in found)
    for category in ("phone", "email", "payment_card", "iban", "ip"):
        assert category in messages
    assert blocked  # card numbers: the plan's action for payment_card is reject


@pytest.mark.parametrize("batch_rows", [64, 100_000])
def test_ndjson_findings_equal_the_enforcer(
    tmp_path: Path, ecommerce_plan: Plan, events: list[dict[str, Any]], reference: Any,
    batch_rows: int,
) -> None:  # fmt: skip
    lines = list(events)
    # a JSON null in a payload sends its batch to the per-row path (small batches only)
    lines[5] = {**lines[5], "properties": {**lines[5]["properties"], "note": None}}
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    found, blocked, other, report = _scanned(ecommerce_plan, path, batch_rows=batch_rows)
    want, _, want_blocked = reference
    assert not other
    assert found == want
    assert blocked == want_blocked
    assert report["invalid_rows"] == len({i for i, _, _ in want})


def test_nested_parquet_findings_equal_the_enforcer(
    tmp_path: Path, ecommerce_plan: Plan, events: list[dict[str, Any]], reference: Any
) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(events), path)
    found, blocked, other, _ = _scanned(ecommerce_plan, path, batch_rows=128)
    want, _, want_blocked = reference
    assert not other
    assert found == want
    assert blocked == want_blocked


def test_flat_table_findings_equal_the_enforcer(
    tmp_path: Path, ecommerce_plan: Plan, events: list[dict[str, Any]]
) -> None:
    """A warehouse table of one event: properties as snake_cased columns, context flattened."""
    searched = [e for e in events if e["event"] == "Order Completed"]
    rows = []
    for e in searched:
        row: dict[str, Any] = {"id": e["messageId"], "user_id": e["userId"],
                               "event_text": e["event"], "event": snake_case(e["event"]),
                               "context_ip": e["context"]["ip"]}  # fmt: skip
        row.update({snake_case(k): v for k, v in e["properties"].items()})
        rows.append(row)
    path = tmp_path / "order_completed.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    found, blocked, other, _ = _scanned(ecommerce_plan, path)
    want, _, want_blocked = _enforced(ecommerce_plan, searched)
    assert not other
    assert found == want
    assert blocked == want_blocked


def _run(plan: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackplan", "scan", str(plan), *map(str, args)],
        capture_output=True, text=True, timeout=120, env=dict(os.environ),
    )  # fmt: skip


def _compare_forwarded(
    written: list[dict[str, Any]], events: list[dict[str, Any]], reference: Any
) -> int:
    """Assert the cleaned copy holds, at every declared and detected place, the value the
    enforcer forwards; returns how many values were compared."""
    found, results, blocked = reference
    kept = [(i, r) for i, r in enumerate(results) if i not in blocked]
    assert len(written) == len(kept)
    pointers: dict[int, set[str]] = {}
    for i, p, _ in found:
        pointers.setdefault(i, set()).add(p)
    compared = 0
    for row, (i, result) in zip(written, kept, strict=True):
        places = pointers.get(i, set()) | {"/context/ip", "/properties/email"}
        for p in places:
            want = jp.resolve(result.event, p, _MISSING)
            got = jp.resolve(row, p, _MISSING)
            assert got == want, (i, p)
            compared += want is not _MISSING
        assert "07700 900742" not in json.dumps(row)
        assert "jane.doe@example.org please" not in json.dumps(row)
    return compared


@pytest.mark.parametrize("per_row", [False, True])
def test_redacted_ndjson_holds_what_the_enforcer_forwards(
    tmp_path: Path, plan_dir: Path, events: list[dict[str, Any]], reference: Any, per_row: bool
) -> None:
    lines = list(events)
    if per_row:  # a JSON null in a payload: the whole batch is checked and cleaned per row
        lines[0] = {**lines[0], "properties": {**lines[0]["properties"], "note": None}}
    path = tmp_path / "in" / "events.ndjson"
    path.parent.mkdir()
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    out = tmp_path / "clean"
    result = _run(plan_dir, path, "--redact-to", out, "-q")
    assert result.returncode == 1, result.stderr  # PII findings are violations
    written = [orjson.loads(line) for line in (out / "events.ndjson").read_bytes().splitlines()]
    assert all("__json__" not in row and row["context"]["ip"].endswith(".0") for row in written)
    assert _compare_forwarded(written, events, reference) > 500


def test_redacted_parquet_holds_what_the_enforcer_forwards(
    tmp_path: Path, plan_dir: Path, events: list[dict[str, Any]], reference: Any
) -> None:
    path = tmp_path / "in" / "events.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(events), path)
    out = tmp_path / "clean"
    result = _run(plan_dir, path, "--redact-to", out, "-q", "--format", "json")
    assert result.returncode == 1, result.stderr
    written = [to_json(r) for r in pq.read_table(out / "events.parquet").to_pylist()]
    assert _compare_forwarded(written, events, reference) > 500


def test_report_names_findings_without_their_values(
    tmp_path: Path, plan_dir: Path, events: Any
) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    for fmt in ("text", "json", "html"):
        result = _run(plan_dir, path, "--format", fmt, "-q", "--report", tmp_path / f"r.{fmt}")
        assert result.returncode == 1, result.stderr
        text = (tmp_path / f"r.{fmt}").read_text()
        assert "PII" in text and "/properties/query" in text
        for planted in ("07700 900742", "jane.doe@example.org", "4111 1111", "GB82 WEST"):
            assert planted not in text


def test_numbered_result_is_what_reports_show(tmp_path: Path, ecommerce_plan: Plan) -> None:
    """Findings are reported at their NDJSON line (from 1), blank lines counted."""
    events = make_events(8)
    path = tmp_path / "e.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events).replace(b"}\n{", b"}\n\n{"))
    shown: set[int] = set()

    def collect(chunk: Chunk, result: pa.RecordBatch) -> None:
        for r in numbered(chunk, result).to_pylist():
            if r["kind"] == "violation":
                shown.add(r["row"])

    scan(ecommerce_plan, [path], on_chunk=collect)
    lines = path.read_bytes().split(b"\n")
    enforcer = compile_plan(ecommerce_plan)
    expected = {n for n, line in enumerate(lines, 1)
                if line.strip() and enforcer.enforce(orjson.loads(line)).violations}  # fmt: skip
    assert shown and shown == expected


_PREFIXES = ["ord-", "chk_", "sk-", "ghp_", "npm_", "xoxb-", "glpat-", "AB", "usr", "x%", "a.", ""]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(_PREFIXES), st.text("0123456789", min_size=1, max_size=24)
            ).map("".join),
            st.text(min_size=0, max_size=30),
            st.from_regex(r"[a-z]{1,6}[-_ ]?[0-9 ().+/-]{1,20}", fullmatch=True),
        ),
        min_size=1,
        max_size=300,
    ),
    key=st.sampled_from(["order_id", "sku", "query", "note", "app_version"]),
)
def test_column_prefilter_keeps_every_string_the_detectors_flag(
    values: list[str], key: str
) -> None:
    """No string the enforcer's detectors report under ``key`` is ruled out column-wise."""
    # repeated so the id-shape sample sees the prefixes, as a real batch does
    column = pa.array(values * max(1, 600 // len(values)))
    mask = strings_mask(column, key)
    for value, kept in zip(column.to_pylist(), mask, strict=True):
        if findings_for(key, value):
            assert kept, (key, value)


def test_dictionary_encoded_free_text_is_scanned_by_its_values(ecommerce_plan: Plan) -> None:
    # declared free text (coupon: free_text, allow) read dictionary-encoded, as parquet
    # readers hand it: only rows whose value could hold PII are candidates, not every row
    from trackplan.batch.pii import RowPii, batch_policy

    rule = ecommerce_plan.event("Order Completed", 1)
    pii = RowPii(batch_policy(ecommerce_plan), rule, "track")
    coupons = pa.array(["WINTER", "SAVE10", "call 07700 900742", "WINTER"]).dictionary_encode()
    properties = pa.StructArray.from_arrays([coupons], names=["coupon"])
    mask = pii.candidates({"properties": properties}, len(coupons))
    assert mask.tolist() == [False, False, True, False]
    plain = pa.StructArray.from_arrays([coupons.dictionary_decode()], names=["coupon"])
    assert pii.candidates({"properties": plain}, len(coupons)).tolist() == mask.tolist()


def test_dictionary_encoded_free_text_with_nulls_and_without_pii(ecommerce_plan: Plan) -> None:
    # a null index (an absent coupon) is no candidate, and a dictionary with nothing a
    # detector could find makes no row one, both as the decoded column says
    from trackplan.batch.pii import RowPii, batch_policy

    rule = ecommerce_plan.event("Order Completed", 1)
    pii = RowPii(batch_policy(ecommerce_plan), rule, "track")
    for values, expected in (
        ([None, "call 07700 900742", None, "WINTER"], [False, True, False, False]),
        (["WINTER", None, "SAVE10"], [False, False, False]),
    ):
        coupons = pa.array(values, pa.string()).dictionary_encode()
        assert coupons.indices.null_count == values.count(None)
        encoded = pa.StructArray.from_arrays([coupons], names=["coupon"])
        plain = pa.StructArray.from_arrays([coupons.dictionary_decode()], names=["coupon"])
        mask = pii.candidates({"properties": encoded}, len(values))
        assert mask.tolist() == expected
        assert pii.candidates({"properties": plain}, len(values)).tolist() == expected
