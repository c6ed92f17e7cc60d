"""Client-side ``hash`` of phones joins with the pipeline's (issue 16 leftover).

The pipeline hashes a phone's E.164 form (phonenumbers, ``pii.default_region``). A
generated client without phonenumbers applies the same rule from numbering data written
into it at code generation (:func:`trackplan.pii.phones.numbering_data`), and with
phonenumbers importable it uses phonenumbers. Either way the hash of every spelling of a
number equals the pipeline's, and a value that is no phone number is reported as the
pipeline reports it (and hashed as its digits, on both sides alike).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from trackplan.engine import compile_plan
from trackplan.pii.e164 import e164_from_data
from trackplan.pii.phones import e164, numbering_data
from trackplan.plan.model import Plan

from .conftest import import_package, run_stdlib_only, write_package

KEY = "client-phone-key"
SPELLINGS = ["+44 20 7946 0958", "020 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958"]
UNPARSED = ["n/a", "12", "call me maybe", "+999 123"]
#: regions whose national formats the tests write (and the plans declare)
REGIONS = ["DE", "IN", "BR", "JP", "ES", "IT", "TR", "PH", "FR", "US", "AR", "RU"]

RUNNER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
package = __import__(sys.argv[2])
sent, heard = [], []
class Sdk:
    def identify(self, **kw): sent.append(kw["traits"].get("phone"))
client = package.Client(Sdk(), on_violation=lambda m, v: heard.append([m, [str(x) for x in v]]))
for phone in json.load(sys.stdin):
    client.identify(user_id="u", phone=phone)
print(json.dumps({"sent": sent, "heard": heard,
                  "phonenumbers": "phonenumbers" in sys.modules}))
"""


def _national_spellings(region: str) -> list[str]:
    """A region's example numbers as its people write them, and with its country code."""
    out = []
    for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
        digits = "".join(c for c in national if c.isdigit())
        out += [national, digits, phonenumbers.format_number(
            example, PhoneNumberFormat.INTERNATIONAL), f"({digits[:3]}) {digits[3:]}"]
    return out


def _plan(ecommerce: Plan, region: str, regions: list[str]) -> Plan:
    pii = {**ecommerce.pii, "client_side": True, "default_region": region,
           "phone_regions": regions}  # fmt: skip
    return dataclasses.replace(ecommerce, pii=pii)


def _server(plan: Plan, phones: list[str], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the pipeline forwards for each phone, and its PII messages.

    ``pii.phone_regions`` only turns on detectors (process-wide, for the rest of the test
    session), which a declared phone never meets: the pipeline runs without them.
    """
    monkeypatch.setenv("TRACKPLAN_HASH_KEY", KEY)
    pii = {k: v for k, v in plan.pii.items() if k != "phone_regions"}
    enforcer = compile_plan(dataclasses.replace(plan, pii=pii))
    out = []
    for phone in phones:
        result = enforcer.enforce(
            {"type": "identify", "userId": "u", "traits": {"phone": phone}, "context": {}}
        )
        assert result.allowed
        out.append((result.event["traits"]["phone"],
                    [v.message for v in result.violations if v.type == "PII"]))  # fmt: skip
    return out


def _stdlib_client(package: Path, phones: list[str]) -> dict[str, Any]:
    """The calls through the client in ``python -I -S``: standard library only."""
    result = run_stdlib_only(package, RUNNER, phones, KEY)
    assert result["phonenumbers"] is False
    return result


def _assert_joins(server: list[Any], sent: list[Any], heard: list[Any], phones: list[str]) -> None:
    assert [hashed for hashed, _ in server] == sent  # equal hashes, one per spelling
    expected = [msgs for _, msgs in server if msgs]
    assert [[m.split(": ", 1)[1].rsplit(" (x-pii)", 1)[0] for m in v] for _, v in heard] == (
        expected
    )
    for message, _ in heard:
        for phone in phones:
            assert phone not in message.split(" breaks the tracking plan")[1]


def test_stdlib_client_hashes_the_four_spellings_as_the_pipeline(
    ecommerce: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(ecommerce, "GB", REGIONS)
    phones = SPELLINGS + ["+49 30 1234567", "+1 650 253 0000", "07700 900123"] + UNPARSED
    server = _server(plan, phones, monkeypatch)
    assert len({hashed for hashed, _ in server[:4]}) == 1  # one number, one hash
    assert [bool(msgs) for _, msgs in server] == [False] * 7 + [True] * len(UNPARSED)
    result = _stdlib_client(write_package(plan, tmp_path, "phones_gb"), phones)
    _assert_joins(server, result["sent"], result["heard"], phones)


@pytest.mark.parametrize("region", ["DE", "IN", "BR", "JP", "TR", "PH", "IT", "US"])
def test_stdlib_client_hashes_national_formats_as_the_pipeline(
    region: str, ecommerce: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(ecommerce, region, [])
    phones = _national_spellings(region) + ["+44 20 7946 0958", "0044 20 7946 0958", "n/a"]
    server = _server(plan, phones, monkeypatch)
    count = len(phones) - 3
    assert all(not msgs for _, msgs in server[:count])  # the region's numbers all parse
    assert server[-1][1]  # "n/a" does not ("0044 ..." neither, where 00 is not the IDD)
    result = _stdlib_client(write_package(plan, tmp_path, f"phones_{region.lower()}"), phones)
    _assert_joins(server, result["sent"], result["heard"], phones)


def test_client_with_phonenumbers_uses_it_and_joins_too(
    ecommerce: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(ecommerce, "GB", ["DE"])
    phones = SPELLINGS + _national_spellings("GB") + UNPARSED
    server = _server(plan, phones, monkeypatch)
    module = import_package(write_package(plan, tmp_path, "phones_lib"))
    sent: list[Any] = []
    heard: list[Any] = []

    class Sdk:
        def identify(self, **kw: Any) -> None:
            sent.append(kw["traits"].get("phone"))

    client = module.Client(Sdk(), on_violation=lambda m, v: heard.append((m, [str(x) for x in v])))
    assert client._tp_phone.__name__ == "by_lib"  # phonenumbers is importable here
    for phone in phones:
        client.identify(user_id="u", phone=phone)
    _assert_joins(server, sent, heard, phones)


# -- the rule itself, over every region phonenumbers knows ----------------------------------
def _spellings_of_every_region() -> list[tuple[str, str]]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
            digits = "".join(c for c in national if c.isdigit())
            for text in (
                national, digits, digits[:-1], digits + "1", f"{example.country_code}{digits}",
                phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL),
                phonenumbers.format_out_of_country_calling_number(example, "GB"),
                phonenumbers.format_out_of_country_calling_number(example, "US"),
                f"+{example.country_code} (0){digits.lstrip('0')}",
            ):  # fmt: skip
                out.append((region, text))
    return out


def test_numbering_data_gives_phonenumbers_answer_in_every_region() -> None:
    """Data of every region: the port agrees with phonenumbers on each region's numbers
    read in their own region, in GB, in US and without a region."""
    data = numbering_data(sorted(phonenumbers.SUPPORTED_REGIONS))
    cases = _spellings_of_every_region()
    assert len(cases) > 4000
    wrong = [
        (home, text)
        for region, text in cases
        for home in (region, "GB", "US", None)
        if e164(text, home) != e164_from_data(text, home, data)
    ]
    assert wrong == []


@pytest.mark.parametrize("home", ["GB", "DE", "US", "IN"])
def test_data_of_one_region_agrees_on_every_international_number(home: str) -> None:
    """A plan's own regions only: international numbers of other countries still agree."""
    data = numbering_data([home])
    assert home in data["regions"] and "FR" not in data["regions"] or home == "FR"
    wrong = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            for form in (PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164):
                if example is None:
                    continue
                text = phonenumbers.format_number(example, form)
                if e164(text, home) != e164_from_data(text, home, data):
                    wrong.append(text)
    assert wrong == []
