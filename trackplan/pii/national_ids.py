"""National identity numbers of listed countries, checked by python-stdnum.

Only formats with a check digit (or a checksum over an embedded birth date) are here, so a
random run of digits passes one time in ten or eleven at worst; the plan opts in per
country (``pii.id_countries``) because bare runs of 9 to 13 digits are common in events.
Each country lists candidate shapes (separators as the country writes them); a candidate
counts only when stdnum's ``is_valid`` accepts it.

>>> [(c, d) for _, _, c, d in id_spans("BSN 111222333 op het formulier", ["nl"])]
[('nl', 'nl.bsn')]
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

__all__ = ["ID_FORMATS", "ID_COUNTRIES", "id_spans", "id_valid", "id_compact", "id_canon"]

_D = r"(?<![\w\-./])"  # not inside a longer token
_E = r"(?![\w\-]|[./]\w)"
_CF = "[0-9LMNPQRSTUV]"  # a digit of an Italian tax code (letters replace digits in homocodes)

#: Country (ISO 3166-1 alpha-2, lower case) -> (stdnum module, candidate regex) pairs.
ID_FORMATS: dict[str, tuple[tuple[str, str], ...]] = {
    "at": (("at.vnr", r"\d{4} ?\d{6}"),),
    "be": (("be.nn", r"\d{2}\.?\d{2}\.?\d{2}[\-.]?\d{3}\.?\d{2}"),),
    "bg": (("bg.egn", r"\d{10}"),),
    "ch": (("ch.ssn", r"756\.?\d{4}\.?\d{4}\.?\d{2}"),),
    "cz": (("cz.rc", r"\d{6}/?\d{3,4}"),),
    "de": (("de.idnr", r"\d{2} ?\d{3} ?\d{3} ?\d{3}"),),
    "dk": (("dk.cpr", r"\d{6}-?\d{4}"),),
    "ee": (("ee.ik", r"[1-6]\d{10}"),),
    "es": (("es.dni", r"\d{8}-?[A-Z]"), ("es.nie", r"[XYZ]-?\d{7}-?[A-Z]")),
    "fi": (("fi.hetu", r"\d{6}[\-+A-FU-Y]\d{3}[0-9A-Y]"),),
    "fr": (("fr.nir", r"[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}"),),
    "gb": (("gb.nhs", r"\d{3} ?\d{3} ?\d{4}"),),  # spaced as the NHS prints it
    "gr": (("gr.amka", r"\d{11}"),),
    "hr": (("hr.oib", r"\d{11}"),),
    "ie": (("ie.pps", r"\d{7}[A-W][A-IW]?"),),
    "it": (("it.codicefiscale", rf"[A-Z]{{6}}{_CF}{{2}}[A-EHLMPR-T]{_CF}{{2}}[A-Z]{_CF}{{3}}[A-Z]"),),  # noqa: E501
    "lt": (("lt.asmens", r"[1-6]\d{10}"),),
    "nl": (("nl.bsn", r"\d{9}|\d{4}\.\d{2}\.\d{3}"),),
    "no": (("no.fodselsnummer", r"\d{6} ?\d{5}"),),
    "pl": (("pl.pesel", r"\d{11}"),),
    "pt": (("pt.cc", r"\d{8} ?\d ?[A-Z]{2}\d"),),
    "ro": (("ro.cnp", r"[1-9]\d{12}"),),
    "se": (("se.personnummer", r"(?:\d{2})?\d{6}[\-+]?\d{4}"),),
    "si": (("si.emso", r"\d{13}"),),
    "sk": (("sk.rc", r"\d{6}/?\d{3,4}"),),
    "us": (("us.ssn", r"\d{3}-?\d{2}-?\d{4}"),),
}

#: What every candidate above starts with, standing alone: six digits (separators allowed;
#: a Spanish NIE's letter first) or an Italian tax code. Strings without it (version strings
#: such as ``Chrome/120.0.6099.109``) skip the per-country patterns.
_CANDIDATE = re.compile(
    rf"(?<![\w\-./])(?:(?:[XYZ]-?)?\d(?:[ .\-/]{{0,2}}\d){{5,}}|[A-Z]{{6}}{_CF}{{2}}[A-EHLMPR-T])"
)

#: Every country :func:`id_spans` knows.
ID_COUNTRIES = frozenset(ID_FORMATS)


@cache
def _pattern(country: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((mod, re.compile(f"{_D}(?:{rx}){_E}")) for mod, rx in ID_FORMATS[country])


@cache
def _module(module: str) -> Any:
    try:
        return importlib.import_module(f"stdnum.{module}")
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError(
            "national id detection needs the python-stdnum package: pip install python-stdnum"
        ) from exc


@cache
def _validator(module: str) -> Callable[[str], bool]:
    check: Callable[[str], bool] = _module(module).is_valid
    return check


@cache
def _compactor(module: str) -> Callable[[str], str]:
    compact: Callable[[str], str] = _module(module).compact
    return compact


def id_compact(value: str, countries: Iterable[str]) -> str | None:
    """stdnum's compact form of ``value`` when it is a valid id of one of ``countries``
    (tried in order), else None.

    >>> id_compact(" 1112.22.333 ", ["nl"]), id_compact("12345", ["nl"])
    ('111222333', None)
    """
    for country in countries:
        for module, _ in ID_FORMATS.get(country, ()):
            try:
                compact = _compactor(module)(value)
            except Exception:  # noqa: BLE001 - stdnum raises its own errors on any junk
                continue
            if _validator(module)(compact):
                return compact
    return None


def id_canon(countries: Iterable[str]) -> Callable[[str], str | None]:
    """:func:`id_compact` bound to ``countries``: the ``government_id`` entry of an
    action's ``canon``, so every spelling of a valid id hashes alike."""
    listed = tuple(countries)

    def canon(text: str) -> str | None:
        return id_compact(text, listed)

    return canon


def id_valid(country: str, value: str) -> str | None:
    """The stdnum module under which ``value`` is a valid id of ``country``, else None."""
    for module, _ in ID_FORMATS.get(country, ()):
        if _validator(module)(value):
            return module
    return None


def id_spans(text: str, countries: Iterable[str]) -> list[tuple[int, int, str, str]]:
    """``(start, end, country, stdnum module)`` of each valid id of ``countries`` in ``text``."""
    out: list[tuple[int, int, str, str]] = []
    if _CANDIDATE.search(text) is None:
        return out
    for country in countries:
        for module, pattern in _pattern(country):
            check = _validator(module)
            for m in pattern.finditer(text):
                if check(m.group()):
                    out.append((m.start(), m.end(), country, module))
    return out
