"""Erasure is exact under hostile input and concurrent runs (issue 15, items 1 to 3)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trackplan.errors import BatchError, InputError
from trackplan.privacy.erase import EraseOptions, Subjects, erase
from trackplan.privacy.locking import TMP_SUFFIX, FileLock, OwnedTemp

from .privacy_helpers import ROOT, run_cli


def _users(*ids: str) -> Subjects:
    return Subjects(frozenset(ids))


# -- item 1: concurrent runs ------------------------------------------------------------------
def _big_csv(path: Path, rows: int) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["userId", "event", "note"])
    for i in range(rows):
        user = "u1" if i % 500 == 1 else "u2" if i % 500 == 2 else f"other-{i % 997}"
        writer.writerow([user, "Order Completed", f"row {i}, padding " + "x" * 20])
    path.write_text(buf.getvalue(), newline="")


def _erase_proc(path: Path, user: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "trackplan", "erase", "--user-id", user, str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_two_concurrent_erase_runs_on_one_file_both_take_effect(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    _big_csv(data, 150_000)
    assert data.stat().st_size > 6_000_000
    with data.open(newline="") as f:
        before = list(csv.reader(f))
    # both at once: without a lock they scan the same old file and write over each other
    first = _erase_proc(data, "u1")
    second = _erase_proc(data, "u2")
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert b"(verified)" in out1 and b"(verified)" in out2
    with data.open(newline="") as f:
        after = list(csv.reader(f))
    assert after == [r for r in before if r[0] not in ("u1", "u2")]
    assert all(len(r) == 3 for r in after)  # every row whole: the file parses
    removed = sum(int(out.split(b"removed ")[1].split()[0]) for out in (out1, out2))
    assert removed == len(before) - len(after) == 600
    assert not list(tmp_path.glob(".*"))  # no temporaries, no lock files left


def test_stale_cleanup_spares_temporaries_of_live_writers(tmp_path: Path) -> None:
    busy = tmp_path / "busy.ndjson"
    busy.write_bytes(b'{"userId":"x"}\n')
    target = tmp_path / "t.ndjson"
    target.write_bytes(b'{"userId":"u1"}\n{"userId":"u3"}\n')
    live = OwnedTemp.create(busy)  # a live writer of another file: its temp must stay
    dead = tmp_path / f".t.ndjson.999999-0123456789ab{TMP_SUFFIX}"
    dead.write_bytes(b"half")  # nobody holds it: its writer is dead
    legacy = tmp_path / f".busy.ndjson{TMP_SUFFIX}"
    legacy.write_bytes(b"old")
    try:
        held = FileLock.acquire(busy)  # a live run on busy.ndjson: its files stay untouched
        report = erase([str(target)], _users("u1"), options=EraseOptions())
        assert live.path.exists() and legacy.exists() and not dead.exists()
        assert report.stale_removed == 1
        held.release()
    finally:
        live.discard()
    assert target.read_bytes() == b'{"userId":"u3"}\n'
    # once the writer is gone, its left-over is stale and a later run removes it
    report = erase([str(target)], _users("u3"), options=EraseOptions())
    assert not legacy.exists() and report.stale_removed == 1


def test_a_waiting_run_relocks_when_the_lock_file_was_replaced(tmp_path: Path) -> None:
    data = tmp_path / "a.ndjson"
    first = FileLock.acquire(data)
    assert first is not None
    assert FileLock.try_acquire(data) is None
    first.release()
    second = FileLock.try_acquire(data)
    assert second is not None and second.path.exists()
    second.release()
    assert not second.path.exists()


# -- item 2: empty ids --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", "  ", "\t"])
def test_empty_or_blank_ids_are_refused(tmp_path: Path, bad: str) -> None:
    anon = tmp_path / "anon.csv"
    content = "userId,event\n,x\n,y\nu9,z\n"
    anon.write_text(content)
    result = run_cli("erase", "--user-id", bad, str(anon))
    assert result.returncode == 2, result.stderr
    assert "empty or blank" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("erase", "--anonymous-id", bad, "--user-id", "u9", str(anon))
    assert result.returncode == 2
    assert anon.read_text() == content
    with pytest.raises(InputError):
        erase([str(anon)], Subjects(any_ids=frozenset({bad})), options=EraseOptions())


def test_an_ids_file_without_ids_is_refused(tmp_path: Path) -> None:
    anon = tmp_path / "anon.ndjson"
    anon.write_bytes(b'{"userId":""}\n{"userId":"u9"}\n')
    ids = tmp_path / "ids.txt"
    ids.write_text("# nobody\n\n   \n")
    result = run_cli("erase", "--ids-file", str(ids), str(anon))
    assert result.returncode == 2 and "no subject" in result.stderr
    ids.write_bytes(b"\xff\xfe\x00binary")
    result = run_cli("erase", "--ids-file", str(ids), str(anon))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert anon.read_bytes() == b'{"userId":""}\n{"userId":"u9"}\n'


# -- item 3: misses --------------------------------------------------------------------------
def test_upper_case_id_columns_in_csv_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "snow.csv"
    path.write_text("USER_ID,ANONYMOUS_ID,EVENT\nu1,a,x\nu2,a1,y\nu3,A1,z\n")
    report = erase([str(path)], Subjects(frozenset({"u1"}), frozenset({"a1"})),
                   options=EraseOptions())
    assert report.removed == 2 and report.verified
    assert path.read_text() == "USER_ID,ANONYMOUS_ID,EVENT\nu3,A1,z\n"
    table = pa.table({"USER_ID": ["u1", "u2", None], "Message": [{"UserId": "u2"},
                                                               {"UserId": "u9"}, None]})
    pq_path = tmp_path / "snow.parquet"
    pq.write_table(table, pq_path)
    report = erase([str(pq_path)], _users("u2"), options=EraseOptions())
    assert report.removed == 2
    assert pq.read_table(pq_path).to_pylist() == [{"USER_ID": None, "Message": None}]
    ndjson = tmp_path / "upper.ndjson"
    ndjson.write_bytes(b'{"USER_ID":"u1"}\n{"message":{"UserID":"u1"}}\n{"user_id":"u5"}\n')
    assert erase([str(ndjson)], _users("u1"), options=EraseOptions()).removed == 2
    assert ndjson.read_bytes() == b'{"user_id":"u5"}\n'


def test_json_escapes_are_compared_decoded(tmp_path: Path) -> None:
    path = tmp_path / "php.json"
    path.write_bytes(b'{"userId":"acme\\/u1"}\n{"userId":"\\u0061cme/u1","n":2}\n'
                     b'{"userId":"acme/u2"}\n')
    report = erase([str(path)], _users("acme/u1"), options=EraseOptions())
    assert report.removed == 2
    assert path.read_bytes() == b'{"userId":"acme/u2"}\n'
    broken = tmp_path / "broken.ndjson"
    broken.write_bytes(b'{"userId":"acme\\/u1", oops\n{"userId":"\\/other", oops\n')
    with pytest.raises(BatchError) as info:
        erase([str(broken)], _users("acme/u1"), options=EraseOptions())
    assert "broken.ndjson:1" in str(info.value) and "acme" not in str(info.value)
    # a broken line that decodes to no subject id is no reason to stop
    broken.write_bytes(b'{"userId":"\\/other", oops\n{"userId":"acme\\/u1"}\n')
    assert erase([str(broken)], _users("acme/u1"), options=EraseOptions()).removed == 1


@pytest.mark.parametrize("body", [
    b'[{"userId":"u1"},{"userId":"u2"}]\n',
    b'[\n  {"userId": "u2"},\n  {"userId": "u1"}\n]\n',
    b'{"batch":[{"type":"track","userId":"u1"}],"sentAt":"2024-01-01T00:00:00Z"}\n',
    b'{\n  "batch": [\n    {"userId": "u1"}\n  ]\n}\n',
])
def test_json_documents_holding_a_subject_are_refused_not_missed(
        tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(body)
    result = run_cli("erase", "--user-id", "u1", str(path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "verified" not in result.stdout and "Traceback" not in result.stderr
    assert "events.json" in result.stderr and "u1" not in result.stderr
    assert path.read_bytes() == body
    # a document without the subject is checked and left alone
    result = run_cli("erase", "--user-id", "u7", str(path))
    assert result.returncode == 0 and "removed 0 rows" in result.stdout


def test_struct_typed_id_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"userId": [{"id": "u1"}, {"id": "u2"}]}), path)
    raw = path.read_bytes()
    result = run_cli("erase", "--user-id", "u1", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "s.parquet" in result.stderr and "cannot hold an id" in result.stderr
    assert path.read_bytes() == raw


def test_duplicate_and_dotted_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays(
        [pa.array(["u1", "u2"]), pa.array(["a", "u1"]), pa.array([1, 2])],
        names=["userId", "userId", ".x"],
    )
    pq.write_table(table, path)
    report = erase([str(path)], _users("u1"), options=EraseOptions())
    assert report.removed == 2 and report.verified
    assert pq.ParquetFile(path).read().num_rows == 0


def test_audit_and_messages_never_echo_ids(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(orjson.dumps({"userId": "jane@example.com"}) + b"\n")
    result = run_cli("erase", "--user-id", "jane@example.com", str(path))
    assert result.returncode == 0
    assert "jane" not in result.stdout + result.stderr


# -- item 13: keyed subject hashes by default ---------------------------------------------------
def test_subject_hashes_need_a_key_unless_unkeyed_is_chosen(tmp_path: Path) -> None:
    import os

    from trackplan.privacy.suppression import KEY_ENV, subject_hash

    data = tmp_path / "d.ndjson"
    data.write_bytes(b'{"userId":"jane@example.com"}\n{"userId":"u2"}\n')
    log = tmp_path / "audit.log"
    clean = {k: v for k, v in os.environ.items()
             if k not in (KEY_ENV, "TRACKPLAN_HASH_KEY", "MY_PLAN_KEY")}
    base = ["erase", "--user-id", "jane@example.com", str(data), "--audit-log", str(log)]

    def erase_cli(*extra: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "trackplan", *base, *extra],
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)

    refused = erase_cli(env=clean)
    assert refused.returncode == 2 and "--unkeyed-hashes" in refused.stderr
    assert data.read_bytes().count(b"jane") == 1 and not log.exists()
    # the plan names its key: that key is used
    plan = tmp_path / "p"
    (plan / "events").mkdir(parents=True)
    (plan / "plan.yaml").write_text("trackplan: 1\nname: P\npii:\n  hash_key_env: MY_PLAN_KEY\n")
    keyed = erase_cli("--plan", str(plan), env={**clean, "MY_PLAN_KEY": "plan-secret"})
    assert keyed.returncode == 0, keyed.stderr
    entry = orjson.loads(log.read_text().splitlines()[-1])
    assert entry["hash"] == "hmac-sha256"
    assert entry["subjects"][0]["hash"] == subject_hash("jane@example.com", b"plan-secret")
    # unkeyed only when chosen, with a warning
    data.write_bytes(b'{"userId":"jane@example.com"}\n')
    unkeyed = erase_cli("--unkeyed-hashes", env=clean)
    assert unkeyed.returncode == 0 and "warning" in unkeyed.stderr
    assert orjson.loads(log.read_text().splitlines()[-1])["hash"] == "sha256"
