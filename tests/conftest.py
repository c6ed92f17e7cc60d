"""Fixtures shared by every test area: the shared fixtures directory and the example plan."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
ECOMMERCE_DIR = ROOT / "plans" / "ecommerce"

# The example plan hashes emails and phones: compiling it needs a key (a test-only value;
# tests of the missing-key error remove it explicitly). CLI subprocesses inherit it.
os.environ.setdefault("TRACKPLAN_HASH_KEY", "trackplan-test-key-not-secret")
# Loaded plans are cached (trackplan.plan.cache): in a directory of this run, never the
# user's own cache. CLI subprocesses inherit it.
os.environ.setdefault("TRACKPLAN_CACHE_DIR", tempfile.mkdtemp(prefix="trackplan-test-cache-"))


def shared_path(*parts: str) -> Path:
    """``../shared/<parts>`` beside the repository, or skip the test saying what is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixture {path} is absent (the tests expect ../shared beside the repo)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``../shared`` directory; skips when it is absent."""
    return shared_path()


@pytest.fixture(scope="session")
def ecommerce_plan() -> Plan:
    """The bundled example plan, loaded once per session."""
    return load_plan(ECOMMERCE_DIR)
