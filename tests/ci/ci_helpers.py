"""Helpers of the CI tests: build small plans in memory, run the real CLI and git."""

from __future__ import annotations

import copy
import functools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from trackplan.plan.load import build_plan
from trackplan.plan.model import Plan

ROOT = Path(__file__).resolve().parents[2]
ECOMMERCE = ROOT / "plans" / "ecommerce"


def make_plan(
    events: list[dict[str, Any]] | dict[str, Any],
    *,
    controls: dict[str, Any] | None = None,
    definitions: dict[str, Any] | None = None,
    **sections: Any,
) -> Plan:
    """A single-file plan holding ``events`` (one payload schema or full event dicts)."""
    if isinstance(events, dict) and "name" not in events:
        events = [
            {
                "name": "Order Completed",
                "version": 1,
                "description": "An order.",
                "properties": events,
            }
        ]
    doc: dict[str, Any] = {"trackplan": 1, "name": "Test", "events": copy.deepcopy(events)}
    if controls is not None:
        doc["controls"] = controls
    if definitions is not None:
        doc["definitions"] = copy.deepcopy(definitions)
    doc.update(copy.deepcopy(sections))
    return build_plan("plan.yaml", doc, source="plan.yaml")


@functools.cache
def trackplan_exe() -> str:
    """A ``trackplan`` command running this checkout's CLI (``python -m trackplan``).

    A script, not a console script found on PATH: the tests must run the code under test,
    not whichever trackplan happens to be installed.
    """
    folder = Path(tempfile.mkdtemp(prefix="trackplan-cli-"))
    exe = folder / "trackplan"
    exe.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={shlex.quote(str(ROOT))}${{PYTHONPATH:+:$PYTHONPATH}} "
        f'exec {shlex.quote(sys.executable)} -m trackplan "$@"\n'
    )
    exe.chmod(0o755)
    return str(exe)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command as a user would; text output, no shell."""
    env = {
        **os.environ,
        "PYTHONIOENCODING": "utf-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "HOME": str(cwd),
    }
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; fail the test when it fails."""
    done = run(["git", *args], cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def init_repo(path: Path) -> Path:
    """A fresh git repository on branch main with the example plan committed."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    shutil.copytree(ECOMMERCE, path / "plans" / "ecommerce")
    git(path, "add", "plans")
    git(path, "commit", "-q", "-m", "Add the plan")
    return path
