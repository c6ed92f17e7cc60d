"""PII actions: the one definition of what each action does to a value.

Pure functions over the standard library only. The code generator copies this module's
source into generated packages and the batch scanner calls it, so enforcement, typed
clients and batch scans transform a value identically. Never import trackplan here.

Actions:
    ``reject``: the whole event is blocked (the caller does it; see :func:`apply_action`).
    ``drop``: the field is removed.
    ``redact``: the value becomes a fixed marker of the same JSON type (:func:`redact_value`).
    ``hash``: HMAC-SHA256 (hex) of the normalised value under a secret key (:func:`hash_value`).
        A destination whose matching needs it may get :func:`plain_hash` instead (SHA-256
        without a key, of the value normalised as ad platforms document).
    ``mask``: partial masking per category (:func:`mask_value`).
    ``allow``: the value passes unchanged (declared PII with a lawful basis).

>>> mask_value("email", "Jane.Doe@Example.com")
'****@example.com'
>>> mask_value("ip", "203.0.113.79")
'203.0.113.0'
>>> apply_action("redact", "name", "Jane", None)
(True, '[REDACTED]')
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "CATEGORIES",
    "ACTIONS",
    "REDACTED",
    "MASK",
    "normalise",
    "hash_value",
    "plain_hash",
    "Canon",
    "mask_value",
    "masker",
    "redact_value",
    "apply_action",
    "replace_spans",
    "act_on_spans",
]

#: Every PII category a plan may name (a plan may add its own under ``pii.categories``).
CATEGORIES = (
    "email", "phone", "name", "address", "postal_code", "birthdate", "ip", "device_id",
    "government_id", "payment_card", "bank_account", "precise_location", "health",
    "credentials", "free_text", "other",
)  # fmt: skip

#: Every action, from the most to the least protective but ``reject`` first.
ACTIONS = ("reject", "drop", "redact", "hash", "mask", "allow")

#: The marker a redacted string becomes.
REDACTED = "[REDACTED]"

#: The character masked characters become.
MASK = "*"

_NOT_DIGIT = re.compile(r"[^0-9]")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


#: Per category, a function giving a value's canonical text (``phone``: its E.164 form, from
#: :mod:`trackplan.pii.phones`), or None when the value does not parse as one; the built-in
#: normalisation then applies. The caller supplies it; this module stays standard-library.
Canon = Mapping[str, Callable[[str], "str | None"]]

_NOT_ID = re.compile(r"[\s.\-/]")


def normalise(category: str, value: Any, *, canon: Canon | None = None) -> str:
    """The canonical text of ``value`` that :func:`hash_value` hashes.

    ``email``: trimmed and lower-cased. ``phone``: ``canon["phone"]``'s form when given and
    the value parses (E.164: ``"020 7946 0958"`` in region GB -> ``"+442079460958"``), else
    digits only, keeping a leading ``+`` (``"+44 (20) 7946-0958"`` -> ``"+442079460958"``).
    ``government_id``: separators dropped, upper-cased (``"123.456.782"`` -> ``"123456782"``).
    Other strings: trimmed. Non-string values: their compact JSON text with sorted keys
    (``12`` -> ``"12"``).
    """
    if isinstance(value, str):
        text = value.strip()
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if canon is not None:
        form = canon.get(category)
        if form is not None:
            found = form(text)
            if found is not None:
                return found
    if category == "email":
        return text.lower()
    if category == "phone":
        plus = "+" if text.startswith("+") else ""
        return plus + _NOT_DIGIT.sub("", text)
    if category == "government_id":
        return _NOT_ID.sub("", text).upper()
    return text


def hash_value(category: str, value: Any, key: bytes, *, canon: Canon | None = None) -> str:
    """HMAC-SHA256 of the normalised value, as 64 lower-case hex digits.

    Raises:
        ValueError: when ``key`` is empty or not bytes; an unkeyed hash is never made.
    """
    if not isinstance(key, bytes | bytearray) or not key:
        raise ValueError("hash needs a non-empty key (bytes); an unkeyed hash is never made")
    text = normalise(category, value, canon=canon)
    return hmac.digest(bytes(key), text.encode("utf-8"), "sha256").hex()


def plain_hash(category: str, value: Any, *, canon: Canon | None = None) -> str:
    """SHA-256 (hex) of the normalised value, without a key: what ad platforms match on
    (an email trimmed and lower-cased, a phone in E.164 with ``canon``). Anyone can
    recompute it from a guessed value, so the pipeline uses it only for destinations
    whose matching needs it, and the data-protection report flags them."""
    return hashlib.sha256(normalise(category, value, canon=canon).encode("utf-8")).hexdigest()


def redact_value(value: Any) -> Any:
    """A fixed marker of the value's JSON type: strings ``"[REDACTED]"``, integers and
    floats ``0``, booleans ``False``, arrays ``[]``, objects ``{}``; ``null`` stays ``null``.
    """
    if isinstance(value, str):
        return REDACTED
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return None


def mask_value(category: str, value: Any) -> Any:
    """Mask part of a value, keeping what analyses need.

    ``email``: the local part becomes ``****``, the domain is kept (lower-cased).
    ``ip``: IPv4 keeps the first three octets (``203.0.113.0``); IPv6 keeps the /48 prefix.
    ``payment_card`` and ``bank_account``: every digit or letter but the last four becomes
    ``*`` (``************4242``; separators dropped). ``phone``: every digit but the last
    two becomes ``*`` (``+**********58``). Other strings (the generic mask): the first
    character is kept and the rest becomes ``****`` (``J****``); strings shorter than four
    characters become ``****``. Values that are not strings, or that do not parse as their
    category (an ``ip`` that is no address), are redacted (:func:`redact_value`).
    """
    return masker(category)(value)


def masker(category: str) -> Callable[[Any], Any]:
    """The function :func:`mask_value` applies for ``category`` (bind it once, call it often)."""
    return _MASKERS.get(category, _mask_other)


def _mask_email(value: Any) -> Any:
    if not isinstance(value, str):
        return redact_value(value)
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return _generic_mask(text)
    return MASK * 4 + "@" + domain.lower()


def _mask_ip_value(value: Any) -> Any:
    if not isinstance(value, str):
        return redact_value(value)
    return _mask_ip(value.strip())


def _mask_account(value: Any) -> Any:
    if not isinstance(value, str):
        return redact_value(value)
    chars = [c for c in value.strip() if c.isalnum()]
    if len(chars) <= 4:
        return MASK * 4
    return MASK * (len(chars) - 4) + "".join(chars[-4:])


def _mask_phone(value: Any) -> Any:
    if not isinstance(value, str):
        return redact_value(value)
    text = value.strip()
    digits = _NOT_DIGIT.sub("", text)
    if len(digits) <= 2:
        return MASK * 4
    plus = "+" if text.startswith("+") else ""
    return plus + MASK * (len(digits) - 2) + digits[-2:]


def _mask_other(value: Any) -> Any:
    if not isinstance(value, str):
        return redact_value(value)
    return _generic_mask(value.strip())


def _generic_mask(text: str) -> str:
    if len(text) < 4:
        return MASK * 4
    return text[0] + MASK * 4


def _mask_ip(text: str) -> Any:
    if _DOTTED_QUAD.fullmatch(text) is not None:  # the common case without a parse
        return text[: text.rfind(".")] + ".0"
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return REDACTED
    if isinstance(address, ipaddress.IPv4Address):
        return str(ipaddress.ip_network(f"{address}/24", strict=False).network_address)
    if address.ipv4_mapped is not None:
        return "::ffff:" + str(_mask_ip(str(address.ipv4_mapped)))
    return str(ipaddress.ip_network(f"{address}/48", strict=False).network_address)


_MASKERS: dict[str, Callable[[Any], Any]] = {
    "email": _mask_email,
    "ip": _mask_ip_value,
    "payment_card": _mask_account,
    "bank_account": _mask_account,
    "phone": _mask_phone,
}


def apply_action(
    action: str, category: str, value: Any, key: bytes | None, *, canon: Canon | None = None
) -> tuple[bool, Any]:
    """Apply ``action`` to one value: ``(keep, new_value)``.

    ``keep`` is False for ``drop`` and for ``reject``: the caller removes the field, and for
    ``reject`` blocks the whole event as well. ``hash`` needs ``key``.

    Raises:
        ValueError: for an unknown action, or ``hash`` without a key.
    """
    if action == "redact":
        return True, redact_value(value)
    if action == "hash":
        if key is None:
            raise ValueError("hash needs a key; an unkeyed hash is never made")
        return True, hash_value(category, value, key, canon=canon)
    if action == "mask":
        return True, mask_value(category, value)
    if action == "allow":
        return True, value
    if action in ("drop", "reject"):
        return False, None
    raise ValueError(f"unknown PII action {action!r}; expected one of {', '.join(ACTIONS)}")


def replace_spans(
    text: str,
    spans: Iterable[tuple[int, int, str]],
    action: str,
    key: bytes | None,
    *,
    canon: Canon | None = None,
) -> str:
    """Apply ``action`` to each ``(start, end, category)`` span of ``text`` (PII found
    inside longer text): ``redact`` writes ``[REDACTED]``, ``mask`` and ``hash`` write the
    masked or hashed span, ``allow`` leaves it. Spans must not overlap. ``drop`` and
    ``reject`` concern the whole value and are the caller's to apply.
    """
    out: list[str] = []
    at = 0
    for start, end, category in sorted(spans):
        if start < at:
            continue  # overlapping span: already replaced
        out.append(text[at:start])
        piece = text[start:end]
        if action == "redact":
            out.append(REDACTED)
        elif action == "allow":
            out.append(piece)
        else:
            _, new = apply_action(action, category, piece, key, canon=canon)
            out.append(new if isinstance(new, str) else REDACTED)
        at = end
    out.append(text[at:])
    return "".join(out)


def act_on_spans(
    text: str,
    spans: Sequence[tuple[int, int, str, str]],
    key: bytes | None,
    *,
    canon: Canon | None = None,
) -> tuple[str, Any]:
    """What PII found inside ``text`` does to it: ``(action, new text)``.

    ``spans`` holds ``(start, end, category, action)`` per finding (at least one, not
    overlapping). The most protective action applies to every span (``reject`` first, then
    ``drop``: the whole value goes, and ``new text`` is None); one span covering the whole
    string is handled as a whole value (:func:`apply_action`), others by
    :func:`replace_spans`. The enforcer and the generated client both call this.

    >>> act_on_spans("mail a@b.co now", [(5, 11, "email", "redact")], None)
    ('redact', 'mail [REDACTED] now')
    """
    strict = spans[0][3]
    for span in spans[1:]:
        if ACTIONS.index(span[3]) < ACTIONS.index(strict):
            strict = span[3]
    if strict in ("reject", "drop"):
        return strict, None
    start, end, category, _ = spans[0]
    if len(spans) == 1 and start == 0 and end == len(text):
        return strict, apply_action(strict, category, text, key, canon=canon)[1]
    spans3 = [(s, e, c) for s, e, c, _ in spans]
    return strict, replace_spans(text, spans3, strict, key, canon=canon)
