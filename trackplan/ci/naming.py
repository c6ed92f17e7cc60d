"""Naming conventions for lint: casing checks, collision keys, and the PII name matcher.

>>> conforms("Order Completed", "title"), conforms("order_id", "snake")
(True, True)
>>> collision_key("orderId") == collision_key("order_id")
True
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "CONVENTIONS",
    "conforms",
    "majority_convention",
    "collision_key",
    "tokens",
    "pii_name_matcher",
]

#: Name conventions; ``title`` is Segment's "Object Action" Title Case.
CONVENTIONS: dict[str, re.Pattern[str]] = {
    "title": re.compile(r"^[A-Z0-9][A-Za-z0-9]*( [A-Z0-9][A-Za-z0-9]*)*$"),
    "sentence": re.compile(r"^[A-Z][a-z0-9]*( [a-z0-9]+)*$"),
    "lower": re.compile(r"^[a-z][a-z0-9]*( [a-z0-9]+)*$"),
    "snake": re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"),
    "camel": re.compile(r"^[a-z][a-z0-9]*([A-Z][a-z0-9]*)*$"),
    "pascal": re.compile(r"^[A-Z][a-z0-9]*([A-Z][a-z0-9]*)*$"),
    "kebab": re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"),
    "constant": re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$"),
}

_EXAMPLES = {
    "title": "Order Completed",
    "sentence": "Order completed",
    "lower": "order completed",
    "snake": "order_id",
    "camel": "orderId",
    "pascal": "OrderId",
    "kebab": "order-id",
    "constant": "ORDER_ID",
}


def example(convention: str) -> str:
    """A name written in ``convention``, for messages."""
    return _EXAMPLES.get(convention, convention)


def conforms(name: str, convention: str) -> bool:
    """Whether ``name`` is written in ``convention``."""
    return bool(CONVENTIONS[convention].match(name))


def majority_convention(names: Iterable[str], candidates: Iterable[str]) -> str | None:
    """The convention most ``names`` follow (first candidate wins ties), or None."""
    pool = list(names)
    best: tuple[int, str] | None = None
    for conv in candidates:
        count = sum(1 for n in pool if conforms(n, conv))
        if count and (best is None or count > best[0]):
            best = (count, conv)
    return None if best is None else best[1]


_SPLIT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def tokens(name: str) -> list[str]:
    """Lower-case words of a name in any convention (``orderID_v2`` -> order, id, v, 2)."""
    return [t.lower() for t in _SPLIT.findall(name)]


def collision_key(name: str) -> str:
    """Names that differ only by case or separators share a key."""
    return "".join(tokens(name)) or name.lower()


# -- PII-looking names ----------------------------------------------------------------------
# Segment Privacy Portal's default key matchers, mapped to trackplan's PII categories.
_CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e mail"),
    "phone": ("phone", "mobile", "telephone", "msisdn"),
    "name": ("first name", "last name", "full name", "surname", "given name", "family name",
             "name"),
    "address": ("address", "street", "city", "zipcode", "zip", "postcode"),
    "postal_code": ("postal code",),
    "birthdate": ("birthdate", "birthday", "date of birth", "dob"),
    "ip": ("ip", "ip address"),
    "government_id": ("ssn", "social security number", "passport", "license", "licence",
                      "national id", "tax id"),
    "payment_card": ("credit card", "card number", "visa", "cvv", "iban"),
    "credentials": ("password", "secret", "api key"),
    "health": ("health", "medication", "allergy", "diagnosis", "disability", "genetic"),
    "other": ("gender", "ethnicity", "race", "religion", "salary", "citizenship",
              "sexual orientation", "mac address", "photo"),
}  # fmt: skip
# Words before ``name`` that make it a thing's name, not a person's.
_NOT_PERSON = frozenset(
    {"product", "event", "page", "screen", "file", "company", "brand", "category", "app",
     "store", "campaign", "plan", "list", "library", "device", "os", "browser", "host",
     "domain", "user", "account", "display", "business", "org", "organization", "team",
     "variant", "item", "feature", "experiment", "step", "tab", "button", "coupon", "shop"}
)  # fmt: skip


def _builtin_matcher(name: str, schema: Any = None) -> str | None:
    words = tokens(name)
    if not words:
        return None
    text = " " + " ".join(words) + " "
    if isinstance(schema, dict) and schema.get("type") == "boolean":
        return None  # email_opt_in, has_phone: flags, not PII
    for category, phrases in _CATEGORY_WORDS.items():
        for phrase in phrases:
            if f" {phrase} " not in text:
                continue
            if phrase == "name":
                at = words.index("name")
                if at > 0 and words[at - 1] in _NOT_PERSON:
                    continue
                if at == 0 and len(words) > 1:
                    continue  # name_length, name_source
            return category
    return None


def pii_name_matcher() -> Callable[[str, Any], str | None]:
    """The function mapping a property name (and its schema) to a PII category, or None.

    Uses the shared detector of :mod:`trackplan.pii.detect` when it is installed, so lint
    and enforcement agree; otherwise Segment's default key matchers above.
    """
    try:
        detect = importlib.import_module("trackplan.pii.detect")
    except ImportError:
        return _builtin_matcher
    for attr in ("category_for_name", "match_name", "name_category", "detect_name"):
        func = getattr(detect, attr, None)
        if callable(func):
            return _adapt(func)
    return _builtin_matcher


def _adapt(func: Callable[..., Any]) -> Callable[[str, Any], str | None]:
    def match(name: str, schema: Any = None) -> str | None:
        try:
            found = func(name, schema)
        except TypeError:
            found = func(name)
        if found is None or isinstance(found, str):
            return found
        for attr in ("category", "value"):  # a match object or an Enum member
            category = getattr(found, attr, None)
            if isinstance(category, str):
                return category
        return _builtin_matcher(name, schema)  # an answer we cannot read: do not go blind

    return match
