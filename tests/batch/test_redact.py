"""``--redact-to``: PII actions column-wise equal the per-row functions; layout, schema and
compression kept; blocked rows removed; outputs atomic; inputs untouched."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.batch.gen import generate, nested_table
from tests.conftest import ECOMMERCE_DIR
from trackplan.batch.redact import apply_column
from trackplan.batch.rules import to_json

pytest.importorskip("trackplan.pii.policy")
from trackplan.pii.actions import apply_action  # noqa: E402

KEY = "test-key-not-secret"


def run(*args: str | Path, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACKPLAN_HASH_KEY"}
    if key is not None:
        env["TRACKPLAN_HASH_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "trackplan", "scan", str(ECOMMERCE_DIR), *map(str, args), "-q"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def _enforced(rows: list[dict[str, object]]) -> list[dict[str, object] | None]:
    """What ``enforce`` forwards of each row (None: blocked): the decision and the
    properties a cleaned copy keeps (``violations: omit`` drops the offending ones)."""
    from trackplan.engine.enforcer import compile_plan
    from trackplan.plan.load import load_plan

    saved = os.environ.get("TRACKPLAN_HASH_KEY")
    os.environ["TRACKPLAN_HASH_KEY"] = KEY
    try:
        enforcer = compile_plan(load_plan(ECOMMERCE_DIR))
    finally:
        if saved is None:
            del os.environ["TRACKPLAN_HASH_KEY"]
        else:
            os.environ["TRACKPLAN_HASH_KEY"] = saved
    out: list[dict[str, object] | None] = []
    for row in rows:
        result = enforcer.enforce(to_json(row))
        out.append(result.event if result.allowed else None)
    return out


def _kept_props(forwarded: dict[str, object] | None) -> set[str]:
    props = (forwarded or {}).get("properties")
    return set(props) if isinstance(props, dict) else set()


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }  # fmt: skip


@pytest.fixture(scope="module")
def export(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[dict[str, object]], set[int]]:
    root = tmp_path_factory.mktemp("in") / "export"
    rows, _, bad = generate(900, seed=21)
    for day in range(2):
        part = root / f"day={day}"
        part.mkdir(parents=True)
        pq.write_table(nested_table(rows[day::2]), part / "part-0.parquet", compression="zstd")
    return root, rows, bad


@pytest.mark.parametrize(
    ("action", "category", "values"),
    [
        ("hash", "email", ["A@Example.com", "a@example.com ", None, "b@x.org", "A@Example.com"]),
        ("mask", "ip", ["203.0.113.79", None, "2001:db8::1", "nope"]),
        ("mask", "email", ["jane@example.com", "x", None]),
        ("redact", "name", ["Jane", None, ""]),
        ("hash", "phone", ["+44 7700 900123", "07700900123", None]),
    ],
)
def test_column_action_equals_per_row(action: str, category: str, values: list[str | None]) -> None:
    got = apply_column(pa.array(values, pa.string()), action, category, KEY.encode()).to_pylist()
    expected = [
        None if v is None else apply_action(action, category, v, KEY.encode())[1] for v in values
    ]
    assert got == expected


def test_numbers_and_drop() -> None:
    arr = pa.array([1, None, 7], pa.int64())
    assert apply_column(arr, "redact", "other", None).to_pylist() == [0, None, 0]
    assert apply_column(arr, "drop", "other", None).null_count == 3


def test_redacted_copy(
    tmp_path: Path, export: tuple[Path, list[dict[str, object]], set[int]]
) -> None:
    root, rows, _ = export
    enforced = _enforced(rows)
    assert any(f is not None and len(_kept_props(f)) < len(r["properties"])  # type: ignore[arg-type]
               for f, r in zip(enforced, rows, strict=True)), "no row has a property omitted"
    before = _tree_digest(root)
    out = tmp_path / "clean"
    result = run(root, "--redact-to", out)
    assert result.returncode == 1, result.stderr
    assert _tree_digest(root) == before, "inputs must never change"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["day=0/part-0.parquet", "day=1/part-0.parquet"]
    key = KEY.encode()
    total = 0
    for day in range(2):
        src = root / f"day={day}" / "part-0.parquet"
        dst = out / f"day={day}" / "part-0.parquet"
        assert pq.read_schema(dst) == pq.read_schema(src)
        meta = pq.ParquetFile(dst).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        kept = [(r, enforced[i]) for i, r in enumerate(rows)
                if i % 2 == day and enforced[i] is not None]  # fmt: skip
        got = pq.read_table(dst).to_pylist()
        assert len(got) == len(kept)
        total += len(got)
        for (original, forwarded), clean in zip(kept, got, strict=True):
            props, new = original["properties"], clean["properties"]
            assert isinstance(props, dict) and isinstance(new, dict)
            omitted = set(props) - _kept_props(forwarded)
            for name in omitted:  # dropped as the enforcer drops it (violations: omit)
                assert new[name] in (None, []), name
            props = {k: v for k, v in props.items() if k not in omitted}
            if props.get("email") is not None:
                assert new["email"] == apply_action("hash", "email", props["email"], key)[1]
            if original["event"] == "Signed Up" and props.get("phone") is not None:
                assert new["phone"] == apply_action("hash", "phone", props["phone"], key)[1]
            if props.get("shipping_address") is not None and original["event"] == "Order Completed":
                assert new["shipping_address"] is None  # address: drop
            ip = original["context"]["ip"]  # type: ignore[index]
            assert clean["context"]["ip"] == apply_action("mask", "ip", ip, None)[1]
            assert new["order_id"] == props.get("order_id")
    assert total == sum(f is not None for f in enforced)
    kept_all = tmp_path / "all"
    assert run(root, "--redact-to", kept_all, "--keep-blocked").returncode == 1
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in kept_all.rglob("*.parquet")) == 900


def test_ndjson_gzip_copy(tmp_path: Path) -> None:
    rows, _, _ = generate(200, seed=4, call=True)
    enforced = _enforced(rows)
    src = tmp_path / "in" / "events.ndjson.gz"
    src.parent.mkdir()
    src.write_bytes(gzip.compress(b"".join(orjson.dumps(to_json(r)) + b"\n" for r in rows)))
    out = tmp_path / "out"
    assert run(src, "--redact-to", out).returncode == 1
    lines = gzip.decompress((out / "events.ndjson.gz").read_bytes()).splitlines()
    forwarded = [f for f in enforced if f is not None]
    assert 0 < len(forwarded) < len(rows)
    assert len(lines) == len(forwarded)
    assert [_kept_props(orjson.loads(x)) for x in lines] == [_kept_props(f) for f in forwarded]
    assert all("@" not in (orjson.loads(x)["properties"].get("email") or "") for x in lines)


def test_failure_leaves_no_output(
    tmp_path: Path, export: tuple[Path, list[dict[str, object]], set[int]]
) -> None:
    root, _, _ = export
    broken = tmp_path / "zz-broken.parquet"
    broken.write_bytes(b"PAR1 not parquet at all")
    out = tmp_path / "clean"
    result = run(root, broken, "--redact-to", out)
    assert result.returncode == 2
    assert [p for p in out.rglob("*") if p.is_file()] == []


def test_missing_hash_key_is_refused(
    tmp_path: Path, export: tuple[Path, list[dict[str, object]], set[int]]
) -> None:
    root, _, _ = export
    out = tmp_path / "clean"
    result = run(root, "--redact-to", out, key=None)
    assert result.returncode == 2
    assert "TRACKPLAN_HASH_KEY" in result.stderr
    assert not out.exists() or not any(out.rglob("*"))


def test_csv_copy(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv

    from tests.batch.gen import flat_table

    rows, _, _ = generate(300, seed=8)
    table = flat_table(rows, "Signed Up")
    signed_up = [r for r in rows if r["event"] == "Signed Up"]
    enforced = _enforced(signed_up)
    src = tmp_path / "in" / "signed_up.csv"
    src.parent.mkdir()
    pacsv.write_csv(table, src)
    out = tmp_path / "out"
    assert run(src, "--redact-to", out, "--keep-blocked").returncode == 1
    clean = pacsv.read_csv(out / "signed_up.csv")
    assert clean.column_names == table.column_names and clean.num_rows == table.num_rows
    key = KEY.encode()
    for before, after, forwarded in zip(table.to_pylist(), clean.to_pylist(), enforced,
                                        strict=True):
        if forwarded is not None and "email" not in _kept_props(forwarded):
            assert after["email"] in (None, "")  # omitted, as the enforcer omits it
        elif before["email"] is not None:
            assert after["email"] == apply_action("hash", "email", before["email"], key)[1]
        assert after["context_ip"] == apply_action("mask", "ip", before["context_ip"], None)[1]
        if forwarded is not None and "method" not in _kept_props(forwarded):
            assert after["method"] in (None, "")
        else:
            assert after["method"] == before["method"]


def test_rerun_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    """SIGKILL during --redact-to leaves hidden temporaries; the next run removes them."""
    import signal
    import time

    rows, _, _ = generate(4000, seed=31)
    enforced = _enforced(rows)
    src = tmp_path / "export"
    for n in range(8):  # every output stays a temporary until the run ends
        directory = src / f"part={n}"
        directory.mkdir(parents=True)
        pq.write_table(nested_table(rows[n::8]), directory / "p.parquet")
    out = tmp_path / "clean"
    env = {**os.environ, "TRACKPLAN_HASH_KEY": KEY}
    args = [sys.executable, "-m", "trackplan", "scan", str(ECOMMERCE_DIR), str(src)]
    seen: list[Path] = []
    for _ in range(5):  # the run may finish before a poll sees a temporary: try again
        proc = subprocess.Popen([*args, "--redact-to", str(out), "-q"], env=env)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            seen = list(out.rglob(".*.part")) if out.exists() else []
            if seen:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait()
        if seen and proc.returncode == -signal.SIGKILL:
            break
        for leftover in out.rglob("*"):
            if leftover.is_file():
                leftover.unlink()
    assert seen and proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    stale = sorted(out.rglob(".*.part"))
    assert stale, "a killed run leaves its temporaries"
    # a temporary a live writer holds, and a file of another tool, are not this run's to remove
    from trackplan.atomic import PartFile

    live = PartFile(out / "part=0" / "live.parquet")
    foreign = out / ".notes.part"
    foreign.write_text("not ours")
    result = subprocess.run([*args, "--redact-to", str(out), "-q"], env=env, timeout=120)
    assert result.returncode == 1
    left = sorted(out.rglob(".*.part"))
    assert left == sorted([live.path, foreign])
    live.discard()
    # and what the rerun wrote equals a run into an empty directory
    fresh = tmp_path / "fresh"
    assert subprocess.run([*args, "--redact-to", str(fresh), "-q"], env=env).returncode == 1
    written = {p.relative_to(out) for p in out.rglob("*.parquet") if not p.name.startswith(".")}
    assert written == {p.relative_to(fresh) for p in fresh.rglob("*.parquet")}
    for name in written:
        assert pq.read_table(out / name).equals(pq.read_table(fresh / name))
    assert sum(pq.read_metadata(out / n).num_rows for n in written) == sum(
        f is not None for f in enforced)


def test_unplanned_properties_omitted_as_enforce_omits(tmp_path: Path) -> None:
    """``unplanned_properties: omit``: the enforcer forwards the call without them; so does
    the cleaned copy (nested parquet and NDJSON), keeping every row."""
    rows = [{"type": "track", "event": "Product Added", "messageId": f"m{i}", "userId": "u1",
             "properties": {"cart_id": "c1", "product_id": "p1", "price": 9.5, "quantity": 2,
                            "experiment_variant": "B" if i % 2 else None}}
            for i in range(10)]  # fmt: skip
    forwarded = _enforced(rows)
    assert all(f is not None for f in forwarded)
    assert all("experiment_variant" not in _kept_props(f) for f in forwarded)
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), src / "e.parquet")
    (src / "e.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    out = tmp_path / "out"
    result = run(src, "--redact-to", out)
    assert result.returncode in (0, 1), result.stderr
    copy = pq.read_table(out / "e.parquet").to_pylist()
    assert len(copy) == len(rows)
    assert all(r["properties"]["experiment_variant"] is None for r in copy)
    assert all(r["properties"]["cart_id"] == "c1" for r in copy)
    lines = [orjson.loads(x) for x in (out / "e.ndjson").read_bytes().splitlines()]
    assert len(lines) == len(rows)
    assert all("experiment_variant" not in (x["properties"] or {}) for x in lines)
