"""Fixtures for code generation tests: plans, generated packages, a recording SDK."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trackplan.codegen.python import generate_python
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared"
SEGMENT_FIXTURE = SHARED / "fixtures" / "segment" / "typewriter-e2e-plan.json"


@pytest.fixture(scope="session")
def ecommerce() -> Plan:
    return load_plan(ROOT / "plans" / "ecommerce")


@pytest.fixture(scope="session")
def segment_plan() -> Plan:
    if not SEGMENT_FIXTURE.is_file():
        pytest.skip(f"shared fixture missing: {SEGMENT_FIXTURE}")
    from trackplan.plan.segment import import_segment

    doc = json.loads(SEGMENT_FIXTURE.read_text(encoding="utf-8"))
    return import_segment(doc, source=str(SEGMENT_FIXTURE))


def write_package(plan: Plan, parent: Path, name: str) -> Path:
    """Generate ``plan`` into ``parent/name`` and return the package directory."""
    out = parent / name
    out.mkdir(parents=True, exist_ok=True)
    for file, text in generate_python(plan, package=name).items():
        (out / file).write_text(text, encoding="utf-8")
    return out


def run_stdlib_only(package: Path, runner: str, stdin: Any, key: str) -> dict[str, Any]:
    """Run ``runner`` (given the package's parent folder and name as argv) in ``python -I
    -S``, the standard library only, with ``stdin`` as JSON and the hash key ``key``; its
    printed JSON."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", runner, str(package.parent), package.name],
        input=json.dumps(stdin), capture_output=True, text=True, timeout=300,
        env={"TRACKPLAN_HASH_KEY": key, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def import_package(path: Path) -> ModuleType:
    """Import a generated package from its directory (names are unique per test)."""
    sys.path.insert(0, str(path.parent))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(path.name)
    finally:
        sys.path.remove(str(path.parent))


@pytest.fixture(scope="session")
def shop_pkg(ecommerce: Plan, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(ecommerce, tmp_path_factory.mktemp("shop"), "shop_tracking")


@pytest.fixture(scope="session")
def shop(shop_pkg: Path) -> ModuleType:
    module = import_package(shop_pkg)
    assert module._runtime._rs is not None  # development mode runs on jsonschema-rs here
    return module


def import_without_rs(path: Path) -> ModuleType:
    """Import a generated package while ``jsonschema_rs`` cannot be imported (as in an
    environment without it): its development mode uses the stdlib validator."""
    saved = sys.modules.get("jsonschema_rs")
    sys.modules["jsonschema_rs"] = None  # type: ignore[assignment]  # import fails
    try:
        module = import_package(path)
    finally:
        if saved is not None:
            sys.modules["jsonschema_rs"] = saved
        else:
            del sys.modules["jsonschema_rs"]
    assert module._runtime._rs is None
    return module


@pytest.fixture(scope="session")
def shop_stdlib(ecommerce: Plan, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The example plan's package as it runs where jsonschema-rs is not installed."""
    pkg = write_package(ecommerce, tmp_path_factory.mktemp("shop"), "shop_tracking_stdlib")
    return import_without_rs(pkg)


@pytest.fixture(params=["jsonschema-rs", "stdlib"])
def any_shop(request: pytest.FixtureRequest) -> ModuleType:
    """The example plan's package with each development-mode validator."""
    name = "shop" if request.param == "jsonschema-rs" else "shop_stdlib"
    module: ModuleType = request.getfixturevalue(name)
    return module


class RecordingSdk:
    """A stand-in SDK with the segment-analytics-python call signatures; records calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def track(self, user_id: Any = None, event: Any = None, properties: Any = None,
              context: Any = None, timestamp: Any = None, anonymous_id: Any = None,
              integrations: Any = None, message_id: Any = None) -> None:
        self.calls.append(("track", dict(
            user_id=user_id, event=event, properties=properties, context=context,
            timestamp=timestamp, anonymous_id=anonymous_id, integrations=integrations,
            message_id=message_id)))

    def identify(self, user_id: Any = None, traits: Any = None, context: Any = None,
                 timestamp: Any = None, anonymous_id: Any = None, integrations: Any = None,
                 message_id: Any = None) -> None:
        self.calls.append(("identify", dict(
            user_id=user_id, traits=traits, context=context, timestamp=timestamp,
            anonymous_id=anonymous_id, integrations=integrations, message_id=message_id)))

    def group(self, user_id: Any = None, group_id: Any = None, traits: Any = None,
              context: Any = None, timestamp: Any = None, anonymous_id: Any = None,
              integrations: Any = None, message_id: Any = None) -> None:
        self.calls.append(("group", dict(
            user_id=user_id, group_id=group_id, traits=traits, context=context,
            timestamp=timestamp, anonymous_id=anonymous_id, integrations=integrations,
            message_id=message_id)))

    def page(self, user_id: Any = None, category: Any = None, name: Any = None,
             properties: Any = None, context: Any = None, timestamp: Any = None,
             anonymous_id: Any = None, integrations: Any = None,
             message_id: Any = None) -> None:
        self.calls.append(("page", dict(
            user_id=user_id, category=category, name=name, properties=properties,
            context=context, timestamp=timestamp, anonymous_id=anonymous_id,
            integrations=integrations, message_id=message_id)))

    def screen(self, user_id: Any = None, category: Any = None, name: Any = None,
               properties: Any = None, context: Any = None, timestamp: Any = None,
               anonymous_id: Any = None, integrations: Any = None,
               message_id: Any = None) -> None:
        self.calls.append(("screen", dict(
            user_id=user_id, category=category, name=name, properties=properties,
            context=context, timestamp=timestamp, anonymous_id=anonymous_id,
            integrations=integrations, message_id=message_id)))


def to_message(kind: str, call: dict[str, Any]) -> dict[str, Any]:
    """The Segment message an SDK would build from a recorded call (envelope filled in)."""
    msg: dict[str, Any] = {
        "type": kind,
        "messageId": "m-1",
        "timestamp": "2026-01-01T00:00:00Z",
        "context": call.get("context") or {},
        "integrations": {},
    }
    if call.get("user_id") is not None:
        msg["userId"] = call["user_id"]
    if call.get("anonymous_id") is not None:
        msg["anonymousId"] = call["anonymous_id"]
    if kind == "track":
        msg["event"] = call["event"]
        msg["properties"] = call["properties"]
    elif kind in ("page", "screen"):
        msg["properties"] = call["properties"]
        for key in ("name", "category"):
            if call.get(key) is not None:
                msg[key] = call[key]
    else:
        msg["traits"] = call["traits"]
    if kind == "group":
        msg["groupId"] = call["group_id"]
    return msg


@pytest.fixture
def sdk() -> RecordingSdk:
    return RecordingSdk()


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def run_checkers(paths: list[Path], cwd: Path, cache: Path) -> tuple[
    subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]
]:
    """Run ``mypy --strict`` and ``ruff check`` (the repository's rules) on ``paths``."""
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir",
         str(cache), "--python-version", "3.11", *map(str, paths)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )
    ruff = subprocess.run(
        [tool("ruff"), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
         *map(str, paths)],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )
    return mypy, ruff


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture
def fresh_modules() -> Iterator[Callable[[str], None]]:
    """Forget generated modules a test imported, so later imports start clean."""
    names: list[str] = []
    yield names.append
    for prefix in names:
        for mod in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
            del sys.modules[mod]
