"""Numbers JSON has no literal for are plan errors however a plan is built (issue 15, item
15): a plan made in Python (``build_plan``, the ``Plan`` model itself) skips the file
checks, and code generation and ``report dpia`` read the plan as JSON. Integers of any
size are JSON: kept exactly, and every backend writes them."""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

import pytest

from trackplan.codegen import generate_python
from trackplan.errors import PlanError
from trackplan.plan.load import build_plan
from trackplan.plan.model import Plan
from trackplan.privacy.report import FORMATS, build_report, render

BIG = 2**70 + 1


def _plan(bound: Any, *, extra: Any = 0) -> Plan:
    event = {"name": "Order Completed", "x-meta": {"weights": [1, extra]},
             "properties": {"type": "object", "properties": {
                 "n": {"type": "number", "maximum": bound, "x-pii": False}}}}  # fmt: skip
    doc = {"trackplan": 1, "name": "P", "definitions": {"m": {"type": "number", "minimum": 0}},
           "x-limits": [extra]}  # fmt: skip
    return build_plan("p/plan.yaml", doc, {}, [("p/events/oc.yaml", event)], source="p")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_build_plan_refuses_non_finite_numbers_naming_file_event_and_pointer(bad: float) -> None:
    with pytest.raises(PlanError) as caught:
        _plan(bad, extra=bad)
    found = {(i.file, i.event, i.pointer) for i in caught.value.issues}
    assert found == {
        ("p/events/oc.yaml", "Order Completed", "/properties/properties/n/maximum"),
        ("p/events/oc.yaml", "Order Completed", "/x-meta/weights/1"),
        ("p/plan.yaml", None, "/x-limits/0"),
    }
    assert all("NaN and infinite numbers" in i.message for i in caught.value.issues)


def test_the_plan_model_refuses_them_too() -> None:
    plan = _plan(10)
    with pytest.raises(PlanError) as caught:
        dataclasses.replace(plan, definitions={"m": {"type": "number", "minimum": float("nan")}})
    (issue,) = caught.value.issues
    assert (issue.file, issue.pointer) == ("p/plan.yaml", "/definitions/m/minimum")


def test_integers_beyond_64_bits_are_kept_and_every_backend_writes_them() -> None:
    plan = _plan(BIG, extra=-BIG)
    assert plan.events[0].payload["properties"]["n"]["maximum"] == BIG  # type: ignore[index]
    assert plan.digest() != _plan(BIG + 1, extra=-BIG).digest()  # exact, not rounded
    files = generate_python(plan, package="pk")
    for name, text in files.items():
        ast.parse(text, filename=str(name))
    for fmt in FORMATS:
        assert render(build_report(plan), fmt)
