"""``trackplan validate --jobs``: a large NDJSON file checked in line-aligned ranges by
forked processes writes and reports exactly what one process does, and an interrupted run
leaves nothing behind.

The input is the Segment-shaped shop events of ``examples/segment_shop.py`` with the lines
of ``test_validate_run`` that take every branch of the loop (exact numbers, escapes,
duplicate keys, malformed, blank and over-long lines, a last line without a newline), and a
byte order mark in front.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from trackplan.engine import compile_plan, split
from trackplan.engine.cli import ValidationReport, _Run, _Sink
from trackplan.engine.readers import BOM, iter_lines
from trackplan.errors import InputError, TrackplanError
from trackplan.plan.load import load_plan

from .test_validate_run import KEY, _input, _write_plan

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not split.available(), reason="no os.fork on this platform")


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_plan(tmp_path_factory.mktemp("split"), detection=True)


@pytest.fixture(scope="module")
def events(plan: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, lines = _input(tmp_path_factory.mktemp("events"), 2500, 5)
    src.write_bytes(BOM + b"".join(lines))
    return src


def _one_process(plan: Path, src: Path, out: Path, max_bytes: int, include_blocked: bool
                 ) -> tuple[bytes, dict[str, Any]]:
    report = ValidationReport()
    sink = _Sink(str(out))
    run = _Run(compile_plan(load_plan(plan)), report, sink, include_blocked=include_blocked)
    with open(src, "rb") as fh:
        run.lines(str(src), iter_lines(fh, max_bytes), max_bytes)
    run.flush()
    sink.commit()
    return out.read_bytes(), report.to_json()


def _split(plan: Path, src: Path, out: Path, bounds: list[tuple[int, int]], max_bytes: int,
           include_blocked: bool) -> tuple[bytes, dict[str, Any]]:
    report = ValidationReport()
    sink = _Sink(str(out))
    run = _Run(compile_plan(load_plan(plan)), report, sink, include_blocked=include_blocked)
    run.lines_split(str(src), bounds, max_bytes)
    sink.commit()
    return out.read_bytes(), report.to_json()


@pytest.mark.parametrize(("parts", "max_bytes", "include_blocked"),
                         [(2, 1 << 20, False), (3, 1 << 20, True), (7, 1500, False)])
def test_ranges_in_forked_processes_equal_one_process(
    plan: Path, events: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: int,
    max_bytes: int, include_blocked: bool,
) -> None:
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)
    bounds = split.chunk_bounds(str(events), parts, min_bytes=1 << 14)
    assert len(bounds) == parts
    one = _one_process(plan, events, tmp_path / "one.ndjson", max_bytes, include_blocked)
    many = _split(plan, events, tmp_path / "many.ndjson", bounds, max_bytes, include_blocked)
    assert many[0] == one[0]
    assert many[1] == one[1]
    report = one[1]
    assert report["blocked"] and report["violations"] and report["malformed"]
    assert len(report["first_violations"]) == 20
    lines = events.read_bytes().split(b"\n")
    for entry in report["first_violations"]:  # numbered as lines of the whole file
        assert 1 <= entry["line"] <= len(lines)
    assert not list(tmp_path.glob(".trackplan-parts-*"))  # the part files are gone


def test_chunk_bounds_are_line_aligned_and_cover_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lines.ndjson"
    data = b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * (i % 97)) for i in range(5000))
    path.write_bytes(data)
    for parts in (1, 2, 5, 13):
        bounds = split.chunk_bounds(str(path), parts, min_bytes=1000)
        assert len(bounds) == parts
        assert bounds[0][0] == 0 and bounds[-1][1] == len(data)
        for (_, end), (start, _) in zip(bounds, bounds[1:], strict=False):
            assert end == start and data[start - 1 : start] == b"\n"
    assert len(split.chunk_bounds(str(path), 8, min_bytes=len(data))) == 1  # too small
    one_line = tmp_path / "one.ndjson"
    one_line.write_bytes(b'{"x":"' + b"y" * 100_000 + b'"}')
    assert split.chunk_bounds(str(one_line), 4, min_bytes=1000) == [(0, 100_008)]


def _raise_input_error(message: str) -> None:
    raise InputError(message)


class _TwoArgs(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(a, b)


def _raise_two_args() -> None:
    raise _TwoArgs("left", "right")


def test_forked_results_and_errors_come_back() -> None:
    assert split.Forked(sum, [1, 2, 3]).result() == 6
    with pytest.raises(InputError, match="events.ndjson: cannot read"):
        split.Forked(_raise_input_error, "events.ndjson: cannot read").result()
    with pytest.raises(TrackplanError, match="worker process failed: _TwoArgs at "
                                             "test_split.py:[0-9]+ in _raise_two_args") as err:
        split.Forked(_raise_two_args).result()
    assert "left" not in str(err.value)  # the message, which may quote values, stays there
    child = split.Forked(time.sleep, 60)
    pid = child.pid
    child.kill()
    assert child.pid == 0
    with pytest.raises(ChildProcessError):  # ended and reaped: no such child any more
        os.waitpid(pid, os.WNOHANG)


def _big_input(events: Path, tmp: Path) -> Path:
    """The events repeated past the size a run splits at (32 MB)."""
    body = events.read_bytes().removeprefix(BOM)
    if not body.endswith(b"\n"):
        body += b"\n"
    big = tmp / "big.ndjson"
    with big.open("wb") as fh:
        written = 0
        while written < (33 << 20):
            fh.write(body)
            written += len(body)
    return big


def _cli(plan: Path, src: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TRACKPLAN_HASH_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "trackplan", "validate", str(plan), str(src),
                           "--format", "json", *args], capture_output=True, env=env, cwd=ROOT)


def test_cli_splits_a_large_file_and_writes_what_one_process_does(
    plan: Path, events: Path, tmp_path: Path
) -> None:
    big = _big_input(events, tmp_path)
    one = _cli(plan, big, "--out", str(tmp_path / "one.ndjson"), "--jobs", "1")
    many = _cli(plan, big, "--out", str(tmp_path / "many.ndjson"), "--jobs", "3")
    assert one.returncode == many.returncode == 1, many.stderr.decode()
    assert many.stdout == one.stdout
    assert (tmp_path / "many.ndjson").read_bytes() == (tmp_path / "one.ndjson").read_bytes()
    streamed = _cli(plan, big, "--out", "-", "--jobs", "2")  # to stdout, report on stderr
    assert streamed.returncode == 1
    assert streamed.stdout == (tmp_path / "one.ndjson").read_bytes()
    assert orjson.loads(streamed.stderr) == orjson.loads(one.stdout)
    report = orjson.loads(one.stdout)
    assert report["events"] > 20_000


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see workers")
def test_an_interrupted_split_run_leaves_no_output_no_parts_and_no_workers(
    plan: Path, events: Path, tmp_path: Path
) -> None:
    proc, target, workers = _running_split(plan, events, tmp_path)
    out_dir = target.parent
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) != 0
    assert not target.exists()
    assert sorted(p.name for p in out_dir.iterdir()) == []
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _zombie_or_gone(pid)


def _running_split(plan: Path, events: Path, tmp_path: Path
                   ) -> tuple[subprocess.Popen[bytes], Path, list[int]]:
    """A ``validate --jobs 2`` run of :func:`_big_input` into ``tmp_path/out``, once its
    parts directory exists and its worker runs: the process, the output's path and the
    workers' pids."""
    big = _big_input(events, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "events.ndjson"
    env = {**os.environ, "TRACKPLAN_HASH_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "trackplan", "validate", str(plan), str(big),
                             "--out", str(target), "--jobs", "2"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while not (list(out_dir.glob(".trackplan-parts-*")) and workers):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.01)
        workers = _children(proc.pid)
    return proc, target, workers


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _zombie_or_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_a_part_that_cannot_be_written_names_itself(tmp_path: Path) -> None:
    """A worker's part file that cannot be made or written raises trackplan's own error
    (carried to the parent by :class:`split.Forked`, as the test above shows)."""
    from trackplan.engine.cli import _PartSink

    with pytest.raises(InputError, match="missing/part-1: cannot write a part"):
        _PartSink(str(tmp_path / "missing" / "part-1"))
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    sink = _PartSink("/dev/full")
    with pytest.raises(InputError, match="/dev/full: cannot write a part of the output"):
        sink.write(b"x" * (1 << 20))
        sink.close()


_HOLD_PARTS = """
import sys
from pathlib import Path
from trackplan.atomic import PartsDir
parts = PartsDir(Path(sys.argv[1]))
print(parts.path, flush=True)
sys.stdin.read()  # held until the test closes stdin or kills this process
"""


def test_parts_of_a_killed_run_are_removed_by_the_next_and_live_ones_kept(
    tmp_path: Path,
) -> None:
    from trackplan.atomic import PartsDir, remove_dead_parts

    live = subprocess.Popen([sys.executable, "-c", _HOLD_PARTS, str(tmp_path)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert live.stdout is not None
    held = Path(live.stdout.readline().decode().strip())
    (held / "part-1").write_bytes(b"{}\n")
    try:
        mine = PartsDir(tmp_path)  # another run in the same place
        assert held.is_dir()  # the live run's parts are kept
        mine.close()
        assert not mine.path.exists()
    finally:
        live.kill()
        live.wait(30)
    assert held.is_dir()  # killed: nothing removed it ...
    assert remove_dead_parts(tmp_path) == 1  # ... until a run looks
    assert not held.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see workers")
def test_a_killed_run_leaves_parts_that_the_next_run_removes(
    plan: Path, events: Path, tmp_path: Path
) -> None:
    proc, target, workers = _running_split(plan, events, tmp_path)
    out_dir = target.parent
    proc.kill()
    proc.wait(30)
    deadline = time.monotonic() + 30
    while not all(_zombie_or_gone(pid) for pid in workers):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not target.exists()
    assert list(out_dir.glob(".trackplan-parts-*"))  # left by the killed run
    done = _cli(plan, tmp_path / "big.ndjson", "--out", str(target), "--jobs", "2")
    assert done.returncode == 1, done.stderr.decode()
    assert target.exists()
    assert sorted(p.name for p in out_dir.iterdir()) == ["events.ndjson"]


_PARENT = """
import sys, time
from trackplan.engine import split
child = split.Forked(time.sleep, 120)
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_its_killed_parent() -> None:
    """A worker sleeping two minutes is gone within seconds of its parent's SIGKILL."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], cwd=ROOT, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert not _zombie_or_gone(worker)
    parent.kill()
    parent.wait(30)
    deadline = time.monotonic() + 20
    while not _zombie_or_gone(worker):
        assert time.monotonic() < deadline, "the worker outlived its killed parent"
        time.sleep(0.02)
