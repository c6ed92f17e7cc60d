"""PII detectors: values (whole or inside longer text) and key names.

Value detectors: email (punycode top-level domains too), phone (international with ``+``,
North American and common national formats with a trunk ``0``, by digit count and
structure, never any run of digits, never inside an IBAN-shaped string), payment card
(Luhn and issuer prefix), IBAN (grouped by spaces or hyphens; country length, BBAN
structure and mod-97, per the registry generated from schwifty's:
:mod:`trackplan.pii.iban_registry`), IPv4, IPv6, US SSN (``-``, space or ``.``, with
Presidio's exclusions), JWT and common API key shapes (credentials: Stripe, OpenAI, AWS,
GitHub, Slack tokens and webhooks, Google, GitLab, npm, SendGrid, PEM/OpenSSH/PGP private
key blocks, bearer tokens).
Precision comes first: UUIDs, order ids, SKUs, timestamps, version strings like
``1.2.3.4``, prices and URLs without PII are left alone.

:func:`scan` costs a set lookup for a string seen clean before, and about 0.2-0.4 us
for a new one that a Rust regex prefilter rules out (:data:`PREFILTER`: what every
detector needs; whole UUIDs and ISO-8601 timestamps); only the rest, in practice the
strings that do hold PII, run the Python detectors.

Standard library only (jsonschema-rs, when installed, runs the prefilter): the code
generator copies this module verbatim into generated clients, so the pipeline and the
client run the same detectors.

Key-name matchers split camelCase, snake_case, kebab-case and spaces into words and match
the phrases Segment's Privacy Portal suggests by default, taking the value's type into
account (``email_opt_in: true`` is no email, ``next_page_token`` no credential).

>>> [(f.category, f.detector) for f in scan("write to jane.doe@example.com today")]
[('email', 'email')]
>>> category_for_name("billingAddress"), category_for_name("product_name")
('address', None)
"""

from __future__ import annotations

import array
import ipaddress
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from trackplan.pii.iban_registry import IBAN_FORMATS

__all__ = [
    "Finding",
    "scan",
    "findings_for",
    "name_tokens",
    "category_for_name",
    "match_key",
    "luhn_ok",
    "iban_ok",
    "ssn_ok",
    "set_national",
    "national_enabled",
]


class Finding(NamedTuple):
    """PII found in a string: the span, its category and the detector that found it.

    ``weak`` marks a bare run of digits (a card number without separators), which the
    caller drops when the key names an id (``order_id``): such ids pass Luhn one time in ten.
    """

    start: int
    end: int
    category: str
    detector: str
    weak: bool = False


# -- value detectors --------------------------------------------------------------------

_DIGIT = re.compile(r"\d")
#: ISO-8601 dates and timestamps: never PII, and full of digit runs.
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?"
)
_NUMERIC = re.compile(r"\d(?:[ ().\-/]{0,3}\d){6,}")
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,63})(?:@|%40)"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}|xn--[A-Za-z0-9\-]{1,59}))"
    r"(?![A-Za-z0-9\-@])"
)
_FILE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js", "pdf"})
_RETINA = re.compile(r"\d+(?:\.\d+)?x\.", re.IGNORECASE)
_PHONES = (
    # international, with +: up to 15 digits in groups
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]?\d{1,5}){1,6}(?![\w])"),
    # North American: (415) 555-2671, 415-555-2671, 1-800-555-0199
    re.compile(
        r"(?<![\w\-./+])(?:1[ .\-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}([ .\-]))[2-9]\d{2}[ .\-]\d{4}"
        r"(?![\w\-]|\.\d)"
    ),
    # national with a trunk 0: 020 7946 0958, 07700 900123, 030 1234 5678, 06 12 34 56 78
    re.compile(
        r"(?<![\w\-./+])(?:0[1-9](?:[ .]\d{2}){4}|0[1-9]\d{1,3}[ \-]\d{3,4}[ \-]?\d{3,4})"
        r"(?![\w\-]|\.\d)"
    ),
)
_CARD = re.compile(r"(?<![\w\-.])\d(?:[ \-]?\d){11,18}(?![\w\-]|\.\d)")
_SSN = re.compile(r"(?<![\w\-.])(\d{3})([\- .])(\d{2})\2(\d{4})(?![\w\-]|\.\d)")
#: An IBAN's shape: country, check digits, 11 to 30 letters or digits, grouped by spaces
#: or hyphens (``DE89 3704 ...``, ``AL47-2121-...``).
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})((?:[ \-]?[A-Z0-9]){11,30})(?![a-z0-9])")
#: What every IBAN the regex above matches holds (the detectors run only where it is).
_IBAN_HINT = re.compile(r"[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11}")
_IPV4 = re.compile(
    r"(?<![\w./:\-])((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})"
    r"(?![\w\-]|\.\d)"
)
_IPV6 = re.compile(
    r"(?<![\w:.\-])((?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4}))"
    r"(?![\w:\-]|\.\d)"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")
_API_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"[sr]k_(?:live|test|prod)_[0-9A-Za-z]{16,}(?![0-9A-Za-z])"  # Stripe secret, restricted
    r"|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{32,}"  # OpenAI, Anthropic
    r"|A[KS]IA[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|xox[abeoprs]-[A-Za-z0-9\-]{10,}|xoxe\.xox[bp]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|xapp-\d-[A-Za-z0-9\-]{10,}"  # Slack app-level tokens
    r"|(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Za-z0-9_]{6,}"
    r"/[A-Za-z0-9_/]{16,}"  # Slack webhooks
    r"|AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"  # Google
    r"|glpat-[A-Za-z0-9_\-]{20,}"  # GitLab
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"  # SendGrid
    r"|-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"  # PEM, OpenSSH, PGP
    r"|[Bb]earer [A-Za-z0-9\-._~+/]{20,}=*"
    r")"
)

_SSN_INVALID = frozenset({"123456789", "078051120"})


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _issuer_ok(digits: str) -> bool:
    """A known card issuer prefix for the number's length (Visa, Mastercard, Amex, ...)."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19  # Discover
    if 3528 <= four <= 3589:
        return 16 <= n <= 19  # JCB
    if 300 <= int(digits[:3]) <= 305 or two in (36, 38, 39):
        return 14 <= n <= 19  # Diners Club
    if two == 62:
        return 16 <= n <= 19  # UnionPay
    if two in (50, 56, 57, 58, 67) or digits[:1] == "6":
        return 12 <= n <= 19  # Maestro
    return False


def iban_ok(compact: str) -> bool:
    """Country length, BBAN structure and the mod-97 check of an IBAN without spaces
    (formats: :data:`trackplan.pii.iban_registry.IBAN_FORMATS`)."""
    fmt = IBAN_FORMATS.get(compact[:2])
    if fmt is None or fmt[0] != len(compact) or not compact[2:4].isdigit():
        return False
    if _bban(compact[:2]).fullmatch(compact[4:]) is None:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


_BBAN: dict[str, re.Pattern[str]] = {}


def _bban(country: str) -> re.Pattern[str]:
    """The compiled BBAN structure of a country in the registry (compiled on first use)."""
    found = _BBAN.get(country)
    if found is None:
        found = _BBAN[country] = re.compile(IBAN_FORMATS[country][1])
    return found


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """Presidio's exclusions for a US SSN (same delimiter checked by the regex)."""
    digits = area + group + serial
    if len(set(digits)) == 1 or area in ("000", "666") or group == "00" or serial == "0000":
        return False
    return digits not in _SSN_INVALID and not digits.startswith("98765432")


def _email(text: str, out: list[Finding]) -> None:
    for m in _EMAIL.finditer(text):
        domain, tld = m.group(1), m.group(2).lower()
        if tld in _FILE_TLDS or _RETINA.match(domain):
            continue  # icon@2x.png
        if text[m.end() : m.end() + 1] == ":":
            continue  # git@github.com:org/repo.git, an SSH remote
        out.append(Finding(m.start(), m.end(), "email", "email"))


def _iban(text: str, out: list[Finding]) -> list[tuple[int, int]]:
    """IBANs in ``text``; returns every IBAN-shaped span of a known country, valid or not
    (no phone number is taken from inside one: ``BE71 0961 2345 6760``)."""
    shaped: list[tuple[int, int]] = []
    for m in _IBAN.finditer(text):
        fmt = IBAN_FORMATS.get(m.group(1))
        if fmt is None:
            continue
        shaped.append((m.start(), m.end()))
        want = fmt[0]
        compact = (m.group(1) + m.group(2) + m.group(3)).replace(" ", "").replace("-", "")
        if len(compact) < want:
            continue
        if iban_ok(compact[:want]):
            end, seen = m.start(), 0
            while seen < want:  # the span of the first ``want`` characters, separators included
                if text[end] not in " -":
                    seen += 1
                end += 1
            out.append(Finding(m.start(), end, "bank_account", "iban"))
    return shaped


def _numeric(text: str, out: list[Finding], ibans: list[tuple[int, int]]) -> None:
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and _issuer_ok(digits):
            out.append(Finding(m.start(), m.end(), "payment_card", "payment_card", raw == digits))
    for m in _SSN.finditer(text):
        if ssn_ok(m.group(1), m.group(3), m.group(4)):
            out.append(Finding(m.start(), m.end(), "government_id", "us_ssn"))
    for pattern in _PHONES:
        for m in pattern.finditer(text):
            count = sum(c.isdigit() for c in m.group())
            if not (8 if pattern is _PHONES[0] else 10) <= count <= 15:
                continue
            if any(a <= m.start() and m.end() <= b for a, b in ibans):
                continue  # the digits of an IBAN-shaped string, not a phone number
            out.append(Finding(m.start(), m.end(), "phone", "phone"))


#: Opt-in national detectors, process-wide (plans add to them:
#: :func:`trackplan.pii.national.enable_national`).
_NATIONAL: dict[str, tuple[str, ...]] = {"phone_regions": (), "id_countries": ()}
#: Their span finders, handed in by :mod:`trackplan.pii.national`: they need phonenumbers
#: and python-stdnum, which this module (copied into generated clients) never imports.
_FINDERS: dict[str, Callable[..., Any]] = {}


def set_national(
    *,
    phone_regions: Iterable[str] = (),
    id_countries: Iterable[str] = (),
    phone_spans: Callable[..., Any] | None = None,
    id_spans: Callable[..., Any] | None = None,
) -> None:
    """Also detect phone numbers in the national formats of ``phone_regions`` (``"DE"``)
    and the identity numbers of ``id_countries`` (``"de"``), found by ``phone_spans`` and
    ``id_spans``. Call it through :func:`trackplan.pii.national.enable_national`.

    The setting is process-wide and only ever grows (a plan compiled later adds its
    regions to the earlier plans'): more detectors are never less protective, and the
    clean caches, emptied here, then mean the same for every plan.
    """
    if phone_spans is not None:
        _FINDERS["phone"] = phone_spans
    if id_spans is not None:
        _FINDERS["id"] = id_spans
    regions = tuple(sorted({*_NATIONAL["phone_regions"], *(r.upper() for r in phone_regions)}))
    countries = tuple(sorted({*_NATIONAL["id_countries"], *(c.lower() for c in id_countries)}))
    if (regions and "phone" not in _FINDERS) or (countries and "id" not in _FINDERS):
        raise ValueError("national detectors need their span finders (trackplan.pii.national)")
    if regions == _NATIONAL["phone_regions"] and countries == _NATIONAL["id_countries"]:
        return
    _NATIONAL["phone_regions"], _NATIONAL["id_countries"] = regions, countries
    for cache in _CLEAN_BY_CLASS:
        cache.clear()
        cache.add(None)
    _FOUND.clear()


def national_enabled() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(phone regions, id countries)`` whose national detectors are on."""
    return _NATIONAL["phone_regions"], _NATIONAL["id_countries"]


def _national(text: str, out: list[Finding], ibans: list[tuple[int, int]]) -> None:
    """The opt-in national detectors. A span counts only where the prefilter's own
    pattern matches inside it, so the Rust prefilter stays a superset by construction;
    a span the id-key prefilter would not see is ``weak`` (dropped under ``order_id``)."""
    spans: list[tuple[int, int, str, str]] = []
    regions, countries = _NATIONAL["phone_regions"], _NATIONAL["id_countries"]
    if regions:
        for start, end, region in _FINDERS["phone"](text, regions):
            spans.append((start, end, "phone", f"phone_{region.lower()}"))
    if countries:
        spans += [
            (a, b, "government_id", mod) for a, b, _, mod in _FINDERS["id"](text, countries)
        ]
    for start, end, category, detector in spans:
        piece = text[start:end]
        if _PREFILTER_RX.search(piece) is None:
            continue
        if category == "phone" and any(a <= start and end <= b for a, b in ibans):
            continue
        weak = _PREFILTER_ID_RX.search(piece) is None
        out.append(Finding(start, end, category, detector, weak))


def _ipv4(text: str, out: list[Finding]) -> None:
    for m in _IPV4.finditer(text):
        ip = m.group(1)
        octets = ip.split(".")
        if all(len(o) == 1 for o in octets):
            continue  # 1.2.3.4 is a version string far more often than an address
        if octets[0] in ("0", "127", "255"):
            continue  # no one's address (unspecified, loopback, a netmask)
        before = text[max(0, m.start(1) - 12) : m.start(1)].rstrip().rsplit(" ", 1)[-1]
        if before.lower().rstrip(".:") in _NUMBERING_WORDS:
            continue  # "section 10.2.3.4", "version 10.2.3.4"
        out.append(Finding(m.start(1), m.end(1), "ip", "ipv4"))


_NUMBERING_WORDS = frozenset(
    {
        "section",
        "sec",
        "chapter",
        "ch",
        "version",
        "ver",
        "v",
        "build",
        "release",
        "rev",
        "table",
        "figure",
        "fig",
        "step",
        "rule",
        "clause",
        "article",
        "paragraph",
        "item",
        "part",
        "§",
        "appendix",
        "page",
        "no",
    }
)


def _ipv6(text: str, out: list[Finding]) -> None:
    for m in _IPV6.finditer(text):
        candidate = m.group(1)
        if "::" not in candidate and candidate.count(":") != 7 and "." not in candidate:
            continue
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        if address.is_unspecified or address.is_loopback:
            continue
        out.append(Finding(m.start(1), m.end(1), "ip", "ipv6"))


def _credentials(text: str, out: list[Finding]) -> None:
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            out.append(Finding(m.start(), m.end(), "credentials", "jwt"))
    if not ("_" in text or "-" in text or "A" in text or "SG." in text or "earer " in text):
        if "hooks." not in text:
            return  # every key shape holds one of these
    for m in _API_KEY.finditer(text):
        out.append(Finding(m.start(), m.end(), "credentials", "api_key"))


def _wide_digits() -> str:
    """A class of every decimal digit beyond ASCII (what Python's ``\\d`` matches besides
    ``0-9``: ``str.isdecimal``, Unicode's Nd, all below U+20000), as literal ranges both
    regex engines read alike."""
    ranges: list[list[int]] = []
    # one C-level regex pass over the code points, not 130,000 Python-level calls at import
    every = array.array("I", range(0x80, WIDE_DIGIT_END)).tobytes().decode(
        "utf-32-le" if sys.byteorder == "little" else "utf-32-be", "surrogatepass"
    )
    for m in re.finditer(r"\d", every):
        code = m.start() + 0x80
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


#: Above this code point Unicode has no decimal digits (checked by the tests).
WIDE_DIGIT_END = 0x20000
#: Python's ``\d`` matches every Unicode digit, the Rust validator's only ``0-9``: any
#: other digit makes a string a candidate, so the prefilter is a superset in both engines.
#: The class for the Unicode data this module was checked against, written out: building it
#: costs milliseconds at every start. Another Unicode version (another Python) builds its own.
_WIDE_DIGITS_BY_UNICODE = {
    "14.0.0": (
        "[\u0660-\u0669\u06f0-\u06f9\u07c0-\u07c9\u0966-\u096f\u09e6-\u09ef\u0a66-\u0a6f"
        "\u0ae6-\u0aef\u0b66-\u0b6f\u0be6-\u0bef\u0c66-\u0c6f\u0ce6-\u0cef\u0d66-\u0d6f"
        "\u0de6-\u0def\u0e50-\u0e59\u0ed0-\u0ed9\u0f20-\u0f29\u1040-\u1049\u1090-\u1099"
        "\u17e0-\u17e9\u1810-\u1819\u1946-\u194f\u19d0-\u19d9\u1a80-\u1a89\u1a90-\u1a99"
        "\u1b50-\u1b59\u1bb0-\u1bb9\u1c40-\u1c49\u1c50-\u1c59\ua620-\ua629\ua8d0-\ua8d9"
        "\ua900-\ua909\ua9d0-\ua9d9\ua9f0-\ua9f9\uaa50-\uaa59\uabf0-\uabf9\uff10-\uff19"
        "\U000104a0-\U000104a9\U00010d30-\U00010d39\U00011066-\U0001106f"
        "\U000110f0-\U000110f9\U00011136-\U0001113f\U000111d0-\U000111d9"
        "\U000112f0-\U000112f9\U00011450-\U00011459\U000114d0-\U000114d9"
        "\U00011650-\U00011659\U000116c0-\U000116c9\U00011730-\U00011739"
        "\U000118e0-\U000118e9\U00011950-\U00011959\U00011c50-\U00011c59"
        "\U00011d50-\U00011d59\U00011da0-\U00011da9\U00016a60-\U00016a69"
        "\U00016ac0-\U00016ac9\U00016b50-\U00016b59\U0001d7ce-\U0001d7ff"
        "\U0001e140-\U0001e149\U0001e2f0-\U0001e2f9\U0001e950-\U0001e959"
        "\U0001fbf0-\U0001fbf9]"
    ),
}
_WIDE_DIGIT = _WIDE_DIGITS_BY_UNICODE.get(unicodedata.unidata_version) or _wide_digits()

#: Opt-in ids without seven digits in a row: an Italian tax code (digits may be letters),
#: a Finnish HETU with its century letter.
_OPT_IN_SHAPES = (
    r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPR-T][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]"
    r"|\d{6}[A-FU-Y]\d{3}[0-9A-Y]"
)
#: Credential prefixes, opt-in id shapes and wide digits: the prefilters' common tail.
_SHAPES = (
    r"eyJ|[sr]k_(?:live|test|prod)_|sk-|A[KS]IA|gh[pousr]_|github_pat_|xox[abeoprs][\-.]"
    r"|xapp-|hooks\.slack\.com/|AIza|glpat-|npm_|SG\.|-----BEGIN|[Bb]earer |"
    + _OPT_IN_SHAPES
    + "|"
    + _WIDE_DIGIT
)
#: Matches every string in which some detector could find PII (each detector's necessary
#: part: an ``@``, seven digits in a row, a dotted quad, two colons, an IBAN's first 15
#: characters, a credential's prefix, a digit beyond ASCII). A string it does not match
#: holds nothing :func:`scan` finds; the validators check it in Rust, so clean strings
#: skip the Python detectors altogether.
PREFILTER = (
    r"@|%40|\d(?:[ ().\-/]{0,3}\d){6,}|\d\.\d{1,3}\.\d{1,3}\.\d"
    r"|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"
    r"|[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11}|" + _SHAPES
)
#: The prefilter under id-like keys (``order_id``, ``sku``), where a bare run of digits is
#: no finding (``findings_for`` drops it): digits count only beside a separator, a ``(``,
#: a ``+`` or an IBAN's country code.
PREFILTER_ID = (
    r"@|%40|\d[ ().\-/]{1,3}\d|\(\d|\+\d|[A-Z]{2}\d{2}|\d\.\d{1,3}\.\d{1,3}\.\d"
    r"|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"
    r"|[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){11}|" + _SHAPES
)
#: Whole values no detector flags, by construction (``test_walk_fast`` checks it): a UUID
#: in its canonical 8-4-4-4-12 form (hex and hyphens only: no ``@``, no ``:``, no ``.``,
#: and its digit runs end in a letter or hyphen, which card, SSN and phone shapes refuse)
#: and an ISO-8601 date or date-time (``scan`` skips digit shapes in those; its colons
#: never make an IPv6 candidate). ASCII digits only, so the set is within Python's ``\d``.
SAFE_WHOLE = (
    r"^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+\-][0-9]{2}:?[0-9]{2})?)?)$"
)


_PREFILTER_RX = re.compile(PREFILTER)
_PREFILTER_ID_RX = re.compile(PREFILTER_ID)


def rust_check(schema: dict[str, Any]) -> Callable[[str], bool]:
    """``is_valid`` of a jsonschema-rs validator of ``schema`` (regexes run in Rust); the
    same check in Python's ``re`` where jsonschema-rs is not installed (the copy of this
    module a generated client ships runs on the standard library alone)."""
    try:
        import jsonschema_rs
    except ImportError:
        return _re_check(schema)
    is_valid: Callable[[str], bool] = jsonschema_rs.validator_for(schema).is_valid
    return is_valid


def _re_check(schema: dict[str, Any]) -> Callable[[str], bool]:
    """:func:`rust_check` of ``{"anyOf": [{"not": {"pattern": P}}, {"pattern": S}]}`` in
    Python: true when ``P`` is found nowhere or ``S`` matches the whole string. Python's
    ``\\d`` matches every Unicode digit, so ``P`` rules out no more than it does in Rust."""
    absent, whole = schema["anyOf"]
    search = re.compile(absent["not"]["pattern"]).search
    safe = re.compile(whole["pattern"]).search

    def check(text: str) -> bool:
        if search(text) is None:
            return True
        m = safe(text)
        return m is not None and m.end() == len(text)  # ``$`` before a final newline: no

    return check


#: True for strings that cannot hold anything :func:`scan` finds (their own prefilter
#: misses, or a whole UUID or timestamp): ~0.2 us in Rust against 2-13 us of detectors.
RULED_OUT = rust_check(
    {"anyOf": [{"not": {"pattern": PREFILTER}}, {"pattern": SAFE_WHOLE}]}
)
#: The same under id-like keys (bare digit runs dropped).
_RULED_OUT_ID = rust_check(
    {"anyOf": [{"not": {"pattern": PREFILTER_ID}}, {"pattern": SAFE_WHOLE}]}
)


def prefilter_for(key: str | None) -> str:
    """The prefilter for strings under ``key`` (None: an array item, free text)."""
    return PREFILTER_ID if key is not None and key_class(key)[0] else PREFILTER


#: Strings known to hold nothing; bounded, and never holding a string that had PII. A set,
#: so a whole object's strings are checked at once (``CLEAN.issuperset(values)``); it also
#: holds ``None`` and short strings, which no detector can flag.
CLEAN: set[object] = {None}
_CLEAN_MAX = 16384
CACHE_LEN = 256


def remember(cache: set[object], value: object) -> None:
    """Add a value no detector flags to a clean cache (bounded: cleared when full)."""
    if len(cache) >= _CLEAN_MAX:
        cache.clear()
        cache.add(None)
    cache.add(value)


def scan(text: str) -> tuple[Finding, ...]:
    """Every PII span in ``text``, sorted, overlaps resolved (longest wins). Cached for
    clean strings, so repeated values (product names, categories) cost a dict lookup; a
    new string the prefilter rules out (in Rust) costs no Python detector."""
    if len(text) < 6 or text in CLEAN:
        return ()
    found = _FOUND.get(text)
    if found is not None:
        return found
    if _ruled_out(RULED_OUT, text):
        if len(text) <= CACHE_LEN:
            remember(CLEAN, text)
        return ()
    return _found_in(text)


#: Findings of strings that held PII, seen recently: a value found in one pass (the
#: generated transform) is reported again by the walk, and repeats across events. Bounded,
#: in memory only, like the events and the action memos.
_FOUND: dict[str, tuple[Finding, ...]] = {}
_FOUND_MAX = 1024


def _found_in(text: str) -> tuple[Finding, ...]:
    """:func:`_scan`, remembering what it found."""
    found = _scan(text)
    if found and len(text) <= CACHE_LEN:
        if len(_FOUND) >= _FOUND_MAX:
            _FOUND.clear()
        _FOUND[text] = found
    return found


def _ruled_out(check: Callable[[str], bool], text: str) -> bool:
    try:
        return check(text)
    except ValueError:  # a lone surrogate, which Rust refuses: the detectors decide
        return False


def _scan(text: str) -> tuple[Finding, ...]:
    """:func:`scan` without the caches and the prefilter: every detector, in Python."""
    found: list[Finding] = []
    if "@" in text or "%40" in text:
        _email(text, found)
    if _DIGIT.search(text) is not None and _ISO.fullmatch(text) is None:
        ibans = _iban(text, found) if _IBAN_HINT.search(text) is not None else []
        if _NUMERIC.search(text) is not None:
            _numeric(text, found, ibans)
        if _NATIONAL["phone_regions"] or _NATIONAL["id_countries"]:
            _national(text, found, ibans)
        if "." in text:
            _ipv4(text, found)
        if text.count(":") >= 2:
            _ipv6(text, found)
    elif ":" in text and text.count(":") >= 2:
        _ipv6(text, found)  # an address of letters only (fe80::abcd)
    if len(text) >= 20:
        _credentials(text, found)
    if not found:
        if len(text) <= CACHE_LEN:
            remember(CLEAN, text)
        return ()
    return _resolve(found)


#: Categories whose detectors verify a checksum: on a tie of spans they win over a phone.
_CHECKED = frozenset({"government_id", "bank_account", "payment_card"})


def _resolve(found: list[Finding]) -> tuple[Finding, ...]:
    """Drop spans that overlap a longer (or earlier, on a tie) span; of two equal spans a
    checksum-verified finding (an id passing its check digit) wins over a phone shape."""
    found.sort(key=lambda f: (f.start, -(f.end - f.start), f.category not in _CHECKED))
    kept: list[Finding] = []
    for f in found:
        if kept and f.start < kept[-1].end:
            last = kept[-1]
            if f.end - f.start > last.end - last.start:
                kept[-1] = f
            continue
        kept.append(f)
    return tuple(kept)


def findings_for(key: str | None, text: str) -> tuple[Finding, ...]:
    """:func:`scan` of a value under ``key``, dropping what the key explains away: bare
    digit runs under id-like keys (``order_id``) and IPv4 under version keys."""
    if key is None:
        return scan(text)
    id_like, version_like = key_class(key)
    if not (id_like or version_like):
        return scan(text)
    cache = _CLEAN_BY_CLASS[id_like + 2 * version_like]
    if len(text) < 6 or text in CLEAN or text in cache:
        return ()
    found = _FOUND.get(text)
    if found is None:
        if _ruled_out(RULED_OUT, text):  # clean everywhere
            if len(text) <= CACHE_LEN:
                remember(CLEAN, text)
            return ()
        if id_like and _ruled_out(_RULED_OUT_ID, text):  # ``SKU-9780262033848`` under ``sku``
            found = ()
        else:
            found = _found_in(text)
    kept = tuple(
        f for f in found if not (f.weak and id_like) and not (f.detector == "ipv4" and version_like)
    )
    if not kept and len(text) <= CACHE_LEN:
        remember(cache, text)  # clean under such keys
    return kept


#: Per key class (id-like, version-like): strings clean under such keys although
#: :func:`scan` finds something (``SKU-9780262033848`` under ``sku``). Index 0 is ``CLEAN``.
_CLEAN_BY_CLASS: tuple[set[object], ...] = (CLEAN, {None}, {None}, {None})
_KEY_CLASS: dict[str, tuple[bool, bool]] = {}


def key_class(key: str) -> tuple[bool, bool]:
    found = _KEY_CLASS.get(key)
    if found is None:
        words = set(name_tokens(key))
        found = (bool(words & _ID_WORDS), bool(words & {"version", "build", "release", "ver"}))
        if len(_KEY_CLASS) >= 4096:
            _KEY_CLASS.clear()
        _KEY_CLASS[key] = found
    return found


def clean_set(key: str | None) -> set[object]:
    """The cache of strings known to hold no PII *under* ``key`` (a superset, in meaning,
    of the plain clean cache: a string clean everywhere is clean under every key)."""
    if key is None:
        return CLEAN
    id_like, version_like = key_class(key)
    return _CLEAN_BY_CLASS[id_like + 2 * version_like]


# -- key names --------------------------------------------------------------------------

_ID_WORDS = frozenset(
    {"id", "ids", "order", "sku", "ref", "reference", "tracking", "invoice", "transaction",
     "barcode", "ean", "upc", "isbn", "gtin", "number", "no", "num", "code", "sequence",
     "checkout", "cart", "product", "shipment", "ticket", "booking", "confirmation"}
)  # fmt: skip

_SPLIT_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SPLIT_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")

#: (phrase, category), longest phrases first: ``email address`` before ``address``.
_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    sorted(
        [
            (("social", "security"), "government_id"), (("ssn",), "government_id"),
            (("passport",), "government_id"), (("license",), "government_id"),
            (("licence",), "government_id"), (("identification",), "government_id"),
            (("national", "id"), "government_id"), (("tax", "id"), "government_id"),
            (("taxid",), "government_id"),
            (("password",), "credentials"), (("passwd",), "credentials"),
            (("pwd",), "credentials"), (("secret",), "credentials"), (("token",), "credentials"),
            (("api", "key"), "credentials"), (("apikey",), "credentials"),
            (("access", "key"), "credentials"), (("private", "key"), "credentials"),
            (("certificate",), "credentials"),
            (("credit", "card"), "payment_card"), (("card", "number"), "payment_card"),
            (("cardnumber",), "payment_card"), (("creditcard",), "payment_card"),
            (("cc", "number"), "payment_card"), (("ccnum",), "payment_card"),
            (("visa",), "payment_card"), (("cvv",), "payment_card"), (("cvc",), "payment_card"),
            (("iban",), "bank_account"), (("bank", "account"), "bank_account"),
            (("account", "number"), "bank_account"), (("routing", "number"), "bank_account"),
            (("sort", "code"), "bank_account"),
            (("email",), "email"), (("e", "mail"), "email"), (("emailaddress",), "email"),
            (("email", "address"), "email"),
            (("phone",), "phone"), (("telephone",), "phone"), (("tel",), "phone"),
            (("phonenumber",), "phone"), (("mobile",), "phone"), (("cellphone",), "phone"),
            (("cell", "phone"), "phone"), (("fax",), "phone"), (("msisdn",), "phone"),
            (("first", "name"), "name"), (("last", "name"), "name"), (("full", "name"), "name"),
            (("given", "name"), "name"), (("family", "name"), "name"),
            (("middle", "name"), "name"), (("maiden", "name"), "name"),
            (("firstname",), "name"), (("lastname",), "name"), (("fullname",), "name"),
            (("surname",), "name"), (("username",), "name"), (("nickname",), "name"),
            (("address",), "address"), (("street",), "address"), (("city",), "address"),
            (("zip",), "postal_code"), (("zipcode",), "postal_code"),
            (("postcode",), "postal_code"), (("postal",), "postal_code"),
            (("birthdate",), "birthdate"), (("birthday",), "birthdate"),
            (("dob",), "birthdate"), (("birth",), "birthdate"),
            (("ip",), "ip"), (("ipv4",), "ip"), (("ipv6",), "ip"), (("ip", "address"), "ip"),
            (("ipaddress",), "ip"),
            (("mac", "address"), "device_id"), (("mac",), "device_id"),
            (("serial",), "device_id"), (("device", "id"), "device_id"),
            (("deviceid",), "device_id"), (("idfa",), "device_id"), (("gaid",), "device_id"),
            (("imei",), "device_id"), (("udid",), "device_id"),
            (("advertising", "id"), "device_id"),
            (("latitude",), "precise_location"), (("longitude",), "precise_location"),
            (("lat",), "precise_location"), (("lng",), "precise_location"),
            (("geolocation",), "precise_location"), (("coordinates",), "precise_location"),
            (("health",), "health"), (("genetic",), "health"), (("disability",), "health"),
            (("medication",), "health"), (("allergy",), "health"), (("allergies",), "health"),
            (("diagnosis",), "health"), (("medical",), "health"),
            (("gender",), "other"), (("sex",), "other"), (("ethnicity",), "other"),
            (("race",), "other"), (("religion",), "other"), (("citizenship",), "other"),
            (("nationality",), "other"), (("veteran",), "other"), (("salary",), "other"),
            (("sexual", "orientation"), "other"),
        ],
        key=lambda item: -len(item[0]),
    )
)  # fmt: skip

#: Words that turn a PII word into metadata about it (``email_opt_in``, ``phone_type``).
_MODIFIERS = frozenset(
    {"opt", "optin", "optout", "opted", "consent", "verified", "valid", "validated",
     "confirmed", "subscribed", "enabled", "disabled", "count", "length", "strength",
     "policy", "domain", "type", "provider", "format", "status", "hash", "hashed", "masked",
     "template", "campaign", "changed", "reset", "updated", "present", "provided",
     "required", "exists", "flag", "source", "method", "category", "kind", "label", "mode",
     "field", "version", "country", "region", "prefix", "tier", "plan", "seats", "expired",
     "expiry", "sent", "opened", "clicked", "bounced", "os", "app", "brand", "last4",
     "network", "carrier", "coverage", "rate", "score", "preference", "preferences"}
)  # fmt: skip
#: Words that make a ``*_token`` a pagination cursor, not a credential.
_NOT_SECRET = frozenset(
    {"page", "next", "prev", "previous", "cursor", "continuation", "pagination", "sync",
     "max", "num", "usage", "input", "output", "total", "limit"}
)  # fmt: skip
#: Value types each category may hold (booleans are never PII).
_KINDS: dict[str, tuple[type, ...]] = {
    "phone": (str, int), "payment_card": (str, int), "government_id": (str, int),
    "postal_code": (str, int), "bank_account": (str, int), "birthdate": (str, int),
    "precise_location": (str, int, float, dict, list), "address": (str, dict, list),
    "health": (str, list), "other": (str, list),
}  # fmt: skip
_SCHEMA_TYPES = {"string": str, "integer": int, "number": float, "object": dict, "array": list}

_NAME_CACHE: dict[str, str | None] = {}


def name_tokens(name: str) -> list[str]:
    """Lower-case words of a key: ``billingAddressLine1`` -> ``['billing', 'address', 'line1']``."""
    if type(name) is not str:
        return []  # a key that is no string (not JSON): it names nothing
    spaced = _SPLIT_ACRONYM.sub(r"\1 \2", _SPLIT_CAMEL.sub(r"\1 \2", name))
    return [w for w in _NON_WORD.split(spaced.lower()) if w]


def _category_of_words(words: list[str]) -> str | None:
    if not words or len(words) > 8:
        return None
    if _MODIFIERS.intersection(words):
        return None
    for phrase, category in _PHRASES:
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) == phrase:
                if category == "credentials" and _NOT_SECRET.intersection(words):
                    return None
                return category
    return None


def name_category(name: str) -> str | None:
    found = _NAME_CACHE.get(name, "")
    if found != "":
        return found
    category = _category_of_words(name_tokens(name))
    if len(_NAME_CACHE) >= 4096:
        _NAME_CACHE.clear()
    _NAME_CACHE[name] = category
    return category


def match_key(name: str, value: Any, *, person: bool = False) -> str | None:
    """The PII category a key names, given its value; None when it names none.

    ``person`` marks a person's own traits (identify), where a bare ``name`` is the
    person's name; elsewhere a bare ``name`` (a product's, a page's) is not PII.
    """
    category = name_category(name)
    if category is None:
        if person and type(name) is str and name.strip().lower() == "name" and type(value) is str:
            return "name"
        return None
    if type(value) is bool or value is None:
        return None
    return category if isinstance(value, _KINDS.get(category, (str,))) else None


def category_for_name(name: str, schema: Any = None) -> str | None:
    """The PII category a property name suggests, given its JSON Schema (lint's view).

    A schema whose ``type`` admits no value the category can hold (a boolean
    ``email_opt_in``) gives None; a schema without ``type`` is taken at its name.
    """
    category = name_category(name)
    if category is None or not isinstance(schema, dict) or "type" not in schema:
        return category
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    allowed = _KINDS.get(category, (str,))
    for t in types:
        py = _SCHEMA_TYPES.get(t) if isinstance(t, str) else None
        if py is not None and (py in allowed or (py is float and int in allowed)):
            return category
    return None
