"""The fast parts of the detectors and the walk give what the slow parts give.

The detectors rule strings out in Rust (a prefilter, whole UUIDs and timestamps) before
the Python detectors run; the walk memoises actions and skips clean strings inline. Each
shortcut is checked here against the same code with the shortcut taken away: the Python
detectors alone (``detect._scan``), and the walk with the prefilter off and every cache
and memo emptied before each event.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackplan.engine import compile_plan
from trackplan.engine.enforcer import Enforcer
from trackplan.pii import detect
from trackplan.pii.actions import hash_value
from trackplan.pii.detect import match_key
from trackplan.pii.engine import Transformer
from trackplan.pii.nodes import MEMO_MAX
from trackplan.plan.load import load_plan
from trackplan.schema.violations import Violation

CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLES = 150
KEYS = [None, "note", "order_id", "sku", "product_code", "app_version", "build_number", "query"]


def _corpus(name: str) -> list[str]:
    return [
        line.split("\t", 2)[2]
        for line in (CORPUS / name).read_text(encoding="utf-8").splitlines()
    ]


POSITIVES = _corpus("positives.tsv")
NEGATIVES = _corpus("negatives.tsv")


def _clear() -> None:
    """Empty the detectors' caches (each clean cache keeps ``None``, as they expect)."""
    for cache in detect._CLEAN_BY_CLASS:
        cache.clear()
        cache.add(None)
    detect._FOUND.clear()


def _reference(key: str | None, text: str) -> tuple[detect.Finding, ...]:
    """What :func:`detect.findings_for` must give: every Python detector, no cache, no
    prefilter, then the key's exclusions."""
    if len(text) < 6:
        return ()
    found = detect._scan(text)
    if key is None:
        return found
    id_like, version_like = detect.key_class(key)
    return tuple(
        f for f in found if not (f.weak and id_like) and not (f.detector == "ipv4" and version_like)
    )


# -- the prefilter and the whole-value exclusions ----------------------------------------
def test_wide_digit_class_is_every_digit_python_matches() -> None:
    """The class holds exactly the non-ASCII characters Python's ``\\d`` matches, and no
    code point above its end is a digit (so the Rust prefilter misses no digit)."""
    wide = re.compile(detect._WIDE_DIGIT)
    digit = re.compile(r"\d")
    below = [chr(c) for c in range(0x80, detect.WIDE_DIGIT_END)]
    assert [c for c in below if bool(wide.match(c)) != bool(digit.match(c))] == []
    above = (chr(c) for c in range(detect.WIDE_DIGIT_END, sys.maxunicode + 1))
    assert not any(c.isdecimal() for c in above)
    assert sum(bool(wide.match(c)) for c in below) >= 600


def test_rust_prefilter_sees_digits_beyond_ascii() -> None:
    """A phone written in Arabic-Indic digits is found, and not cached clean on the way."""
    text = "call +٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨ now"
    _clear()
    assert not detect.RULED_OUT(text)
    assert [f.category for f in detect.scan(text)] == ["phone"]
    assert text not in detect.CLEAN


def test_cold_strings_of_events_skip_the_python_detectors(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:  # fmt: skip
    """UUIDs, timestamps, user agents and ids are ruled out in Rust and cached clean."""
    calls: list[str] = []
    monkeypatch.setattr(detect, "_scan", lambda text: calls.append(text) or ())
    values = [
        "25318bf2-7b88-4975-9414-f6b506d002db",
        "2026-11-01T08:00:28.000Z",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        "usr_100000",
    ]
    _clear()
    for value in values:
        assert detect.scan(value) == ()
        assert value in detect.CLEAN
    assert detect.findings_for("sku", "SKU-BOOK-9780262033848") == ()
    assert "SKU-BOOK-9780262033848" in detect.clean_set("sku")
    assert calls == []
    detect.scan("203.0.113.79")  # a candidate: the Python detectors decide
    assert calls == ["203.0.113.79"]


HEX = "0123456789abcdefABCDEF"


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    uid=st.uuids(),
    upper=st.booleans(),
    moment=st.datetimes(min_value=dt.datetime(1000, 1, 1)),
    sep=st.sampled_from(["T", " "]),
    fraction=st.sampled_from(["", ".0", ".123", ".123456"]),
    zone=st.sampled_from(["", "Z", "+05:30", "-0800", "+00:00"]),
    part=st.sampled_from(["date", "minutes", "seconds"]),
    digits=st.text(alphabet=HEX, min_size=32, max_size=32),
)
def test_uuids_and_timestamps_hold_nothing(
    uid: object, upper: bool, moment: object, sep: str, fraction: str, zone: str, part: str,
    digits: str,
) -> None:
    """Whole UUIDs and ISO-8601 timestamps, which the Rust check rules out, are values in
    which the Python detectors find nothing either (so ruling them out changes nothing)."""
    assert isinstance(moment, dt.datetime)
    text = str(uid).upper() if upper else str(uid)
    shaped = "-".join([digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]])
    stamp = moment.strftime("%Y-%m-%d")
    if part != "date":
        stamp += sep + moment.strftime("%H:%M" if part == "minutes" else "%H:%M:%S")
        stamp += (fraction if part == "seconds" else "") + zone
    for value in (text, shaped, stamp):
        assert detect.RULED_OUT(value)
        assert detect._scan(value) == ()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.from_regex(detect.SAFE_WHOLE, fullmatch=True))
def test_whatever_the_whole_value_pattern_admits_holds_nothing(value: str) -> None:
    assert detect._scan(value) == ()


PIECES = st.sampled_from([
    "a", "Z", "x9", "0", "1", "4", "7", " ", "-", ".", "(", ")", "+", "/", ":", "::", "@",
    "%40", "eyJ", "sk_live_", "AKIA", "DE89", "GB82 WEST ", "555", "2671", "4242", "T",
    "203.0.113.", "fe80", "Bearer ", "_", "com", "ghp_", "٤", "٧٩", "\ud800", "é",
    "2026-11-01", "08:00:28", "25318bf2-7b88-4975-9414-f6b506d002db",
    "AL47-2121-1009-", "BE71 0961 2345 6769", "xapp-1-", "xoxe.xoxp-1-", "rk_prod_",
    "hooks.slack.com/services/T", "-----BEGIN PGP PRIVATE KEY BLOCK-----", "219.09.9999",
    "a@xn--p1ai", ".xn--p1ai", "RSSMRA85T10A562S", "131052A308T", "AIza",
])  # fmt: skip
PLANTED = st.sampled_from(POSITIVES)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    parts=st.lists(st.one_of(PIECES, PLANTED, st.sampled_from(NEGATIVES)), min_size=1,
                   max_size=8),
    key=st.sampled_from(KEYS),
)
def test_prefiltered_scan_finds_what_the_detectors_find(parts: list[str], key: str | None
                                                        ) -> None:  # fmt: skip
    """Cold and then warm: the same findings as every detector run in Python."""
    value = "".join(parts)
    want = _reference(key, value)
    _clear()
    assert detect.findings_for(key, value) == want
    assert detect.findings_for(key, value) == want  # from the caches now
    assert detect.scan(value) == _reference(None, value)


def test_corpus_findings_are_unchanged_by_the_prefilter() -> None:
    """Every labelled value, under every key: the same findings as the Python detectors."""
    _clear()
    wrong = [
        (key, value)
        for value in POSITIVES + NEGATIVES
        for key in KEYS
        if detect.findings_for(key, value) != _reference(key, value)
    ]
    assert wrong == []


def test_lone_surrogates_are_scanned_in_python() -> None:
    """Rust refuses lone surrogates; the detectors still see the text around them."""
    _clear()
    found = detect.scan("\ud800 write to jane.doe@example.com")
    assert [f.category for f in found] == ["email"]
    assert detect.findings_for("order_id", "\udfff ord-555-0199-22") == _reference(
        "order_id", "\udfff ord-555-0199-22"
    )


# -- the walk ----------------------------------------------------------------------------
EXAMPLE_EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events.ndjson"
PLAN_DIR = Path(__file__).resolve().parents[2] / "plans" / "ecommerce"


@pytest.fixture(scope="module")
def enforcer() -> Enforcer:
    return compile_plan(load_plan(PLAN_DIR))


def _transformers(enforcer: Enforcer) -> list[Transformer]:
    found = [c.transform for c in enforcer.compiled_rules() if c.transform is not None]
    assert found and all(isinstance(t, Transformer) for t in found)
    return found


def _outcome(transformer: Transformer, event: dict[str, Any]) -> tuple[Any, ...]:
    """The walk's forwarded event and violations, and the review copy ``scrub`` makes."""
    violations: list[Violation] = []
    out = transformer(copy.deepcopy(event), violations)
    found = [(v.type, v.pointer, v.message, v.schema_location) for v in violations]
    return out, found, transformer.scrub(copy.deepcopy(event))


def _slow(monkeypatch: pytest.MonkeyPatch, transformers: list[Transformer],
          event: dict[str, Any]) -> list[tuple[Any, ...]]:  # fmt: skip
    """Each transformer's outcome with no shortcut: prefilter off, caches and memos empty."""
    with monkeypatch.context() as patch:
        patch.setattr(detect, "RULED_OUT", lambda text: False)
        patch.setattr(detect, "_RULED_OUT_ID", lambda text: False)
        outcomes = []
        for t in transformers:
            _clear()
            for memo in t.memos.values():
                memo.clear()
            outcomes.append(_outcome(t, event))
    return outcomes


def _fast(transformers: list[Transformer], event: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [_outcome(t, event) for t in transformers]


def test_example_events_walk_as_without_shortcuts(enforcer: Enforcer,
                                                  monkeypatch: pytest.MonkeyPatch
                                                  ) -> None:  # fmt: skip
    """Every rule's walk and review copy of every example event, cold and warm: the same
    events and violations as with the prefilter off and every cache and memo emptied."""
    events = [orjson.loads(line) for line in EXAMPLE_EVENTS.read_bytes().splitlines() if line]
    assert len(events) >= 300
    transformers = _transformers(enforcer)
    _clear()
    cold = [_fast(transformers, e) for e in events]
    warm = [_fast(transformers, e) for e in events]
    slow = [_slow(monkeypatch, transformers, e) for e in events]
    assert cold == slow
    assert warm == slow
    assert any(v for outcomes in slow for _, v, _ in outcomes)  # findings were compared too


KEY_POOL = ["note", "comment", "order_id", "sku", "name", "Name", "email", "phone_type",
            "contact", "app_version", "tags", "items", "user", "ip", "billingAddress",
            "next_page_token", "password", "msg"]  # fmt: skip
#: Pieces of strings an event can hold (the enforcer blocks lone surrogates up front).
TEXT = PIECES.filter(lambda piece: piece != "\ud800")
LEAVES = st.one_of(
    PLANTED, st.sampled_from(NEGATIVES), st.uuids().map(str), TEXT,
    st.integers(-10, 10**16), st.booleans(), st.none(), st.floats(allow_nan=False),
    st.lists(TEXT, max_size=4).map("".join),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEY_POOL), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    index=st.integers(0, 400),
    payload=st.dictionaries(st.sampled_from(KEY_POOL), VALUES, max_size=6),
    traits=st.dictionaries(st.sampled_from(KEY_POOL), VALUES, max_size=3),
)
def test_generated_events_walk_as_without_shortcuts(
    enforcer: Enforcer, index: int, payload: dict[str, Any], traits: dict[str, Any]
) -> None:
    """Example events with planted PII in the payload and context traits: the same
    outcome (events, violations, review copies) cold, warm and without shortcuts."""
    events = [orjson.loads(line) for line in EXAMPLE_EVENTS.read_bytes().splitlines() if line]
    event = copy.deepcopy(events[index % len(events)])
    key = "traits" if event.get("type") in ("identify", "group") else "properties"
    event[key] = {**(event.get(key) or {}), **payload}
    if traits:
        event.setdefault("context", {})["traits"] = traits
    transformers = _transformers(enforcer)
    with pytest.MonkeyPatch.context() as monkeypatch:
        slow = _slow(monkeypatch, transformers, event)
    _clear()
    assert _fast(transformers, event) == slow
    assert _fast(transformers, event) == slow
    text = orjson.dumps([v for outcome in slow for v in outcome[1]]).decode()
    planted = [p for p in POSITIVES if p.strip() and len(p.strip()) >= 6]
    assert not any(p.strip() in text for p in planted if p.strip() in str(event))


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(key=st.one_of(st.sampled_from(KEY_POOL), st.text(max_size=12)), value=LEAVES)
def test_keys_the_walk_skips_name_nothing(enforcer: Enforcer, key: str, value: Any) -> None:
    """The walk sends a key's value straight to the content detectors when it judged the
    key to name nothing: then the key-name matcher has nothing to say either."""
    transformer = _transformers(enforcer)[0]
    for person in (False, True):
        if transformer._key_cache(key, person) is not None:  # judged to name nothing
            assert match_key(key, value, person=person) is None


def test_memo_is_bounded_and_hashes_as_the_action_does(enforcer: Enforcer) -> None:
    """Declared hashes go through the shared memo, which never grows past its bound, and
    give exactly what the action gives (keyed HMAC)."""
    transformer = next(t for t in _transformers(enforcer) if t.root.keys.get("traits"))
    field = transformer.root.keys["traits"].keys["email"].leaf
    assert field is not None and field.action == "hash"
    key = transformer.key
    assert key is not None
    for i in range(MEMO_MAX + 50):
        value = f"user{i}@example.com"
        out = transformer._declared(value, field, ("traits", "email"), [])
        assert len(transformer.memo("hash", "email")) <= MEMO_MAX
        if i % 997 == 0:
            assert out == hash_value("email", value, key)
    memo = transformer.memo("hash", "email")
    assert memo["user4145@example.com"] == hash_value("email", "user4145@example.com", key)
    assert transformer._declared(["a@example.com", 3], field, ("x",), []) == [
        hash_value("email", "a@example.com", key), hash_value("email", 3, key)
    ]


def test_found_cache_is_bounded() -> None:
    _clear()
    for i in range(detect._FOUND_MAX + 10):
        assert detect.scan(f"mail user{i}@example.com") != ()
        assert len(detect._FOUND) <= detect._FOUND_MAX


def test_the_written_out_digit_class_is_the_one_python_builds() -> None:
    # the literal saves building the class at every start; it must be exactly that class
    import unicodedata

    for version, written in detect._WIDE_DIGITS_BY_UNICODE.items():
        if version == unicodedata.unidata_version:
            assert written == detect._wide_digits()
    assert detect._WIDE_DIGIT == detect._wide_digits()
