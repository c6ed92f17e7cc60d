"""The IBAN formats shipped in ``trackplan/pii/iban_registry.py`` agree with schwifty's.

schwifty keeps the SWIFT IBAN registry (and the national formats SWIFT does not list yet)
up to date; trackplan ships a generated copy so importing the detectors stays cheap (schwifty
and its registry load in about 130 ms). When this test fails after a schwifty upgrade,
regenerate the copy: ``python tests/pii/test_iban_registry.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from trackplan.pii import iban_registry
from trackplan.pii.detect import iban_ok, scan

TARGET = Path(__file__).resolve().parents[2] / "trackplan" / "pii" / "iban_registry.py"

_SPEC_CLASS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]", "e": " "}


def bban_regex(spec: str) -> str:
    """A BBAN spec of the registry (``4!a14!n``) as a regex body (``[A-Z]{4}[0-9]{14}``)."""

    def one(m: re.Match[str]) -> str:
        count = m.group(1) if m.group(2) else f"1,{m.group(1)}"
        return _SPEC_CLASS[m.group(3)] + "{" + count + "}"

    return re.sub(r"(\d+)(!)?([nace])", one, spec)


def schwifty_formats() -> dict[str, tuple[int, str]]:
    """Country -> (IBAN length, BBAN regex) from schwifty's registry."""
    registry = pytest.importorskip("schwifty.registry")
    specs = registry.Registry()._get("iban")
    return {
        str(cc): (int(spec["iban_length"]), bban_regex(str(spec["bban_spec"])))
        for cc, spec in sorted(specs.items())
    }


def render(formats: dict[str, tuple[int, str]]) -> str:
    import schwifty

    lines = [
        '"""IBAN formats per country: the IBAN length and the BBAN structure as a regex.',
        "",
        f"Generated from schwifty {schwifty.__version__}'s registry (the SWIFT IBAN registry and",
        "the national formats it adds) by ``python tests/pii/test_iban_registry.py``; a test",
        'checks the two agree. Do not edit by hand."""',
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["IBAN_FORMATS"]',
        "",
        "#: Country code -> (IBAN length, regex of the BBAN after the check digits).",
        "IBAN_FORMATS: dict[str, tuple[int, str]] = {",
    ]
    lines += [f'    "{cc}": ({n}, "{rx}"),' for cc, (n, rx) in formats.items()]
    lines += ["}", ""]
    return "\n".join(lines)


def test_the_shipped_formats_are_schwiftys() -> None:
    assert iban_registry.IBAN_FORMATS == schwifty_formats()


def test_the_registry_covers_the_countries_frozen_tables_missed() -> None:
    assert len(iban_registry.IBAN_FORMATS) >= 120
    for cc in ("LY", "RU", "OM", "MN", "NI", "YE", "SO", "FK", "BI", "DJ", "SD"):
        assert cc in iban_registry.IBAN_FORMATS, cc


def _make(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    return f"{country}{check:02d}{bban}"


@pytest.mark.parametrize(
    "country, bban",
    [  # accounts made up to each country's BBAN structure; check digits computed
        ("LY", "002048000020100120361"),
        ("RU", "04452522540817810938091310419"),
        ("OM", "0180000000123456789"),
        ("MN", "0005123456789012"),
        ("NI", "BAPR00000013000003558124"),
        ("YE", "CBYE0001018861234567891234"),
        ("SO", "1000001001000100141"),
        ("FK", "SC123456789012"),
    ],
)
def test_ibans_of_newer_countries_are_found(country: str, bban: str) -> None:
    value = _make(country, bban)
    assert iban_ok(value)
    assert [f.detector for f in scan(value)] == ["iban"]
    spaced = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    assert [f.detector for f in scan(f"refund to {spaced} please")] == ["iban"]


def test_a_bban_of_the_wrong_structure_is_refused() -> None:
    good = _make("GB", "WEST12345698765432")
    assert iban_ok(good)
    assert not iban_ok(_make("GB", "1234" + "12345698765432"))  # bank code must be letters


if __name__ == "__main__":
    TARGET.write_text(render(schwifty_formats()), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET}\n")
