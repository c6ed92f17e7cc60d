"""Hostile names: arbitrary event and property names, descriptions, patterns and defaults.

Nothing from a plan may break out of a literal or comment in generated code, importing
the package must do nothing but define names, and what goes on the wire is the plan's
original names. Also: Segment's own Typewriter end-to-end plan generates a method per
event and passes ``mypy --strict`` and ``ruff``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from trackplan.plan.load import build_plan
from trackplan.plan.model import Plan

from .conftest import RecordingSdk, import_package, run_checkers, write_package

PWNED = "pwned-marker"


def _payload(cmd: str) -> str:
    return f"__import__('os').system('touch {cmd}')"


def hostile_plan(marker: Path) -> Plan:
    inject = _payload(str(marker))
    nasty = [
        'quote" \' mix',
        "back\\slash\\",
        "new\nline\r\n",
        "triple \"\"\" and ''' quotes",
        inject,
        f'"""); {inject} #',
        f"'''\n{inject}\n'''",
        "class",
        "list",
        "None",
        "self",
        "user_id",
        "_tp_payload",
        "42 answer",
        "Größe ñ 注文",
        "\u2028line separator",
        "tab\there\x0cff\x00nul",
        "",
    ]
    desc = f'"""\n{inject}\n# """ \\ \'\'\' end'
    properties: dict[str, Any] = {
        name: {"type": "string", "description": desc, "maxLength": 64} for name in nasty
    }
    properties["Property Collided"] = {"type": "integer", "default": f'")\n{inject}\n#'}
    properties["property_collided"] = {"type": "boolean"}
    properties["pattern"] = {"type": "string", "pattern": "^[\"'\\\\]+$\n"}
    properties["choice"] = {"enum": ['a"b', "c'd", "e\\f", "g\nh", inject, 3, None]}
    properties["nested \"obj\""] = {
        "type": "object",
        "description": desc,
        "properties": {n: {"type": "number"} for n in nasty[:6]},
        "required": [nasty[0]],
    }
    events = [
        {"name": name, "description": desc, "properties": {
            "type": "object", "properties": properties, "required": [nasty[0], "pattern"]}}
        for name in [*nasty[:-1], "Event Collided", "event_collided", "identify"]
    ]
    doc = {
        "name": f"Plan \"\"\" '''\n{inject}",
        "version": f"1\n{inject}",
        "description": desc,
        "events": events,
        "identify": {"traits": {"type": "object", "properties": {
            n: {"type": "string"} for n in nasty}}},
    }
    return build_plan("hostile.yaml", doc, source="hostile.yaml")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, Path, Path]:
    work = tmp_path_factory.mktemp("hostile")
    marker = work / PWNED
    plan = hostile_plan(marker)
    return plan, write_package(plan, work, "hostile_tracking"), marker


def test_generated_code_parses_and_holds_no_call_from_the_plan(
    hostile: tuple[Plan, Path, Path],
) -> None:
    _plan, pkg, _marker = hostile
    for file in pkg.glob("*.py"):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert node.id != "__import__", file
            if isinstance(node, ast.Attribute):
                assert node.attr != "system", file


def test_importing_has_no_side_effects(hostile: tuple[Plan, Path, Path]) -> None:
    _plan, pkg, marker = hostile
    script = (
        f"import {pkg.name}, {pkg.name}._schemas, {pkg.name}._runtime\n"
        f"print(len({pkg.name}.METHODS))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=pkg.parent, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 20
    assert not marker.exists()
    assert not any(p.name.startswith(PWNED) for p in pkg.parent.rglob("*"))


def test_wire_names_are_the_originals_and_collisions_are_resolved(
    hostile: tuple[Plan, Path, Path],
) -> None:
    plan, pkg, marker = hostile
    mod: ModuleType = import_package(pkg)
    methods = mod.METHODS
    tracked = sorted(v[1] for v in methods.values() if v[0] == "track")
    assert tracked == sorted(plan.event_names)
    assert len(set(methods)) == len(methods)
    assert methods["event_collided"][1] == "event_collided"
    assert methods["event_collided_2"][1] == "Event Collided"
    assert methods["identify"][0] == "identify"  # the call, not the event named "identify"
    assert methods["identify_2"][1] == "identify"
    for method, (kind, name, _version, mapping, _cls) in methods.items():
        if kind != "track":
            continue
        rule = plan.event(name)
        wires = list(rule.payload["properties"])  # type: ignore[index]
        assert sorted(mapping.values()) == sorted(wires)
        assert mapping["property_collided"] == "property_collided"
        assert mapping["property_collided_2"] == "Property Collided"
        for arg in mapping:
            assert arg.isidentifier() and not arg.startswith("_")
        sdk = RecordingSdk()
        args: dict[str, Any] = {arg: "x" for arg, wire in mapping.items()}
        args["property_collided"] = True
        args["property_collided_2"] = 7
        args["choice"] = _payload(str(marker))
        nested = next(a for a, w in mapping.items() if w == 'nested "obj"')
        args[nested] = {'quote" \' mix': 1.5}
        args["pattern"] = "\"'\\\n"  # the pattern ends in a newline
        heard: list[Any] = []
        client = mod.Client(sdk, validate=True, on_violation=lambda _m, v, h=heard: h.extend(v))
        getattr(client, method)(user_id="u", **args)
        # patterns are ECMA-262 regexes, where "$" then "\n" matches nothing (as the
        # server's jsonschema-rs says); Python's re lets "$" match before a final newline
        assert {(v.pointer, v.keyword) for v in heard} <= {("/pattern", "pattern")}
        [(_kind, call)] = sdk.calls
        assert call["event"] == name
        assert set(call["properties"]) == set(wires)
        assert call["properties"]["Property Collided"] == 7
        assert call["properties"]["property_collided"] is True
    assert not marker.exists()


def test_hostile_package_passes_mypy_and_ruff(
    hostile: tuple[Plan, Path, Path], mypy_cache: Path
) -> None:
    _plan, pkg, _marker = hostile
    mypy, ruff = run_checkers([pkg], pkg.parent, mypy_cache)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_typewriter_e2e_plan_has_a_method_per_event_and_passes_mypy_and_ruff(
    segment_plan: Plan, tmp_path: Path, mypy_cache: Path
) -> None:
    pkg = write_package(segment_plan, tmp_path, "typewriter_tracking")
    mod = import_package(pkg)
    events = {v[1] for v in mod.METHODS.values() if v[0] == "track"}
    assert events == set(segment_plan.event_names)
    assert len(events) == len(segment_plan.events) == 24  # the fixture holds 24, not 25
    assert "n42_terrible_event_name_3" in mod.METHODS
    assert mod.METHODS["property_sanitized"][3] == {
        "n0000_terrible_property_name_3": "0000---terrible-property-name~!3"
    }
    mypy, ruff = run_checkers([pkg], tmp_path, mypy_cache)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    assert subprocess.run([sys.executable, "-c", f"import {pkg.name}"], cwd=tmp_path, env=env,
                          timeout=60).returncode == 0
