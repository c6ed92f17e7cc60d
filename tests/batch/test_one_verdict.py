"""The causes of the scan's divergences from enforce (issue 14), each on its own.

* enforce reports no PII on an event it blocks before its PII pass (an envelope failure,
  a violation under ``block``): neither does the scan;
* a declared phone that does not parse is reported by enforce (it is hashed as its
  digits): the scan asks the transform about each distinct value;
* a blocked event reports every PII finding in it, whatever the order of its keys (a
  column order is not the event's key order);
* ``--redact-to`` applies identify's trait actions to ``context.traits`` of every call,
  as enforce does (one rule: ``PiiPolicy.fields_for``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ECOMMERCE_DIR
from trackplan.batch.readers import Chunk
from trackplan.batch.scan import ScanOptions, scan
from trackplan.engine import compile_plan
from trackplan.pii.actions import hash_value
from trackplan.pii.policy import PiiPolicy
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan

CARD = "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plan with unplanned properties let through (so detectors matter)."""
    out = tmp_path_factory.mktemp("plan") / "ecommerce"
    shutil.copytree(ECOMMERCE_DIR, out)
    text = (out / "plan.yaml").read_text()
    text = text.replace("unplanned_properties: omit", "unplanned_properties: allow")
    (out / "plan.yaml").write_text(text)
    return out


@pytest.fixture(scope="module")
def plan(plan_dir: Path) -> Plan:
    return load_plan(plan_dir)


def _call(i: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track", "event": "Products Searched", "messageId": f"m-{i}",
        "userId": f"u{i}", "timestamp": "2024-05-01T10:00:00Z",
        "context": {"ip": "203.0.113.9"}, "properties": {"query": "mugs"},
    }  # fmt: skip
    event.update(fields)
    return event


def _pii(plan: Plan, events: list[dict[str, Any]], path: Path) -> tuple[set[Any], set[Any]]:
    """(enforce's, the scan's) PII violations as (messageId, pointer)."""
    enforcer = compile_plan(plan)
    want = {
        (e["messageId"], v.pointer)
        for e in events
        for v in enforcer.enforce(e).violations
        if v.type == "PII"
    }
    ids = [e["messageId"] for e in events]
    got: set[Any] = set()

    def collect(chunk: Chunk, result: pa.RecordBatch) -> None:
        for r in result.to_pylist():
            if r["kind"] == "violation" and r["keyword"] == "PII":
                got.add((ids[r["row"]], r["pointer"]))

    scan(plan, [path], ScanOptions(batch_rows=64), on_chunk=collect)
    return want, got


def _write(events: list[dict[str, Any]], path: Path) -> Path:
    if path.suffix == ".parquet":  # every key of every event a column (null: absent)
        names = dict.fromkeys(k for e in events for k in e)
        pq.write_table(pa.Table.from_pylist([{**dict.fromkeys(names), **e} for e in events]),
                       path)  # fmt: skip
    else:
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


@pytest.mark.parametrize("suffix", [".ndjson", ".parquet"])
def test_no_pii_reported_where_the_envelope_blocks_first(
    tmp_path: Path, plan: Plan, suffix: str
) -> None:
    anonymous = _call(0, properties={"query": "call me on 07700 900742"})
    del anonymous["userId"]  # the envelope blocks it before the PII pass
    bad_ip = _call(1, properties={"query": "mail jane.doe@example.org"})
    bad_ip["context"] = {"ip": "not-an-ip"}  # the common rule: a violation, not blocking
    events = [anonymous, bad_ip, _call(2, properties={"query": "call 07700 900742 now"})]
    want, got = _pii(plan, events, _write(events, tmp_path / f"e{suffix}"))
    assert {k for k, _ in want} == {"m-1", "m-2"}  # the anonymous call reports none
    assert got == want


@pytest.mark.parametrize("suffix", [".ndjson", ".parquet"])
def test_a_declared_phone_that_does_not_parse_is_reported(
    tmp_path: Path, plan: Plan, suffix: str
) -> None:
    events = [
        {"type": "identify", "messageId": "m-0", "userId": "u0",
         "timestamp": "2024-05-01T10:00:00Z", "traits": {"phone": "07700 900742"}},
        {"type": "identify", "messageId": "m-1", "userId": "u1",
         "timestamp": "2024-05-01T10:00:00Z", "traits": {"phone": "+44 20 7946 0958"}},
        _call(2, context={"ip": "203.0.113.9", "traits": {"phone": "(415) 555-0175"}}),
        _call(3, context={"ip": "203.0.113.9", "traits": {"phone": "+1 415 555 0175"}}),
    ]  # fmt: skip
    want, got = _pii(plan, events, _write(events, tmp_path / f"e{suffix}"))
    assert want == {("m-0", "/traits/phone"), ("m-2", "/context/traits/phone")}
    assert got == want


def test_a_blocked_event_reports_every_finding_whatever_its_key_order(plan: Plan) -> None:
    enforcer = compile_plan(plan)
    props = {"query": "mugs", "contact": {"email": "jane.doe@example.org"}, "notes": CARD}
    found = []
    for order in (props, dict(reversed(props.items()))):
        result = enforcer.enforce(_call(0, properties=order))
        assert not result.allowed  # a card number: reject
        found.append({(v.pointer, v.message) for v in result.violations})
    assert found[0] == found[1]
    assert {p for p, _ in found[0]} == {"/properties/contact/email", "/properties/notes"}


@pytest.mark.parametrize("suffix", [".ndjson", ".parquet"])
def test_redact_to_applies_identify_traits_to_context_traits_of_every_call(
    tmp_path: Path, plan_dir: Path, plan: Plan, suffix: str
) -> None:
    email = "Jane.Doe@Example.org"
    events = [_call(i, context={"ip": "203.0.113.9", "traits": {"email": email}})
              for i in range(3)]  # fmt: skip
    (tmp_path / "in").mkdir()
    source = _write(events, tmp_path / "in" / f"e{suffix}")
    out = tmp_path / "clean"
    done = subprocess.run(
        [sys.executable, "-m", "trackplan", "scan", str(plan_dir), str(source),
         "--redact-to", str(out), "-q"],
        capture_output=True, timeout=120, env=dict(os.environ), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if suffix == ".parquet":
        rows = pq.read_table(out / source.name).to_pylist()
    else:
        rows = [orjson.loads(x) for x in (out / source.name).read_bytes().splitlines()]
    forwarded = [compile_plan(plan).enforce(e).event for e in events]
    key = PiiPolicy.from_plan(plan).key
    assert key is not None
    for row, sent in zip(rows, forwarded, strict=True):
        assert row["context"]["traits"]["email"] == sent["context"]["traits"]["email"]
        assert row["context"]["traits"]["email"] == hash_value("email", email, key)
