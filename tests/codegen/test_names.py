"""Identifier allocation and literal making: the two doors plan text enters code by."""

from __future__ import annotations

import ast
import keyword

from hypothesis import given, settings
from hypothesis import strategies as st

from trackplan.codegen.names import (
    INTERNAL_PREFIX,
    Namespace,
    comment,
    docstring,
    literal,
    sanitise,
)


def test_sanitise_handles_punctuation_digits_keywords_builtins_and_non_ascii() -> None:
    assert sanitise("Order Completed", style="snake", fallback="f") == "order_completed"
    assert sanitise("Order Completed", style="pascal", fallback="F") == "OrderCompleted"
    assert sanitise("orderCompletedAt", style="snake", fallback="f") == "order_completed_at"
    assert sanitise("42_--terrible==\"event'++name~!3", style="snake", fallback="f") == (
        "n42_terrible_event_name_3"
    )
    assert sanitise("class", style="snake", fallback="f") == "class_"
    assert sanitise("list", style="snake", fallback="f") == "list_"
    assert sanitise("Café", style="snake", fallback="f") == "cafe"
    assert sanitise("注文", style="snake", fallback="f") == "u6ce8_u6587"
    assert sanitise("!!!", style="snake", fallback="field") == "field"


def test_collisions_resolve_the_same_way_whatever_the_input_order() -> None:
    names = ["Property Collided", "property_collided", "Event Collided", "event_collided"]
    first = Namespace().allocate(names, style="snake")
    second = Namespace().allocate(list(reversed(names)), style="snake")
    assert first == second
    # the name that already is an identifier keeps it; the other gets a suffix
    assert first["property_collided"] == "property_collided"
    assert first["Property Collided"] == "property_collided_2"
    assert first["event_collided"] == "event_collided"
    assert first["Event Collided"] == "event_collided_2"
    assert len(set(first.values())) == len(names)


def test_reserved_names_are_never_handed_out() -> None:
    ns = Namespace(["user_id", "self"])
    got = ns.allocate(["user_id", "self", "userId"], style="snake")
    assert got["user_id"] not in ("user_id", "self")
    assert got["self"] != "self"
    assert got["userId"] not in ("user_id", "self", got["user_id"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=8, unique=True))
def test_allocated_names_are_unique_identifiers_outside_the_internal_prefix(
    names: list[str],
) -> None:
    for style in ("snake", "pascal"):
        got = Namespace().allocate(names, style=style)  # type: ignore[arg-type]
        assert len(set(got.values())) == len(names)
        for ident in got.values():
            assert ident.isidentifier() and ident.isascii()
            assert not keyword.iskeyword(ident) and not keyword.issoftkeyword(ident)
            assert not ident.startswith("_") and not ident.startswith(INTERNAL_PREFIX)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(0, 40))
def test_literal_round_trips_any_json_value(value: object, indent: int) -> None:
    source = literal(value, indent=indent)
    assert ast.literal_eval(source) == value
    # as an assignment inside indented code it still parses to the same value
    code = "if True:\n" + " " * (indent + 4) + "x = " + literal(value, indent=indent + 4)
    tree = ast.parse(code)
    assert ast.literal_eval(tree.body[0].body[0].value) == value  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_docstrings_and_comments_cannot_break_out(text: str) -> None:
    code = f"def f():\n    {docstring(text, indent=4)}\n    # {comment(text)}\n    return 1\n"
    tree = ast.parse(code)
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    assert ast.get_docstring(func, clean=False) == text
    assert len(func.body) == 2  # the docstring and the return: nothing injected


def test_hostile_strings_stay_data() -> None:
    for text in ['"""); import os #', "'''", "\\", "a\nb", "\u2028", "\r", "\x0c", "\x00"]:
        assert ast.literal_eval(literal(text)) == text
        assert "\n" not in comment(text) and "\r" not in comment(text)
