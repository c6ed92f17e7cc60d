"""The CLI boundary under arbitrary paths, streams and file contents (issue 15).

Every command, given any mix of real, missing, odd and garbage inputs, ends with exit 0,
1 or 2 and trackplan's own message: never an uncaught exception (a traceback). The runs
are in-process through the real entry point (``trackplan.cli.main``) so that a bounded
number of examples covers many commands quickly; ``test_reliability.py`` runs the same
kind of inputs through real subprocesses.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackplan.cli import main

GOOD = b'{"type":"track","event":"Order Completed","userId":"u1","properties":{"x":"a"}}\n'
CONTENTS = st.one_of(
    st.binary(max_size=200),
    st.just(GOOD),
    st.just(b"\xef\xbb\xbf" + GOOD),
    st.just(b"[" + GOOD.strip() + b"]"),
    st.just(b'{"batch":[' + GOOD.strip() + b"]}"),
    st.just(b"userId,event\nu1,x\n,y\n"),
    st.just(b"PAR1\x00\x00garbage"),
    st.just(b"a: &a [1]\nb: *a\n"),
    st.just(b"trackplan: 1\nname: P\n"),
    st.just(b'{"n": 123456789012345678901234567890, "t": 1e-400}\n'),
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
)
NAMES = st.sampled_from(["e.ndjson", "e.json", "e.csv", "e.parquet", "e.jsonl.gz", "e.txt",
                         "plan.yaml", "x"])


def _plan(root: Path) -> Path:
    (root / "events").mkdir(parents=True)
    (root / "plan.yaml").write_text("trackplan: 1\nname: P\n")
    (root / "events" / "oc.yaml").write_text(
        "name: Order Completed\nproperties:\n  type: object\n  properties:\n"
        "    x:\n      type: string\n")
    return root


class _Kept(io.BytesIO):
    """A buffer that stays readable after the text wrapper around it is closed."""

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _cli(argv: list[str], stdin: bytes | None, cwd: Path) -> Iterator[io.BytesIO]:
    err = _Kept()
    old = sys.argv, sys.stdin, sys.stdout, sys.stderr, os.getcwd()
    out_buffer = _Kept()
    sys.argv = ["trackplan", *argv]
    sys.stdin = (io.TextIOWrapper(_Kept(stdin), encoding="utf-8")  # type: ignore[assignment]
                 if stdin is not None else None)
    sys.stdout = io.TextIOWrapper(out_buffer, encoding="utf-8", write_through=True)
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    os.chdir(cwd)
    try:
        yield err
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = old[:4]
        os.chdir(old[4])


def _run(argv: list[str], stdin: bytes | None, cwd: Path) -> tuple[int, str]:
    with _cli(argv, stdin, cwd) as err:
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, err.getvalue().decode("utf-8", "replace")


@st.composite
def invocations(draw: st.DrawFn) -> tuple[list[str], bytes | None, dict[str, bytes]]:
    """A command line over a small folder: ``{name: content}`` files, a plan ``p``."""
    files = draw(st.dictionaries(NAMES, CONTENTS, max_size=3))
    existing = sorted(files)
    path = st.sampled_from([*existing, "missing.ndjson", ".", "p", "-", "sub/none.ndjson"]
                           if existing else ["missing.ndjson", ".", "p", "-"])
    plan = draw(st.sampled_from(["p", "p", *existing, "missing"]))
    out = draw(st.sampled_from(["o.ndjson", "nodir/o.ndjson", ".", "p", "e.ndjson", "-"]))
    command = draw(st.sampled_from(
        ["validate", "route", "erase", "check", "lint", "scan", "dpia", "codegen", "import",
         "export", "diff"]))
    one = draw(path)
    argv: list[str]
    if command == "validate":
        argv = ["validate", plan, one, *draw(st.sampled_from([[], ["--out", out]]))]
    elif command == "route":
        argv = ["route", plan, one, *draw(st.sampled_from(
            [[], ["--suppression", draw(path)], ["--format", "text"]]))]
    elif command == "erase":
        argv = ["erase", draw(st.sampled_from(["--user-id", "--anonymous-id"])),
                draw(st.sampled_from(["u1", "", " ", "a/b"])), one,
                *draw(st.sampled_from([[], ["--ids-file", draw(path)], ["--dry-run"],
                                       ["--audit-log", out, "--unkeyed-hashes"],
                                       ["--suppress", draw(path), "--unkeyed-hashes"]]))]
    elif command in ("check", "lint"):
        argv = [command, plan]
    elif command == "scan":
        argv = ["scan", plan, one, "-q",
                *draw(st.sampled_from([[], ["--report", out], ["--format", "json"]]))]
    elif command == "dpia":
        argv = ["report", "dpia", plan, *draw(st.sampled_from([[], ["-o", out]]))]
    elif command == "codegen":
        argv = ["codegen", "python", plan, "--out", draw(st.sampled_from(["gen", ".", out]))]
    elif command == "import":
        argv = ["import", "segment", one, "--out", draw(st.sampled_from(["imp", "p", out]))]
    elif command == "export":
        argv = ["export", "segment", plan]
    else:
        argv = ["diff", plan, draw(st.sampled_from(["p", *existing, "missing"]))]
    stdin = draw(st.one_of(st.none(), CONTENTS))
    return argv, stdin, files


@settings(max_examples=70, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(invocations())
def test_every_command_exits_0_1_or_2_without_a_traceback(
        case: tuple[list[str], bytes | None, dict[str, bytes]]) -> None:
    argv, stdin, files = case
    with tempfile.TemporaryDirectory() as raw:
        root = Path(raw)
        _plan(root / "p")
        for name, content in files.items():
            (root / name).write_bytes(content)
        try:
            code, err = _run(argv, stdin, root)
        except Exception as exc:  # an exception main() let through: a traceback for users
            pytest.fail(f"{argv}: uncaught {type(exc).__name__}: {exc}")
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err, (argv, err)
