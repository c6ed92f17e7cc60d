"""Benchmark ``trackplan scan`` on a 1,000,000-row warehouse export against its peers.

The file is an "Order Completed" table as a Segment warehouse exports it and pyarrow
writes it: envelope columns, the timestamps as ``timestamp[ms, tz=UTC]`` (``uuid_ts``
without a zone), ``context`` as a nested struct (ip, user agent, locale, library, page,
and the event version Segment Protocols stamps: 2), the order's properties as columns,
``products`` as a list of 10-field structs (1 to 3 a row), free text typed by staff (the
products' ``brand`` and ``coupon``, a few holding an email address or a phone number),
zstd, 250,000-row groups, about 1.2% of rows breaking a rule (a negative total or price,
a lower-case currency, a malformed email, an unknown payment method, a missing checkout
id, an empty product list, a zero quantity, a bad IP, a call without user or anonymous
id). Shoppers' IP addresses (150,000, 5% IPv6) and the ids are barely repetitive, as in
real exports. It is generated once under ``benchmarks/data/`` (git-ignored).

In one run, on that file, interleaved, median of ``--repeat``:

* **read**: a plain pyarrow streaming read (``ParquetFile.iter_batches``) of the columns
  the scan reads (``BatchPlan.needed_columns``), the page cache warmed first;
* **scan**: ``trackplan scan`` in-process, detectors on (the default);
* **polars**: the same rules as polars expressions on ``scan_parquet`` (lazy, projection
  pushed down): required, type (from the file's schema, once), enum, pattern, length,
  range, format (as regexes), the list-of-struct rules with ``list.eval``, the common
  rule (messageId, ``context.ip`` IPv4 or IPv6, lengths), the envelope's identity rule,
  and an email/phone regex over the free text in place of the detectors; it collects the
  failing rows with their row number and the rules they break, as the scan reports them;
* **naive**: rows to Python dicts, then the rule's jsonschema-rs validator per row
  (payload only, no PII), on a slice, extrapolated (timed in the same loop);

and first, while this process is small, the peak memory (max RSS) of ``trackplan scan``
run as its own process. It prints the ratios the targets are stated in.

Run: ``python benchmarks/bench_scan.py [--rows 1000000] [--naive-rows 5000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
MS = pa.timestamp("ms", tz="UTC")


def _strings(prefix: str, ids: np.ndarray) -> pa.Array:
    return pa.array(np.char.add(prefix, ids.astype(str)).astype(object), pa.string())


def _pick(rng: np.random.Generator, values: list[str], n: int) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), n)


def _rare(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) < share


def _context(rng: np.random.Generator, ids: np.ndarray) -> pa.StructArray:
    n = len(ids)
    # one address per shopper (150,000 of them), 5% of them IPv6: barely repetitive
    shopper = (ids % 150_000) * 2_654_435_761 % 2**32
    quads = [(shopper >> s) & 255 for s in (24, 16, 8, 0)]
    ip = quads[0].astype(str).astype(object)
    for quad in quads[1:]:
        ip = ip + "." + quad.astype(str).astype(object)
    v6 = shopper % 20 == 0
    ip[v6] = (
        "2001:db8:"
        + np.char.mod("%x", shopper[v6] >> 16).astype(object)
        + "::"
        + (np.char.mod("%x", shopper[v6] & 0xFFFF).astype(object))
    )
    ip[_rare(rng, n, 0.001)] = "999.1.2.3"
    paths = _pick(rng, ["/checkout/complete", "/checkout/thanks", "/order/confirmed"], n)
    library = pa.StructArray.from_arrays(
        [
            pa.array(_pick(rng, ["analytics.js", "analytics-ios", "analytics-android"], n),
                     pa.string()),
            pa.array(_pick(rng, ["4.1.0", "4.1.2", "5.0.1"], n), pa.string()),
        ],
        names=["name", "version"],
    )  # fmt: skip
    page = pa.StructArray.from_arrays(
        [
            pa.array(paths, pa.string()),
            pa.array(np.char.add("https://shop.example.com", paths.astype(str)).astype(object),
                     pa.string()),
            pa.array(_pick(rng, ["https://www.google.com/", "", "https://shop.example.com/cart"],
                           n), pa.string()),
            pa.array(["Thank you for your order"] * n, pa.string()),
        ],
        names=["path", "url", "referrer", "title"],
    )  # fmt: skip
    agents = [
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
    ]
    return pa.StructArray.from_arrays(
        [
            pa.array(ip, pa.string()),
            pa.array(_pick(rng, agents, n), pa.string()),
            pa.array(_pick(rng, ["en-GB", "de-DE", "fr-FR", "en-US"], n), pa.string()),
            library,
            page,
            # Segment Protocols stamps the event's version on every call it validates
            pa.StructArray.from_arrays([pa.array(np.full(n, 2))], names=["event_version"]),
        ],
        names=["ip", "user_agent", "locale", "library", "page", "protocols"],
    )


def _products(rng: np.random.Generator, n: int) -> tuple[pa.Array, int]:
    counts = rng.integers(1, 4, n)
    counts[_rare(rng, n, 0.0008)] = 0  # an empty product list: minItems
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    m = int(offsets[-1])
    pids = rng.integers(100, 999, m)
    prices = np.round(rng.uniform(1, 200, m), 2)
    prices[_rare(rng, m, 0.001)] = -1.0
    quantity = rng.integers(1, 5, m)
    quantity[_rare(rng, m, 0.0005)] = 0
    coupons = _pick(rng, ["", "SAVE10", "WINTER", "STAFF-GIFT", "free shipping over 50"], m)
    coupons[_rare(rng, m, 0.5)] = None
    email_note = _rare(rng, m, 0.0002)  # free text with PII in it, as staff type it
    coupons[email_note] = [f"for jane.doe{i}@gmail.com" for i in range(int(email_note.sum()))]
    phone_note = _rare(rng, m, 0.0001)
    coupons[phone_note] = "call +44 20 7946 0958 first"
    products = pa.StructArray.from_arrays(
        [
            _strings("p-", pids),
            _strings("SKU-", pids),
            pa.array(_pick(rng, ["Mugs", "Apparel", "Posters"], m), pa.string()),
            pa.array(_pick(rng, ["Mug", "Tee", "Cap", "Hoodie"], m), pa.string()),
            pa.array(_pick(rng, ["Acme", "Northwind", "Contoso Ltd", "Fabrikam"], m), pa.string()),
            pa.array(prices),
            pa.array(quantity),
            pa.array(coupons, pa.string()),
            pa.array(rng.integers(1, 20, m)),
            _strings("https://shop.example.com/p/", pids),
        ],
        names=["product_id", "sku", "category", "name", "brand", "price", "quantity", "coupon",
               "position", "url"],
    )  # fmt: skip
    return pa.ListArray.from_arrays(pa.array(offsets), products), m


def _chunk(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    ids = np.arange(start, start + n)
    products, _ = _products(rng, n)
    total = np.round(rng.uniform(1, 900, n), 2)
    total[_rare(rng, n, 0.0015)] = -5.0
    currency = _pick(rng, ["EUR", "USD", "GBP"], n)
    currency[_rare(rng, n, 0.0015)] = "eur"
    payment = _pick(rng, ["card", "paypal", "invoice", "gift_card"], n)
    payment[_rare(rng, n, 0.001)] = "bitcoin"
    emails = np.char.add(np.char.add("user", ids.astype(str)), "@example.com").astype(object)
    emails[_rare(rng, n, 0.0015)] = "not an email"
    checkout = np.char.add("chk-", ids.astype(str)).astype(object)
    checkout[_rare(rng, n, 0.001)] = None
    user = np.char.add("usr_", (ids % 100_000).astype(str)).astype(object)
    user[_rare(rng, n, 0.4)] = None  # anonymous shoppers
    anonymous = np.char.add("anon-", (ids % 300_000).astype(str)).astype(object)
    anonymous[_rare(rng, n, 0.0005) & (user == None)] = None  # noqa: E711
    points = np.floor(total * 10)
    points[_rare(rng, n, 0.3)] = np.nan  # guests earn none: absent
    ts = 1_790_000_000_000 + ids * 1000
    skew = rng.integers(0, 2_000, n)
    return pa.table(
        {
            "id": _strings("msg-", ids),
            "event": pa.array(["order_completed"] * n),
            "event_text": pa.array(["Order Completed"] * n),
            "user_id": pa.array(user, pa.string()),
            "anonymous_id": pa.array(anonymous, pa.string()),
            "timestamp": pa.array(ts, MS),
            "original_timestamp": pa.array(ts - skew, MS),
            "sent_at": pa.array(ts + skew, MS),
            "received_at": pa.array(ts + skew + 40, MS),
            "uuid_ts": pa.array(ts + 60_000, pa.timestamp("ms")),
            "context": _context(rng, ids),
            "order_id": _strings("ord-", ids),
            "checkout_id": pa.array(checkout, pa.string()),
            "total": pa.array(total),
            "revenue": pa.array(np.round(total * 0.8, 2)),
            "shipping": pa.array(np.round(rng.uniform(0, 10, n), 2)),
            "tax": pa.array(np.round(total * 0.2, 2)),
            "currency": pa.array(currency, pa.string()),
            "payment_method": pa.array(payment, pa.string()),
            "email": pa.array(emails, pa.string()),
            "loyalty_points": pa.array(points, pa.int64(), mask=np.isnan(points)),
            "products": products,
        }
    )


def generate(path: Path, rows: int) -> None:
    """Write the benchmark file (skipped when it exists with the right row count)."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(17)
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


def needed_columns(path: Path) -> list[str]:
    """The columns ``trackplan scan`` reads from the file (every one when it says None)."""
    schema = pq.read_schema(path)
    names = BatchPlan.build(load_plan(PLAN)).needed_columns(schema)
    return list(schema.names) if names is None else names


def streaming_read(path: Path, columns: list[str] | None) -> float:
    start = time.perf_counter()
    rows = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=columns):
        rows += batch.num_rows
    return time.perf_counter() - start


def trackplan_scan(path: Path) -> tuple[float, dict[str, Any]]:
    plan = load_plan(PLAN)
    start = time.perf_counter()
    outcome = scan(plan, [path])
    return time.perf_counter() - start, outcome.report


# -- polars: the same rules as expressions -------------------------------------------------

#: The WHATWG HTML form's email pattern, what a careful user reaches for.
EMAIL = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
URI = r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$"
IPV4 = r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
IPV6 = r"^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*$"
#: In place of the detectors: an email address or a phone number somewhere in free text.
PII_TEXT = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\+?\d[\d ().-]{7,}\d"


def polars_rules() -> dict[str, Any]:
    """Rule name -> an expression true where a row breaks it (the plan's Order Completed
    v2, its common rule and the envelope's identity rule, as polars expressions)."""
    import polars as pl

    c = pl.col

    def too_long(e: pl.Expr, n: int) -> pl.Expr:
        return e.str.len_chars() > n

    def money(e: pl.Expr) -> pl.Expr:
        return (e < 0) | (e > 1_000_000)

    el = pl.element().struct.field
    ctx = c("context").struct.field
    ip = ctx("ip")
    rules: dict[str, pl.Expr] = {
        # envelope and the common rule
        "messageId.minLength": c("id").str.len_bytes() < 1,
        "messageId.maxLength": too_long(c("id"), 100),
        "identity": ~(
            (c("user_id").str.len_bytes() >= 1).fill_null(False)
            | (c("anonymous_id").str.len_bytes() >= 1).fill_null(False)
        ),
        "context.ip.maxLength": too_long(ip, 45),
        "context.ip.anyOf": ~(ip.str.contains(IPV4) | ip.str.contains(IPV6)),
        "context.userAgent.maxLength": too_long(ctx("user_agent"), 1024),
        "context.library.name.maxLength": too_long(ctx("library").struct.field("name"), 64),
        "context.library.version.maxLength": too_long(ctx("library").struct.field("version"), 64),
        # the payload
        "order_id.required": c("order_id").is_null(),
        "checkout_id.required": c("checkout_id").is_null(),
        "total.required": c("total").is_null(),
        "currency.required": c("currency").is_null(),
        "products.required": c("products").is_null(),
        "order_id.maxLength": too_long(c("order_id"), 64),
        "checkout_id.maxLength": too_long(c("checkout_id"), 64),
        "total.range": money(c("total")),
        "revenue.range": money(c("revenue")),
        "shipping.range": money(c("shipping")),
        "tax.range": money(c("tax")),
        "currency.maxLength": too_long(c("currency"), 3),
        "currency.pattern": ~c("currency").str.contains(r"^[A-Z]{3}$"),
        "payment_method.enum": ~c("payment_method").is_in(
            ["card", "paypal", "invoice", "gift_card"]
        ),
        "loyalty_points.range": (c("loyalty_points") < 0) | (c("loyalty_points") > 1_000_000),
        "email.maxLength": too_long(c("email"), 254),
        "email.format": ~c("email").str.contains(EMAIL),
        "products.minItems": c("products").list.len() < 1,
        "products.maxItems": c("products").list.len() > 200,
        # every product: one list.eval per rule, any() back to the row
        "products[].product_id.required": el("product_id").is_null(),
        "products[].price.required": el("price").is_null(),
        "products[].product_id.maxLength": too_long(el("product_id"), 64),
        "products[].sku.maxLength": too_long(el("sku"), 64),
        "products[].category.maxLength": too_long(el("category"), 128),
        "products[].name.maxLength": too_long(el("name"), 256),
        "products[].brand.maxLength": too_long(el("brand"), 128),
        "products[].coupon.maxLength": too_long(el("coupon"), 64),
        "products[].price.range": money(el("price")),
        "products[].quantity.range": (el("quantity") < 1) | (el("quantity") > 1000),
        "products[].position.range": (el("position") < 1) | (el("position") > 10_000),
        "products[].url.maxLength": too_long(el("url"), 2048),
        "products[].url.format": ~el("url").str.contains(URI),
        # the detectors' stand-in: PII in the free text
        "products[].brand.PII": el("brand").str.contains(PII_TEXT),
        "products[].coupon.PII": el("coupon").str.contains(PII_TEXT),
    }
    out: dict[str, pl.Expr] = {}
    for name, expr in rules.items():
        if name.startswith("products[]"):
            expr = c("products").list.eval(expr.fill_null(False)).list.any()
        out[name] = expr.fill_null(False).alias(name)
    return out


def polars_check(path: Path, engine: str) -> tuple[float, int]:
    """Seconds, and rows breaking any rule: the rows and their failing rules, collected
    by polars' ``engine`` (``in-memory`` or ``streaming``)."""
    import polars as pl

    start = time.perf_counter()
    lf = pl.scan_parquet(path)
    schema = lf.collect_schema()  # types, once: timestamps are timestamps, and so on
    assert isinstance(schema["timestamp"], pl.Datetime), schema["timestamp"]
    rules = polars_rules()
    failing = (
        lf.with_row_index("row")
        .select("row", *rules.values())
        .filter(pl.any_horizontal(list(rules)))
        .collect(engine=engine)  # type: ignore[call-overload]
    )
    return time.perf_counter() - start, failing.height


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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run: Any, *args: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, what ``run`` returned)."""
    cpu = _cpu()
    start = time.perf_counter()
    result = run(*args)
    return time.perf_counter() - start, _cpu() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-rows", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-polars", action="store_true", help="skip the polars peer")
    args = parser.parse_args()
    path = DATA / f"warehouse_orders_{args.rows}.parquet"
    t0 = time.perf_counter()
    generate(path, args.rows)
    size = path.stat().st_size / 1e6
    columns = needed_columns(path)
    every = len(pq.read_schema(path).names)
    print(f"file: {path.name}, {args.rows:,} rows, {size:.0f} MB zstd "
          f"(ready in {time.perf_counter() - t0:.1f} s); the scan reads {len(columns)} "
          f"of {every} columns")  # fmt: skip
    # first, while this process is small: a child's max RSS includes the pages of the
    # process it was forked from (so it is an upper bound of the scan's own peak)
    memory = peak_memory_mb(path)
    engines = [] if args.no_polars else ["in-memory", "streaming"]
    streaming_read(path, columns)  # warm the page cache: the first read is slower
    for engine in engines:
        polars_check(path, engine)  # and polars' start-up (its thread pool, the regexes)
    runs: dict[str, list[tuple[float, float]]] = {}
    found: dict[str, str] = {}
    per_rows: list[float] = []
    for _ in range(args.repeat):
        wall, cpu, _ = timed(streaming_read, path, columns)
        runs.setdefault("read", []).append((wall, cpu))
        wall, cpu, (_, report) = timed(trackplan_scan, path)
        runs.setdefault("scan", []).append((wall, cpu))
        found["scan"] = f"{report['invalid_rows']:,} invalid rows, detectors on"
        for engine in engines:
            wall, cpu, (_, failing) = timed(polars_check, path, engine)
            runs.setdefault(f"polars {engine}", []).append((wall, cpu))
            found[f"polars {engine}"] = f"{failing:,} rows breaking a rule"
        per_rows.append(naive(path, args.naive_rows))
    found["read"] = f"ParquetFile.iter_batches, the {len(columns)} columns the scan reads"
    per_row = statistics.median(per_rows)
    naive_total = per_row * args.rows
    n = args.rows
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    labels = {"read": "streaming read", "scan": "trackplan scan"}
    for key in runs:
        print(f"{labels.get(key, key):18s} {wall[key]:6.2f} s wall {cpu[key]:6.2f} s CPU "
              f"{n / wall[key]:11,.0f} rows/s  ({found[key]})")  # fmt: skip
    print(f"{'naive per-row':18s} {naive_total:6.2f} s wall {'':13s} {1 / per_row:11,.0f} "
          f"rows/s  (extrapolated from {args.naive_rows:,} rows)")  # fmt: skip
    print(f"peak memory of trackplan scan (subprocess max RSS): {memory:,.0f} MB")
    scanned = wall["scan"]
    print(f"ratios: scan / read {scanned / wall['read']:.2f}x (target <= 1.3x); "
          f"naive / scan {naive_total / scanned:.0f}x (target >= 50x); "
          f"peak {memory:,.0f} MB (target < 1024 MB)")  # fmt: skip
    if engines:
        best = min((k for k in runs if k.startswith("polars")), key=wall.__getitem__)
        print(f"polars (best engine, {best.split()[1]}) / scan: {wall[best] / scanned:.2f}x "
              f"wall, {cpu[best] / cpu['scan']:.2f}x CPU (target > 1x)")  # fmt: skip


if __name__ == "__main__":
    main()
