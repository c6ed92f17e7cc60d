"""Every third-party module trackplan imports is a declared dependency, and nothing more.

The package's source is read with ``ast`` (module-level and function-level imports alike).
A module imported at module level must be in ``[project] dependencies``: a plain
``pip install trackplan`` has to run every command. A module imported only inside a
function (an optional backend, loaded when used) may instead come from an extra, but never
from the test or bench extras, which users do not install.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "trackplan"
#: Extras that are not run-time features of trackplan.
DEV_EXTRAS = {"test", "bench"}
#: Import names whose distribution is named otherwise, for when the distribution is not
#: installed here (optional backends); installed ones are looked up in their metadata.
KNOWN_DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "jsonschema_rs": "jsonschema-rs",
    "phonenumbers": "phonenumbers",
    "stdnum": "python-stdnum",
}


@dataclass(frozen=True)
class Import:
    """One import of a top-level module in the package's source."""

    module: str
    file: str
    line: int
    in_function: bool


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, spec
    return _normalise(match.group(1))


def _imports_of(path: Path, root: Path = ROOT) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    top = alias.name.split(".")[0]
                    found.append(Import(top, str(path.relative_to(root)), child.lineno, inner))
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                top = child.module.split(".")[0]
                found.append(Import(top, str(path.relative_to(root)), child.lineno, inner))
            elif isinstance(child, ast.Call) and _is_import_module(child.func) and child.args:
                # importlib.import_module("pkg.x") or f"pkg.{name}": the literal prefix
                top = _literal_prefix(child.args[0]).split(".")[0]
                if top:
                    found.append(Import(top, str(path.relative_to(root)), child.lineno, inner))
            visit(child, inner)

    visit(tree, False)
    return found


def _is_import_module(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id == "import_module"


def _literal_prefix(arg: ast.expr) -> str:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        first = arg.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return ""


def _third_party_imports() -> list[Import]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for imp in _imports_of(path):
            if imp.module == "trackplan" or imp.module in sys.stdlib_module_names:
                continue
            if imp.module == "__future__":
                continue
            out.append(imp)
    return out


def _distributions_of(module: str) -> set[str]:
    names = {_normalise(d) for d in metadata.packages_distributions().get(module, ())}
    if module in KNOWN_DISTRIBUTIONS:
        names.add(KNOWN_DISTRIBUTIONS[module])
    names.add(_normalise(module))  # most distributions are named as they import
    return names


@pytest.fixture(scope="module")
def project() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = data["project"]
    return project


def test_the_scan_finds_imports_at_every_level(tmp_path: Path) -> None:
    # the checker itself: a function-level import is seen and marked as such
    source = tmp_path / "m.py"
    source.write_text(
        "import os\nimport importlib\n\ndef f(cc):\n    import numpy as np\n"
        "    from yaml import x\n    importlib.import_module(f'stdnum.{cc}')\n"
    )
    found = {(i.module, i.in_function) for i in _imports_of(source, tmp_path)}
    assert found == {
        ("os", False), ("importlib", False), ("numpy", True), ("yaml", True), ("stdnum", True)
    }


def test_every_import_is_declared(project: dict[str, object]) -> None:
    runtime = {_requirement_name(s) for s in project["dependencies"]}  # type: ignore[attr-defined]
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    optional = {
        _requirement_name(spec)
        for extra, specs in extras.items()
        if extra not in DEV_EXTRAS
        for spec in specs
    }
    problems = []
    for imp in _third_party_imports():
        dists = _distributions_of(imp.module)
        if dists & runtime:
            continue
        if imp.in_function and dists & optional:
            continue
        where = "an extra or dependencies" if imp.in_function else "[project] dependencies"
        problems.append(f"{imp.file}:{imp.line} imports {imp.module!r}, not declared in {where}")
    assert not problems, "\n".join(problems)


def test_every_runtime_dependency_is_used_and_bounded(project: dict[str, object]) -> None:
    imported: set[str] = set()
    for imp in _third_party_imports():
        imported |= _distributions_of(imp.module)
    problems = []
    for spec in project["dependencies"]:  # type: ignore[attr-defined]
        name = _requirement_name(spec)
        if name not in imported:
            problems.append(f"{spec!r} is declared but trackplan never imports it")
        if ">=" not in spec:
            problems.append(f"{spec!r} has no lower bound")
    assert not problems, "\n".join(problems)


def test_the_test_extra_is_pinned_by_the_constraints_file(project: dict[str, object]) -> None:
    constraints = ROOT / "constraints" / "test.txt"
    pinned = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints/test.txt: {line!r} is not an exact pin (name==version)"
            pinned[_normalise(name)] = version
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    wanted = {_requirement_name(s) for s in [*project["dependencies"], *extras["test"]]}  # type: ignore[misc]
    missing = sorted(wanted - set(pinned))
    assert not missing, f"constraints/test.txt pins no version of: {', '.join(missing)}"
