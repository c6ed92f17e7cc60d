"""Plan names that used to break generated code (issue 15, item 16)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from trackplan.codegen.types import split_union
from trackplan.plan.load import build_plan

from .conftest import RecordingSdk, import_package, write_package


def _plan() -> Any:
    props = {"type": "object", "properties": {
        "stamp": {"type": "string"}, "dict": {"type": "string"},
        "validate": {"type": "string"}, "describe": {"type": "string"},
        "kind": {"enum": ["]", "a | b", "x", None]},
        "k2": {"anyOf": [{"enum": ["]", "a | b"]}, {"type": "integer"}]},
    }}
    return build_plan("plan.yaml", {
        "trackplan": 1, "name": "Reserved",
        "identify": {"traits": {"type": "object", "properties": {"email": {"type": "string"}}}},
        "group": {"traits": {"type": "object", "properties": {"plan": {"type": "string"}}}},
        "events": [
            {"name": "Order Completed", "properties": props},
            {"name": "Identify Traits", "properties": {"type": "object", "properties": {
                "y": {"type": "string"}}}},
            {"name": "Group Traits", "properties": {"type": "object"}},
        ],
    })


def test_properties_named_like_helpers_and_traits_events_work(tmp_path: Path) -> None:
    pkg = write_package(_plan(), tmp_path, "reserved_names_pkg")
    module = import_package(pkg)
    sdk = RecordingSdk()
    client = module.Client(sdk, validate=True)
    client.order_completed(user_id="u", stamp="s", dict_="d", validate="v", describe="x",
                           kind="a | b", k2="]", context={"page": {"path": "/"}})
    client.identify_traits(user_id="u", y="z")
    client.group_traits(user_id="u")
    client.identify(user_id="u", email="e")
    track = sdk.calls[0][1]
    assert track["properties"] == {"stamp": "s", "dict": "d", "validate": "v",
                                   "describe": "x", "kind": "a | b", "k2": "]"}
    assert track["context"]["protocols"] == {"event_version": 1}
    assert [c[0] for c in sdk.calls] == ["track", "track", "track", "identify"]
    assert sdk.calls[1][1]["event"] == "Identify Traits"
    # an event class and the traits classes of identify and group are all distinct
    traits = {n for n in dir(module) if "Traits" in n}
    assert len(traits) == 4, traits
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir",
         str(tmp_path / "cache"), str(pkg)], capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout


def test_unions_split_outside_string_literals_only() -> None:
    assert split_union("Literal[']', 'a | b'] | None") == ["Literal[']', 'a | b']", "None"]
    literal = f"Literal[{chr(92)!r}, {'x ] | y'!r}, {chr(39) + ']'!r}]"
    assert split_union(literal + " | int") == [literal, "int"]
