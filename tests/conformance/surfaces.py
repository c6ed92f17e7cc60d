"""One small adapter per surface: events in, a :class:`Record` per event (by messageId) out.

Surfaces: ``enforce`` in-process (the reference), the ``validate`` CLI, ``scan`` of each
batch representation (violations), ``scan --redact-to`` of each (decision and forwarded
values), ``route`` per destination (CLI), and the generated Python client with
``pii: {client_side: true}``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from tests.conformance.records import Record, forwarded, scan_violation, violation_set
from tests.conformance.representations import Written, read_back
from trackplan.batch.check import JSON_COLUMN
from trackplan.batch.readers import Chunk
from trackplan.batch.redact import RedactWriter
from trackplan.batch.scan import scan
from trackplan.plan.model import PAYLOAD_KEY, Plan

__all__ = [
    "enforce_records",
    "validate_records",
    "scan_records",
    "route_records",
    "client_records",
    "CLIENT_METHODS",
]

Event = dict[str, Any]
Records = dict[str, Record]


def enforce_records(enforcer: Any, events: list[Event]) -> Records:
    """``enforcer.enforce`` on each event."""
    out: Records = {}
    for event in events:
        result = enforcer.enforce(event)
        out[event["messageId"]] = Record(
            result.allowed,
            violation_set((v.type, v.pointer) for v in result.violations),
            forwarded(event, result.event) if result.allowed else None,
        )
    return out


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args],
        capture_output=True,
        timeout=300,
        env=os.environ.copy(),
        check=False,
    )


def _lines(path: Path) -> list[Event]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _stamped(event: Event) -> frozenset[tuple[str, str]]:
    ctx = event.get("context") if isinstance(event.get("context"), dict) else {}
    protocols = ctx.get("protocols") if isinstance(ctx.get("protocols"), dict) else {}
    return violation_set((v["type"], v["pointer"]) for v in protocols.get("violations", []))


def validate_records(plan_dir: Path, events: list[Event], tmp: Path) -> Records:
    """``trackplan validate PLAN FILE --out OUT [--include-blocked] --format json``.

    Every event is in the ``--include-blocked`` output, with its violations stamped in
    ``context.protocols.violations``; the allowed ones are those of the run without it.
    """
    source = tmp / "validate-in.ndjson"
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    runs = {}
    for flag in ((), ("--include-blocked",)):
        out = tmp / f"validate-out{len(flag)}.ndjson"
        done = _cli(
            "validate", str(plan_dir), str(source), "--out", str(out), *flag, "--format", "json"
        )
        assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
        report = orjson.loads(done.stdout)
        assert report["events"] == len(events) and report["malformed"] == 0
        runs[bool(flag)] = {e.get("messageId"): e for e in _lines(out)}
    allowed, every = runs[False], runs[True]
    records: Records = {}
    for event in events:
        key = event["messageId"]
        line = every.get(key)
        if line is None:
            continue
        ok = key in allowed
        records[key] = Record(ok, _stamped(line), forwarded(event, allowed[key]) if ok else None)
    return records


def _chunk_ids(chunk: Chunk) -> list[str | None]:
    batch = chunk.batch
    for name in ("messageId", "id"):
        if name in batch.schema.names:
            return batch.column(name).cast(pa.string()).to_pylist()  # type: ignore[no-any-return]
    if JSON_COLUMN in batch.schema.names:
        return [orjson.loads(t).get("messageId") for t in batch.column(JSON_COLUMN).to_pylist()]
    raise AssertionError(f"no messageId column in {batch.schema.names}")


def scan_records(
    plan: Plan, written: Written, events: list[Event], out_root: Path
) -> tuple[Records, Records]:
    """``scan`` of the written files, with ``--redact-to`` (``RedactWriter``) attached.

    Returns:
        (the scan's violations per event, the redacted copy's decision and values per event)
    """
    by_id = {e["messageId"]: e for e in events}
    found: dict[str, set[tuple[str, str]]] = {key: set() for key in by_id}
    writer = RedactWriter(plan, out_root)

    def collect(chunk: Chunk, result: pa.RecordBatch) -> None:
        ids = _chunk_ids(chunk)
        for r in result.to_pylist():
            if r["kind"] != "violation":
                continue
            local = r["row"] - chunk.offset
            assert 0 <= local < len(ids), f"row {r['row']} outside its chunk at {chunk.offset}"
            key = ids[local]
            event = by_id[str(key)]
            payload = PAYLOAD_KEY.get(str(event.get("type", "track")))
            found[str(key)].add(scan_violation(r["field"] or "", r["keyword"], payload))
        writer.add(chunk, result)

    scan(plan, written.files, on_chunk=collect)
    writer.close()
    scanned = {k: Record(violations=frozenset(v)) for k, v in found.items()}
    copies = read_back(written, out_root)
    redacted = {
        key: Record(key in copies, None, forwarded(event, copies[key]) if key in copies else None)
        for key, event in by_id.items()
    }
    return scanned, redacted


def route_records(plan_dir: Path, events: list[Event], tmp: Path) -> dict[str, Records]:
    """``trackplan route PLAN FILE``: per destination, the plan's decision and violations
    as routed, and the copy the destination gets (None when it gets none)."""
    source = tmp / "route-in.ndjson"
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    done = _cli("route", str(plan_dir), str(source))
    assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
    lines = [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == len(events)
    out: dict[str, Records] = {}
    for event, line in zip(events, lines, strict=True):
        violations = violation_set((v["type"], v["pointer"]) for v in line["violations"])
        for dest, delivery in line["destinations"].items():
            copy = delivery.get("event") if delivery["send"] else None
            out.setdefault(dest, {})[event["messageId"]] = Record(
                line["allowed"], violations, forwarded(event, copy) if copy is not None else None
            )
    return out


#: (event, version) -> the generated client's method for it (the example plan)
CLIENT_METHODS = {
    ("Signed Up", 1): "signed_up",
    ("Products Searched", 1): "products_searched",
    ("Order Completed", 1): "order_completed_v1",
    ("Order Completed", 2): "order_completed",
    ("Product Added", 1): "product_added",
    ("identify", 1): "identify",
}


class _Sdk:
    """Records what the client hands to a Segment-style SDK, as the message it would send."""

    def __init__(self) -> None:
        self.sent: list[Event] = []

    def _send(self, kind: str, payload_key: str, payload: Any, **kw: Any) -> None:
        msg: Event = {"type": kind}
        if kw.get("message_id") is not None:
            msg["messageId"] = kw["message_id"]
        for name, key in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
            if kw.get(name) is not None:
                msg[key] = kw[name]
        if kw.get("event") is not None:
            msg["event"] = kw["event"]
        msg[payload_key] = payload
        if kw.get("context") is not None:
            msg["context"] = kw["context"]
        self.sent.append(msg)

    def track(self, **kw: Any) -> None:
        self._send("track", "properties", kw.pop("properties"), **kw)

    def identify(self, **kw: Any) -> None:
        self._send("identify", "traits", kw.pop("traits"), **kw)

    def group(self, **kw: Any) -> None:
        self._send("group", "traits", kw.pop("traits"), **kw)


def _version(event: Event) -> int:
    ctx = event.get("context") or {}
    protocols = ctx.get("protocols") or {}
    wanted = protocols.get("event_version")
    return wanted if wanted in (1, 2) and event.get("event") == "Order Completed" else 1


def client_records(client_factory: Callable[[Any], Any], events: list[Event]) -> Records:
    """The generated client's calls: decision (sent or not) and what it sends.

    Only events the typed client can express are sent: a planned track event or identify
    traits, with no property the method lacks (a ``TypeError`` otherwise).
    """
    out: Records = {}
    for event in events:
        kind = event.get("type")
        label = event.get("event") if kind == "track" else kind
        method_name = CLIENT_METHODS.get((str(label), _version(event)))
        payload = event.get("properties" if kind == "track" else "traits")
        if method_name is None or not isinstance(payload, dict):
            continue
        sdk = _Sdk()
        client = client_factory(sdk)
        context = {k: v for k, v in (event.get("context") or {}).items() if k != "protocols"}
        try:
            getattr(client, method_name)(
                **payload,
                user_id=event.get("userId"),
                anonymous_id=event.get("anonymousId"),
                message_id=event["messageId"],
                context=context or None,
            )
        except TypeError:  # a property the typed method does not take: not expressible
            continue
        sent = sdk.sent[0] if sdk.sent else None
        out[event["messageId"]] = Record(
            sent is not None, None, forwarded(event, sent) if sent is not None else None
        )
    return out
