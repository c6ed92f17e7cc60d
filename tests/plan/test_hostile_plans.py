"""Hostile plan folders: alias bombs, links out of the folder, huge keys (issue 15, 9-10)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from plan_helpers import run_cli

from trackplan.errors import PlanError
from trackplan.plan.load import MAX_PLAN_FILE_BYTES, load_plan

EVENT = ("name: Order Completed\nproperties:\n  type: object\n  properties:\n"
         "    x:\n      type: string\n")


def _plan(root: Path, plan_yaml: str = "trackplan: 1\nname: P\n") -> Path:
    (root / "events").mkdir(parents=True)
    (root / "plan.yaml").write_text(plan_yaml)
    (root / "events" / "oc.yaml").write_text(EVENT)
    return root


def _issues(root: Path) -> str:
    with pytest.raises(PlanError) as info:
        load_plan(root)
    return str(info.value)


def test_a_yaml_alias_bomb_is_a_plan_error_at_once(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    bomb = "trackplan: 1\nname: P\nlint:\n  " + "\n  ".join(levels) + "\n"
    assert len(bomb) < 600
    root = _plan(tmp_path / "p", bomb)
    started = time.monotonic()
    text = _issues(root)
    assert time.monotonic() - started < 5
    assert "aliases" in text and "plan.yaml" in text
    result = run_cli("codegen", "python", str(root), "--out", str(tmp_path / "gen"))
    assert result.returncode == 1 and "aliases" in result.stdout + result.stderr
    assert not (tmp_path / "gen").exists()
    # an asterisk that is no alias is fine
    (root / "plan.yaml").write_text("trackplan: 1\nname: 'P * 2'\n")
    assert load_plan(root).name == "P * 2"


def test_links_and_paths_outside_the_folder_are_refused_unread(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("root-password-line: 1\n")
    root = _plan(tmp_path / "p")
    (root / "events" / "x.yaml").symlink_to(secret)
    result = run_cli("check", str(root))
    assert result.returncode == 1
    assert "symbolic link" in result.stdout + result.stderr
    assert "root-password" not in result.stdout + result.stderr
    (root / "events" / "x.yaml").unlink()
    (root / "events" / "inner.yaml").symlink_to(root / "events" / "oc.yaml")
    assert "symbolic link" in _issues(root)
    (root / "events" / "inner.yaml").unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "y.yaml").write_text("secret-key: 1\n")
    (root / "events" / "linked").symlink_to(outside, target_is_directory=True)
    load_plan(root)  # a linked folder is not walked into
    (root / "events" / "linked").unlink()
    (root / "pii.yaml").symlink_to(secret)
    assert "symbolic link" in _issues(root)


def test_long_unknown_keys_are_cut_and_counted(tmp_path: Path) -> None:
    root = _plan(tmp_path / "p")
    keys = "".join(f"{'k' * 300}{i}: 1\n" for i in range(8))
    (root / "events" / "oc.yaml").write_text(EVENT + keys)
    text = _issues(root)
    assert "k" * 41 not in text and "and 3 more" in text


def test_oversized_plan_files_are_refused(tmp_path: Path) -> None:
    root = _plan(tmp_path / "p")
    with (root / "events" / "big.yaml").open("w") as f:
        f.write("name: Big\ndescription: '" + "x" * (MAX_PLAN_FILE_BYTES + 10) + "'\n")
    assert "larger than" in _issues(root)
