"""The one definition of each PII action: normalisation, hash, mask, redact."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import sys as _sys

import pytest

from trackplan.pii import actions
from trackplan.pii.actions import (
    ACTIONS,
    CATEGORIES,
    apply_action,
    hash_value,
    mask_value,
    normalise,
    redact_value,
    replace_spans,
)

KEY = b"k1"


def test_names() -> None:
    assert ACTIONS == ("reject", "drop", "redact", "hash", "mask", "allow")
    assert len(CATEGORIES) == 16 and "email" in CATEGORIES and "free_text" in CATEGORIES


def test_module_uses_only_the_standard_library() -> None:
    """Generated packages copy this module's source: no trackplan or third-party import."""
    tree = ast.parse(inspect.getsource(actions))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module and node.module.split(".")[0] in (
                _sys.stdlib_module_names | {"__future__"}
            ), node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] in _sys.stdlib_module_names, alias.name


@pytest.mark.parametrize(
    ("category", "value", "expected"),
    [
        ("email", "  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("phone", "+44 (20) 7946-0958", "+442079460958"),
        ("phone", "020 7946 0958", "02079460958"),
        ("phone", 4155552671, "4155552671"),
        ("name", "  Ada ", "Ada"),
        ("other", {"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
    ],
)
def test_normalise(category: str, value: object, expected: str) -> None:
    assert normalise(category, value) == expected


def test_hash_joins_on_the_normalised_value_and_depends_on_the_key() -> None:
    a = hash_value("email", "Jane.Doe@Example.com ", KEY)
    assert a == hash_value("email", "jane.doe@example.com", KEY)
    assert len(a) == 64 and int(a, 16) >= 0
    assert a != hash_value("email", "jane.doe@example.com", b"k2")
    assert hash_value("phone", "+1 415-555-2671", KEY) == hash_value("phone", "+14155552671", KEY)
    import hashlib
    import hmac

    assert a == hmac.new(KEY, b"jane.doe@example.com", hashlib.sha256).hexdigest()


def test_hash_is_stable_across_processes() -> None:
    code = (
        "from trackplan.pii.actions import hash_value;"
        "print(hash_value('email', 'Jane@Example.com', b'k1'))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout.strip()
        for seed in (1, 2)
    }
    assert outs == {hash_value("email", "jane@example.com", KEY)}


def test_never_an_unkeyed_hash() -> None:
    with pytest.raises(ValueError):
        hash_value("email", "a@b.co", b"")
    with pytest.raises(ValueError):
        apply_action("hash", "email", "a@b.co", None)


@pytest.mark.parametrize(
    ("category", "value", "expected"),
    [
        ("email", "Jane.Doe@Example.com", "****@example.com"),
        ("ip", "203.0.113.79", "203.0.113.0"),
        ("ip", "2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
        ("ip", "::ffff:203.0.113.9", "::ffff:203.0.113.0"),
        ("ip", "not an ip", "[REDACTED]"),
        ("payment_card", "4242 4242 4242 4242", "************4242"),
        ("bank_account", "DE89 3704 0044 0532 0130 00", "******************3000"),
        ("phone", "+44 20 7946 0958", "+**********58"),
        ("name", "Jane", "J****"),
        ("name", "Al", "****"),
        ("other", 42, 0),
    ],
)
def test_mask(category: str, value: object, expected: object) -> None:
    assert mask_value(category, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", "[REDACTED]"),
        (5, 0),
        (2.5, 0.0),
        (True, False),
        ([1], []),
        ({"a": 1}, {}),
        (None, None),
    ],
)
def test_redact_keeps_the_json_type(value: object, expected: object) -> None:
    assert redact_value(value) == expected
    assert type(redact_value(value)) is type(expected)


def test_apply_action() -> None:
    assert apply_action("drop", "email", "x", None) == (False, None)
    assert apply_action("reject", "email", "x", None) == (False, None)
    assert apply_action("allow", "email", "x", None) == (True, "x")
    assert apply_action("mask", "email", "a@b.co", None) == (True, "****@b.co")
    assert apply_action("hash", "email", "a@b.co", KEY)[1] == hash_value("email", "a@b.co", KEY)
    with pytest.raises(ValueError):
        apply_action("shred", "email", "x", None)


def test_replace_spans() -> None:
    text = "mail jane@example.com now"
    assert replace_spans(text, [(5, 21, "email")], "redact", None) == "mail [REDACTED] now"
    assert replace_spans(text, [(5, 21, "email")], "mask", None) == "mail ****@example.com now"
    hashed = replace_spans(text, [(5, 21, "email")], "hash", KEY)
    assert "jane" not in hashed and hash_value("email", "jane@example.com", KEY) in hashed
