"""Valid data never vanishes and bad locations are trackplan's own errors (issue 15)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackplan.engine import exactjson
from trackplan.engine.readers import detect_format, iter_events

ROOT = Path(__file__).resolve().parents[2]
GOOD = b'{"type":"track","event":"Order Completed","userId":"u","properties":{"x":"a"}}\n'


def run(*args: str, stdin: bytes | None = None, cwd: Path = ROOT
        ) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "trackplan", *args], input=stdin,
                          capture_output=True, cwd=cwd, timeout=120, env=env)


@pytest.fixture()
def plan(tmp_path: Path) -> Path:
    """The issue's one-event plan ``p/``; unplanned properties are omitted (a change)."""
    root = tmp_path / "p"
    (root / "events").mkdir(parents=True)
    (root / "plan.yaml").write_text(
        "trackplan: 1\nname: P\ncontrols:\n  track:\n    unplanned_properties: omit\n")
    (root / "events" / "oc.yaml").write_text(
        "name: Order Completed\nproperties:\n  type: object\n  properties:\n"
        "    x:\n      type: string\n")
    return root


# -- item 4 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("head", [b"{bad\n", b"\xef\xbb\xbf"])
def test_a_broken_or_bom_first_line_does_not_drop_the_file(
        tmp_path: Path, plan: Path, head: bytes) -> None:
    src = tmp_path / "f.ndjson"
    src.write_bytes(head + GOOD + GOOD)
    out = tmp_path / "o.ndjson"
    result = run("validate", str(plan), str(src), "--out", str(out))
    assert out.read_bytes() == GOOD + GOOD, result.stderr
    assert result.returncode == (1 if head.startswith(b"{") else 0)
    gz = tmp_path / "f.ndjson.gz"
    gz.write_bytes(gzip.compress(head + GOOD))
    result = run("validate", str(plan), str(gz), "--out", str(out))
    assert out.read_bytes() == GOOD
    # route reads the same way
    routed = run("route", str(plan), str(src))
    assert routed.stdout.count(b'"allowed":true') == 2, routed.stderr


def test_detection_keeps_pretty_documents_and_falls_back_to_ndjson() -> None:
    assert detect_format(b"{bad\n" + GOOD) == "ndjson"
    assert detect_format(b'{\n  "batch": [\n' + GOOD + b"]}\n") == "batch"
    assert detect_format(b'{\n  "type": "track",\n  "event": "A"\n}\n') == "json"
    assert [i.error is None for i in iter_events(b"\xef\xbb\xbf" + GOOD)] == [True]


# -- item 5 ----------------------------------------------------------------------------------
def test_numbers_keep_their_exact_text_changed_or_not(tmp_path: Path, plan: Path) -> None:
    tail = b',"big":123456789012345678901234567890,"neg":-9223372036854775809,"t":1e-400}'
    same = (b'{"type":"track","event":"Order Completed","userId":"u","properties":{"x":"a"}'
            + tail + b"\n")
    changed = (b'{"type":"track","event":"Order Completed","userId":"u",'
               b'"properties":{"x":"a","drop":1}' + tail + b"\n")
    src = tmp_path / "n.ndjson"
    src.write_bytes(same + changed)
    out = tmp_path / "o.ndjson"
    assert run("validate", str(plan), str(src), "--out", str(out)).returncode == 0
    lines = out.read_bytes().splitlines(keepends=True)
    assert lines[0] == same
    for token in (b"123456789012345678901234567890", b"-9223372036854775809", b"1e-400"):
        assert token in lines[1]
    assert b'"drop":1' not in lines[1]
    # a JSON array goes through the document reader: the same guarantee
    doc = tmp_path / "a.json"
    doc.write_bytes(b"[" + changed.strip() + b"]")
    assert run("validate", str(plan), str(doc), "--out", str(out)).returncode == 0
    assert b"123456789012345678901234567890" in out.read_bytes()
    assert b"1e-400" in out.read_bytes()


def test_exactjson_round_trips_what_orjson_changes() -> None:
    text = b'{"a":[1e-400,1.5,0.1,18446744073709551616,-1,2.5e+3]}'
    value = exactjson.loads(text)
    assert value["a"][1] == 1.5 and type(value["a"][1]) is float
    # numbers a double holds exactly are written as doubles; the others as they were read
    assert exactjson.dumps(value) == b'{"a":[1e-400,1.5,0.1,18446744073709551616,-1,2500.0]}'
    assert exactjson.may_lose(text) and not exactjson.may_lose(b'{"a":1.5}')
    assert orjson.loads(b"1e-400") == 0.0  # what the exact path exists for
    # significant digits on both sides of the point count together
    assert exactjson.may_lose(b'{"a":12345678.123456789}')


@settings(max_examples=400, deadline=None)
@given(whole=st.text("0123456789", min_size=1, max_size=20),
       frac=st.text("0123456789", max_size=20),
       exp=st.none() | st.integers(-420, 420))
def test_a_number_the_filter_passes_is_one_orjson_reads_exactly(
    whole: str, frac: str, exp: int | None
) -> None:
    text = whole.lstrip("0") or "0"
    if frac:
        text += "." + frac
    if exp is not None:
        text += f"e{exp}"
    data = b'{"n":' + text.encode() + b"}"
    if exactjson.may_lose(data):
        return
    value = orjson.loads(data)["n"]
    assert Decimal(repr(value)) == Decimal(text)


# -- item 6 ----------------------------------------------------------------------------------
def test_out_equal_to_an_input_is_refused(tmp_path: Path, plan: Path) -> None:
    src = tmp_path / "f.ndjson"
    src.write_bytes(GOOD)
    link = tmp_path / "link.ndjson"
    link.symlink_to(src)
    for out in (str(src), str(link), "f.ndjson"):
        result = run("validate", str(plan), str(src), "--out", out, cwd=tmp_path)
        assert result.returncode == 2 and b"names the input" in result.stderr, out
    assert src.read_bytes() == GOOD


# -- item 8 (reading) --------------------------------------------------------------------------
def test_overlong_lines_and_documents_are_malformed_not_loaded(
        tmp_path: Path, plan: Path) -> None:
    src = tmp_path / "long.ndjson.gz"
    huge = b'{"type":"track","event":"' + b"A" * 3_000_000 + b'"}\n'
    src.write_bytes(gzip.compress(GOOD + huge + GOOD))
    out = tmp_path / "o.ndjson"
    result = run("validate", str(plan), str(src), "--out", str(out),
                 "--max-line-bytes", "1000000", "--format", "json")
    report = orjson.loads(result.stdout)
    assert result.returncode == 1 and report["malformed"] == 1 and report["allowed"] == 2
    assert report["first_violations"][0]["line"] == 2
    assert "longer than 1000000 bytes" in report["first_violations"][0]["message"]
    assert out.read_bytes() == GOOD + GOOD
    doc = tmp_path / "doc.json"
    doc.write_bytes(b"[" + GOOD.strip() + b"," + b" " * 2000 + GOOD.strip() + b"]")
    result = run("validate", str(plan), str(doc), "--max-line-bytes", "1000")
    assert result.returncode == 1 and b"longer than 1000 bytes" in result.stdout


# -- items 15, 17, 18 for --out ----------------------------------------------------------------
def test_bad_out_locations_and_closed_stdin_are_exit_2(tmp_path: Path, plan: Path) -> None:
    src = tmp_path / "f.ndjson"
    src.write_bytes(GOOD)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    cases = [str(tmp_path / "missing" / "o.ndjson"), str(tmp_path)]
    if os.geteuid() != 0:
        cases.append(str(ro / "o.ndjson"))
    for out in cases:
        result = run("validate", str(plan), str(src), "--out", out)
        assert result.returncode == 2, (out, result.stderr)
        assert b"Traceback" not in result.stderr and b"error:" in result.stderr
    closed = subprocess.run(
        [sys.executable, "-m", "trackplan", "validate", str(plan), "-"],
        capture_output=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
        preexec_fn=lambda: os.close(0),
    )
    assert closed.returncode == 2 and b"standard input is closed" in closed.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".trackplan-")]
    # a device is written into, never replaced; a full one is a clean exit 2
    result = run("validate", str(plan), str(src), "--out", "/dev/full")
    assert result.returncode == 2 and b"No space left" in result.stderr
    assert Path("/dev/full").is_char_device()
    with open("/dev/full", "wb") as full:
        report = subprocess.run([sys.executable, "-m", "trackplan", "validate", str(plan),
                                 str(src)], stdout=full, stderr=subprocess.PIPE, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert report.returncode == 2 and b"Traceback" not in report.stderr


def test_out_respects_the_umask_keeps_modes_and_cleans_dead_temps(
        tmp_path: Path, plan: Path) -> None:
    src = tmp_path / "f.ndjson"
    src.write_bytes(GOOD)
    out = tmp_path / "o.ndjson"
    dead = tmp_path / ".trackplan-0123456789abcdef.tmp"
    dead.write_bytes(b"events of a killed run")
    old = os.umask(0o022)
    try:
        assert run("validate", str(plan), str(src), "--out", str(out)).returncode == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644
    assert not dead.exists()
    out.chmod(0o640)
    assert run("validate", str(plan), str(src), "--out", str(out)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o640


# -- item 15: more inputs that must be trackplan's own errors ---------------------------------
def test_binary_lists_bad_report_paths_and_odd_numbers_in_plans(
        tmp_path: Path, plan: Path) -> None:
    binary = tmp_path / "bin.txt"
    binary.write_bytes(bytes(range(128, 256)) * 3)
    src = tmp_path / "f.ndjson"
    src.write_bytes(GOOD)
    key = {"TRACKPLAN_SUBJECT_KEY": "k"}
    cases = [
        (("route", str(plan), str(src), "--suppression", str(binary)), 2),
        (("erase", "--user-id", "u", str(src), "--suppress", str(binary)), 2),
        (("erase", "--user-id", "u", str(src), "--audit-log", str(tmp_path / "no" / "a")), 2),
        (("report", "dpia", str(plan), "-o", str(tmp_path / "no" / "d.md")), 2),
    ]
    for args, code in cases:
        result = subprocess.run([sys.executable, "-m", "trackplan", *args], capture_output=True,
                                cwd=ROOT, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(ROOT), **key})
        assert result.returncode == code, (args, result.stderr)
        assert b"Traceback" not in result.stderr and b"error:" in result.stderr.lower(), args
    (plan / "events" / "big.yaml").write_text(
        "name: Big\nproperties:\n  type: object\n  properties:\n    n:\n      type: integer\n"
        "      maximum: 123456789012345678901234567890\n")
    report = tmp_path / "d.md"
    old = os.umask(0o022)
    try:
        assert run("report", "dpia", str(plan), "-o", str(report)).returncode == 0
        result = run("codegen", "python", str(plan), "--out", str(tmp_path / "gen"))
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert report.stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".trackplan-")]
    (plan / "events" / "nan.yaml").write_text(
        "name: Nan\nproperties:\n  type: object\n  properties:\n    f:\n      enum: [.nan, 1]\n")
    for args in (("codegen", "python", str(plan), "--out", str(tmp_path / "gen2")),
                 ("report", "dpia", str(plan)), ("check", str(plan))):
        result = run(*args)
        assert result.returncode == 1 and b"NaN" in result.stdout + result.stderr, args
        assert b"Traceback" not in result.stderr


def test_a_full_disk_during_out_leaves_no_temporary(tmp_path: Path, plan: Path) -> None:
    import resource

    src = tmp_path / "f.ndjson"
    src.write_bytes(GOOD * 20_000)  # about 1.6 MB: more than the file size limit below
    out = tmp_path / "o.ndjson"
    out.write_bytes(b"previous output\n")

    def limit() -> None:  # writes past 256 KiB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    result = subprocess.run(
        [sys.executable, "-m", "trackplan", "validate", str(plan), str(src), "--out", str(out)],
        capture_output=True, cwd=ROOT, timeout=120, preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr and b"cannot write" in result.stderr
    assert out.read_bytes() == b"previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.ndjson", "o.ndjson", "p"]
