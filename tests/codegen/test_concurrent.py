"""Concurrent ``codegen`` runs into one package take turns (issue 15, item 7 follow-up).

Each run holds the package tree's lock (:func:`trackplan.atomic.lock_tree`) from reading
what is there until its tree is swapped in, so two runs never interleave: the package
left is one run's whole output, and no temporary tree or lock file stays behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from trackplan.atomic import lock_tree

ROOT = Path(__file__).resolve().parents[2]


def _plan(root: Path, prefix: str, count: int) -> Path:
    """A plan of ``count`` events with a few properties each (a package of some size)."""
    (root / "events").mkdir(parents=True)
    (root / "plan.yaml").write_text("trackplan: 1\nname: P\n")
    for i in range(count):
        props = "".join(f"    {prefix}_p{j}:\n      type: string\n" for j in range(12))
        (root / "events" / f"e{i}.yaml").write_text(
            f"name: {prefix} Event {i}\nproperties:\n  type: object\n  properties:\n{props}"
        )
    return root


def _codegen(plan: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "trackplan", "codegen", "python", str(plan), "--out", str(out),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    _out, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_two_concurrent_runs_leave_one_whole_package(tmp_path: Path) -> None:
    plans = [_plan(tmp_path / "a", "Alpha", 60), _plan(tmp_path / "b", "Beta", 45)]
    out = tmp_path / "tracking"
    assert _finish(_codegen(plans[0], out))[0] == 0
    # a bulky __pycache__ (copied with the tree) keeps each swap busy for a while, so the
    # two runs' swaps can overlap unless one waits for the other (without the lock this
    # test fails about one time in three; the next one fails every time)
    (out / "__pycache__").mkdir()
    (out / "__pycache__" / "bulk.pyc").write_bytes(os.urandom(1 << 20) * 48)
    for _round in range(3):
        runs = [_codegen(plan, out) for plan in plans]
        results = [_finish(run) for run in runs]
        assert [code for code, _ in results] == [0, 0], [err for _, err in results]
        # the package is exactly one plan's output, all of its files and nothing else
        checks = [_finish(_codegen(plan, out, "--check")) for plan in plans]
        assert sorted(code for code, _ in checks) == [0, 1], checks
        winner = plans[[code for code, _ in checks].index(0)]
        names = {p.name for p in out.iterdir()}
        assert names == {"__init__.py", "_runtime.py", "_schemas.py", "py.typed", "__pycache__"}
        assert (out / "__pycache__" / "bulk.pyc").stat().st_size == 48 << 20
        text = (out / "__init__.py").read_text(encoding="utf-8")
        assert ("Alpha Event 59" in text) == (winner.name == "a")
        assert ("Beta Event 44" in text) == (winner.name == "b")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "tracking"]


def test_a_run_waits_while_another_holds_the_package(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "p", "Gamma", 2)
    out = tmp_path / "tracking"
    with lock_tree(out):
        run = _codegen(plan, out)
        time.sleep(3.0)  # long enough to start, generate and reach the lock
        assert run.poll() is None  # still waiting
        assert not out.exists()
    code, err = _finish(run)
    assert code == 0, err
    assert (out / "__init__.py").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "tracking"]
