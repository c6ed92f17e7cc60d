"""A multi-format dataset for the erasure tests, and an independent reference of the result."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

USER = "u-target"
ANON = "a-target"


def _row(i: int) -> dict[str, Any]:
    """Row ``i``: every 7th belongs to the target user, every 11th to the target anonymous
    id; every 5th names the target inside its properties (someone else's row: kept)."""
    user = USER if i % 7 == 0 else f"u-{i % 50}"
    anon = ANON if i % 11 == 0 else f"a-{i}"
    props: dict[str, Any] = {"n": i, "label": f"item \"{i}\"\twith, comma"}
    if i % 5 == 0:
        props["user_id"] = USER
    return {"type": "track", "event": "Viewed", "userId": user, "anonymousId": anon,
            "properties": props}


def belongs(row: dict[str, Any]) -> bool:
    """The reference rule, written independently of the implementation."""
    message = row.get("message")
    for obj in (row, message if isinstance(message, dict) else {}):
        if obj.get("userId") == USER or obj.get("user_id") == USER:
            return True
        if obj.get("anonymousId") == ANON or obj.get("anonymous_id") == ANON:
            return True
    return False


def make_dataset(root: Path, rows: int = 300) -> dict[str, Path]:
    """Write the dataset under ``root``; returns its files by short name."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nested").mkdir(exist_ok=True)
    data = [_row(i) for i in range(rows)]
    files = {
        "events": root / "events.parquet",
        "wrapped": root / "nested" / "wrapped.parquet",
        "warehouse": root / "warehouse.parquet",
        "ndjson": root / "events.ndjson",
        "gz": root / "nested" / "events.jsonl.gz",
        "csv": root / "export.csv",
        "clean": root / "clean.ndjson",
    }
    table = pa.Table.from_pylist(data).replace_schema_metadata({"origin": "erase-test"})
    pq.write_table(table, files["events"], compression="zstd", row_group_size=max(rows // 3, 1))
    wrapped = pa.Table.from_pylist([{"message": {"userId": r["userId"], "n": r["properties"]["n"]},
                                     "received": i} for i, r in enumerate(data)])
    pq.write_table(wrapped, files["wrapped"], compression={"message.userId": "gzip",
                                                           "message.n": "snappy",
                                                           "received": "zstd"})
    flat = pa.table({"user_id": [r["userId"] for r in data],
                     "anonymous_id": [r["anonymousId"] for r in data],
                     "n": pa.array([r["properties"]["n"] for r in data], pa.int32())})
    pq.write_table(flat, files["warehouse"], compression="snappy")
    lines = b"".join(orjson.dumps(r) + b"\n" for r in data)
    files["ndjson"].write_bytes(b"\n" + lines + b"   \n")
    files["gz"].write_bytes(gzip.compress(lines))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["user_id", "anonymous_id", "note"])
    for r in data:
        note = "multi\nline" if r["properties"]["n"] % 3 == 0 else r["properties"]["label"]
        writer.writerow([r["userId"], r["anonymousId"], note])
    files["csv"].write_text(buf.getvalue(), newline="")
    files["clean"].write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in data
                                        if not belongs(r)))
    return files


def snapshot(path: Path) -> Any:
    """Comparable content of a file: parquet rows, else the (decompressed) bytes."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


def expected(path: Path, before: Any) -> Any:
    """What ``path`` must hold after erasing the target, from its content ``before``."""
    if path.suffix == ".parquet":
        return [r for r in before if not belongs(r)]
    if path.suffix == ".csv" or path.name.endswith(".csv.gz"):
        text = before.decode()
        reader = csv.reader(io.StringIO(text, newline=""))
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        for i, rec in enumerate(reader):
            if i == 0 or not (rec[0] == USER or rec[1] == ANON):
                writer.writerow(rec)
        return out.getvalue().encode()
    kept = []
    for line in before.splitlines(keepends=True):
        if line.strip() and belongs(orjson.loads(line)):
            continue
        kept.append(line)
    return b"".join(kept)
