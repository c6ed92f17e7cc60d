"""Phones: E.164 before ``hash`` (issue 16) and opt-in national formats behind the prefilter."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trackplan.errors import CompileError
from trackplan.pii import detect
from trackplan.pii.actions import hash_value, normalise
from trackplan.pii.national import enable_national
from trackplan.pii.phones import canon_for, e164, national_spans

from .pii_helpers import KEY, compile_with_key, make_plan, track

SPELLINGS = ["+44 20 7946 0958", "020 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958"]




def test_the_four_spellings_of_one_number_are_one_e164() -> None:
    assert {e164(s, "GB") for s in SPELLINGS} == {"+442079460958"}
    canon = {"phone": canon_for("GB")}
    assert {hash_value("phone", s, b"k", canon=canon) for s in SPELLINGS} == {
        hash_value("phone", "+442079460958", b"k")
    }


def test_without_a_region_only_international_spellings_parse() -> None:
    assert e164("+44 20 7946 0958") == e164("0044 20 7946 0958") == "+442079460958"
    assert e164("020 7946 0958") is None
    canon = {"phone": canon_for(None)}
    assert normalise("phone", "020 7946 0958", canon=canon) == "02079460958"  # digits


@pytest.mark.parametrize("value", ["n/a", "12", "call me", "+", "0000"])
def test_values_that_are_no_number_do_not_parse(value: str) -> None:
    assert e164(value, "GB") is None


def _phone_plan(**pii: Any) -> Any:
    props = {
        "type": "object",
        "properties": {
            "phone": {"type": "string", "x-pii": {"category": "phone", "action": "hash"}},
            "note": {"type": "string"},
        },
    }
    return make_plan(props, pii={"defaults": {"phone": "hash"}, **pii})


def test_the_engine_hashes_every_spelling_alike() -> None:
    enforcer = compile_with_key(_phone_plan(default_region="GB"))
    out = set()
    for spelling in SPELLINGS:
        result = enforcer.enforce(track({"phone": spelling}))
        assert result.allowed and result.violations == ()
        out.add(result.event["properties"]["phone"])
    assert out == {hash_value("phone", "+442079460958", KEY.encode())}


def test_an_unparsable_phone_is_hashed_as_digits_and_reported_every_time() -> None:
    enforcer = compile_with_key(_phone_plan(default_region="GB"))
    for _ in range(3):  # the memo must not swallow the report
        result = enforcer.enforce(track({"phone": "ext. 12"}))
        assert result.event["properties"]["phone"] == hash_value("phone", "12", KEY.encode())
        messages = [v.message for v in result.violations]
        assert len(messages) == 1 and "/properties/phone" in messages[0]
        assert "region GB" in messages[0] and "ext. 12" not in messages[0]


def test_a_region_the_library_does_not_know_is_a_plan_error() -> None:
    with pytest.raises(CompileError, match="default_region"):
        compile_with_key(_phone_plan(default_region="XX"))
    with pytest.raises(CompileError, match="phone_regions"):
        compile_with_key(_phone_plan(phone_regions=["DE", "QQ"]))
    with pytest.raises(CompileError, match="id_countries"):
        compile_with_key(_phone_plan(id_countries=["de", "zz"]))


NATIONAL = [  # (region, text, number): numbers of each numbering plan's valid ranges
    ("TR", "arayın 0212 123 45 67 lütfen", "0212 123 45 67"),
    ("DE", "Rückruf unter 0151 23456789", "0151 23456789"),
    ("IN", "call 98765 43210 after 6", "98765 43210"),
    ("BR", "ligar (11) 91234-5678", "(11) 91234-5678"),
    ("JP", "電話 03-1234-5678 まで", "03-1234-5678"),
    ("ES", "llamar al 612 34 56 78", "612 34 56 78"),
    ("IT", "chiamare 06 6982 1234", "06 6982 1234"),
    ("PH", "text 0917 123 4567", "0917 123 4567"),
]


@pytest.mark.parametrize("region, text, number", NATIONAL)
def test_national_formats_are_found_once_the_plan_lists_the_region(
    region: str, text: str, number: str, national: None
) -> None:
    spans = national_spans(text, [region])
    assert [text[a:b] for a, b, _ in spans] == [number]
    assert re.search(detect.PREFILTER, text)  # the Rust prefilter lets it through
    enable_national(phone_regions=[region])
    assert [(f.category, text[f.start : f.end]) for f in detect.scan(text)] == [("phone", number)]


def test_national_detection_is_opt_in_through_the_plan(national: None) -> None:
    text = "arayın 0212 123 45 67 lütfen"
    assert detect.scan(text) == ()  # built-in patterns do not know Turkish numbers
    enforcer = compile_with_key(_phone_plan(phone_regions=["TR"]))
    assert detect.national_enabled()[0] == ("TR",)
    result = enforcer.enforce(track({"note": text}))
    assert [v.message for v in result.violations] == [
        "undeclared phone at /properties/note (detector: phone_tr); action hash: declare it "
        "with x-pii"
    ]  # a detected phone gets the plan's default for phones
    assert "0212" not in str(result.event)


def test_no_national_phone_inside_ids_uuids_or_ibans(national: None) -> None:
    enable_national(phone_regions=["IN", "DE", "BE", "TR"])
    for text in [
        "25318bf2-7b88-4975-9414-f6b506d002db",
        "BE71 0961 2345 6760",
        "SKU-98765-43210",
        "v98765.43210",
    ]:
        assert [f for f in detect.scan(text) if f.category == "phone"] == [], text
