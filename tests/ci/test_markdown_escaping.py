"""Property and event names cannot leave their code spans in diff Markdown (issue 15, 14)."""

from __future__ import annotations

import re

from tests.ci.ci_helpers import make_plan
from trackplan.ci.diff import diff_plans
from trackplan.ci.render import diff_markdown

HOSTILE = "x` <img src=x onerror=alert(1)> `y"


def _props(*names: str) -> dict[str, object]:
    return {"type": "object", "properties": {n: {"type": "string"} for n in names}}


def test_hostile_property_and_event_names_stay_text() -> None:
    old = make_plan(_props("a"))
    new = make_plan([{"name": "Order Completed", "version": 1, "description": "An order.",
                      "properties": _props("a", HOSTILE, "``z|w")},
                     {"name": "<b>Evil</b>", "version": 1, "properties": _props("q")}])
    text = diff_markdown(diff_plans(old, new))
    # every raw "<" sits inside a code span whose fence is longer than any backtick run
    for line in text.splitlines():
        outside = re.sub(r"(`+)(.*?)\1", "", line)
        assert "<img" not in outside and "<b>" not in outside, line
    assert "&lt;b&gt;Evil&lt;/b&gt;" in text
    assert "``x` <img src=x onerror=alert(1)> `y``" in text
    assert "``` ``z\\|w ```" in text
