"""The CLI starts cheap: each command imports only what it uses.

``trackplan --help`` lists every command from the lazy group's table without importing a
backend; the table must agree with the commands themselves. Which heavy modules a command
loads is checked in a fresh interpreter (``sys.modules`` after the run), not timed: timing
lives in ``benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import click
import click.testing
import pytest

from trackplan.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pyarrow", "numpy", "jsonschema", "pandas", "dask")
EVENT = (
    '{"type":"track","event":"Product Viewed","userId":"u1",'
    '"properties":{"product_id":"p1","price":9.5}}\n'
)


def _modules_after(args: list[str], cwd: Path, stdin: str = "") -> tuple[set[str], int, str]:
    """Run the CLI in a fresh interpreter; the top-level modules it had loaded at exit."""
    code = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.__stderr__.write("
        "'\\nMODULES ' + ' '.join(sorted({m.split('.')[0] for m in sys.modules})) + '\\n'))\n"
        "from trackplan.cli import main\n"
        f"sys.argv = ['trackplan', *{args!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, input=stdin, capture_output=True, text=True,
        env={"TRACKPLAN_HASH_KEY": "test-key", "PATH": "/usr/bin:/bin",
             "PYTHONPATH": str(ROOT)},
        timeout=120,
    )  # fmt: skip
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("MODULES ")]
    assert line, done.stderr
    return set(line[-1].split()[1:]), done.returncode, done.stdout


def test_the_table_matches_the_commands() -> None:
    for name, entry in COMMANDS.items():
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        assert isinstance(command, click.Command)
        assert command.name == name, (name, command.name)
        assert command.get_short_help_str(limit=300) == entry.short_help, name
    # every module that registers commands is in the table, and nothing else
    listed = {(e.module, e.attribute) for e in COMMANDS.values()}
    for module in {e.module for e in COMMANDS.values()}:
        for command in importlib.import_module(module).COMMANDS:
            attribute = next(
                k for k, v in vars(importlib.import_module(module)).items() if v is command
            )
            assert (module, attribute) in listed, f"{module}.{attribute} is not in the table"


def test_help_lists_every_command_and_imports_no_backend(tmp_path: Path) -> None:
    modules, status, out = _modules_after(["--help"], tmp_path)
    assert status == 0
    for name in COMMANDS:
        assert f"  {name} " in out, name
    assert not modules & {*HEAVY, "jsonschema_rs", "msgspec", "yaml"}, modules & set(HEAVY)


def test_validate_imports_neither_arrow_nor_the_pure_python_validator(tmp_path: Path) -> None:
    events = tmp_path / "one.ndjson"
    events.write_text(EVENT, encoding="utf-8")
    modules, status, out = _modules_after(
        ["validate", str(ROOT / "plans" / "ecommerce"), str(events)], tmp_path
    )
    assert status == 0 and out.startswith("1 events: 1 allowed"), out
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_help_works(command: str) -> None:
    result = click.testing.CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_a_missing_optional_package_is_a_usage_error(tmp_path: Path) -> None:
    # a backend module that needs a package this install lacks: exit 2 and how to install it
    pkg = tmp_path / "fakebackend"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("import not_a_real_package_xyz\n")
    code = (
        "from trackplan import cli\n"
        "cli.COMMANDS['fake'] = cli.CommandEntry('fakebackend.cli', 'cmd', 'A fake command.')\n"
        "import sys; sys.argv = ['trackplan', 'fake']\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{tmp_path}"}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install not_a_real_package_xyz" in done.stderr
    assert "Traceback" not in done.stderr
