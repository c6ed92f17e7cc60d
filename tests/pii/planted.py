"""A corpus of events with planted PII, and the Segment plan they are sent against.

Every planted value is distinctive (a seeded random name, number or address), so "it got
through" is "its text appears in the forwarded event". Values of every category the
detectors find (email, phone, payment card, IBAN, IPv4, IPv6, US SSN, credentials) and of
the categories only key names reveal (name, address, birthdate, postal code) are planted
in every position: declared with ``x-pii``, in a planned property without ``x-pii``
(undeclared), under a key the plan does not name (unplanned), in a nested object, in an
array, inside free text, in ``context.ip`` and in ``context.traits``.

The plan is a Segment Public API export whose properties carry ``x-pii`` declarations and
which has no ``pii`` section of its own: what ``trackplan import segment`` makes of a
plan kept in Segment.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from trackplan.pii.detect import luhn_ok

__all__ = ["Planted", "segment_export", "corpus", "leaked", "POSITIONS"]

POSITIONS = (
    "declared", "undeclared", "unplanned", "nested", "array", "free_text", "context",
    "context_traits",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Planted:
    """One planted value: which event (0-based), its text, category and position."""

    event: int
    text: str
    category: str
    position: str


def segment_export() -> dict[str, Any]:
    """The Segment export (Public API form): x-pii on some properties, no ``pii`` section."""
    track = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "properties": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string"},
                    "email": {"type": "string", "x-pii": "email"},
                    "phone": {"type": "string", "x-pii": {"category": "phone"}},
                    "card": {"type": "string", "x-pii": "payment_card"},
                    "iban": {"type": "string", "x-pii": "bank_account"},
                    "ssn": {"type": "string", "x-pii": "government_id"},
                    "token": {"type": "string", "x-pii": "credentials"},
                    "login_ip": {"type": "string", "x-pii": "ip"},
                    "note": {"type": "string"},
                    "reference": {"type": "string"},
                    "customer": {"type": "object", "properties": {"tier": {"type": "string"}}},
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
                    },
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "message": {
                        "type": "string",
                        "x-pii": {"category": "free_text", "action": "allow", "basis": "support"},
                    },
                },
            },
        },
    }
    common = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "context": {
                "type": "object",
                "properties": {"ip": {"type": "string"}, "userAgent": {"type": "string"}},
            }
        },
    }
    return {
        "name": "Imported shop",
        "rules": [
            {"type": "COMMON", "key": "common", "version": 1, "jsonSchema": common},
            {"type": "TRACK", "key": "Order Placed", "version": 1, "jsonSchema": track},
        ],
    }


class _Maker:
    """Distinctive values of each category (seeded)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def _unique(self, make: Any) -> str:
        while True:
            value: str = make()
            if value not in self.seen:
                self.seen.add(value)
                return value

    def _digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def _word(self, n: int = 7) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwz") + self.rng.choice("aeiou")
                       for _ in range(n // 2 + 1))[:n]

    def email(self) -> str:
        return self._unique(lambda: f"{self._word()}.{self._word(5)}@{self._word(6)}.example.com")

    def phone(self) -> str:
        return self._unique(
            lambda: f"+44 7700 9{self._digits(5)}" if self.rng.random() < 0.5
            else f"(415) 555-{self._digits(4)}"
        )

    def payment_card(self) -> str:
        def make() -> str:
            while True:
                body = "4" + self._digits(14)
                for last in "0123456789":
                    if luhn_ok(body + last):
                        d = body + last
                        return f"{d[:4]} {d[4:8]} {d[8:12]} {d[12:]}"

        return self._unique(make)

    def bank_account(self) -> str:
        def make() -> str:
            bban = self._digits(18)  # a German IBAN: DE, check digits, 18 digits
            number = int(bban + "131400")  # D=13, E=14, check digits 00
            check = 98 - number % 97
            return f"DE{check:02d}{bban}"

        return self._unique(make)

    def ip(self) -> str:
        if self.rng.random() < 0.7:
            return self._unique(
                lambda: f"{self.rng.randint(11, 99)}.{self.rng.randint(10, 250)}."
                f"{self.rng.randint(10, 250)}.{self.rng.randint(10, 250)}"
            )
        return self._unique(lambda: f"2001:db8:{self.rng.randint(4096, 65535):x}::"
                            f"{self.rng.randint(4096, 65535):x}")

    def government_id(self) -> str:
        return self._unique(
            lambda: f"{self.rng.randint(100, 665)}-{self.rng.randint(10, 99)}-"
            f"{self.rng.randint(1000, 9999)}"
        )

    def credentials(self) -> str:
        chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return self._unique(lambda: "sk_live_" + "".join(self.rng.choice(chars) for _ in range(24)))

    def name(self) -> str:
        return self._unique(lambda: self._word(9).capitalize())

    def address(self) -> str:
        return self._unique(lambda: f"{self.rng.randint(10, 999)} {self._word(8).capitalize()} St")

    def birthdate(self) -> str:
        return self._unique(lambda: f"19{self.rng.randint(40, 99)}-0{self.rng.randint(1, 9)}-1"
                            f"{self.rng.randint(0, 9)}")

    def postal_code(self) -> str:
        return self._unique(lambda: f"Q{self.rng.randint(10, 99)} {self.rng.randint(1, 9)}ZX")


#: Categories the value detectors find, with the declared property that holds each.
VALUE_CATEGORIES = {
    "email": "email", "phone": "phone", "payment_card": "card", "bank_account": "iban",
    "government_id": "ssn", "credentials": "token", "ip": "login_ip",
}  # fmt: skip
#: Categories only a key's name reveals, with such a key.
KEY_CATEGORIES = {
    "name": "first_name", "address": "street", "birthdate": "dob", "postal_code": "zip",
}  # fmt: skip
#: Planned string properties without x-pii: (top-level key, key inside its object or item).
_UNDECLARED_SLOTS = (("note", None), ("reference", None), ("customer", "tier"), ("items", "sku"))
_NEUTRAL = ("misc", "extra", "value", "data", "info", "memo")


def corpus(events: int = 72, *, seed: int = 14) -> tuple[list[dict[str, Any]], list[Planted]]:
    """``events`` track calls of ``Order Placed`` and the values planted in them."""
    rng = random.Random(seed)
    make = _Maker(rng)
    out: list[dict[str, Any]] = []
    planted: list[Planted] = []
    categories = [*VALUE_CATEGORIES, *KEY_CATEGORIES]
    for i in range(events):
        props: dict[str, Any] = {"order_id": f"ord_{i:05d}", "reference": f"R-{i:06d}"}
        context: dict[str, Any] = {"userAgent": "Mozilla/5.0", "traits": {"plan": "pro"}}
        call = {
            "type": "track", "event": "Order Placed", "userId": f"user-{i}",
            "messageId": f"m-{i}", "timestamp": "2026-12-01T10:00:00Z",
            "properties": props, "context": context,
        }  # fmt: skip

        def plant(text: str, category: str, position: str) -> None:
            planted.append(Planted(i, text, category, position))  # noqa: B023

        position = POSITIONS[i % len(POSITIONS)]
        if position != "context":  # every call carries its client's address
            context["ip"] = make.ip()
            plant(context["ip"], "ip", "context")
        # planned keys without x-pii, one value category each (rotating per event)
        turn = i // len(POSITIONS)
        chosen = [list(VALUE_CATEGORIES)[(turn + k) % len(VALUE_CATEGORIES)] for k in range(4)]
        slots = dict(zip(chosen, _UNDECLARED_SLOTS, strict=True))
        for category in categories:
            value = getattr(make, category)()
            by_key = category in KEY_CATEGORIES
            key = KEY_CATEGORIES.get(category) or rng.choice(_NEUTRAL) + str(len(planted))
            if position == "declared":
                if by_key:
                    continue  # the plan declares no such property
                props[VALUE_CATEGORIES[category]] = value
            elif position == "undeclared":
                slot = slots.get(category)
                if slot is None:
                    continue
                _put_slot(props, slot, value)
            elif position == "unplanned":
                props[key] = value
            elif position == "nested":
                customer = props.setdefault("customer", {"tier": "gold"})
                customer.setdefault("details", {})[key] = value
            elif position == "array":
                if by_key:
                    props.setdefault("items", []).append({"sku": f"SKU-{i}", key: value})
                else:
                    props.setdefault("tags", []).append(value)
            elif position == "free_text":
                if by_key:
                    continue  # a name in prose is no detector's to find
                text = rng.choice(("please call me at {} tomorrow", "my details: {} (thanks)",
                                   "see {} for the refund", "{} is the one to use"))
                key = "message" if rng.random() < 0.5 else "note"
                props[key] = (props.get(key, "") + " " + text.format(value)).strip()
            elif position == "context":
                if category != "ip":
                    continue  # only context.ip is scanned by default beside traits
                context["ip"] = value
            elif position == "context_traits":
                context["traits"][key] = value
            plant(value, category, position)
        out.append(call)
    return out, planted


def _put_slot(props: dict[str, Any], slot: tuple[str, str | None], value: str) -> None:
    top, inner = slot
    if inner is None:
        props[top] = value
    elif top == "items":
        props[top] = [{inner: value}]
    else:
        props[top] = {inner: value}


def leaked(forwarded: list[dict[str, Any]], planted: list[Planted]) -> list[Planted]:
    """The planted values whose text appears in the forwarded event that carried them.

    ``forwarded`` holds the forwarded events (blocked ones absent), matched to the plants
    by ``messageId``.
    """
    by_id = {str(e.get("messageId")): json.dumps(e, ensure_ascii=False) for e in forwarded}
    out = []
    for p in planted:
        text = by_id.get(f"m-{p.event}")
        if text is not None and json.dumps(p.text)[1:-1] in text:
            out.append(p)
    return out
