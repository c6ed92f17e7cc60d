"""The README's GitHub Actions recipe, run step by step as a runner would.

The ``run:`` steps are read from README.md, not copied here. The install step runs in a new
virtual environment with ``TRACKPLAN_SOURCE`` set to a git URL of the checkout under test (a
throwaway repository holding this working tree), so the recipe's install really installs;
then every command runs from that environment against a pull-request branch of a
throwaway plan repository whose ``origin/main`` is the base.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.ci.ci_helpers import git, init_repo

ROOT = Path(__file__).resolve().parents[1]
#: What a pip install of trackplan needs from the checkout.
SOURCE_PARTS = ("pyproject.toml", "README.md", "trackplan")


def _workflow() -> dict[str, object]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    header = r"# \.github/workflows/tracking-plan-steps\.yml\n"
    match = re.search(r"```yaml\n(" + header + r".*?)```", text, re.S)
    assert match, "README.md has no GitHub Actions workflow block"
    doc = yaml.safe_load(match.group(1))
    assert isinstance(doc, dict)
    return doc


def _run_steps(workflow: dict[str, object]) -> list[str]:
    jobs = workflow["jobs"]
    assert isinstance(jobs, dict) and len(jobs) == 1
    (job,) = jobs.values()
    return [step["run"] for step in job["steps"] if "run" in step]


def _source_repo(tmp: Path) -> str:
    """A git repository holding this working tree's package; its ``git+file`` URL."""
    src = tmp / "trackplan-src"
    src.mkdir()
    for part in SOURCE_PARTS:
        path = ROOT / part
        if path.is_dir():
            shutil.copytree(path, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / part)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", ".")
    git(src, "commit", "-q", "-m", "trackplan under test")
    return f"git+file://{src}@main"


def _shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_workflow_installs_trackplan_and_runs_its_commands(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    workflow = _workflow()
    steps = _run_steps(workflow)
    install, *commands = steps
    assert "pip install" in install and "TRACKPLAN_SOURCE" in install
    assert "pip install trackplan\n" not in install + "\n", "an unpublished name cannot install"

    # the plan repository: main holds the plan, the pull request adds an optional property
    upstream = init_repo(tmp_path / "upstream")
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(upstream), str(checkout))
    git(checkout, "checkout", "-q", "-b", "feature")
    event = checkout / "plans" / "ecommerce" / "events" / "order-completed.v2.yaml"
    with event.open("a", encoding="utf-8") as fh:
        fh.write(
            "    gift_note: {type: [string, 'null'], maxLength: 200, description: Gift note.,"
            " x-pii: {category: free_text, action: redact}}\n"
        )
    git(checkout, "commit", "-q", "-am", "Add a gift note")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "TRACKPLAN_SOURCE": _source_repo(tmp_path),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    done = _shell(install, checkout, env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    installed = shutil.which("trackplan", path=str(venv / "bin"))
    assert installed is not None, "the install step put no trackplan command on PATH"

    for command in commands:
        command = command.replace("${{ github.base_ref }}", "main")
        done = _shell(command, checkout, env)
        assert "Traceback" not in done.stderr, (command, done.stderr)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "### trackplan diff" in summary and "gift_note" in summary
