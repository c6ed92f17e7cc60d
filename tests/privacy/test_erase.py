"""Erasure: every row of the subject gone, everything else kept, crash-safe."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from trackplan.errors import BatchError, InputError
from trackplan.privacy.erase import TMP_SUFFIX, EraseOptions, Subjects, erase
from trackplan.privacy.suppression import KEY_ENV, SuppressionList, subject_hash

from .erase_data import ANON, USER, expected, make_dataset, snapshot
from .privacy_helpers import ROOT, run_cli

SUBJECTS = Subjects(frozenset({USER}), frozenset({ANON}))


def _all(files: dict[str, Path]) -> dict[Path, Any]:
    return {p: snapshot(p) for p in files.values()}


def _rows(path: Path, content: Any) -> int:
    """Rows of a snapshot: parquet rows, CSV records (header excluded), non-blank lines."""
    if path.suffix == ".parquet":
        return len(content)
    if path.suffix == ".csv":
        return sum(1 for _ in csv.reader(io.StringIO(content.decode(), newline=""))) - 1
    return sum(1 for line in content.splitlines() if line.strip())


def _compression(path: Path) -> dict[str, str]:
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    return {group.column(i).path_in_schema: group.column(i).compression
            for i in range(group.num_columns)}


def test_erase_removes_the_subject_and_keeps_everything_else(tmp_path: Path) -> None:
    files = make_dataset(tmp_path / "data")
    before = _all(files)
    schemas = {p: pq.ParquetFile(p).schema_arrow for p in files.values() if p.suffix == ".parquet"}
    codecs = {p: _compression(p) for p in schemas}
    report = erase([str(tmp_path / "data")], SUBJECTS, options=EraseOptions())
    assert report.verified
    for path, content in before.items():
        assert snapshot(path) == expected(path, content), path.name
    for path, schema in schemas.items():
        pf = pq.ParquetFile(path)
        assert pf.schema_arrow.equals(schema, check_metadata=True)
        assert _compression(path) == codecs[path]
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["events.parquet"].removed == sum(
        1 for r in before[files["events"]] if r not in expected(files["events"],
                                                                before[files["events"]]))
    assert by_name["clean.ndjson"].removed == 0 and not by_name["clean.ndjson"].rewritten
    # rows naming the subject inside their payload belong to someone else: kept
    kept = [r for r in snapshot(files["events"]) if r["properties"].get("user_id") == USER]
    assert kept
    assert not list((tmp_path / "data").rglob("*" + TMP_SUFFIX))


def test_files_without_the_subject_are_not_rewritten(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    clean = files["clean"]
    stat = clean.stat()
    time.sleep(0.01)
    erase([str(tmp_path)], SUBJECTS, options=EraseOptions())
    after = clean.stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    # a second run finds nothing and rewrites nothing
    stats = {p: p.stat().st_mtime_ns for p in files.values()}
    report = erase([str(tmp_path)], SUBJECTS, options=EraseOptions())
    assert report.removed == 0 and not any(f.rewritten for f in report.files)
    assert {p: p.stat().st_mtime_ns for p in files.values()} == stats


def test_dry_run_counts_and_changes_nothing(tmp_path: Path) -> None:
    files = make_dataset(tmp_path)
    raw = {p: p.read_bytes() for p in files.values()}
    report = erase([str(tmp_path)], SUBJECTS, options=EraseOptions(dry_run=True,
                                                                   audit_log=tmp_path / "a.log"))
    assert report.removed > 0 and not report.verified
    assert {p: p.read_bytes() for p in files.values()} == raw
    assert not (tmp_path / "a.log").exists()


def test_audit_log_records_hashes_never_ids(tmp_path: Path) -> None:
    files = make_dataset(tmp_path / "d")
    log = tmp_path / "audit.log"
    erase([str(tmp_path / "d")], SUBJECTS, options=EraseOptions(audit_log=log, key=b"k1"))
    erase([str(files["csv"])], SUBJECTS, options=EraseOptions(audit_log=log, key=b"k1"))
    text = log.read_text()
    assert USER not in text and ANON not in text
    entries = [orjson.loads(line) for line in text.splitlines()]
    # a started entry before any change, a done entry after verification; the second run
    # finds nothing to remove and only records that it is done
    assert [e["status"] for e in entries] == ["started", "done", "done"]
    started, done = entries[0], entries[1]
    assert done["hash"] == "hmac-sha256" and done["verified"] is True
    assert {s["hash"] for s in done["subjects"]} == {subject_hash(USER, b"k1"),
                                                    subject_hash(ANON, b"k1")}
    assert done["rows_removed"] == sum(f["rows_removed"] for f in done["files"]) > 0
    assert started["files"] == done["files"] and started["verified"] is False
    assert done["time"].endswith("Z")
    assert entries[2]["rows_removed"] == 0


def test_ids_file_matches_user_and_anonymous_fields(tmp_path: Path) -> None:
    files = make_dataset(tmp_path / "d")
    ids = tmp_path / "ids.txt"
    ids.write_text(f"# subjects of ticket 123\n{USER}\n\n{ANON}\n")
    before = snapshot(files["ndjson"])
    result = run_cli("erase", "--ids-file", str(ids), str(files["ndjson"]))
    assert result.returncode == 0, result.stderr
    assert snapshot(files["ndjson"]) == expected(files["ndjson"], before)


def test_unreadable_line_that_may_hold_the_subject_stops_the_erase(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    content = b'{"userId": "x"}\n{"userId": "' + USER.encode() + b'", broken\n'
    bad.write_bytes(content)
    with pytest.raises(BatchError) as info:
        erase([str(bad)], SUBJECTS, options=EraseOptions())
    assert "bad.ndjson:2" in str(info.value) and USER not in str(info.value)
    assert bad.read_bytes() == content
    fine = tmp_path / "fine.ndjson"
    fine.write_bytes(b"not json at all\n" + orjson.dumps({"userId": USER}) + b"\n")
    erase([str(fine)], SUBJECTS, options=EraseOptions())
    assert fine.read_bytes() == b"not json at all\n"


def test_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        erase([str(tmp_path)], Subjects(), options=EraseOptions())
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError):
        erase([str(tmp_path / "x.txt")], SUBJECTS, options=EraseOptions())
    with pytest.raises(InputError):
        erase([str(tmp_path / "missing")], SUBJECTS, options=EraseOptions())


def test_cli_erase_suppresses_and_cleans_stale_temporaries(tmp_path: Path) -> None:
    files = make_dataset(tmp_path / "d")
    stale = files["csv"].with_name("." + files["csv"].name + TMP_SUFFIX)
    stale.write_bytes(b"half-written")
    slist = tmp_path / "suppressed.txt"
    env = {KEY_ENV: "erase-cli-key"}
    result = run_cli("erase", "--user-id", USER, "--anonymous-id", ANON, str(tmp_path / "d"),
                     "--audit-log", str(tmp_path / "audit.log"), "--suppress", str(slist),
                     env=env)
    assert result.returncode == 0, result.stderr
    assert "(verified)" in result.stdout and "1 stale temporary files removed" in result.stdout
    assert not stale.exists()
    os.environ[KEY_ENV] = "erase-cli-key"
    try:
        loaded = SuppressionList.load(slist)
    finally:
        del os.environ[KEY_ENV]
    assert loaded.contains(USER) and loaded.contains(ANON)
    assert USER not in slist.read_text()


# -- crash safety ----------------------------------------------------------------------------
def _start(paths: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "trackplan", "erase", "--user-id", USER, "--anonymous-id", ANON,
         *paths, "--audit-log", str(log)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, KEY_ENV: "sigkill-test-key"},
    )


def _wait_until(proc: subprocess.Popen[bytes], ready: Any) -> bool:
    """Poll until ``ready()`` (True) or the process exits (False)."""
    while proc.poll() is None:
        if ready():
            return True
        time.sleep(0.001)
    return False


def test_sigkill_at_random_points_then_rerun(tmp_path: Path) -> None:
    """Kill `trackplan erase` mid-run several times: every file stays whole-old or
    whole-new at every point, and a rerun finishes the job."""
    data = tmp_path / "data"
    files = make_dataset(data / "a", rows=6000)
    files.update({f"b-{k}": v for k, v in make_dataset(data / "b", rows=6000).items()})
    before = _all(files)
    after = {p: expected(p, c) for p, c in before.items()}
    changing = [p for p in files.values() if before[p] != after[p]]
    log = tmp_path / "audit.log"
    pristine = tmp_path / "pristine"
    shutil.copytree(data, pristine)
    rng = random.Random(int(time.time()))
    kills = mixed = 0
    for attempt in range(9):
        if attempt and all(snapshot(p) == after[p] for p in changing):
            # the last run finished before its kill: start again from the original files,
            # so a fast machine still sees kills land mid-erase
            shutil.rmtree(data)
            shutil.copytree(pristine, data)
        proc = _start([str(data)], log)
        inodes = {p: p.stat().st_ino for p in changing}
        kind = attempt % 3
        if kind == 0:  # anywhere, startup included
            time.sleep(rng.uniform(0.0, 0.6))
        elif kind == 1:  # while a file is being written aside
            if _wait_until(proc, lambda: any(data.rglob("*" + TMP_SUFFIX))):
                time.sleep(rng.uniform(0.0, 0.05))
        else:  # right after a file was renamed into place
            _wait_until(proc, lambda old=inodes: any(p.stat().st_ino != i for p, i in old.items()))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(60)
        erased = 0
        for path in files.values():
            assert path.exists(), f"{path} missing after a kill"
            state = snapshot(path)  # a partial parquet or gzip file would not even read
            assert state in (before[path], after[path]), f"{path} is partly erased"
            erased += path in changing and state == after[path]
        mixed += 0 < erased < len(changing)
    final = _start([str(data)], log)
    assert final.wait(120) == 0, final.stderr.read() if final.stderr else ""
    for path in files.values():
        assert snapshot(path) == after[path], path
    assert not list(data.rglob("*" + TMP_SUFFIX))
    assert kills >= 2 and mixed >= 1, (kills, mixed)  # some kills did land mid-erase
    entries = [orjson.loads(line) for line in log.read_text().splitlines()]
    assert entries[-1]["status"] == "done" and entries[-1]["verified"] is True
    # a file is rewritten only after a "started" entry listing its full count was written
    most: dict[str, int] = {}
    for entry in entries:
        if entry["status"] == "started":
            for f in entry["files"]:
                most[f["path"]] = max(most.get(f["path"], 0), f["rows_removed"])
    for path in changing:
        assert most[str(path)] == _rows(path, before[path]) - _rows(path, after[path]), path


def test_csv_with_a_byte_order_mark_and_flattened_wrapper_columns(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    content = ("\ufeffuser_id,message.anonymousId,properties.user_id\r\n"
               f"{USER},x,y\r\nother,{ANON},z\r\nother,a-1,{USER}\r\n")
    path.write_text(content, encoding="utf-8", newline="")
    report = erase([str(path)], SUBJECTS, options=EraseOptions())
    assert report.removed == 2
    assert path.read_bytes().decode("utf-8") == (
        f"\ufeffuser_id,message.anonymousId,properties.user_id\r\nother,a-1,{USER}\r\n")
