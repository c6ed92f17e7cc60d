"""Phone numbers through the phonenumbers library: E.164 before ``hash``, national formats.

``hash`` joins on one spelling of a number: :func:`e164` turns ``+44 20 7946 0958``,
``020 7946 0958`` (default region GB), ``+44 (0)20 7946 0958`` and ``0044 20 7946 0958``
into ``+442079460958``. The plan names the region of numbers written without a country
code (``pii.default_region``); without one, only numbers with ``+`` or ``00`` parse, and a
value that does not parse is hashed as its digits (the engine reports it).

:func:`national_spans` finds numbers written in the national formats of the regions a plan
lists (``pii.phone_regions``), which the built-in patterns do not know (``0212 123 45 67``
in TR, ``98765 43210`` in IN): phonenumbers' matcher at its ``VALID`` leniency, so only
numbers of a real numbering plan count, written as people write them (in groups, or with
``+`` or a bracketed area code: never a bare run of digits, an IP address or an ISBN).
It runs only on strings the Rust prefilter lets through (seven digits in a row,
separators allowed), and keeps only matches that hold such a run, so the prefilter
stays a superset of what it finds.

The rule of :func:`e164` is written once, in :mod:`trackplan.pii.e164` (standard
library, copied into generated clients); :func:`numbering_data` takes from phonenumbers'
metadata what a client without phonenumbers needs to apply it for a plan's regions.

phonenumbers is imported on first use (about 55 ms), never by ``trackplan --help``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from trackplan.pii.e164 import e164_with

__all__ = [
    "e164", "canon_for", "national_spans", "known_region", "phone_regions", "numbering_data",
]  # fmt: skip

_RUN = re.compile(r"\d(?:[ ().\-/]{0,3}\d){6,}")
_EDGE = re.compile(r"[\w\-./+]")


def _lib() -> Any:
    try:
        import phonenumbers
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError(
            "phone normalisation needs the phonenumbers package: pip install phonenumbers"
        ) from exc
    return phonenumbers


def known_region(region: str) -> bool:
    """Whether phonenumbers knows ``region`` (ISO 3166-1 alpha-2, upper case)."""
    return region in _lib().SUPPORTED_REGIONS


def phone_regions() -> frozenset[str]:
    """Every region phonenumbers knows."""
    return frozenset(_lib().SUPPORTED_REGIONS)


@lru_cache(maxsize=4096)
def e164(text: str, region: str | None = None) -> str | None:
    """The E.164 form of a phone number (``+442079460958``), or None when ``text`` does
    not parse (in ``region``, for a number without country code) as a number of a valid
    range, or of a possible length with at least seven digits.

    >>> e164("020 7946 0958", "GB"), e164("0044 20 7946 0958")
    ('+442079460958', '+442079460958')
    """
    return e164_with(_lib(), text, region)


_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line", "mobile",
)  # fmt: skip


def _desc(desc: Any) -> list[Any]:
    """A number description as ``[pattern, lengths, local-only lengths]``."""
    if desc is None:
        return [None, [], []]
    return [
        desc.national_number_pattern,
        list(desc.possible_length or ()),
        list(desc.possible_length_local_only or ()),
    ]


def numbering_data(regions: Iterable[str]) -> dict[str, Any]:
    """What :func:`trackplan.pii.e164.e164_from_data` needs to give :func:`e164`'s answer
    for numbers of ``regions`` (and of every region sharing their country codes), taken
    from phonenumbers' metadata: JSON data, written into generated clients.

    >>> numbering_data(["GB"])["regions"]["GB"]["cc"]
    44
    """
    lib = _lib()
    codes = {str(cc): list(names) for cc, names in sorted(lib.COUNTRY_CODE_TO_REGION_CODE.items())}
    wanted: set[str] = set()
    for region in regions:
        meta = lib.PhoneMetadata.metadata_for_region(region)
        if meta is not None:
            wanted.update(codes.get(str(meta.country_code), [region]))
    wanted.discard(lib.REGION_CODE_FOR_NON_GEO_ENTITY)
    out: dict[str, Any] = {}
    metas = [(region, lib.PhoneMetadata.metadata_for_region(region)) for region in sorted(wanted)]
    for cc, names in codes.items():  # non-geographic codes (+800, +882, ...): few, all kept
        if names == [lib.REGION_CODE_FOR_NON_GEO_ENTITY]:
            names[0] = f"{names[0]}-{cc}"
            metas.append((names[0], lib.PhoneMetadata.metadata_for_nongeo_region(int(cc))))
    for region, meta in metas:
        if meta is None:
            continue
        out[region] = {
            "cc": meta.country_code,
            "idd": meta.international_prefix,
            "np": meta.national_prefix_for_parsing,
            "npt": meta.national_prefix_transform_rule,
            "lead": meta.leading_digits,
            "general": _desc(meta.general_desc),
            "types": [_desc(getattr(meta, name))[:2] for name in _TYPES
                      if getattr(meta, name) is not None],
        }  # fmt: skip
    return {"codes": codes, "regions": out}


def canon_for(region: str | None) -> Callable[[str], str | None]:
    """:func:`e164` bound to ``region``: the ``phone`` entry of an action's ``canon``."""

    def canon(text: str) -> str | None:
        return e164(text, region)

    return canon


#: A run of seven digits or more that stands alone (not in a version string such as
#: ``Chrome/120.0.6099.109``, an id or a URL path): the matcher, ~1 ms a region, runs only
#: on strings that hold one.
_CANDIDATE = re.compile(r"(?<![\w\-./])[+(]?\d(?:[ ().\-/]{0,3}\d){6,}(?![\w\-]|\.\d)")
_GROUPS = re.compile(r"\d+")
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")


def _shaped_like_a_phone(raw: str) -> bool:
    """Precision first: a number as people write one. Bare digit runs (timestamps, order
    and product codes), dotted quads (IP addresses), the US SSN shape, and groupings that
    start or end with a single digit (ISBNs: ``0-262-03384-4``) are left alone."""
    groups = _GROUPS.findall(raw)
    if len(groups) < 2 and not raw.startswith(("+", "(")):
        return False
    if _DOTTED_QUAD.fullmatch(raw) or _SSN_SHAPE.fullmatch(raw):
        return False
    if len(groups[-1]) < 2:
        return False
    return raw.startswith(("+", "(")) or len(groups[0]) >= 2


def national_spans(text: str, regions: Iterable[str]) -> list[tuple[int, int, str]]:
    """``(start, end, region)`` of each phone number in ``text`` that is valid in one of
    ``regions``, written as that region writes them (or with a country code)."""
    if _CANDIDATE.search(text) is None:
        return []
    lib = _lib()
    out: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for region in regions:
        for match in lib.PhoneNumberMatcher(text, region, leniency=lib.Leniency.VALID):
            start, end = match.start, match.end
            if any(a < end and start < b for a, b in taken):
                continue
            raw = match.raw_string
            if _RUN.search(raw) is None:
                continue  # shorter than the prefilter's seven digits: never a candidate
            if not _shaped_like_a_phone(raw):
                continue
            if start > 0 and _EDGE.match(text[start - 1]) is not None:
                continue  # inside a longer token (an id, a UUID, a version string)
            nxt, then = text[end : end + 1], text[end + 1 : end + 2]
            if nxt.isalnum() or nxt == "_" or (nxt and nxt in "-./+" and then.isalnum()):
                continue
            taken.append((start, end))
            out.append((start, end, region))
    return out
