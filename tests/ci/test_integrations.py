"""The packaged integrations on a throwaway repository: the pre-commit hooks with the real
pre-commit (installing trackplan from this checkout), and the composite action's script
with the real CLI, as a GitHub job would run it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.ci_helpers import ROOT, git, init_repo, run, trackplan_exe

PLAN = "plans/ecommerce"
HOOK_IDS = ["trackplan-check", "trackplan-lint", "trackplan-diff", "trackplan-codegen-check"]
BREAKING = ("loyalty_points: {type: integer, minimum: 0, maximum: 1000000",
            "loyalty_points: {type: string, maxLength: 9")  # fmt: skip
COMPATIBLE = ("loyalty_points: {type: integer, minimum: 0, maximum: 1000000",
              "loyalty_points: {type: integer, minimum: 0, maximum: 2000000")  # fmt: skip


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_hook_manifest_declares_the_four_hooks() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == HOOK_IDS
    for hook in hooks:
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert hook["entry"].startswith("trackplan ")


def test_action_is_composite_and_runs_the_tested_script() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "scripts/trackplan-action.sh" in runs and "pip install" in runs
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
    used = set(re.findall(r"inputs\.([A-Za-z0-9_-]+)", json.dumps(action["runs"])))
    assert used and used <= set(action["inputs"]), used - set(action["inputs"])


# -- the action's script ------------------------------------------------------------------
def _action(repo: Path, tmp: Path, **env: str) -> tuple[int, str, Path, Path]:
    summary = tmp / "summary.md"
    output = tmp / "output.txt"
    sarif = tmp / "trackplan.sarif"
    bindir = str(Path(trackplan_exe()).parent)
    full = {
        **os.environ,
        "PATH": os.pathsep.join([bindir, str(Path(sys.executable).parent),
                                 os.environ.get("PATH", "")]),  # fmt: skip
        "PYTHONPATH": str(ROOT),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(output),
        "TRACKPLAN_SARIF": str(sarif),
        "TRACKPLAN_PLANS": PLAN,
        **env,
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "trackplan-action.sh")],
        cwd=repo, env=full, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr, summary, sarif


def test_action_script_on_a_pull_request(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "-b", "feature")
    v2 = repo / PLAN / "events" / "order-completed.v2.yaml"
    _edit(v2, *COMPATIBLE)
    code, log, summary, sarif = _action(repo, tmp_path, TRACKPLAN_BASE="main")
    assert code == 0, log
    assert "### trackplan diff" in summary.read_text()
    merged: dict[str, Any] = json.loads(sarif.read_text())
    assert len(merged["runs"]) == 1
    results = merged["runs"][0]["results"]
    assert results and {r["level"] for r in results} == {"note"}
    assert "sarif-file=" in (tmp_path / "output.txt").read_text()

    _edit(v2, COMPATIBLE[1], BREAKING[1])
    code, log, summary, sarif = _action(repo, tmp_path, TRACKPLAN_BASE="main")
    assert code == 1, log
    assert "::error file=plans/ecommerce/events/order-completed.v2.yaml" in log
    assert "without a new version" in summary.read_text()
    levels = {r["ruleId"]: r["level"] for r in json.loads(sarif.read_text())["runs"][0]["results"]}
    assert levels["diff/version-policy"] == "error"
    # no base (a push): check and lint only
    code, log, _, _ = _action(repo, tmp_path, TRACKPLAN_BASE="")
    assert code == 0, log
    assert "trackplan diff" not in log


# -- pre-commit ----------------------------------------------------------------------------
def _hook_repo(dest: Path) -> str:
    """A git copy of this checkout's package, hooks and metadata; returns its commit."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")
    shutil.copytree(ROOT / "trackplan", dest / "trackplan", ignore=ignore)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, dest / name)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", ".")
    git(dest, "commit", "-q", "-m", "trackplan")
    return git(dest, "rev-parse", "HEAD").strip()


def test_pre_commit_hooks_on_a_throwaway_repository(tmp_path: Path) -> None:
    pre_commit = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    if not Path(pre_commit).exists():
        pytest.skip("pre-commit is not installed (pip install -e .[test])")
    rev = _hook_repo(tmp_path / "hooks")
    repo = init_repo(tmp_path / "repo")
    (repo / "trackplan.yml").write_text(
        "codegen:\n  - {plan: plans/ecommerce, output: app/tracking}\n"
    )
    gen = run([trackplan_exe(), "codegen"], repo)
    assert gen.returncode == 0, gen.stderr
    config = {
        "repos": [
            {
                "repo": str(tmp_path / "hooks"),
                "rev": rev,
                "hooks": [
                    # numpy: the batch modules import it; this branch's pyproject does not
                    # declare it yet (main does), so the hook environment gets it here
                    {"id": "trackplan-check", "args": [PLAN],
                     "additional_dependencies": ["numpy>=1.24"]},
                    {"id": "trackplan-lint", "args": [PLAN, "--strict"],
                     "additional_dependencies": ["numpy>=1.24"]},
                    {"id": "trackplan-diff", "args": ["--base", "main", PLAN],
                     "additional_dependencies": ["numpy>=1.24"]},
                    {"id": "trackplan-codegen-check",
                     "additional_dependencies": ["numpy>=1.24"]},
                ],
            }
        ]
    }
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Generate the client, add hooks")
    git(repo, "checkout", "-q", "-b", "feature")
    env_home = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
                "PIP_CACHE_DIR": os.path.expanduser("~/.cache/pip")}  # fmt: skip

    def hooks() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **env_home, "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
        env.pop("PYTHONPATH", None)  # the hooks must use the trackplan pre-commit installed
        return subprocess.run(
            [pre_commit, "run", "--all-files", "--color", "never"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip

    v2 = repo / PLAN / "events" / "order-completed.v2.yaml"
    _edit(v2, *COMPATIBLE)
    regenerated = run([trackplan_exe(), "codegen"], repo)  # as the author would
    assert regenerated.returncode == 0, regenerated.stderr
    git(repo, "add", PLAN, "app")
    first = hooks()
    assert first.returncode == 0, first.stdout + first.stderr
    names = [h["name"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())]
    passed = [line for line in first.stdout.splitlines() if line.endswith("Passed")]
    assert [next(n for n in names if line.startswith(n)) for line in passed] == names

    _edit(v2, COMPATIBLE[1], BREAKING[1])
    git(repo, "add", PLAN)
    second = hooks()
    assert second.returncode == 1
    assert "MODEL change to version 2 without a new version" in second.stdout
    # the plan changed its types: the generated client is stale as well
    assert "stale:" in second.stdout
