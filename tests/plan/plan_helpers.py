"""Helpers of the plan tests: the repository root, shared fixtures, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = (ROOT / ".." / "shared").resolve()
ECOMMERCE = ROOT / "plans" / "ecommerce"
TYPEWRITER = SHARED / "fixtures" / "segment" / "typewriter-e2e-plan.json"


def shared_fixture(path: Path) -> Path:
    """``path`` if the shared fixtures are present, else skip the test saying why."""
    if not path.is_file():
        pytest.skip(f"shared fixture {path} is absent (the tests expect ../shared beside the repo)")
    return path


def run_cli(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trackplan ARGS`` as a user would; text output."""
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=120,
    )
