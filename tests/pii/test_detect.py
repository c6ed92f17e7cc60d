"""Detectors on values and key names: the pitfalls named in the field reference."""

from __future__ import annotations

import pytest

from trackplan.pii.detect import (
    category_for_name,
    findings_for,
    iban_ok,
    luhn_ok,
    match_key,
    name_tokens,
    scan,
    ssn_ok,
)


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("billingAddressLine1", ["billing", "address", "line1"]),
        ("first_name", ["first", "name"]),
        ("e-mail", ["e", "mail"]),
        ("Phone Number", ["phone", "number"]),
        ("userIPAddress", ["user", "ip", "address"]),
        ("SSN", ["ssn"]),
    ],
)
def test_name_tokens(name: str, tokens: list[str]) -> None:
    assert name_tokens(name) == tokens


@pytest.mark.parametrize(
    ("name", "value", "category"),
    [
        ("email", "a@b.co", "email"),
        ("userEmail", "x", "email"),
        ("e-mail", "x", "email"),
        ("emailAddress", "x", "email"),
        ("phone_number", "x", "phone"),
        ("mobilePhone", 4155552671, "phone"),
        ("first_name", "Ada", "name"),
        ("LastName", "Lovelace", "name"),
        ("full name", "Ada Lovelace", "name"),
        ("shipping-address", {"street": "x"}, "address"),
        ("street", "1 Main St", "address"),
        ("zipcode", "94107", "postal_code"),
        ("postal_code", 94107, "postal_code"),
        ("birthdate", "1990-01-01", "birthdate"),
        ("dateOfBirth", "1990-01-01", "birthdate"),
        ("ip_address", "x", "ip"),
        ("clientIp", "x", "ip"),
        ("ssn", "x", "government_id"),
        ("social_security_number", "x", "government_id"),
        ("passport_number", "x", "government_id"),
        ("password", "hunter2", "credentials"),
        ("api_key", "x", "credentials"),
        ("auth_token", "x", "credentials"),
        ("credit_card_number", "x", "payment_card"),
        ("iban", "x", "bank_account"),
        ("gender", "f", "other"),
        ("latitude", 52.52, "precise_location"),
        ("mac_address", "x", "device_id"),
    ],
)
def test_key_names_found(name: str, value: object, category: str) -> None:
    assert match_key(name, value) == category


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("email_opt_in", True),
        ("emailOptIn", True),
        ("email_verified", True),
        ("email_domain", "example.com"),
        ("product_name", "Socks"),
        ("event_name", "Signed Up"),
        ("page_name", "Home"),
        ("name", "Socks"),  # a bare name outside a person's traits is a product's or page's
        ("next_page_token", "abc"),
        ("page_token", "abc"),
        ("pagination_token", "abc"),
        ("input_tokens", 120),
        ("token", 5),  # a count, not a secret
        ("phone_type", "mobile"),
        ("password_strength", "weak"),
        ("ship", "x"),
        ("zipper_color", "red"),
        ("order_id", "o-1"),
        ("revenue", 9.99),
        ("newsletter", True),
        ("password", None),
    ],
)
def test_key_names_left_alone(name: str, value: object) -> None:
    assert match_key(name, value) is None


def test_bare_name_is_a_person_in_traits() -> None:
    assert match_key("name", "Ada Lovelace", person=True) == "name"
    assert match_key("name", "Ada Lovelace") is None


def test_category_for_name_reads_the_schema_type() -> None:
    assert category_for_name("email_opt_in", {"type": "boolean"}) is None
    assert category_for_name("email", {"type": "string"}) == "email"
    assert category_for_name("email") == "email"
    assert category_for_name("phone", {"type": ["integer", "null"]}) == "phone"
    assert category_for_name("latitude", {"type": "number"}) == "precise_location"


def test_checksums() -> None:
    assert luhn_ok("4242424242424242") and not luhn_ok("4242424242424241")
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE00370400440532013000")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST1234569876543")
    assert ssn_ok("219", "09", "9999")
    for bad in [
        ("000", "12", "3456"),
        ("666", "12", "3456"),
        ("219", "00", "9999"),
        ("219", "09", "0000"),
        ("123", "45", "6789"),
        ("111", "11", "1111"),
        ("078", "05", "1120"),
        ("987", "65", "4321"),
    ]:
        assert not ssn_ok(*bad)


def test_luhn_valid_ids_under_id_keys_are_not_cards() -> None:
    value = "4242424242424242"
    assert [f.category for f in findings_for(None, value)] == ["payment_card"]
    assert findings_for("order_id", value) == ()
    assert findings_for("orderNumber", value) == ()
    # written as a card (grouped), it is one whatever the key says
    assert findings_for("order_id", "4242 4242 4242 4242") != ()


def test_version_keys_hold_no_addresses() -> None:
    assert findings_for("app_version", "10.2.3.4") == ()
    assert [f.detector for f in findings_for("client", "10.2.3.4")] == ["ipv4"]


def test_spans_inside_text() -> None:
    text = "mail jane@example.com or call +44 20 7946 0958, card 4242 4242 4242 4242"
    found = scan(text)
    assert [(f.category, text[f.start : f.end]) for f in found] == [
        ("email", "jane@example.com"),
        ("phone", "+44 20 7946 0958"),
        ("payment_card", "4242 4242 4242 4242"),
    ]


def test_clean_cache_never_holds_pii() -> None:
    from trackplan.pii import detect

    scan("jane@example.com")
    scan("a product name")
    assert "jane@example.com" not in detect.CLEAN
    assert "a product name" in detect.CLEAN


def test_prefilter_without_jsonschema_rs_keeps_what_the_rust_check_keeps() -> None:
    """The generated client's copy of the detectors runs the prefilter in Python's ``re``:
    it must rule out no string the Rust check keeps (nor any string holding a finding)."""
    from pathlib import Path

    from trackplan.pii import detect

    schema = {"anyOf": [{"not": {"pattern": detect.PREFILTER}}, {"pattern": detect.SAFE_WHOLE}]}
    rust, python = detect.rust_check(schema), detect._re_check(schema)
    corpus = Path(__file__).parent / "corpus"
    texts = [
        line.split("\t", 2)[2]
        for name in ("positives.tsv", "negatives.tsv")
        for line in (corpus / name).read_text(encoding="utf-8").splitlines()
        if line.count("\t") >= 2
    ]
    texts += ["2026-12-01T10:00:00Z\n", "123e4567-e89b-12d3-a456-426614174000", "١٢٣٤٥٦٧٨٩٠",
              "order 4242424242424242", "", "plain words only"]  # fmt: skip
    assert len(texts) > 100
    ruled_out = [t for t in texts if python(t)]
    assert len(ruled_out) > 20  # it does rule strings out
    for text in ruled_out:
        assert rust(text), text  # never more than the Rust check
        assert not detect._scan(text), text  # and nothing a detector finds
    for text in ("2026-12-01\n", "١٢٣٤٥٦٧٨٩٠"):  # "$" before a newline; wide digits
        assert not python(text)
