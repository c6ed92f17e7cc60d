"""The vectorised scan against the per-row engine on generated exports with injected violations."""

from __future__ import annotations

import dataclasses
import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.batch.gen import flat_table, generate, nested_table
from trackplan import pointer as jp
from trackplan.batch.check import JSON_COLUMN, BatchPlan, check_batch
from trackplan.batch.envelope import EnvelopeCheck
from trackplan.batch.mapping import snake_case
from trackplan.batch.readers import Chunk
from trackplan.batch.rules import row_failures, to_json
from trackplan.batch.scan import ScanOptions, scan
from trackplan.engine import compile_plan
from trackplan.plan.model import Plan
from trackplan.schema.violations import ADDITIONAL_PROPERTIES, ENVELOPE, UNPLANNED_EVENT

N = 4000


def _write_ndjson(path: Path, events: list[Any]) -> None:
    """``events`` written to ``path``, one JSON line each."""
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))


@pytest.fixture(scope="module")
def generated() -> tuple[list[dict[str, Any]], Counter[Any], set[int]]:
    return generate(N, seed=11, call=True)


def _scan_rows(
    plan: Plan, paths: list[Path], **kw: Any
) -> tuple[dict[str, Any], set[tuple[str, int]], set[tuple[str, int, str, str]]]:
    """The report, the flagged (file, row) and (file, row, field, keyword) of a scan."""
    flagged: set[tuple[str, int]] = set()
    detail: set[tuple[str, int, str, str]] = set()

    def collect(chunk: Chunk, result: pa.RecordBatch) -> None:
        for r in result.to_pylist():
            if r["kind"] == "violation":
                flagged.add((r["file"], r["row"]))
                detail.add((r["file"], r["row"], r["field"], r["keyword"]))

    outcome = scan(plan, paths, ScanOptions(**kw), on_chunk=collect)
    return outcome.report, flagged, detail


def _by_rule(report: dict[str, Any]) -> Counter[tuple[str, int, str, str]]:
    return Counter(
        {(r["event"], r["version"], r["field"], r["keyword"]): r["rows_failing"]
         for r in report["by_rule"].values()}
    )  # fmt: skip


def _per_row(plan: Plan, rows: list[dict[str, Any]]) -> dict[int, set[tuple[str, str]]]:
    """The per-row reference: each row's payload through the rule's jsonschema-rs validator,
    and its envelope and context through the common rule's."""
    bp = BatchPlan.build(plan)
    assert bp.common is not None
    out: dict[int, set[tuple[str, str]]] = {}
    for i, row in enumerate(rows):
        protocols = (row.get("context") or {}).get("protocols") or {}
        compiled = bp.select("track", row["event"], protocols.get("event_version"))
        assert compiled is not None
        failures = row_failures(compiled.validator, to_json(row["properties"]))
        call = to_json({"messageId": row["messageId"], "context": row["context"]})
        failures |= row_failures(bp.common.validator, call)
        failures |= {(f, "envelope") for f in EnvelopeCheck("track").row(row)}
        if failures:
            out[i] = failures
    return out


def test_generated_rows_break_the_common_rule(generated: Any) -> None:
    """The differential data holds every kind of envelope and context violation."""
    _, injected, _ = generated
    call_keys = {(f, k) for (_, _, f, k) in injected}
    assert {("context.ip", "anyOf"), ("context.userAgent", "maxLength"),
            ("messageId", "maxLength"), ("messageId", "minLength")} <= call_keys  # fmt: skip


def test_nested_parquet_matches_enforcer_and_injected_counts(
    tmp_path: Path, ecommerce_plan: Plan, generated: Any
) -> None:
    rows, injected, bad = generated
    path = tmp_path / "export.parquet"
    pq.write_table(nested_table(rows), path, compression="zstd", row_group_size=1500)
    report, flagged, detail = _scan_rows(ecommerce_plan, [path], batch_rows=1000)
    assert _by_rule(report) == injected
    assert {row for _, row in flagged} == bad
    assert report["rows"] == N and report["invalid_rows"] == len(bad)
    # the whole-call enforcer flags the same rows through their payload violations
    enforcer = compile_plan(ecommerce_plan)
    by_enforcer = set()
    for i, row in enumerate(rows):
        event = to_json({**row, "userId": "u1"})
        result = enforcer.enforce(event)
        if any(v.pointer.startswith(("/properties", "/context", "/messageId"))
               for v in result.violations):  # fmt: skip
            by_enforcer.add(i)
    assert by_enforcer == bad
    # and field by field, the per-row validator agrees with every vectorised failure
    reference = _per_row(ecommerce_plan, rows)
    expected = {(str(path), i, f, k) for i, fails in reference.items() for f, k in fails}
    assert detail == expected


def test_flat_warehouse_table(tmp_path: Path, ecommerce_plan: Plan, generated: Any) -> None:
    rows, injected, _ = generated
    table = flat_table(rows, "Order Completed")
    path = tmp_path / "order_completed.parquet"
    pq.write_table(table, path)
    report, flagged, _ = _scan_rows(ecommerce_plan, [path])
    expected = Counter({k: v for k, v in injected.items() if k[0] == "Order Completed"})
    assert _by_rule(report) == expected
    assert report["rows"] == table.num_rows
    # camelCase columns map through an override, and unknown names still scan
    renamed = table.rename_columns(
        ["orderId" if n == "order_id" else n for n in table.column_names]
    )
    pq.write_table(renamed, path)
    from trackplan.batch.mapping import LayoutOptions

    report2, _, _ = _scan_rows(
        ecommerce_plan, [path], layout=LayoutOptions(columns={"order_id": "orderId"})
    )
    assert _by_rule(report2) == expected


@pytest.mark.parametrize("compress", [False, True])
def test_ndjson_plain_and_gzip(
    tmp_path: Path, ecommerce_plan: Plan, generated: Any, compress: bool
) -> None:
    rows, injected, bad = generated
    data = b"".join(orjson.dumps(to_json(r)) + b"\n" for r in rows)
    path = tmp_path / ("events.ndjson.gz" if compress else "events.ndjson")
    path.write_bytes(gzip.compress(data) if compress else data)
    report, flagged, _ = _scan_rows(ecommerce_plan, [path], batch_rows=700)
    assert _by_rule(report) == injected
    assert {row for _, row in flagged} == bad


def test_ndjson_mixed_types_fall_back_per_row(tmp_path: Path, ecommerce_plan: Plan) -> None:
    rows, injected, bad = generate(300, seed=3, call=True)
    lines = [to_json(r) for r in rows]
    target = next(
        i for i, r in enumerate(lines) if r["event"] == "Order Completed" and i not in bad
    )
    lines[target]["properties"]["total"] = "12.50"  # a string where every other row has a number
    path = tmp_path / "mixed.ndjson"
    _write_ndjson(path, lines)
    report, flagged, _ = _scan_rows(ecommerce_plan, [path])
    version = (lines[target].get("context", {}).get("protocols") or {}).get("event_version", 1)
    injected[("Order Completed", version, "total", "type")] += 1
    assert _by_rule(report) == injected
    assert {row for _, row in flagged} == bad | {target}


def test_csv(tmp_path: Path, ecommerce_plan: Plan, generated: Any) -> None:
    rows, injected, bad = generated
    table = flat_table(rows, "Product Added")
    path = tmp_path / "product_added.csv"
    pacsv.write_csv(table, path)
    # a CSV cannot tell an empty messageId from an absent one: read as sent, "" breaks
    # minLength, as the parquet scan of the same table says
    report, _, _ = _scan_rows(ecommerce_plan, [path], csv_empty_as_string=True)
    expected = Counter({k: v for k, v in injected.items() if k[0] == "Product Added"})
    assert _by_rule(report) == expected
    assert report["rows"] == table.num_rows
    # read as absent (the default), nothing is there to be too short; the report says why
    absent, _, _ = _scan_rows(ecommerce_plan, [path])
    empty = ("Product Added", 1, "messageId", "minLength")
    assert expected[empty] and _by_rule(absent) == expected - Counter({empty: expected[empty]})
    assert any("CSV: an empty field" in note for note in absent["representation"])


def test_hive_partitioned_directory(tmp_path: Path, ecommerce_plan: Plan, generated: Any) -> None:
    rows, injected, bad = generated
    root = tmp_path / "export"
    for day in range(3):
        part = [r for i, r in enumerate(rows) if i % 3 == day]
        directory = root / f"event_date=2026-11-0{day + 1}"
        directory.mkdir(parents=True)
        pq.write_table(nested_table(part), directory / "part-0.parquet")
    (root / "_SUCCESS").write_text("")
    report, flagged, _ = _scan_rows(ecommerce_plan, [root])
    assert _by_rule(report) == injected
    assert len(report["files"]) == 3
    assert report["invalid_rows"] == len(bad)


def test_check_batch_is_pure_and_offsets_rows(ecommerce_plan: Plan, generated: Any) -> None:
    rows, _, bad = generated
    batch = nested_table(rows[:500]).combine_chunks().to_batches()[0]
    bp = BatchPlan.build(ecommerce_plan)
    first = check_batch(bp, batch, file="f", offset=1000)
    again = check_batch(bp, batch, file="f", offset=1000)
    assert first.equals(again)
    flagged = {r["row"] for r in first.to_pylist() if r["kind"] == "violation"}
    assert flagged == {i + 1000 for i in bad if i < 500}


def test_example_exports_scan(ecommerce_plan: Plan) -> None:
    """The committed examples: both layouts report the same Order Completed failures."""
    root = Path(__file__).resolve().parents[2] / "examples"
    nested = scan(ecommerce_plan, [root / "export.parquet"]).report
    flat = scan(ecommerce_plan, [root / "warehouse"]).report
    assert nested["invalid_rows"] > 0 and nested["unplanned"] == {}
    only_orders = {k: v["rows_failing"] for k, v in nested["by_rule"].items()
                   if v["event"] == "Order Completed"}  # fmt: skip
    assert only_orders == {k: v["rows_failing"] for k, v in flat["by_rule"].items()}
    assert flat["rows"] == sum(
        v["rows"] for v in nested["by_event"].values() if v["event"] == "Order Completed"
    )


def test_ndjson_null_is_not_absent(tmp_path: Path, ecommerce_plan: Plan) -> None:
    """A JSON null in NDJSON breaks `type` (as the per-row engine says); an absent key not."""
    lines = [
        {"type": "track", "event": "Signed Up", "userId": "u1", "properties": {"method": "email"}},
        {"type": "track", "event": "Signed Up", "userId": "u1",
         "properties": {"method": "email", "email": None}},
        {"type": "track", "event": "Signed Up", "userId": "u1",
         "properties": None},  # breaks type, only
    ]
    path = tmp_path / "nulls.ndjson"
    _write_ndjson(path, lines)
    report, flagged, detail = _scan_rows(ecommerce_plan, [path])
    assert flagged == {(str(path), 1), (str(path), 2)}
    # a null payload breaks the payload's type and the envelope's (as the enforcer says)
    assert detail == {(str(path), 1, "email", "type"), (str(path), 2, "", "type"),
                      (str(path), 2, "properties", "envelope")}  # fmt: skip
    enforcer = compile_plan(ecommerce_plan)
    assert {(_field(v.pointer), v.keyword) for v in enforcer.enforce(lines[2]).violations
            if v.type != ENVELOPE} == {("", "type")}  # fmt: skip
    assert {(v.type, v.pointer) for v in enforcer.enforce(lines[2]).violations
            if v.type == ENVELOPE} == {(ENVELOPE, "/properties")}  # fmt: skip


def test_identify_rows_check_traits(tmp_path: Path, ecommerce_plan: Plan) -> None:
    """Nested rows of several call types: each checks its own payload column."""
    rows = [
        {
            "type": "identify",
            "userId": "u1",
            "event": None,
            "traits": {"email": "nope", "plan": "pro"},
            "properties": None,
        },  # fmt: skip
        {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com", "plan": "gold"}},
        {"type": "track", "event": "Signed Up", "userId": "u1", "properties": {"method": "email"}},
        {"type": "track", "event": "Wishlist Viewed", "userId": "u1", "properties": {}},
    ]
    path = tmp_path / "calls.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    report, flagged, detail = _scan_rows(ecommerce_plan, [path])
    assert detail == {
        (str(path), 0, "email", "format"),
        (str(path), 1, "plan", "enum"),
        (str(path), 3, "event", "unplanned"),
    }
    assert report["by_event"]["identify v1"]["rows"] == 2
    assert report["by_event"]["Wishlist Viewed (not in the plan)"]["invalid_rows"] == 1


def test_envelope_samples_name_the_call_column_and_mask_declared_pii(
    tmp_path: Path, ecommerce_plan: Plan, generated: Any
) -> None:
    """Common-rule violations sample the call's column; the plan's x-pii on context.ip masks."""
    rows, _, _ = generated
    path = tmp_path / "orders.parquet"
    pq.write_table(flat_table(rows, "Order Completed"), path)
    report = scan(ecommerce_plan, [path]).report
    ip_rules = [r for r in report["by_rule"].values() if r["field"] == "context.ip"]
    assert ip_rules and all(r["keyword"] == "anyOf" for r in ip_rules)
    samples = [s for r in ip_rules for s in r["samples"]]
    assert samples and {s["column"] for s in samples} == {"context_ip"}
    assert not any("not-an-ip" in (s["value"] or "") or "300.1" in (s["value"] or "")
                   for s in samples)  # fmt: skip
    long_ids = [r for r in report["by_rule"].values() if r["field"] == "messageId"]
    assert long_ids and {s["column"] for r in long_ids for s in r["samples"]} == {"id"}


# -- unplanned events and closed objects, against the enforcer ------------------------

UNPLANNED = "Wishlist Viewed"
Detail = dict[int, set[tuple[str, str]]]
RuleCounts = Counter[tuple[str, int, str, str]]
UNPLANNED_TYPES = (ADDITIONAL_PROPERTIES, UNPLANNED_EVENT)


def _allow_unplanned(plan: Plan) -> Plan:
    """``plan`` letting unplanned track events through (Segment's default)."""
    track = dataclasses.replace(plan.controls.track, unplanned_events="allow")
    return dataclasses.replace(plan, controls=dataclasses.replace(plan.controls, track=track))


def _close_context(plan: Plan) -> Plan:
    """``plan`` whose common rule closes ``context`` to undeclared keys."""
    common = plan.common
    assert common is not None and isinstance(common.call, dict)
    context = {**common.call["properties"]["context"], "additionalProperties": False}
    call = {**common.call, "properties": {**common.call["properties"], "context": context}}
    rules = tuple(dataclasses.replace(r, call=call) if r is common else r for r in plan.rules)
    return dataclasses.replace(plan, rules=rules)


def _field(pointer: str) -> str:
    """An enforcer violation's pointer in the scan's field notation."""
    parts = jp.parse(pointer)
    if parts[:1] in (["properties"], ["traits"]):
        parts = parts[1:]
    return ".".join("[]" if p.isdigit() else p for p in parts).replace(".[]", "[]")


def _envelope_field(pointer: str) -> str:
    """An envelope violation's pointer as the scan names it: the call field (``traits``
    for a payload that is no object), ``""`` for the call itself."""
    return ".".join(jp.parse(pointer))


def _keyword(v: Any) -> str:
    """The scan's keyword for an enforcer violation: ``envelope`` for the envelope's,
    ``unplanned`` for what it blocks as unplanned, else the JSON Schema keyword."""
    if v.type == ENVELOPE:
        return "envelope"
    return str(v.keyword or ("unplanned" if v.type in UNPLANNED_TYPES else ""))


def _enforced(plan: Plan, events: list[dict[str, Any]]) -> tuple[Detail, RuleCounts]:
    """What ``enforce`` says of each event (the envelope's event name aside: the scan names
    it ``event``, by keyword): (field, keyword) per failing event, and rows failing per
    rule."""
    enforcer = compile_plan(plan)
    detail: Detail = {}
    counts: RuleCounts = Counter()
    for i, event in enumerate(events):
        result = enforcer.enforce(event)  # as written: the envelope is checked too
        # the scan names what the enforcer blocks as unplanned by its keyword, "unplanned"
        fails = {(_envelope_field(v.pointer) if v.type == ENVELOPE else _field(v.pointer),
                  _keyword(v)) for v in result.violations
                 if not (v.type == ENVELOPE and v.pointer == "/event")}  # fmt: skip
        if not fails:
            continue
        detail[i] = fails
        rule = result.rule
        kind = event.get("type", "track")
        event_key = (
            (rule.name or rule.kind, rule.version)
            if rule is not None
            else (event.get("event") if kind == "track" else kind, 0)
        )
        for fld, keyword in fails:
            counts[(str(event_key[0]), event_key[1], fld, keyword)] += 1
    return detail, counts


def _scan_detail(plan: Plan, path: Path, **kw: Any) -> tuple[dict[str, Any], Detail, set[str]]:
    """A scan's report, its (field, keyword) per failing row, and the kinds of chunks
    checked (``typed`` Arrow columns, ``json`` rows checked per row)."""
    detail: Detail = {}
    kinds: set[str] = set()

    def collect(chunk: Chunk, result: pa.RecordBatch) -> None:
        kinds.add("json" if JSON_COLUMN in chunk.batch.schema.names else "typed")
        for r in result.to_pylist():
            if r["kind"] == "violation":
                detail.setdefault(r["row"], set()).add((r["field"], r["keyword"]))

    report = scan(plan, [path], ScanOptions(**kw), on_chunk=collect).report
    # without on_chunk only the columns the checks need are read: the same report
    assert scan(plan, [path], ScanOptions(**kw)).report == report
    return report, detail, kinds


def _with_unplanned(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with every third one renamed to an event the plan does not have."""
    return [{**r, "event": UNPLANNED} if i % 3 == 0 else r for i, r in enumerate(rows)]


@pytest.fixture(scope="module")
def unplanned_rows(generated: Any) -> list[dict[str, Any]]:
    rows, _, _ = generated
    return _with_unplanned(rows[:1500])


def _assert_matches(report: dict[str, Any], detail: Detail, plan: Plan, events: list[Any]) -> None:
    expected_detail, expected_counts = _enforced(plan, events)
    assert detail == expected_detail
    assert _by_rule(report) == expected_counts
    assert report["invalid_rows"] == len(expected_detail)


def test_unplanned_events_checked_against_common_rule_nested_parquet(
    tmp_path: Path, ecommerce_plan: Plan, unplanned_rows: list[dict[str, Any]]
) -> None:
    plan = _allow_unplanned(ecommerce_plan)
    path = tmp_path / "export.parquet"
    pq.write_table(nested_table(unplanned_rows), path, row_group_size=500)
    report, detail, _ = _scan_detail(plan, path, batch_rows=400)
    events = [to_json(r) for r in unplanned_rows]
    _assert_matches(report, detail, plan, events)
    unplanned = [i for i, r in enumerate(unplanned_rows) if r["event"] == UNPLANNED]
    failing = [i for i in unplanned if i in detail]
    # not vacuous: unplanned rows with and without common-rule violations
    assert 10 <= len(failing) < len(unplanned)
    assert {k for i in failing for k in detail[i]} >= {("context.ip", "anyOf"),
                                                      ("messageId", "minLength")}  # fmt: skip
    assert report["unplanned"] == {UNPLANNED: len(unplanned)}
    assert report["by_event"][f"{UNPLANNED} (not in the plan)"]["rows"] == len(unplanned)
    # the blocking plan blocks each of them as unplanned and, as the enforcer, checks
    # nothing else of theirs: not their common-rule failures either
    blocked, blocked_detail, _ = _scan_detail(ecommerce_plan, path, batch_rows=400)
    _assert_matches(blocked, blocked_detail, ecommerce_plan, events)
    assert all(blocked_detail[i] == {("event", "unplanned")} for i in unplanned)


def test_unplanned_events_checked_against_common_rule_flat_table(
    tmp_path: Path, ecommerce_plan: Plan, unplanned_rows: list[dict[str, Any]]
) -> None:
    plan = _allow_unplanned(ecommerce_plan)
    path = tmp_path / "wishlist_viewed.parquet"
    table = flat_table(unplanned_rows, UNPLANNED)
    assert "context_ip" in table.column_names and "id" in table.column_names
    pq.write_table(table, path)
    report, detail, _ = _scan_detail(plan, path)
    events = [to_json(r) for r in unplanned_rows if r["event"] == UNPLANNED]
    _assert_matches(report, detail, plan, events)
    assert detail and len(detail) < len(events)
    assert report["unplanned"] == {UNPLANNED: len(events)}
    blocked, blocked_detail, _ = _scan_detail(ecommerce_plan, path)
    _assert_matches(blocked, blocked_detail, ecommerce_plan, events)
    assert blocked_detail == {i: {("event", "unplanned")} for i in range(len(events))}


def test_unplanned_events_checked_against_common_rule_ndjson(
    tmp_path: Path, ecommerce_plan: Plan, unplanned_rows: list[dict[str, Any]]
) -> None:
    """Typed NDJSON chunks and chunks checked per row (a library name of another type)."""
    plan = _allow_unplanned(ecommerce_plan)
    events = [to_json(r) for r in unplanned_rows]
    for i, event in enumerate(events[:600]):
        library: dict[str, Any] = {"name": "analytics.js", "version": "5.0"}
        if event["event"] == UNPLANNED and i % 4 == 0:
            library["name"] = 3  # breaks the common rule's context.library.name type
        event["context"]["library"] = library
    path = tmp_path / "events.ndjson"
    _write_ndjson(path, events)
    report, detail, kinds = _scan_detail(plan, path, batch_rows=300)
    assert kinds == {"typed", "json"}
    _assert_matches(report, detail, plan, events)
    assert ("context.library.name", "type") in {k for fails in detail.values() for k in fails}
    # blocking them, the enforcer reports nothing but the unplanned event, in both paths
    blocked, blocked_detail, kinds = _scan_detail(ecommerce_plan, path, batch_rows=300)
    assert kinds == {"typed", "json"}
    _assert_matches(blocked, blocked_detail, ecommerce_plan, events)
    unplanned = [i for i, e in enumerate(events) if e["event"] == UNPLANNED]
    assert unplanned and all(blocked_detail[i] == {("event", "unplanned")} for i in unplanned)


def test_unplanned_events_dask_equals_local(
    tmp_path: Path, ecommerce_plan: Plan, unplanned_rows: list[dict[str, Any]]
) -> None:
    pytest.importorskip("dask.dataframe")
    plan = _allow_unplanned(ecommerce_plan)
    path = tmp_path / "export.parquet"
    pq.write_table(nested_table(unplanned_rows), path, row_group_size=500)
    local = scan(plan, [path]).report
    dask = scan(plan, [path], ScanOptions(engine="dask")).report
    assert dask == local
    assert any(r["event"] == UNPLANNED for r in local["by_rule"].values())


def test_closed_context_catches_undeclared_nested_keys(
    tmp_path: Path, ecommerce_plan: Plan, unplanned_rows: list[dict[str, Any]]
) -> None:
    """``context.protocols`` is undeclared: rows carrying it break the closed context."""
    plan = _close_context(_allow_unplanned(ecommerce_plan))
    path = tmp_path / "export.parquet"
    pq.write_table(nested_table(unplanned_rows), path)
    report, detail, _ = _scan_detail(plan, path)
    _assert_matches(report, detail, plan, [to_json(r) for r in unplanned_rows])
    assert any(("context", "additionalProperties") in fails for fails in detail.values())


def test_closed_context_catches_undeclared_flat_context_columns(
    tmp_path: Path, ecommerce_plan: Plan, unplanned_rows: list[dict[str, Any]]
) -> None:
    """Undeclared context_* columns count where they hold a value; a declared object's
    flattened children (context_library_name) and a scalar's look-alikes are told apart."""
    plan = _close_context(_allow_unplanned(ecommerce_plan))
    rows = [r for r in unplanned_rows if r["event"] in ("Order Completed", UNPLANNED)]
    for event in (UNPLANNED, "Order Completed"):
        chosen = [r for r in rows if r["event"] == event]
        table = flat_table(chosen, event)
        n = table.num_rows
        page = pa.array([f"/p/{i}" if i % 5 == 0 else None for i in range(n)], pa.string())
        country = pa.array(["GB" if i % 7 == 0 else None for i in range(n)], pa.string())
        table = table.append_column("context_library_name", pa.array(["analytics.js"] * n))
        table = table.append_column("context_page_path", page)
        table = table.append_column("context_ip_country", country)
        path = tmp_path / f"{snake_case(event)}.parquet"
        pq.write_table(table, path)
        needed = BatchPlan.build(plan).needed_columns(table.schema)
        assert needed is not None and {"context_page_path", "context_ip_country"} <= set(needed)
        events = []
        for i, r in enumerate(chosen):
            context = {**r["context"], "library": {"name": "analytics.js"}}
            if i % 5 == 0:
                context["page"] = {"path": f"/p/{i}"}
            if i % 7 == 0:
                context["ip_country"] = "GB"
            events.append(to_json({**r, "context": context}))
        report, detail, _ = _scan_detail(plan, path)
        _assert_matches(report, detail, plan, events)
        closed = {i for i, fails in detail.items() if ("context", "additionalProperties") in fails}
        versions = [(r["context"]["protocols"] or {}).get("event_version") for r in chosen]
        assert closed == {i for i in range(n) if i % 5 == 0 or i % 7 == 0 or versions[i]}


def test_calls_without_a_rule_checked_against_common_rule(
    tmp_path: Path, ecommerce_plan: Plan
) -> None:
    """Screen and alias calls (the plan has no rule for them) and identify calls: the
    common rule applies to each, in parquet and in NDJSON checked per row."""
    plan = _allow_unplanned(ecommerce_plan)
    rows: list[dict[str, Any]] = []
    for i in range(60):
        kind = ("screen", "alias", "identify", "track")[i % 4]
        row: dict[str, Any] = {"type": kind, "messageId": f"m{i}",
                               "context": {"ip": "198.51.100.7", "userAgent": "ua"}}  # fmt: skip
        if kind == "track":
            row["event"] = UNPLANNED
        if kind == "identify":
            row["traits"] = {"plan": "pro"}
        if i % 3 == 0:
            row["context"]["ip"] = "not-an-ip"
        if i % 5 == 0:
            row["messageId"] = ""
        rows.append(row)
    path = tmp_path / "calls.parquet"
    keys = list(dict.fromkeys(k for r in rows for k in r))  # from_pylist reads row 0's keys
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows]), path)
    report, detail, _ = _scan_detail(plan, path)
    _assert_matches(report, detail, plan, rows)
    assert report["unplanned"] == {"alias": 15, "screen": 15, UNPLANNED: 15}
    assert {"screen (not in the plan)", "alias (not in the plan)"} <= set(report["by_event"])
    lines = [{**r, "traits": {"plan": None}} if r["type"] == "identify" else r for r in rows]
    ndjson = tmp_path / "calls.ndjson"
    _write_ndjson(ndjson, lines)
    report, detail, kinds = _scan_detail(plan, ndjson)
    assert kinds == {"json"}  # a JSON null in a payload: every row checked per row
    _assert_matches(report, detail, plan, lines)
    assert report["unplanned"] == {"alias": 15, "screen": 15, UNPLANNED: 15}


# -- unplanned_properties: block, and Segment's reserved consent event -------------------

EXTRA = "debug_flag"  # a property no event of the plan lists
CONSENT = "Segment Consent Preference Updated"


def _block_properties(plan: Plan) -> Plan:
    """``plan`` blocking track events that carry a property their rule does not list."""
    track = dataclasses.replace(plan.controls.track, unplanned_properties="block")
    return dataclasses.replace(plan, controls=dataclasses.replace(plan.controls, track=track))


def _with_extra(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every fifth row with an unplanned property (a null one in every seventh: absent)."""
    out = []
    for i, r in enumerate(rows):
        if i % 5 == 0:
            r = {**r, "properties": {**r["properties"], EXTRA: "yes"}}
        elif i % 7 == 0:
            r = {**r, "properties": {**r["properties"], EXTRA: None}}
        out.append(r)
    return out


def _nested_with(rows: list[dict[str, Any]], extra: str, typ: pa.DataType) -> pa.Table:
    """``nested_table`` of the rows with one more property field, ``extra``."""
    base = nested_table([{**r, "properties": {k: v for k, v in r["properties"].items()
                                              if k != extra}} for r in rows])  # fmt: skip
    props = base.column("properties").combine_chunks()
    values = pa.array([r["properties"].get(extra) for r in rows], typ)
    children = [props.field(i) for i in range(props.type.num_fields)] + [values]
    names = [f.name for f in props.type] + [extra]
    column = pa.StructArray.from_arrays(children, names=names)
    return base.set_column(base.schema.get_field_index("properties"), "properties", column)


@pytest.fixture(scope="module")
def extra_rows(unplanned_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return _with_extra(unplanned_rows)


def _assert_blocked_rows(detail: Detail, rows: list[dict[str, Any]]) -> None:
    """Not vacuous: planned rows blocked on the extra property alone, unplanned ones on
    every property they carry, and rows with the extra property null not blocked by it."""
    planned = [i for i, r in enumerate(rows) if r["event"] != UNPLANNED]
    extra = [i for i in planned if r_has(rows[i], EXTRA)]
    assert extra and all((EXTRA, "unplanned") in detail[i]
                         and {w for _, w in detail[i]} == {"unplanned"} for i in extra)  # fmt: skip
    nulls = [i for i in planned if EXTRA in rows[i]["properties"] and not r_has(rows[i], EXTRA)]
    assert nulls and not any((EXTRA, "unplanned") in detail.get(i, set()) for i in nulls)
    unplanned = [i for i, r in enumerate(rows) if r["event"] == UNPLANNED and r_has(r)]
    assert unplanned and all(
        {k for k, _ in detail[i]} == set(to_json(rows[i]["properties"]))
        and {w for _, w in detail[i]} == {"unplanned"} for i in unplanned
    )  # fmt: skip


def r_has(row: dict[str, Any], name: str | None = None) -> bool:
    """Whether the row's properties hold ``name`` (any property) with a value."""
    props = to_json(row["properties"]) or {}
    return bool(props) if name is None else name in props


def test_blocked_unplanned_properties_nested_parquet(
    tmp_path: Path, ecommerce_plan: Plan, extra_rows: list[dict[str, Any]]
) -> None:
    plan = _block_properties(_allow_unplanned(ecommerce_plan))
    path = tmp_path / "export.parquet"
    pq.write_table(_nested_with(extra_rows, EXTRA, pa.string()), path, row_group_size=500)
    report, detail, _ = _scan_detail(plan, path, batch_rows=400)
    _assert_matches(report, detail, plan, [to_json(r) for r in extra_rows])
    _assert_blocked_rows(detail, extra_rows)
    # blocked rows skip the common rule: some would break it
    bad_call = [i for i, r in enumerate(extra_rows) if i % 5 == 0 and r["messageId"] == ""]
    assert bad_call and all({w for _, w in detail[i]} == {"unplanned"} for i in bad_call)
    pytest.importorskip("dask.dataframe")
    assert scan(plan, [path], ScanOptions(engine="dask")).report == report


def test_blocked_unplanned_properties_flat_table(
    tmp_path: Path, ecommerce_plan: Plan, extra_rows: list[dict[str, Any]]
) -> None:
    plan = _block_properties(_allow_unplanned(ecommerce_plan))
    for event in ("Order Completed", UNPLANNED):
        chosen = [r for r in extra_rows if r["event"] == event]
        table = flat_table(chosen, event)
        assert EXTRA in table.column_names and "context_ip" in table.column_names
        path = tmp_path / f"{snake_case(event)}.parquet"
        pq.write_table(table, path)
        assert BatchPlan.build(plan).needed_columns(table.schema) is None  # every column
        report, detail, _ = _scan_detail(plan, path)
        _assert_matches(report, detail, plan, [to_json(r) for r in chosen])
        assert any(("unplanned") in {w for _, w in d} for d in detail.values())


def test_blocked_unplanned_properties_ndjson(
    tmp_path: Path, ecommerce_plan: Plan, extra_rows: list[dict[str, Any]]
) -> None:
    """Typed NDJSON chunks and chunks checked per row (a library name of another type)."""
    plan = _block_properties(_allow_unplanned(ecommerce_plan))
    events = [to_json(r) for r in extra_rows]
    for i, event in enumerate(events[:600]):
        event["context"]["library"] = {"name": 3 if i % 4 == 0 else "analytics.js"}
    path = tmp_path / "events.ndjson"
    _write_ndjson(path, events)
    report, detail, kinds = _scan_detail(plan, path, batch_rows=300)
    assert kinds == {"typed", "json"}
    _assert_matches(report, detail, plan, events)
    _assert_blocked_rows(detail, [r for r in extra_rows])


def _consent_rows(n: int) -> list[dict[str, Any]]:
    """Consent events: with preferences, without, with a non-boolean one; some with a
    property and some with a broken common rule."""
    rows = []
    for i in range(n):
        context: dict[str, Any] = {"ip": "not-an-ip" if i % 6 == 0 else "198.51.100.7",
                                   "userAgent": "ua", "protocols": None}  # fmt: skip
        if i % 3 == 1:
            context["consent"] = {"categoryPreferences": {"ads": i % 2 == 0, "analytics": True}}
        elif i % 3 == 2:
            context["consent"] = {"categoryPreferences": {"ads": "yes", "analytics": True}}
        props = {"source": "banner"} if i % 4 == 0 else {}
        rows.append({"type": "track", "event": CONSENT, "messageId": f"m{i}", "userId": f"u{i}",
                     "properties": props, "context": context})  # fmt: skip
    return rows


@pytest.mark.parametrize("variant", ["plan", "block_properties"])
def test_reserved_consent_event_nested_parquet_and_ndjson(
    tmp_path: Path, ecommerce_plan: Plan, variant: str
) -> None:
    """The consent event is in every plan (here one blocking unplanned events): its rule
    requires the preferences; its properties are never blocked."""
    plan = ecommerce_plan if variant == "plan" else _block_properties(ecommerce_plan)
    rows = _consent_rows(60)
    consent_type = pa.struct([("categoryPreferences",
                               pa.struct([("ads", pa.bool_()), ("analytics", pa.bool_())]))])
    table = pa.Table.from_pylist(
        [{**r, "context": {**r["context"], "consent": r["context"].get("consent")}}
         for r in rows if r["context"].get("consent", {}).get("categoryPreferences", {})
         .get("ads") != "yes"],
        schema=pa.schema([("type", pa.string()), ("event", pa.string()),
                          ("messageId", pa.string()), ("userId", pa.string()),
                          ("properties", pa.struct([("source", pa.string())])),
                          ("context", pa.struct([("ip", pa.string()), ("userAgent", pa.string()),
                                                 ("consent", consent_type)]))]),
    )  # fmt: skip
    parquet = tmp_path / "consent.parquet"
    pq.write_table(table, parquet)
    report, detail, _ = _scan_detail(plan, parquet)
    events = [to_json(r) for r in table.to_pylist()]
    _assert_matches(report, detail, plan, events)
    assert report["unplanned"] == {} and f"{CONSENT} v1" in report["by_event"]
    assert detail and len(detail) < len(events)
    ndjson = tmp_path / "consent.ndjson"
    events = [to_json(r) for r in rows]
    _write_ndjson(ndjson, events)
    report, detail, _ = _scan_detail(plan, ndjson)
    _assert_matches(report, detail, plan, events)
    assert report["unplanned"] == {}
    assert any(("context.consent.categoryPreferences.ads", "type") in d for d in detail.values())


def test_reserved_consent_event_flat_table(tmp_path: Path, ecommerce_plan: Plan) -> None:
    rows = [r for r in _consent_rows(60) if r["context"].get("consent") is None or
            r["context"]["consent"]["categoryPreferences"]["ads"] != "yes"]  # fmt: skip
    table = flat_table(rows, CONSENT)
    prefs = [r["context"].get("consent", {}).get("categoryPreferences") for r in rows]
    table = table.append_column(
        "context_consent_category_preferences",
        pa.array(prefs, pa.struct([("ads", pa.bool_()), ("analytics", pa.bool_())])),
    )
    path = tmp_path / "consent.parquet"
    pq.write_table(table, path)
    report, detail, _ = _scan_detail(ecommerce_plan, path)
    _assert_matches(report, detail, ecommerce_plan, [to_json(r) for r in rows])
    assert report["unplanned"] == {} and detail


def _nested_and_ndjson(
    tmp_path: Path, rows: list[dict[str, Any]], events: list[Any]
) -> tuple[Path, Path]:
    """``rows`` as a nested parquet export and ``events`` as NDJSON, in ``tmp_path``."""
    parquet, ndjson = tmp_path / "export.parquet", tmp_path / "events.ndjson"
    pq.write_table(_nested_with(rows, EXTRA, pa.string()), parquet)
    _write_ndjson(ndjson, events)
    return parquet, ndjson


def test_blocked_unplanned_properties_pattern_properties(
    tmp_path: Path, ecommerce_plan: Plan, extra_rows: list[dict[str, Any]]
) -> None:
    """A key matching the rule's ``patternProperties`` is planned; others still block."""
    plan = _block_properties(_allow_unplanned(ecommerce_plan))
    pattern = {"^x_": {"type": "string"}}
    rules = tuple(
        dataclasses.replace(r, payload={**r.payload, "patternProperties": pattern})
        if r.name == "Order Completed" and isinstance(r.payload, dict) else r
        for r in plan.rules
    )  # fmt: skip
    plan = dataclasses.replace(plan, rules=rules)
    events = [to_json(r) for r in extra_rows[:600]]
    for i, event in enumerate(events):
        if i % 2 == 0:
            event["properties"]["x_note"] = "n" if i % 4 == 0 else 5
    path = tmp_path / "events.ndjson"
    _write_ndjson(path, events)
    report, detail, _ = _scan_detail(plan, path)
    _assert_matches(report, detail, plan, events)
    orders = [i for i, e in enumerate(events) if e["event"] == "Order Completed" and i % 2 == 0]
    assert any(("x_note", "unplanned") not in detail.get(i, set()) for i in orders)
    others = [i for i, e in enumerate(events) if e["event"] == "Product Added" and i % 2 == 0]
    assert others and all(("x_note", "unplanned") in detail[i] for i in others)


def test_blocked_unplanned_properties_nameless_track_calls(
    tmp_path: Path, ecommerce_plan: Plan, extra_rows: list[dict[str, Any]]
) -> None:
    """A track call without an event name is checked by the enforcer as an unplanned one
    (whatever ``unplanned_events`` says): blocked on any property. The scan reports the
    missing name besides (``event``, ``required``: the enforcer's envelope violation)."""
    plan = _block_properties(ecommerce_plan)
    rows = [dict(r) for r in extra_rows[:400] if r["event"] != UNPLANNED]
    for i, r in enumerate(rows):
        if i % 4 == 0:
            r["event"] = None
            if i % 8 == 0:
                r["properties"] = {}
    events = [to_json(r) for r in rows]
    expected, _ = _enforced(plan, events)
    nameless = [i for i, r in enumerate(rows) if r["event"] is None]
    for i in nameless:
        expected.setdefault(i, set()).add(("event", "required"))
    blocked = [i for i in nameless if events[i]["properties"]]
    assert blocked and all(("event", "unplanned") not in expected[i] for i in blocked)
    assert any(k[1] == "unplanned" and k[0] != "event" for i in blocked for k in expected[i])
    parquet, ndjson = _nested_and_ndjson(tmp_path, rows, events)
    for path in (parquet, ndjson):
        _, detail, _ = _scan_detail(plan, path)
        assert detail == expected, path


def _close_orders(plan: Plan) -> Plan:
    """``plan`` whose Order Completed payloads close to unlisted properties."""
    rules = tuple(
        dataclasses.replace(r, payload={**r.payload, "additionalProperties": False})
        if r.name == "Order Completed" and isinstance(r.payload, dict) else r
        for r in plan.rules
    )  # fmt: skip
    return dataclasses.replace(plan, rules=rules)


def test_omitted_unplanned_properties_are_not_validated(
    tmp_path: Path, ecommerce_plan: Plan, extra_rows: list[dict[str, Any]]
) -> None:
    """Under ``unplanned_properties: omit`` (the example plan's) the enforcer drops
    unplanned properties before validating: a closed payload does not see them."""
    assert ecommerce_plan.controls.track.unplanned_properties == "omit"
    plan = _close_orders(_allow_unplanned(ecommerce_plan))
    events = [to_json(r) for r in extra_rows]
    nested, ndjson = _nested_and_ndjson(tmp_path, extra_rows, events)
    for path in (nested, ndjson):
        report, detail, _ = _scan_detail(plan, path)
        _assert_matches(report, detail, plan, events)
    orders = [r for r in extra_rows if r["event"] == "Order Completed"]
    flat = tmp_path / "order_completed.parquet"
    pq.write_table(flat_table(orders, "Order Completed"), flat)
    report, detail, _ = _scan_detail(plan, flat)
    _assert_matches(report, detail, plan, [to_json(r) for r in orders])
    # not vacuous: allowing unplanned properties, the closed payload catches them
    allowed = dataclasses.replace(
        plan.controls.track, unplanned_properties="allow"
    )
    shown = dataclasses.replace(plan, controls=dataclasses.replace(plan.controls, track=allowed))
    _, detail, _ = _scan_detail(shown, flat)
    assert any(("", "additionalProperties") in d for d in detail.values())


@pytest.mark.parametrize("variant", ["plan", "block_properties"])
def test_empty_event_name_is_not_an_unplanned_event(
    tmp_path: Path, ecommerce_plan: Plan, extra_rows: list[dict[str, Any]], variant: str
) -> None:
    """``event: ""``: the enforcer does not block it as an unplanned event (even under
    ``unplanned_events: block``) but checks it as one, failing its envelope on the name's
    ``minLength``: the scan reports that (``event``, ``minLength``) and the rest as the
    enforcer does, in nested parquet and NDJSON (typed and per-row chunks)."""
    plan = ecommerce_plan if variant == "plan" else _block_properties(ecommerce_plan)
    assert plan.controls.track.unplanned_events == "block"
    rows = [dict(r) for r in extra_rows[:400] if r["event"] != UNPLANNED]
    for i, r in enumerate(rows):
        if i % 4 == 0:
            r["event"] = ""
            if i % 8 == 0:
                r["properties"] = {}
    events = [to_json(r) for r in rows]
    lines = [dict(e) for e in events]
    for i, e in enumerate(lines[:100]):  # one NDJSON chunk checked per row
        e["context"] = {**e["context"], "library": {"name": 3 if i == 8 else "analytics.js"}}
    parquet, ndjson = _nested_and_ndjson(tmp_path, rows, lines)
    empty = [i for i, r in enumerate(rows) if r["event"] == ""]
    for path, sent in ((parquet, events), (ndjson, lines)):
        expected, _ = _enforced(plan, sent)
        for i in empty:
            expected.setdefault(i, set()).add(("event", "minLength"))
        assert all(("event", "unplanned") not in expected[i] for i in empty)
        assert any(k[0] != "event" for i in empty for k in expected[i])  # common rule checked
        report, detail, kinds = _scan_detail(plan, path, batch_rows=100)
        assert detail == expected, path
        assert report["unplanned"] == {}
        assert report["by_event"]["(empty event name)"]["rows"] == len(empty)
        if path == ndjson:
            assert kinds == {"typed", "json"}
            assert ("context.library.name", "type") in detail[8]  # "", no properties


def _block_identify_properties(plan: Plan) -> Plan:
    """``plan`` blocking identify calls whose traits hold a trait the plan does not list."""
    identify = dataclasses.replace(plan.controls.identify, unplanned_properties="block")
    return dataclasses.replace(plan, controls=dataclasses.replace(plan.controls,
                                                                  identify=identify))


def _identify_rows(n: int) -> list[dict[str, Any]]:
    """Identify calls with traits in ``traits``, in ``context.traits`` (RudderStack), in
    both (``traits`` wins) or in neither; some traits break the plan, some are unplanned,
    some calls break the common rule."""
    rows = []
    for i in range(n):
        traits: dict[str, Any] = {"email": "a@example.com" if i % 3 else "nope",
                                  "plan": ("free", "gold", "pro")[i % 3]}  # fmt: skip
        if i % 5 == 0:
            traits["zzz"] = "extra"
        context: dict[str, Any] = {"ip": "not-an-ip" if i % 7 == 0 else "198.51.100.7",
                                   "userAgent": "ua"}  # fmt: skip
        where = i % 4
        if where in (1, 2):
            context["traits"] = traits if where == 1 else {"plan": "bogus"}
        rows.append({"type": "identify", "messageId": f"m{i}", "userId": f"u{i}",
                     "context": context,
                     "traits": traits if where in (0, 2) else None})  # fmt: skip
    return rows


@pytest.mark.parametrize("variant", ["plan", "block_identify_properties"])
def test_context_traits_checked_as_the_enforcer_does(
    tmp_path: Path, ecommerce_plan: Plan, variant: str
) -> None:
    """Identify traits under ``context.traits`` (no ``traits``): the enforcer validates
    them as the traits, at ``/context/traits/...``; the scan reports them as
    ``context.traits.<field>``, in nested parquet and NDJSON (typed and per-row)."""
    plan = ecommerce_plan if variant == "plan" else _block_identify_properties(ecommerce_plan)
    rows = _identify_rows(120)
    traits_type = pa.struct([("email", pa.string()), ("plan", pa.string()), ("zzz", pa.string())])
    schema = pa.schema([
        ("type", pa.string()), ("messageId", pa.string()), ("userId", pa.string()),
        ("context", pa.struct([("ip", pa.string()), ("userAgent", pa.string()),
                               ("traits", traits_type)])),
        ("traits", traits_type),
    ])  # fmt: skip
    parquet = tmp_path / "identifies.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), parquet, row_group_size=50)
    events = [to_json(r) for r in rows]
    lines = [dict(e) for e in events]
    for i in range(100, 120):  # the last chunk: a library name of two types, checked per row
        library = {"name": 3 if i == 117 else "analytics.js"}
        lines[i] = {**lines[i], "context": {**lines[i]["context"], "library": library}}
    # traits: null is not absent (context.traits unread; the null breaks traits' type)
    lines[57] = {**lines[57], "traits": None}
    # a JSON null trait under context.traits (not an absent one): breaks the enum
    lines[53] = {**lines[53], "context": {**lines[53]["context"],
                                          "traits": {"email": "a@example.com", "plan": None}}}
    ndjson = tmp_path / "identifies.ndjson"
    _write_ndjson(ndjson, lines)
    for path, sent in ((parquet, events), (ndjson, lines)):
        report, detail, kinds = _scan_detail(plan, path, batch_rows=50)
        _assert_matches(report, detail, plan, sent)
        in_context = {k for i, d in detail.items() if i % 4 == 1 for k in d}
        assert {("context.traits.email", "format"), ("context.traits.plan", "enum")} <= in_context
        assert not any(k[0].startswith("context.traits")
                       for i, d in detail.items() if i % 4 != 1 for k in d)  # fmt: skip
        if variant != "plan":
            assert ("context.traits.zzz", "unplanned") in in_context
        if path == ndjson:
            assert kinds == {"typed", "json"}
            per_row = {("context.traits.email", "format"), ("context.library.name", "type")}
            assert per_row <= detail[117]
            assert ("context.traits.plan", "enum") in detail[53]
            assert detail[57] == {("", "type"), ("traits", "envelope")}
