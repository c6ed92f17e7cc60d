"""Plan imports and generated packages replace whole trees, with sane modes (issue 15, 7, 17)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trackplan.atomic import replace_tree

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    old = os.umask(0o022)
    try:
        return subprocess.run([sys.executable, "-m", "trackplan", *args], capture_output=True,
                              cwd=cwd, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.umask(old)


def _plan(root: Path, *events: str) -> Path:
    (root / "events").mkdir(parents=True)
    (root / "plan.yaml").write_text("trackplan: 1\nname: P\n")
    for name in events:
        (root / "events" / f"{name.replace(' ', '_').lower()}.yaml").write_text(
            f"name: {name}\nproperties:\n  type: object\n  properties:\n"
            "    x:\n      type: string\n")
    return root


def test_import_force_swaps_the_folder_and_keeps_other_files(tmp_path: Path) -> None:
    source = _plan(tmp_path / "src", "Order Completed", "Cart Viewed")
    export = _run("export", "segment", str(source))
    assert export.returncode == 0, export.stderr
    (tmp_path / "seg.json").write_bytes(export.stdout)
    out = _plan(tmp_path / "out", "Old Event")
    (out / "README.md").write_text("keep me")
    before = out.stat().st_ino
    result = _run("import", "segment", str(tmp_path / "seg.json"), "--out", str(out), "--force")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_ino != before  # a new tree took the name in one step
    assert (out / "README.md").read_text() == "keep me"
    names = sorted(p.name for p in (out / "events").iterdir())
    assert "old_event.yaml" not in names and len(names) == 2
    assert (out / "plan.yaml").stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".out.trackplan-*"))


def test_a_tree_left_half_swapped_by_a_killed_run_comes_back(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    old = tmp_path / ".pkg.trackplan-0123456789ab.old"  # the fallback's kill window
    old.mkdir()
    (old / "a.py").write_text("old")
    half = tmp_path / ".pkg.trackplan-ba9876543210.new"
    half.mkdir()
    (half / "a.py").write_text("half")

    def build(new: Path) -> None:
        assert (new / "a.py").read_text() == "old"  # built from the restored old tree
        (new / "a.py").write_text("new")

    replace_tree(target, build)
    assert (target / "a.py").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


def test_codegen_swaps_the_package_and_respects_the_umask(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "p", "Order Completed")
    out = tmp_path / "tracking"
    assert _run("codegen", "python", str(plan), "--out", str(out)).returncode == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert modes and set(modes.values()) == {0o644}, modes
    (out / "__init__.py").chmod(0o664)
    before = out.stat().st_ino
    _plan(tmp_path / "p2", "Order Completed", "Cart Viewed")
    result = _run("codegen", "python", str(tmp_path / "p2"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.stat().st_ino != before
    assert (out / "__init__.py").stat().st_mode & 0o777 == 0o664  # the replaced file's mode
    assert not list(tmp_path.glob(".tracking.trackplan-*"))


def test_an_export_with_a_lone_surrogate_is_refused_before_anything_is_written(
        tmp_path: Path) -> None:
    export = tmp_path / "seg.json"
    export.write_text('{"name": "S", "rules": [{"type": "TRACK", "key": "A\\udc00", '
                      '"version": 1, "jsonSchema": {"type": "object"}}]}')
    result = _run("import", "segment", str(export), "--out", str(tmp_path / "imp"))
    assert result.returncode == 2 and b"lone surrogate" in result.stderr
    assert b".imp." not in result.stderr  # no temporary folder named
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.json"]
