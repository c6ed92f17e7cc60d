"""National identity numbers (opt-in per country) and the prefilter with every opt-in on.

Valid ids are computed here from each format's definition (check digits by hand), so the
tests do not take stdnum's word for what it then checks.
"""

from __future__ import annotations

import hmac
import re

import pytest

from trackplan.pii import detect
from trackplan.pii.actions import hash_value
from trackplan.pii.national import enable_national
from trackplan.pii.national_ids import ID_COUNTRIES, id_spans, id_valid

from .pii_helpers import KEY


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


# -- declared government_id values: stdnum's compact form before hash -----------------------
def _id_plan(countries: list[str] | None) -> object:
    from .pii_helpers import make_plan

    props = {"type": "object", "properties": {
        "tax_id": {"type": "string", "x-pii": {"category": "government_id", "action": "hash"}},
    }}  # fmt: skip
    # detection off: the compile must not turn national detectors on for the whole session
    pii: dict[str, object] = {"detection": False}
    if countries is not None:
        pii["id_countries"] = countries
    return make_plan(props, pii=pii)


def _hashed(plan: object, values: list[str]) -> list[str]:
    from .pii_helpers import compile_with_key, track

    enforcer = compile_with_key(plan)  # type: ignore[arg-type]
    out = []
    for value in values:
        result = enforcer.enforce(track({"tax_id": value}))
        assert result.allowed and result.violations == ()
        out.append(result.event["properties"]["tax_id"])
    return out


@pytest.mark.parametrize(
    ("countries", "spellings"),
    [
        (["nl"], [bsn("11122233"), "1112.22.333", " 111 222 333 ", "1112 22 333"]),
        (["es"], [dni(12345678), dni(12345678).lower(), "12345678-" + dni(12345678)[-1]]),
        (["fi"], ["131052-308T", "131052-308t", " 131052-308T "]),
        (["it"], ["RSSMRA85T10A562S", "rssmra85t10a562s", "RSS MRA 85T10 A562S"]),
        (["ch", "nl"], ["756.1234.5678.97", "7561234567897", "756 1234 5678 97"]),
    ],
)
def test_every_spelling_of_a_valid_id_hashes_alike(
    countries: list[str], spellings: list[str]
) -> None:
    assert len(set(_hashed(_id_plan(countries), spellings))) == 1


def test_ids_are_hashed_in_stdnums_compact_form() -> None:
    """The century sign of a Finnish HETU is part of the number: kept, upper-cased."""
    from trackplan.pii.national_ids import id_compact

    [hashed] = _hashed(_id_plan(["fi"]), ["131052-308t"])
    assert hashed == hmac.digest(KEY.encode(), b"131052-308T", "sha256").hex()
    assert id_compact("131052-308t", ["fi"]) == "131052-308T"
    assert id_compact("131052-308t", ["nl", "es"]) is None  # valid elsewhere only


def test_an_id_valid_in_no_listed_country_keeps_the_built_in_normalisation() -> None:
    # no id (though "12.34.56" is one: BSNs are padded to nine digits), and a Finnish id
    values = ["12.34.57", "131052-308T"]
    expected = [hash_value("government_id", v, KEY.encode()) for v in values]
    assert _hashed(_id_plan(["nl"]), values) == expected
    assert _hashed(_id_plan(None), values) == expected
    assert expected[1] == hash_value("government_id", "131052308T", KEY.encode())
