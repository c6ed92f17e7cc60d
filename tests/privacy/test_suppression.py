"""Suppression lists: hashed ids, keyed from the environment, applied by the enforcer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from trackplan.engine import compile_plan
from trackplan.engine.enforcer import Enforcer
from trackplan.errors import InputError, MissingSecretError
from trackplan.privacy.consent import route
from trackplan.privacy.suppression import (
    KEY_ENV,
    SUPPRESSED,
    SuppressionList,
    subject_hash,
)
from trackplan.privacy.suppression import suppressed as with_suppression

from .privacy_helpers import make_plan, viewed


@pytest.fixture(scope="module")
def enforcer() -> Enforcer:
    return compile_plan(make_plan())


def test_unkeyed_list_holds_sha256_digests_only() -> None:
    slist = SuppressionList.from_ids(["user-42", "anon-7"], key=None)
    assert slist.scheme == "sha256"
    assert slist.contains("user-42") and slist.contains("anon-7")
    assert not slist.contains("user-43")
    assert hashlib.sha256(b"user-42").hexdigest() in slist.digests
    assert "user-42" not in slist.dumps()


def test_keyed_digests_depend_on_the_key() -> None:
    a = subject_hash("user-42", b"k1")
    assert a != subject_hash("user-42", b"k2") != subject_hash("user-42", None)
    assert a == subject_hash("user-42", b"k1")


def test_file_round_trip_with_key_from_environment(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "s3cret-suppression-key")
    slist = SuppressionList.from_ids(["user-42"], key=b"s3cret-suppression-key")
    path = tmp_path / "suppressed.txt"
    slist.write(path)
    text = path.read_text()
    assert "s3cret" not in text and "user-42" not in text and "hmac-sha256" in text
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    loaded = SuppressionList.load(path)
    assert loaded.contains("user-42") and loaded.digests == slist.digests
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(MissingSecretError) as info:
        SuppressionList.load(path)
    assert KEY_ENV in str(info.value)


def test_malformed_list_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("# scheme: sha256\nuser-42\n")
    with pytest.raises(InputError) as info:
        SuppressionList.load(path)
    assert ":2:" in str(info.value) and "user-42" not in str(info.value)


@pytest.mark.parametrize(("field", "value"), [("userId", "user-42"), ("anonymousId", "user-42"),
                                              ("userId", 42)])
def test_enforcer_blocks_suppressed_subjects(enforcer: Enforcer, field: str,
                                            value: object) -> None:
    suppressed = with_suppression(enforcer, SuppressionList.from_ids(["user-42", "42"], key=b"k"))
    event = viewed(**{"userId": None, field: value})
    result = suppressed.enforce(event)
    assert not result.allowed
    assert [(v.type, v.pointer) for v in result.violations] == [(SUPPRESSED, f"/{field}")]
    assert "user-42" not in result.violations[0].message
    assert suppressed.enforce_bytes(orjson.dumps(event)).allowed is False
    assert list(r.allowed for r in suppressed.enforce_many([event, viewed(userId="x")])) == [
        False, True]
    assert route(suppressed, event).sent == ()


def test_other_subjects_and_the_original_enforcer_are_untouched(enforcer: Enforcer) -> None:
    suppressed = with_suppression(enforcer, SuppressionList.from_ids(["user-42"], key=None))
    other = viewed(userId="user-43")
    assert suppressed.enforce(other).allowed
    assert suppressed.enforce_bytes(orjson.dumps(other)).allowed
    assert enforcer.enforce(viewed(userId="user-42")).allowed
    # no list, no check: the original keeps the class's enforce (nothing on the fast path)
    assert "enforce" not in enforcer.__dict__
    # invalid events are still explained by the engine
    assert not suppressed.enforce(viewed(userId="user-43", event="Nope")).allowed
    assert not suppressed.enforce_bytes(b"[1, 2]").allowed
