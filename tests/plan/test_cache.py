"""The loaded-plan cache: a hit is the same plan, anything that changes the plan or the
loader misses, a damaged entry is ignored and rewritten, and the cache can be off or broken
without the loader noticing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plan_helpers import ECOMMERCE, ROOT, run_cli

from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of this test only."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("TRACKPLAN_CACHE_DIR", str(directory))
    monkeypatch.delenv("TRACKPLAN_NO_CACHE", raising=False)
    return directory


@pytest.fixture()
def plan_dir(tmp_path: Path) -> Path:
    """A copy of the example plan that the test may edit."""
    return Path(shutil.copytree(ECOMMERCE, tmp_path / "plan"))


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "plans").glob("*.json")) if (cache / "plans").is_dir() else []


def uncached(path: Path, monkeypatch: pytest.MonkeyPatch) -> Plan:
    """The plan as the loader builds it from its files, the cache off."""
    with monkeypatch.context() as m:
        m.setenv("TRACKPLAN_NO_CACHE", "1")
        return load_plan(path)


def same(a: Plan, b: Plan) -> None:
    """Equal plans, down to what equality leaves out (where sections were read)."""
    assert a == b
    assert a.sections == b.sections
    assert [(r.source, r.pointer) for r in a.rules] == [(r.source, r.pointer) for r in b.rules]
    assert a.digest() == b.digest()


def test_a_hit_gives_the_plan_the_loader_builds(
    cache: Path, plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_plan(plan_dir)
    [entry] = entries(cache)
    second = load_plan(plan_dir)
    same(second, first)
    same(second, uncached(plan_dir, monkeypatch))
    # served from the entry: a (test-only) edit of the entry shows through
    data = json.loads(entry.read_text())
    data["plan"]["description"] = "from the cache"
    entry.write_text(json.dumps(data))
    assert load_plan(plan_dir).description == "from the cache"


def test_a_plan_in_another_place_hits_with_its_own_locations(
    cache: Path, plan_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_plan(plan_dir)
    moved = Path(shutil.copytree(plan_dir, tmp_path / "elsewhere" / "shop"))
    plan = load_plan(moved)
    assert len(entries(cache)) == 1  # the same entry
    same(plan, uncached(moved, monkeypatch))
    assert all(r.source.startswith(str(moved)) for r in plan.rules if r.source)


def test_a_one_file_plan_is_cached_too(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "plan.json"
    file.write_text(json.dumps({
        "trackplan": 1, "name": "One file",
        "events": [{"name": "Big", "properties": {"type": "integer", "maximum": 2**70}}],
    }))  # fmt: skip
    first = load_plan(file)
    assert len(entries(cache)) == 1
    same(load_plan(file), first)  # integers beyond 64 bits survive the entry
    same(load_plan(file), uncached(file, monkeypatch))


def test_any_change_to_a_plan_file_misses(cache: Path, plan_dir: Path) -> None:
    before = load_plan(plan_dir)
    event = plan_dir / "events" / "signed-up.yaml"
    event.write_text(event.read_text() + "\n# a comment changes the bytes\n")
    load_plan(plan_dir)
    assert len(entries(cache)) == 2
    event.write_text(event.read_text().replace("name: Signed Up", "name: Signed Up Now"))
    after = load_plan(plan_dir)
    assert "Signed Up Now" in after.event_names and "Signed Up Now" not in before.event_names
    (plan_dir / "events" / "extra.yaml").write_text("name: Extra\n")
    assert "Extra" in load_plan(plan_dir).event_names
    assert len(entries(cache)) == 4


def test_a_damaged_entry_is_ignored_and_rewritten(
    cache: Path, plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = uncached(plan_dir, monkeypatch)
    load_plan(plan_dir)
    [entry] = entries(cache)
    good = entry.read_bytes()
    damages = [
        b"",
        b"\x00\xff not json",
        good[: len(good) // 2],
        b"[1, 2, 3]",
        json.dumps({"format": 1, "key": entry.stem, "plan": {"rules": "nonsense"}}).encode(),
        good.replace(b'"key":"', b'"key":"0'),  # an entry of another key
        good.replace(b'"format":1', b'"format":999'),
    ]
    for damage in damages:
        entry.write_bytes(damage)
        same(load_plan(plan_dir), reference)
        assert json.loads(entry.read_bytes())["key"] == entry.stem  # rewritten whole


def test_an_entry_others_could_have_written_is_not_trusted(
    cache: Path, plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_plan(plan_dir)
    [entry] = entries(cache)
    data = json.loads(entry.read_text())
    data["plan"]["description"] = "planted"
    entry.write_text(json.dumps(data))
    entry.chmod(0o666)
    plan = load_plan(plan_dir)
    same(plan, uncached(plan_dir, monkeypatch))
    assert not entry.stat().st_mode & 0o022  # rewritten as the user's own
    assert json.loads(entry.read_text())["plan"]["description"] != "planted"


def test_no_cache_env_writes_nothing(
    cache: Path, plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKPLAN_NO_CACHE", "1")
    plan = load_plan(plan_dir)
    assert plan.event_names and not cache.exists()


def test_an_unwritable_cache_directory_still_loads(
    tmp_path: Path, plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv("TRACKPLAN_CACHE_DIR", str(blocker / "cache"))
    reference = uncached(plan_dir, monkeypatch)
    same(load_plan(plan_dir), reference)
    same(load_plan(plan_dir), reference)
    assert blocker.read_text().startswith("a file")


def test_the_default_directory_is_under_xdg_cache_home(
    tmp_path: Path, plan_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACKPLAN_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRACKPLAN_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_plan(plan_dir)
    assert len(entries(tmp_path / "xdg" / "trackplan")) == 1


def test_errors_are_not_cached(cache: Path, plan_dir: Path) -> None:
    (plan_dir / "events" / "broken.yaml").write_text("name: Broken\nproperties: {type: 12}\n")
    for _ in range(2):
        with pytest.raises(Exception, match="not a valid"):
            load_plan(plan_dir)
    assert entries(cache) == []


def test_another_trackplan_version_does_not_trust_the_entry(tmp_path: Path) -> None:
    """A copy of the package, run as a user runs it, then upgraded: its first load misses."""
    install = tmp_path / "install"
    shutil.copytree(ROOT / "trackplan", install / "trackplan",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(install), "TRACKPLAN_CACHE_DIR": str(cache)}
    env.pop("TRACKPLAN_NO_CACHE", None)
    probe = ("import sys, trackplan; from trackplan.plan.load import load_plan; "
             "print(trackplan.__file__, load_plan(sys.argv[1]).name)")  # fmt: skip

    def load() -> str:
        done = subprocess.run([sys.executable, "-c", probe, str(ECOMMERCE)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=True)  # fmt: skip
        return done.stdout

    assert load().startswith(str(install))
    load()
    assert len(entries(cache)) == 1  # the second run hit
    init = install / "trackplan" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "99.'))
    assert "E-commerce" in load()
    assert len(entries(cache)) == 2  # the upgrade wrote its own entry


def test_validate_twice_gives_the_same_output(tmp_path: Path) -> None:
    events = ROOT / "examples" / "events.ndjson"
    first = run_cli("validate", str(ECOMMERCE), str(events), "--format", "json")
    second = run_cli("validate", str(ECOMMERCE), str(events), "--format", "json")
    assert first.returncode == second.returncode == 1
    assert first.stdout == second.stdout and json.loads(first.stdout)["events"] > 100
