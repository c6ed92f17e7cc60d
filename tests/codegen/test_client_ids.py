"""Client-side ``hash`` of declared government ids joins with the pipeline's (issue 16).

For the plan's ``pii.id_countries``, the pipeline hashes a valid id in python-stdnum's
compact form, so every spelling of one id gives one hash. A generated client does the same
when python-stdnum is importable; without it, it warns once and hashes ids as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trackplan.engine import compile_plan
from trackplan.pii import detect
from trackplan.plan.load import build_plan
from trackplan.plan.model import Plan

from .conftest import import_package, run_stdlib_only, write_package

KEY = "client-id-key"
#: one Dutch BSN and one Finnish personal identity code, each spelled several ways, then
#: values valid in neither country (hashed as written on both sides)
IDS = ["1112.22.333", "111222333", " 111 222 333 ", "131052-308T", "131052-308t",
       "131052-308T ", "12345", "not an id"]  # fmt: skip

RUNNER = r"""
import json, sys, warnings
sys.path.insert(0, sys.argv[1])
package = __import__(sys.argv[2])
sent = []
class Sdk:
    def identify(self, **kw): sent.append(kw["traits"].get("national_id"))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    client = package.Client(Sdk(), on_violation=lambda m, v: None)
for value in json.load(sys.stdin):
    client.identify(user_id="u", national_id=value)
print(json.dumps({"sent": sent, "warnings": [str(w.message) for w in caught]}))
"""


def _plan() -> Plan:
    return build_plan("plan.yaml", {
        "name": "Ids",
        # detection off: id_countries would otherwise turn on process-wide national
        # detectors for the rest of the test session; hashing does not need them
        "pii": {"client_side": True, "id_countries": ["nl", "fi"], "detection": "off"},
        "identify": {"traits": {"type": "object", "properties": {"national_id": {
            "type": "string", "x-pii": {"category": "government_id", "action": "hash"}}}}},
    })  # fmt: skip


def _server(plan: Plan, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)
    enforcer = compile_plan(plan)
    out = []
    for value in IDS:
        result = enforcer.enforce({"type": "identify", "userId": "u",
                                   "traits": {"national_id": value}})  # fmt: skip
        assert result.allowed
        out.append(result.event["traits"]["national_id"])
    return out


def test_the_plan_leaves_the_process_wide_detectors_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = dict(detect._NATIONAL)
    _server(_plan(), monkeypatch)
    assert detect._NATIONAL == before


def test_client_with_stdnum_hashes_ids_as_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan()
    server = _server(plan, monkeypatch)
    assert len(set(server[:3])) == 1 and len(set(server[3:6])) == 1  # one id, one hash
    assert len(set(server)) == 4 and all(v not in server for v in IDS)
    module = import_package(write_package(plan, tmp_path, "ids_lib"))
    sent: list[Any] = []

    class Sdk:
        def identify(self, **kw: Any) -> None:
            sent.append(kw["traits"].get("national_id"))

    client = module.Client(Sdk(), on_violation=lambda m, v: None)
    for value in IDS:
        client.identify(user_id="u", national_id=value)
    assert sent == server


def test_client_without_stdnum_warns_and_still_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan()
    server = _server(plan, monkeypatch)
    package = write_package(plan, tmp_path, "ids_stdlib")
    result = run_stdlib_only(package, RUNNER, IDS, KEY)
    assert any("python-stdnum is not installed" in w for w in result["warnings"])
    sent = result["sent"]
    assert all(v not in sent for v in IDS)  # hashed all the same, never sent raw
    assert sent[-2:] == server[-2:]  # values valid nowhere hash alike on both sides
    assert sent[1] == server[1]  # an id already in its compact form too
