"""Formats the detectors missed (issue 16), each written from the format's definition.

Every case here is made up: SSNs outside the ranges never issued, IBANs whose check digits
are computed, tokens of the documented prefix and alphabet with random bodies.
"""

from __future__ import annotations

import pytest

from trackplan.pii.detect import PREFILTER, scan


def _iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{bban}"


def _found(text: str) -> list[tuple[str, str]]:
    return [(f.category, text[f.start : f.end]) for f in scan(text)]


@pytest.mark.parametrize("ssn", ["219.09.9999", "536.22.1234", "109.99.6000", "772.41.0055"])
def test_dotted_ssns(ssn: str) -> None:
    assert _found(ssn) == [("government_id", ssn)]
    assert _found(f"ssn {ssn} on file") == [("government_id", ssn)]


@pytest.mark.parametrize("value", ["219.09-9999", "000.12.3456", "123.45.678", "1.219.09.9999"])
def test_dotted_ssn_lookalikes(value: str) -> None:
    assert [c for c, _ in _found(value)] == []


@pytest.mark.parametrize(
    "country, bban", [("AL", "212110090000000235698741"), ("DE", "370400440532013000"),
                      ("FR", "20041010050500013M02606"), ("BE", "096123456769")],
)  # fmt: skip
def test_hyphen_grouped_ibans(country: str, bban: str) -> None:
    value = _iban(country, bban)
    dashed = "-".join(value[i : i + 4] for i in range(0, len(value), 4))
    assert _found(dashed) == [("bank_account", dashed)]
    assert _found(f"IBAN: {dashed}.") == [("bank_account", dashed)]


def test_no_phone_inside_an_iban_shaped_string() -> None:
    """A checksum-failing IBAN is no IBAN, and its digits are no phone number either."""
    good = _iban("BE", "096123456769")
    broken = good[:2] + f"{(int(good[2:4]) + 1) % 100:02d}" + good[4:]
    spaced = " ".join(broken[i : i + 4] for i in range(0, len(broken), 4))
    assert _found(spaced) == []
    assert _found(broken) == []
    assert _found("call 0961 2345 6760") == [("phone", "0961 2345 6760")]


@pytest.mark.parametrize(
    "email", ["a@xn--d1acufc.xn--p1ai", "info@xn--80ak6aa92e.xn--p1ai", "x.y@shop.xn--mgbaam7a8h"]
)
def test_punycode_top_level_domains(email: str) -> None:
    assert _found(email) == [("email", email)]
    assert _found(f"mail {email} today") == [("email", email)]


TOKENS = [
    "xapp-1-A07QJ3K9Z2B-7481203948571-4f8a0c2e9b7d1f3a5c6e8b0d2f4a6c8e",
    "xoxe-1-My0xNzE3ZTRkZTItNmI2YS00Y2QzLTg5Y2EtMTIzNDU2Nzg5",
    "xoxe.xoxp-1-Mi0yLTE3MjYxMDk5ODctNjQ4Nzg3MjU0",
    "xoxo-2045736619-6398127738-abcdefGHIJ0123",
    "https://hooks.slack.com/services/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",
    "https://hooks.slack.com/workflows/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",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    "rk_live_51Hq2Lm8Xc4Vb7Nn0Qw3Er6Ty9",
    "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "rk_prod_Q8w7E6r5T4y3U2i1O0p9A8s7",
    "AIzaSyD-3kQ9v_2Lm8Xc4Vb7Nn0Qw3Er6Ty9Abc",
]


@pytest.mark.parametrize("token", TOKENS)
def test_credentials(token: str) -> None:
    assert _found(token) == [("credentials", token)]
    assert _found(f"pasted {token} by mistake") == [("credentials", token)]


@pytest.mark.parametrize(
    "value",
    [
        "AIzaSyD-3kQ9v_2Lm8Xc4Vb7Nn0Qw3Er6Ty9Abc7",  # 36 characters after AIza: no key
        "xAIzaSyD-3kQ9v_2Lm8Xc4Vb7Nn0Qw3Er6Ty9Abc",  # inside a longer token
        "rk_live_short",
        "https://hooks.slack.com/apps",
        "-----BEGIN PUBLIC KEY-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    ],
)
def test_credential_lookalikes(value: str) -> None:
    assert _found(value) == []


def test_new_shapes_pass_the_prefilter() -> None:
    import re

    rx = re.compile(PREFILTER)
    for value in [*TOKENS, "219.09.9999", "a@xn--p1ai.xn--p1ai", "AZ21NABZ00000000137010001944"]:
        assert rx.search(value), value
