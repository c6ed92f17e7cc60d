"""``trackplan scan`` run as a user runs it: exit codes, reports, atomic outputs, inputs kept."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.batch.gen import generate, nested_table
from tests.conftest import ECOMMERCE_DIR
from trackplan.atomic import atomic_path, write_text_atomic


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackplan", "scan", str(ECOMMERCE_DIR), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("scan")
    rows, _, bad = generate(600, seed=5)
    dirty = base / "dirty.parquet"
    pq.write_table(nested_table(rows), dirty)
    clean = base / "clean.parquet"
    pq.write_table(nested_table([r for i, r in enumerate(rows) if i not in bad]), clean)
    broken = base / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    return {"dirty": dirty, "clean": clean, "broken": broken}


def test_exit_codes(files: dict[str, Path], tmp_path: Path) -> None:
    clean = run(files["clean"])
    assert clean.returncode == 0, clean.stderr
    assert "0 invalid" in clean.stdout
    dirty = run(files["dirty"])
    assert dirty.returncode == 1, dirty.stderr
    assert "failing rules" in dirty.stdout
    broken = run(files["broken"])
    assert broken.returncode == 2
    assert "broken.parquet" in broken.stderr
    missing = run(tmp_path / "nope.parquet")
    assert missing.returncode == 2


def test_json_and_html_reports_inputs_untouched(files: dict[str, Path], tmp_path: Path) -> None:
    before = _digest(files["dirty"])
    out = tmp_path / "report.json"
    result = run(files["dirty"], "--report", out, "--format", "json", "--quiet")
    assert result.returncode == 1
    assert result.stdout == "" and result.stderr == ""
    report = json.loads(out.read_text())
    for key in ("rows", "invalid_rows", "by_rule", "files"):
        assert key in report
    assert report["rows"] == 600 and 0 < report["invalid_rows"] < 600
    email = [r for r in report["by_rule"].values() if r["field"] == "email"]
    assert email, "the generated data injects email format failures"
    page = tmp_path / "report.html"
    assert run(files["dirty"], "--report", page, "--format", "html", "-q").returncode == 1
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "</html>" in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # self-contained
    assert _digest(files["dirty"]) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_samples_mask_declared_pii(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    run(files["dirty"], "--report", out, "--format", "json", "-q")
    report = json.loads(out.read_text())
    shown = [
        s["value"]
        for r in report["by_rule"].values()
        if r["field"] == "email"
        for s in r["samples"]
    ]
    assert shown
    raw = {"not-an-email", "a@@b"}
    assert not any(v and v.strip('"') in raw for v in shown)


def test_progress_silent_without_tty(files: dict[str, Path]) -> None:
    result = run(files["dirty"])
    assert result.stderr == ""


def test_dask_engine_equals_local(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("dask")
    local, dask = tmp_path / "local.json", tmp_path / "dask.json"
    assert run(files["dirty"], "--report", local, "--format", "json", "-q").returncode == 1
    result = run(files["dirty"], "--report", dask, "--format", "json", "-q", "--engine", "dask")
    assert result.returncode == 1, result.stderr
    assert json.loads(local.read_text()) == json.loads(dask.read_text())


def test_dask_engine_on_a_partitioned_tree_and_ndjson(tmp_path: Path) -> None:
    pytest.importorskip("dask")
    import orjson

    from tests.batch.gen import flat_table
    from trackplan.batch.rules import to_json

    rows, _, bad = generate(900, seed=13)
    root = tmp_path / "tree"
    for day in range(2):
        part = root / f"day={day}"
        part.mkdir(parents=True)
        pq.write_table(nested_table(rows[day::2]), part / "p.parquet", row_group_size=100)
    (root / "day=2").mkdir()
    (root / "day=2" / "more.ndjson").write_bytes(
        b"".join(orjson.dumps(to_json(r)) + b"\n" for r in rows[:50])
    )
    # a flat warehouse table beside the nested files: a DataFrame of another schema
    (root / "day=3").mkdir()
    flat = flat_table(rows[:300], "Order Completed")
    pq.write_table(flat, root / "day=3" / "orders.parquet", row_group_size=64)
    local, dask = tmp_path / "local.json", tmp_path / "dask.json"
    assert run(root, "--report", local, "--format", "json", "-q").returncode == 1
    result = run(root, "--report", dask, "--format", "json", "-q", "--engine", "dask")
    assert result.returncode == 1, result.stderr
    expected = json.loads(local.read_text())
    assert expected["rows"] == 950 + flat.num_rows and len(expected["files"]) == 4
    in_flat = [i for i in bad if i < 300 and rows[i]["event"] == "Order Completed"]
    assert expected["invalid_rows"] == len(bad) + len([i for i in bad if i < 50]) + len(in_flat)
    assert json.loads(dask.read_text()) == expected


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, partial")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def test_killed_run_leaves_no_partial_report(tmp_path: Path) -> None:
    """SIGKILL while writing: the report is absent or complete, never partial."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from trackplan.atomic import atomic_path\n"
        "with atomic_path(Path(sys.argv[1])) as tmp:\n"
        "    with open(tmp, 'w') as f:\n"
        "        f.write('x' * 1000); f.flush(); print('writing', flush=True); time.sleep(30)\n"
    )
    target = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    assert not target.exists()
    leftovers = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert leftovers == []


def test_progress_draws_only_on_a_terminal() -> None:
    import io

    from trackplan.batch.scan import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term, pipe = Terminal(), io.StringIO()
    for stream in (term, pipe):
        progress = Progress(2, stream=stream)
        progress.update("a.parquet", 1000)
        progress.close()
    assert "files 1/2" in term.getvalue() and "rows 1,000" in term.getvalue()
    assert pipe.getvalue() == ""
    quiet = Terminal()
    progress = Progress(1, stream=quiet, enabled=False)
    progress.update("a", 5)
    assert quiet.getvalue() == ""


def test_layout_overrides_on_the_command_line(tmp_path: Path) -> None:
    """A flat table without an event column, with a renamed property column."""
    from tests.batch.gen import flat_table

    rows, injected, _ = generate(400, seed=17)
    table = flat_table(rows, "Order Completed").drop_columns(["event", "event_text"])
    table = table.rename_columns(
        ["total_amount" if n == "total" else n for n in table.column_names]
    )
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    out = tmp_path / "r.json"
    args = ["--layout", "flat", "--event", "Order Completed", "--column", "total=total_amount"]
    assert run(path, *args, "--report", out, "--format", "json", "-q").returncode == 1
    report = json.loads(out.read_text())
    got = {(r["event"], r["version"], r["field"], r["keyword"]): r["rows_failing"]
           for r in report["by_rule"].values()}  # fmt: skip
    expected = {k: v for k, v in injected.items() if k[0] == "Order Completed"}
    assert got == expected
    assert run(path, "--column", "total", "-q").returncode == 2  # usage error


def test_report_write_removes_only_abandoned_temporaries(tmp_path: Path) -> None:
    """A temporary of the same report left by a dead writer goes; a live writer's stays."""
    from trackplan.atomic import PART_NAME, PartFile

    target = tmp_path / "report.json"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from trackplan.atomic import PartFile\n"
        "part = PartFile(Path(sys.argv[1]))\n"
        "part.path.write_text('half')\n"
        "print(part.path, flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    dead = Path(proc.stdout.readline().strip())
    live = PartFile(target)
    assert PART_NAME.match(dead.name) and dead.exists()
    write_text_atomic(target, "{}")  # the dead writer still lives: its temporary stays
    assert dead.exists() and live.path.exists()
    proc.kill()
    proc.wait()
    write_text_atomic(target, "{}")
    assert not dead.exists() and live.path.exists() and target.read_text() == "{}"
    live.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
