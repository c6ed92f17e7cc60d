"""Benchmark ``trackplan scan`` on a 5,000,000-row Order Completed parquet export.

Compares, in one run on the same file:

* the pyarrow streaming read alone (``ParquetFile.iter_batches``, every column), and
  for reference pyarrow.dataset's scanner (the reader the scan uses) on every column;
* ``trackplan scan`` (the same streaming read plus the vectorised rules), in-process;
* the naive path: rows to Python dicts, then jsonschema-rs per row, on a slice,
  extrapolated to the whole file;

and the peak memory (max RSS) of ``trackplan scan`` run as a subprocess.

The file (20 columns including a list of product structs, zstd, about 1% of rows with a
violation) is generated once under ``benchmarks/data/`` (git-ignored).

Run: ``python benchmarks/bench_scan.py [--rows 5000000] [--naive-rows 20000]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackplan.batch.check import BatchPlan  # noqa: E402
from trackplan.batch.rules import to_json  # noqa: E402
from trackplan.batch.scan import scan  # noqa: E402
from trackplan.plan.load import load_plan  # noqa: E402

PLAN = ROOT / "plans" / "ecommerce"
DATA = ROOT / "benchmarks" / "data"
CHUNK = 250_000


def _strings(prefix: str, ids: np.ndarray) -> pa.Array:
    return pa.array(np.char.add(prefix, ids.astype(str)).astype(object), pa.string())


def _chunk(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    ids = np.arange(start, start + n)
    counts = rng.integers(1, 4, n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    m = int(offsets[-1])
    pids = rng.integers(100, 999, m)
    prices = np.round(rng.uniform(1, 200, m), 2)
    bad_price = rng.random(m) < 0.002
    prices[bad_price] = -1.0
    products = pa.StructArray.from_arrays(
        [
            _strings("p-", pids),
            _strings("SKU-", pids),
            pa.array(rng.choice(["Mugs", "Apparel", "Posters"], m).astype(object), pa.string()),
            pa.array(rng.choice(["Mug", "Tee", "Cap", "Hoodie"], m).astype(object), pa.string()),
            pa.array(prices),
            pa.array(rng.integers(1, 5, m)),
            _strings("https://shop.example.com/p/", pids),
        ],
        names=["product_id", "sku", "category", "name", "price", "quantity", "url"],
    )
    total = np.round(rng.uniform(1, 900, n), 2)
    total[rng.random(n) < 0.003] = -5.0
    currency = rng.choice(["EUR", "USD", "GBP"], n).astype(object)
    currency[rng.random(n) < 0.003] = "eur"
    emails = np.char.add(np.char.add("user", ids.astype(str)), "@example.com").astype(object)
    emails[rng.random(n) < 0.003] = "not an email"
    return pa.table(
        {
            "id": _strings("msg-", ids),
            "event": pa.array(["order_completed"] * n),
            "event_text": pa.array(["Order Completed"] * n),
            "user_id": _strings("usr_", ids % 100_000),
            "anonymous_id": _strings("anon-", ids % 300_000),
            "timestamp": pa.array(1_790_000_000_000 + ids * 1000, pa.timestamp("ms", tz="UTC")),
            "context_ip": _strings("203.0.113.", ids % 250),
            "context_user_agent": pa.array(["Mozilla/5.0 (Macintosh) Safari/605.1.15"] * n),
            "context_library_name": pa.array(["analytics-python"] * n),
            "order_id": _strings("ord-", ids),
            "checkout_id": _strings("chk-", ids),
            "total": pa.array(total),
            "revenue": pa.array(np.round(total * 0.8, 2)),
            "shipping": pa.array(np.round(rng.uniform(0, 10, n), 2)),
            "tax": pa.array(np.round(total * 0.2, 2)),
            "currency": pa.array(currency, pa.string()),
            "payment_method": pa.array(
                rng.choice(["card", "paypal", "invoice", "gift_card"], n).astype(object),
                pa.string(),
            ),
            "email": pa.array(emails, pa.string()),
            "coupon": pa.array(rng.choice(["", "SAVE10", "WINTER"], n).astype(object), pa.string()),
            "products": pa.ListArray.from_arrays(pa.array(offsets), products),
        }
    )


def generate(path: Path, rows: int) -> None:
    """Write the benchmark file (skipped when it exists with the right row count)."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, CHUNK):
        table = _chunk(rng, start, min(CHUNK, rows - start))
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=CHUNK)
    assert writer is not None
    writer.close()
    tmp.replace(path)


def streaming_read(path: Path) -> float:
    start = time.perf_counter()
    rows = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
        rows += batch.num_rows
    return time.perf_counter() - start


def dataset_read(path: Path) -> float:
    """The reader the scan uses (pyarrow.dataset's fragment scanner), every column, plainly."""
    import pyarrow.dataset as ds

    start = time.perf_counter()
    rows = 0
    for batch in ds.dataset(str(path)).to_batches(batch_size=65_536):
        rows += batch.num_rows
    return time.perf_counter() - start


def trackplan_scan(path: Path) -> tuple[float, int]:
    plan = load_plan(PLAN)
    start = time.perf_counter()
    outcome = scan(plan, [path])
    return time.perf_counter() - start, outcome.report["invalid_rows"]


def naive(path: Path, rows: int) -> float:
    """Seconds per row: rows to dicts, then the rule's jsonschema-rs validator per row."""
    plan = load_plan(PLAN)
    compiled = BatchPlan.build(plan).select("track", "Order Completed", None)
    assert compiled is not None
    validator = compiled.validator
    props = [n for n in compiled.properties]
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows))
    start = time.perf_counter()
    invalid = 0
    for row in batch.to_pylist():
        payload = to_json({k: row.get(k) for k in props})
        if not validator.is_valid(payload):
            invalid += 1
    return (time.perf_counter() - start) / batch.num_rows


def peak_memory_mb(path: Path) -> float:
    """Max RSS of ``trackplan scan`` run as its own process."""
    subprocess.run(
        [sys.executable, "-m", "trackplan", "scan", str(PLAN), str(path), "-q"],
        check=False,
        cwd=ROOT,
    )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--naive-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = DATA / f"order_completed_{args.rows}.parquet"
    t0 = time.perf_counter()
    generate(path, args.rows)
    size = path.stat().st_size / 1e6
    print(f"file: {path.name}, {args.rows:,} rows, {size:.0f} MB zstd "
          f"(ready in {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    # first, while this process is small: a child's max RSS includes the pages of the
    # process it was forked from (so it is an upper bound of the scan's own peak)
    memory = peak_memory_mb(path)
    streaming_read(path)  # warm the page cache: the first read in a process is slower
    reads, scans, dataset_reads = [], [], []
    invalid = 0
    for _ in range(args.repeat):
        reads.append(streaming_read(path))
        dataset_reads.append(dataset_read(path))
        seconds, invalid = trackplan_scan(path)
        scans.append(seconds)
    read, scanned = statistics.median(reads), statistics.median(scans)
    dataset = statistics.median(dataset_reads)
    per_row = naive(path, args.naive_rows)
    naive_total = per_row * args.rows
    n = args.rows
    print(f"streaming read   {read:7.2f} s  {n / read:12,.0f} rows/s")
    print(f"dataset read     {dataset:7.2f} s  {n / dataset:12,.0f} rows/s  "
          f"(the scan's reader, every column, no dictionaries)")  # fmt: skip
    print(f"trackplan scan   {scanned:7.2f} s  {n / scanned:12,.0f} rows/s  "
          f"{scanned / read:.2f}x the read  ({invalid:,} invalid rows)")  # fmt: skip
    print(f"naive per-row    {naive_total:7.2f} s  {1 / per_row:12,.0f} rows/s  "
          f"(extrapolated from {args.naive_rows:,} rows)  scan is "
          f"{naive_total / scanned:.0f}x faster")  # fmt: skip
    print(f"peak memory of trackplan scan (subprocess max RSS): {memory:,.0f} MB")


if __name__ == "__main__":
    main()
