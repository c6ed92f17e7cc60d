"""One rule for a phone number's E.164 form, with phonenumbers or from numbering data.

Standard library only at import: generated clients carry a verbatim copy of this module,
so a client-side ``hash`` of a phone joins with the pipeline's. The rule is
:func:`e164_with`: a number parses (in ``region`` when written without a country code;
without a region, ``00`` stands for ``+``) when it is valid, or possible with at least
seven digits; else None, and the caller hashes the digits and reports the value.

The pipeline applies the rule through phonenumbers (:func:`e164_with`, called by
:func:`trackplan.pii.phones.e164`). A client without phonenumbers applies it through
:func:`e164_from_data`, a port of phonenumbers' parse for numbers written in digits and
punctuation, over the numbering data that code generation takes from phonenumbers'
metadata for the plan's regions (:func:`trackplan.pii.phones.numbering_data`): each
region's country calling code, international and national prefixes, possible lengths and
number patterns, and the map of every country calling code to its regions. It gives the
pipeline's E.164 for national numbers of those regions and for international numbers of
their country codes; an international number of another country code is taken as its
digits (``+``, the code and at least four more), and a value with letters (a vanity number, an
extension) does not parse. :func:`canon` picks phonenumbers where it is importable.

>>> data = numbering_data(["GB"])     # trackplan.pii.phones, at code generation  # doctest: +SKIP
>>> e164_from_data("020 7946 0958", "GB", data)                                 # doctest: +SKIP
'+442079460958'
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["e164_with", "e164_from_data", "canon"]

#: phonenumbers' punctuation of numbers (dashes, spaces, dots, slashes, brackets, tildes)
_PUNCT = (
    "-x\u2010-\u2015\u2212\u30fc\uff0d-\uff0f \u00a0\u00ad\u200b\u2060\u3000()"
    "\uff08\uff09\uff3b\uff3d.\\[\\]/~\u2053\u223c\uff5e"
)
_VIABLE = re.compile(rf"\d{{2}}|[+\uff0b]*(?:[{_PUNCT}*]*\d){{3,}}[{_PUNCT}*\d]*")
_START = re.compile(r"[+\uff0b\d]")
_END = re.compile(r"(?:_|[^#\w])+$")
_SECOND = re.compile(r"[\\/] *x")
_PLUS = re.compile(r"[+\uff0b]+")
_DIGIT = re.compile(r"\d")
_MAX_INPUT = 250


def e164_with(lib: Any, text: str, region: str | None) -> str | None:
    """The E.164 form of ``text`` by phonenumbers (``lib``), or None when it does not parse
    as a valid number, or a possible one of at least seven digits."""
    text = text.strip()
    if region is None and text.startswith("00"):
        text = "+" + text[2:]  # the international prefix of most of the world
    try:
        number = lib.parse(text, region)
    except lib.NumberParseException:
        return None
    if not lib.is_valid_number(number) and not (
        lib.is_possible_number(number) and number.national_number >= 10**6
    ):
        return None  # neither in a known range nor seven digits of a possible length
    out: str = lib.format_number(number, lib.PhoneNumberFormat.E164)
    return out


def _digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


def _fits(number: str, desc: Any) -> bool:
    """``number`` has one of ``desc``'s lengths (if it names any) and matches its pattern."""
    if not desc:
        return False
    pattern, lengths = desc[0], desc[1]
    if lengths and len(number) not in lengths:
        return False
    return bool(pattern) and re.fullmatch(pattern, number) is not None


def _length(number: str, meta: Mapping[str, Any]) -> str:
    """phonenumbers' length test against a region's general description."""
    lengths, local = meta["general"][1], meta["general"][2]
    size = len(number)
    if size in local:
        return "local"
    if not lengths or size < lengths[0]:
        return "short"
    if size > lengths[-1]:
        return "long"
    return "possible" if size in lengths else "invalid"


def _strip_national(number: str, meta: Mapping[str, Any]) -> str | None:
    """``number`` without its national (trunk) prefix, or None when it has none."""
    prefix = meta.get("np")
    if not number or not prefix:
        return None
    found = re.match(prefix, number)
    if found is None:
        return None
    viable = _fits(number, meta["general"][:1] + [()])
    rule = meta.get("npt")
    groups = found.groups()
    if not rule or not groups or groups[-1] is None:
        rest = number[found.end() :]
    else:
        rest = re.sub(prefix, rule, number, count=1)
    if viable and not _fits(rest, meta["general"][:1] + [()]):
        return None
    return rest


def _valid(national: str, metas: list[Mapping[str, Any]]) -> bool:
    """phonenumbers' validity: the number matches a type of one region of its code."""
    for meta in metas:
        lead = meta.get("lead")
        if lead is not None and re.match(lead, national) is None:
            continue
        if not _fits(national, meta["general"]):
            if lead is not None:
                return False  # the region its leading digits name
            continue
        if any(_fits(national, desc) for desc in meta["types"]):
            return True
        if lead is not None:
            return False
    return False


def _country(
    number: str, meta: Mapping[str, Any] | None, data: Mapping[str, Any]
) -> tuple[int, str, bool] | None:
    """phonenumbers' country code extraction: ``(code, national digits, extracted)``;
    ``extracted`` is False for a national number of the region (``meta``)."""
    plus = _PLUS.match(number)
    if plus is not None:
        full = _digits(number[plus.end() :])
    else:
        full = _digits(number)
        idd = re.match(meta["idd"], full) if meta is not None and meta.get("idd") else None
        if idd is not None:
            first = _DIGIT.search(full[idd.end() :])
            if first is None or first.group() != "0":
                plus, full = idd, full[idd.end() :]
    if plus is not None:  # an international number: its country code comes first
        if len(full) <= 2:
            return None
        if full[0] != "0":
            for size in (1, 2, 3):
                if full[:size] in data["codes"]:
                    return int(full[:size]), full[size:], True
        if _PLUS.match(number) is not None:  # "+0044 ...": read again without the plus
            again = _country(number[_PLUS.match(number).end() :], meta, data)  # type: ignore[union-attr]
            return again if again is not None and again[2] else None
        return None
    if meta is None:
        return None  # no region: only international numbers parse
    own = str(meta["cc"])
    if full.startswith(own):  # the region's own code without "+", where it fits
        rest = full[len(own) :]
        stripped = _strip_national(rest, meta)
        rest = rest if stripped is None else stripped
        pattern_only = meta["general"][:1] + [()]
        if (not _fits(full, pattern_only) and _fits(rest, pattern_only)) or _length(
            full, meta
        ) == "long":
            return meta["cc"], rest, True
    return meta["cc"], full, False


def e164_from_data(text: str, region: str | None, data: Mapping[str, Any]) -> str | None:
    """:func:`e164_with`'s answer for ``text``, from numbering data instead of phonenumbers.

    ``data`` is ``{"codes": {country code: [regions]}, "regions": {region: metadata}}`` as
    :func:`trackplan.pii.phones.numbering_data` makes it.
    """
    text = text.strip()
    if region is None and text.startswith("00"):
        text = "+" + text[2:]
    if len(text) > _MAX_INPUT:
        return None
    start = _START.search(text)
    if start is None:
        return None
    number = text[start.start() :]
    end = _END.search(number)
    if end is not None:
        number = number[: end.start()]
    second = _SECOND.search(number)
    if second is not None:
        number = number[: second.start()]
    if len(number) < 2 or _VIABLE.fullmatch(number) is None or "x" in number:
        return None  # letters (vanity numbers, extensions) parse only with phonenumbers
    regions: Mapping[str, Any] = data["regions"]
    meta = regions.get(region) if region is not None else None
    if region is not None and meta is None:
        return None
    found = _country(number, meta, data)
    if found is None:
        return None
    code, national, extracted = found
    names = data["codes"].get(str(code), [])
    main = regions.get(names[0]) if names else None
    numbering = main if extracted else meta
    if len(national) < 2:
        return None
    if numbering is not None:
        stripped = _strip_national(national, numbering)
        if stripped is not None and _length(stripped, numbering) not in (
            "short", "local", "invalid"
        ):  # fmt: skip
            national = stripped
    if not 2 <= len(national) <= 17:
        return None
    metas = [regions[name] for name in names if name in regions]
    if main is None:  # a country code without data: its digits, four at least
        return f"+{code}{national}" if len(national.lstrip("0")) >= 4 else None
    possible = _length(national, main) in ("possible", "local")
    if _valid(national, metas) or (possible and int(national) >= 10**6):
        return f"+{code}{national}"
    return None


def canon(region: str | None, data: Mapping[str, Any]) -> Callable[[str], str | None]:
    """The phone canon for ``region``: by phonenumbers where it can be imported, else by
    ``data`` (the same answer for the numbers the data covers)."""
    try:
        lib = importlib.import_module("phonenumbers")
    except ImportError:

        def by_data(text: str) -> str | None:
            return e164_from_data(text, region, data)

        return by_data

    def by_lib(text: str) -> str | None:
        return e164_with(lib, text, region)

    return by_lib
