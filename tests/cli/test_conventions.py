"""One CLI convention: every command takes --format with json, files are written with
-o/--output (old spellings still work, hidden), exit codes are 0/1/2 as the README says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from trackplan.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "plans" / "ecommerce"

#: Commands that write a file or a directory named by an option.
WRITERS = {
    "check", "schema", "lint", "diff", "validate", "scan", "report dpia", "import segment",
    "export segment", "codegen python",
}  # fmt: skip


def _leaves(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            out.update(_leaves(command, full + " "))
            if full == "codegen":  # the group itself runs trackplan.yml's targets
                out[full] = command
        else:
            out[full] = command
    return out


COMMANDS = _leaves(cli)


def _option(command: click.Command, flag: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and flag in param.opts + param.secondary_opts:
            return param
    return None


def test_the_command_table_is_the_expected_one() -> None:
    assert WRITERS <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_format_json(name: str) -> None:
    option = _option(COMMANDS[name], "--format")
    assert option is not None, f"{name} has no --format"
    assert isinstance(option.type, click.Choice) and "json" in option.type.choices, name


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_writer_names_its_output_with_o_output(name: str) -> None:
    option = _option(COMMANDS[name], "--output")
    assert option is not None and "-o" in option.opts, name
    assert not option.hidden
    for legacy in ("--out", "--report"):
        old = _option(COMMANDS[name], legacy)
        assert old is None or old.hidden, f"{name}: {legacy} must be a hidden alias"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "trackplan", *args],
        cwd=cwd, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip


def test_old_option_names_still_work(tmp_path: Path) -> None:
    out = tmp_path / "segment.json"
    done = _cli("export", "segment", str(PLAN), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["rules"]
    both = _cli("export", "segment", str(PLAN), "--out", "a", "-o", "b", cwd=tmp_path)
    assert both.returncode == 2 and "once" in both.stderr


def test_check_formats_and_exit_codes(tmp_path: Path) -> None:
    good = _cli("check", str(PLAN), "--format", "json", cwd=tmp_path)
    assert good.returncode == 0
    body = json.loads(good.stdout)
    assert body["valid"] is True and body["events"] == 7
    bad_plan = tmp_path / "plan.yaml"
    bad_plan.write_text("trackplan: 1\nname: T\nevents:\n  - {name: A, version: zero}\n")
    bad = _cli("check", "plan.yaml", "--format", "json", cwd=tmp_path)
    assert bad.returncode == 1
    [error] = json.loads(bad.stdout)["errors"]
    assert error["pointer"] == "/events/0/version" and error["file"].endswith("plan.yaml")
    sarif = _cli("check", "plan.yaml", "--format", "sarif", "-o", "check.sarif", cwd=tmp_path)
    assert sarif.returncode == 1 and sarif.stdout == ""
    log = json.loads((tmp_path / "check.sarif").read_text())
    [result] = log["runs"][0]["results"]
    assert result["level"] == "error" and result["ruleId"] == "check/plan-invalid"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 4
    github = _cli("check", "plan.yaml", "--format", "github", cwd=tmp_path)
    assert github.stdout.startswith("::error file=plan.yaml,line=4")
    usage = _cli("check", "plan.yaml", "--format", "yaml", cwd=tmp_path)
    assert usage.returncode == 2


def test_readme_lists_the_exit_codes_once() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"\| Exit code \| Meaning \|\n\|[-| ]+\|\n((?:\|.*\|\n)+)", readme)
    assert table, "README needs the exit code table"
    codes = [row.split("|")[1].strip() for row in table.group(1).splitlines()]
    assert codes == ["0", "1", "2"]
