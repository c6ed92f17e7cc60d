"""National identity numbers (opt-in per country) and the prefilter with every opt-in on.

Valid ids are computed here from each format's definition (check digits by hand), so the
tests do not take stdnum's word for what it then checks.
"""

from __future__ import annotations

import re

import pytest

from trackplan.pii import detect
from trackplan.pii.actions import hash_value
from trackplan.pii.national import enable_national
from trackplan.pii.national_ids import ID_COUNTRIES, id_spans, id_valid


def bsn(body: str) -> str:  # Dutch BSN: the "11-proof", last weight -1
    total = sum(int(d) * w for d, w in zip(body, range(9, 1, -1), strict=True))
    for last in range(10):
        if (total - last) % 11 == 0:
            return body + str(last)
    raise AssertionError(body)


def dni(number: int) -> str:  # Spanish DNI: the letter of the number mod 23
    return f"{number:08d}" + "TRWAGMYFPDXBNJZSQVHLCKE"[number % 23]


def pesel(body: str) -> str:  # Polish PESEL: weights 1 3 7 9, check = (10 - sum) mod 10
    total = sum(int(d) * w for d, w in zip(body, [1, 3, 7, 9] * 3, strict=False))
    return body + str((10 - total % 10) % 10)


def nir(body: str) -> str:  # French NIR: key = 97 - (number mod 97)
    return body + f"{97 - int(body) % 97:02d}"


def idnr(body: str) -> str:  # German IdNr: ISO 7064 MOD 11,10
    product = 10
    for d in body:
        total = (int(d) + product) % 10 or 10
        product = (total * 2) % 11
    return body + str((11 - product) % 10)


VALID = [
    ("nl", bsn("11122233")),
    ("nl", bsn("23456789")),
    ("es", dni(54362315)),
    ("es", dni(12345678)),
    ("pl", pesel("4405140135")),
    ("pl", pesel("0227080812")),
    ("fr", nir("2951099126111")),
    ("fr", nir("1850578006084")),
    ("de", idnr("3657426180")),
    ("de", idnr("4815962374")),
]




@pytest.mark.parametrize("country, value", VALID)
def test_valid_ids_are_found_for_listed_countries(country: str, value: str) -> None:
    assert id_valid(country, value) is not None
    text = f"id {value} on the form"
    assert [text[a:b] for a, b, _, _ in id_spans(text, [country])] == [value]


@pytest.mark.parametrize("country, value", VALID)
def test_a_wrong_check_digit_is_no_id(country: str, value: str) -> None:
    broken = value[:-1] + ("0" if value[-1] != "0" else "1")
    if country == "es":
        broken = value[:-1] + ("A" if value[-1] != "A" else "B")
    assert id_spans(f"id {broken} on the form", [country]) == []


SPACED = [
    ("de", "36 574 261 809"),
    ("fr", "2 95 10 99 126 111 93"),
    ("it", "RSSMRA85T10A562S"),
    ("be", "85.07.30-033.28"),
    ("se", "811228-9874"),
    ("fi", "131052-308T"),
    ("fi", "131052A308T"),
    ("es", "X-1234567-L"),
    ("gb", "943 476 5919"),
    ("ch", "756.9217.0769.85"),
]


@pytest.mark.parametrize("country, value", SPACED)
def test_ids_as_countries_write_them(country: str, value: str, national: None) -> None:
    text = f"ref: {value}."
    enable_national(id_countries=[country])
    found = [(f.category, text[f.start : f.end]) for f in detect.scan(text)]
    assert ("government_id", value) in found
    assert re.search(detect.PREFILTER, text)


def test_ids_are_opt_in_and_bare_digits_are_weak_under_id_keys(national: None) -> None:
    value = bsn("11122233")
    assert detect.findings_for("note", value) == ()  # not listed: not looked for
    enable_national(id_countries=["nl"])
    assert [f.detector for f in detect.findings_for("note", value)] == ["nl.bsn"]
    assert detect.findings_for("order_id", value) == ()  # an order number that passes 11-proof


def test_declared_government_ids_hash_alike_whatever_the_separators() -> None:
    key = b"k"
    assert hash_value("government_id", "123.456.782", key) == hash_value(
        "government_id", "123456782", key
    )
    assert hash_value("government_id", "x-1234567-l", key) == hash_value(
        "government_id", "X1234567L", key
    )


def _reference(key: str | None, text: str) -> tuple[detect.Finding, ...]:
    if len(text) < 6:
        return ()
    found = detect._scan(text)
    if key is None:
        return found
    id_like, version_like = detect.key_class(key)
    return tuple(
        f for f in found if not (f.weak and id_like) and not (f.detector == "ipv4" and version_like)
    )


def test_with_every_opt_in_on_the_prefilter_still_rules_out_nothing_found(national: None) -> None:
    """Every national phone format and id country on: the Rust prefilter and the caches
    give what the Python detectors alone give, on the corpus and on national samples."""
    from pathlib import Path

    corpus = Path(__file__).resolve().parent / "corpus"
    values = [
        line.split("\t", 2)[2]
        for name in ("positives.tsv", "negatives.tsv", "optin.tsv")
        for line in (corpus / name).read_text(encoding="utf-8").splitlines()
    ]
    values += [v for _, v in VALID + SPACED]
    values += [f"x{v}" for _, v in SPACED] + [f"{v}9" for _, v in VALID]
    enable_national(
        phone_regions=["DE", "IN", "TR", "BR", "JP", "PH", "ES", "IT", "FR", "GB", "US", "BE"],
        id_countries=sorted(ID_COUNTRIES),
    )
    wrong = []
    for key in (None, "note", "order_id", "sku", "app_version"):
        for value in values:
            for cache in detect._CLEAN_BY_CLASS:
                cache.clear()
                cache.add(None)
            detect._FOUND.clear()
            if detect.findings_for(key, value) != _reference(key, value):
                wrong.append((key, value))
    assert wrong == []
