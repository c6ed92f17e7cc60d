"""Scan samples are masked whole before they are cut (issue 15, item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def test_pii_crossing_the_display_cut_is_masked(tmp_path: Path) -> None:
    plan = tmp_path / "p"
    (plan / "events").mkdir(parents=True)
    (plan / "plan.yaml").write_text("trackplan: 1\nname: P\n")
    (plan / "events" / "oc.yaml").write_text(
        "name: Order Completed\nproperties:\n  type: object\n  properties:\n"
        "    note:\n      type: string\n      maxLength: 10\n")
    note = "the order was placed by phone and the contact person is jane.doe.private@gmail.com"
    assert note.index("@") > 60  # the old cut at 77 characters split the address
    data = tmp_path / "e.ndjson"
    data.write_bytes(orjson.dumps({"type": "track", "event": "Order Completed", "userId": "u",
                                   "properties": {"note": note}}) + b"\n")
    for fmt in ("text", "json", "html"):
        result = subprocess.run(
            [sys.executable, "-m", "trackplan", "scan", str(plan), str(data), "--format", fmt],
            capture_output=True, cwd=ROOT, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert result.returncode == 1, result.stderr
        assert b"jane.doe" not in result.stdout, fmt
        assert b"contact person" in result.stdout, fmt  # the sample is still shown


def test_duplicate_parquet_columns_are_refused_not_a_traceback(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    plan = tmp_path / "p"
    (plan / "events").mkdir(parents=True)
    (plan / "plan.yaml").write_text("trackplan: 1\nname: P\n")
    data = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays(
        [pa.array(["track"]), pa.array(["A"]), pa.array([{"x": "a"}]), pa.array([{"x": "b"}])],
        names=["type", "event", "properties", "properties"]), data)
    result = subprocess.run(
        [sys.executable, "-m", "trackplan", "scan", str(plan), str(data), "-q"],
        capture_output=True, cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert b"duplicate column names 'properties'" in result.stderr
