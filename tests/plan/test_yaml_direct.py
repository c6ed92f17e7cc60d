"""Plan YAML is built straight from libyaml's nodes: the same documents, and the same
refusals, as PyYAML's generic safe constructor gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from trackplan.errors import PlanIssue
from trackplan.plan.load import parse_document

SAME = [
    "a: 1\nb: -2.5\nc: 0x1F\nd: 1_000\ne: 1e3\nf: '12'\ng: !!str 12\nh: !!int '7'\n",
    "a: yes\nb: No\nc: ~\nempty:\nlist: [1, 2.0, {x: y}, [true]]\n",
    "when: 2026-01-01\nat: 2026-01-01T00:00:00Z\n",  # strings, as in JSON
    "text: |\n  multi\n  line\nfolded: >\n  a\n  b\n",
    "dup: 1\ndup: 2\n",
    "base: {x: 1}\nmerged:\n  <<: {y: 2}\n  z: 3\n",  # a merge key: the generic path
    "[1, 2, 3]",
    "just a string",
    "",
]


def _reference(text: str) -> Any:
    class Reference(yaml.SafeLoader):
        pass

    Reference.yaml_implicit_resolvers = {
        ch: [(t, rx) for t, rx in rs if t != "tag:yaml.org,2002:timestamp"]
        for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return yaml.load(text, Loader=Reference)  # noqa: S506 - SafeLoader subclass


@pytest.mark.parametrize("text", SAME)
def test_documents_are_what_the_generic_constructor_builds(text: str) -> None:
    issues: list[PlanIssue] = []
    doc = parse_document(Path("plan.yaml"), text.encode(), issues)
    assert issues == []
    assert repr(doc) == repr(_reference(text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1: a\n", "key 1 is not a string"),
        ("a: .inf\n", "NaN and infinite"),
        ("a: [.nan]\n", "NaN and infinite"),
        ("a: !!binary aGVsbG8=\n", "value of type bytes is not JSON"),
        ("a: !custom x\n", "invalid YAML"),
        ("? [a]\n: b\n", "invalid YAML"),
        ("a:\n" + "".join("  " * i + " - x:\n" for i in range(1, 300)), "deeper than"),
        ("x: " + "[" * 600 + "]" * 600 + "\n", "deeper than"),
    ],
)
def test_what_is_not_json_is_refused(text: str, message: str) -> None:
    issues: list[PlanIssue] = []
    assert parse_document(Path("plan.yaml"), text.encode(), issues) is None
    assert len(issues) == 1 and message in issues[0].message, issues


def test_nesting_at_the_limit_is_accepted() -> None:
    issues: list[PlanIssue] = []
    text = "x: " + "[" * 512 + "]" * 512 + "\n"  # the mapping, then 512 lists: depth 512
    assert parse_document(Path("plan.yaml"), text.encode(), issues) is not None
    assert issues == []
