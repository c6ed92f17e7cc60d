"""``scan`` under hostile names, paths and files (issue 15, item 15): the right field
read, trackplan's own errors with exit 2, nothing left behind.

Each case runs the CLI as a user would, on the issue's one-event plan.
"""

from __future__ import annotations

import gzip
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENT = {"type": "track", "event": "Order Completed", "userId": "u", "properties": {"x": "a"}}


def run(*args: Any, limit: Callable[[], None] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *map(str, args)], capture_output=True, cwd=ROOT,
        timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=limit,
        check=False,
    )  # fmt: skip


@pytest.fixture()
def plan(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    (root / "events").mkdir(parents=True)
    (root / "plan.yaml").write_text("trackplan: 1\nname: P\n")
    (root / "events" / "oc.yaml").write_text(
        "name: Order Completed\nproperties:\n  type: object\n  properties:\n"
        "    x: {type: string}\n")  # fmt: skip
    return root


@pytest.fixture()
def events(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "e.ndjson"
    path.parent.mkdir()
    path.write_bytes(orjson.dumps(EVENT) + b"\n")
    return path


def _own_error(result: subprocess.CompletedProcess[bytes], named: Path) -> None:
    """Exit 2, trackplan's message naming the path the user gave, no traceback."""
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {named}".encode()), result.stderr


def _leftovers(*directories: Path) -> list[str]:
    """Temporaries (hidden files) left in ``directories`` and below."""
    return [p.name for d in directories if d.is_dir() for p in d.rglob(".*")]


def _full_device(tmp_path: Path) -> Path:
    """A node of the full device (writes fail with ENOSPC) in ``tmp_path``; a failed run
    could only ever replace this node, never the system's /dev/full."""
    path = tmp_path / "full"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with open(path, "wb") as f:
            f.write(b"x")
            f.flush()
    except PermissionError:
        pytest.skip("no device nodes here (needs root)")
    except OSError:
        return path  # ENOSPC: a full device
    pytest.skip("the node is no full device")


def _file_size_limit() -> None:  # writes past 64 bytes fail with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


# -- property names -----------------------------------------------------------------------
DOTTED_PLAN = """name: Order Completed
properties:
  type: object
  properties:
    ".x": {type: string, maxLength: 2}
    x: {type: string}
    "a.b": {type: integer}
    ".nested":
      type: object
      properties:
        ".y": {type: integer}
"""


@pytest.mark.parametrize("suffix", [".ndjson", ".parquet"])
def test_property_names_with_dots_are_read_by_name(
    tmp_path: Path, plan: Path, suffix: str
) -> None:
    """pyarrow reads a name starting with ``.`` as a path (``.x`` was the field ``x``, and
    ``.nested..y`` an ArrowInvalid): struct children are addressed by index."""
    (plan / "events" / "oc.yaml").write_text(DOTTED_PLAN)
    props = [{".x": "abc", "x": "a", "a.b": 7, ".nested": {".y": "no"}},
             {".x": "ab", "x": "abcdef", "a.b": 1}]  # fmt: skip
    rows = [{**EVENT, "properties": p} for p in props]
    path = tmp_path / f"dots{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    result = run("scan", plan, path, "--format", "json")
    assert result.returncode == 1, result.stderr
    report = orjson.loads(result.stdout)
    failing = {(r["field"], r["keyword"]): r for r in report["by_rule"].values()}
    assert set(failing) == {(".x", "maxLength"), (".nested..y", "type")}
    assert [s["value"] for s in failing[(".x", "maxLength")]["samples"]] == ['"abc"']
    assert [s["value"] for s in failing[(".nested..y", "type")]["samples"]] == ['"no"']
    if suffix == ".ndjson":  # validate reports the same two
        validated = orjson.loads(run("validate", plan, path, "--format", "json").stdout)
        assert validated["violations"] == 2


# -- --report and --redact-to on bad paths -----------------------------------------------
def test_report_into_a_missing_folder(tmp_path: Path, plan: Path, events: Path) -> None:
    target = tmp_path / "missing" / "r.txt"
    _own_error(run("scan", plan, events, "--report", target, "-q"), target)
    assert not target.parent.exists()


def test_report_onto_a_directory(tmp_path: Path, plan: Path, events: Path) -> None:
    target = tmp_path / "adir"
    target.mkdir()
    _own_error(run("scan", plan, events, "--report", target, "-q"), target)
    assert list(target.iterdir()) == [] and not _leftovers(tmp_path)


def test_report_into_a_read_only_folder(tmp_path: Path, plan: Path, events: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        _own_error(run("scan", plan, events, "--report", folder / "r.txt", "-q"), folder / "r.txt")
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_report_onto_a_full_device(tmp_path: Path, plan: Path, events: Path) -> None:
    device = _full_device(tmp_path)
    _own_error(run("scan", plan, events, "--report", device, "-q"), device)
    assert stat.S_ISCHR(device.stat().st_mode)  # written into, never replaced
    assert not _leftovers(tmp_path)


def test_report_on_a_full_disk(tmp_path: Path, plan: Path, events: Path) -> None:
    target = tmp_path / "out" / "r.txt"
    target.parent.mkdir()
    result = run("scan", plan, events, "--report", target, limit=_file_size_limit)
    _own_error(result, target)
    assert not target.exists() and not _leftovers(target.parent)


def test_redact_to_a_file_or_a_device(tmp_path: Path, plan: Path, events: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    for target in (afile, _full_device(tmp_path)):
        _own_error(run("scan", plan, events, "--redact-to", target, "-q"), target)
    assert afile.read_text() == "mine\n" and not _leftovers(tmp_path)


def test_redact_to_a_read_only_folder(tmp_path: Path, plan: Path, events: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run("scan", plan, events, "--redact-to", folder / "clean", "-q")
    finally:
        folder.chmod(0o755)
    _own_error(result, folder / "clean")


def test_redact_to_on_a_full_disk(tmp_path: Path, plan: Path, events: Path) -> None:
    events.write_bytes(events.read_bytes() * 50)  # more than the file size limit
    out = tmp_path / "clean"
    result = run("scan", plan, events, "--redact-to", out, "-q", limit=_file_size_limit)
    _own_error(result, out / events.name)  # the output file, under the folder given
    assert not _leftovers(out) and not (out / events.name).exists()


def test_redact_to_a_missing_folder_makes_it(tmp_path: Path, plan: Path, events: Path) -> None:
    out = tmp_path / "new" / "clean"
    result = run("scan", plan, events, "--redact-to", out, "-q")
    assert result.returncode == 0, result.stderr
    assert (out / events.name).read_bytes() == events.read_bytes()


# -- files --------------------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True])
def test_a_leading_bom_is_stripped(tmp_path: Path, plan: Path, compressed: bool) -> None:
    body = b"\xef\xbb\xbf" + orjson.dumps(EVENT) + b"\n" + orjson.dumps(EVENT) + b"\n"
    path = tmp_path / ("bom.ndjson.gz" if compressed else "bom.ndjson")
    path.write_bytes(gzip.compress(body) if compressed else body)
    result = run("scan", plan, path, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = orjson.loads(result.stdout)
    assert report["rows"] == 2 and report["malformed"] == 0
    validated = orjson.loads(run("validate", plan, path, "--format", "json").stdout)
    assert validated["events"] == report["rows"] and validated["malformed"] == 0


def _duplicates(path: Path, nested: bool) -> Path:
    if nested:  # two fields of one name inside the properties struct
        props = pa.StructArray.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["x", "x"])
        columns = [pa.array(["track"]), pa.array(["Order Completed"]), pa.array(["u"]), props]
        names = ["type", "event", "userId", "properties"]
    else:
        columns = [pa.array(["track"]), pa.array(["Order Completed"]), pa.array(["u"]),
                   pa.array(["a"]), pa.array(["b"])]  # fmt: skip
        names = ["type", "event", "user_id", "x", "x"]
    pq.write_table(pa.Table.from_arrays(columns, names=names), path)
    return path


@pytest.mark.parametrize("engine", ["local", "dask"])
@pytest.mark.parametrize("nested", [False, True])
def test_duplicate_column_names_are_refused(
    tmp_path: Path, plan: Path, engine: str, nested: bool
) -> None:
    if engine == "dask":
        pytest.importorskip("dask.dataframe")
    path = _duplicates(tmp_path / "dup.parquet", nested)
    result = run("scan", plan, path, "-q", "--engine", engine)
    _own_error(result, path)
    name = "properties.x" if nested else "x"
    assert f"duplicate column names '{name}'".encode() in result.stderr


@pytest.mark.parametrize("suffix", [".ndjson", ".parquet"])
def test_bounds_beyond_64_bits_are_compared_exactly(
    tmp_path: Path, plan: Path, suffix: str
) -> None:
    """A plan may bound a number by an integer no Arrow scalar holds (an OverflowError
    traceback before): the scan compares exactly, as validate does."""
    bound = 2**70 + 1  # no float equals it; the nearest is 2**70
    (plan / "events" / "oc.yaml").write_text(
        "name: Order Completed\nproperties:\n  type: object\n  properties:\n"
        f"    f: {{type: number, maximum: {bound}, minimum: {-bound}}}\n"
        f"    i: {{type: integer, maximum: {bound}, exclusiveMinimum: {-bound}}}\n")  # fmt: skip
    values = [1.0, float(2**70), 1.2e21, -float(2**70), -1.2e21]
    rows = [{**EVENT, "properties": {"f": v, "i": k}} for k, v in enumerate(values)]
    path = tmp_path / f"big{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    result = run("scan", plan, path, "--format", "json")
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    failing = {(r["field"], r["keyword"]): r["rows_failing"]
               for r in orjson.loads(result.stdout)["by_rule"].values()}  # fmt: skip
    assert failing == {("f", "maximum"): 1, ("f", "minimum"): 1}
    if suffix == ".ndjson":
        validated = orjson.loads(run("validate", plan, path, "--format", "json").stdout)
        assert validated["violations"] == 2
