"""A Segment tracking-plan export of a web shop (8 track events) and NDJSON events of it.

Deterministic: the same seed gives the same bytes. The export has the shapes Segment's
Public API really writes: one ``COMMON`` rule and one ``TRACK`` rule per event, each a
whole-call ``jsonSchema`` (draft-07, two rules still declaring draft-04) with
``labels``, ``context: {}``, ``traits``, ``required: ["properties"]`` and the identity
check ``anyOf: [{required: [userId]}, {required: [anonymousId]}]``.

Events look like what analytics.js sends: a ``messageId``, ISO-8601 timestamps with
milliseconds, ``userId`` or ``null`` beside an ``anonymousId`` UUID, a ``context`` with
library, page, user agent, locale and campaign, ``integrations: {}``, product lists and
some free text (search queries, reviews). About 9% break the plan (a price sent as a
string, a missing required property, a lowercase currency, a rating out of range, no
identity at all...), about 1% carry unplanned properties (omitted), and about 0.5% hold
PII in free text (an email or a phone number in a review or a search).

    python examples/segment_shop.py EXPORT.json EVENTS.ndjson [--events 100000]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

__all__ = ["EVENTS", "export", "events", "write"]

DRAFT7 = "http://json-schema.org/draft-07/schema#"
DRAFT4 = "http://json-schema.org/draft-04/schema#"
IDENTITY = [{"required": ["userId"]}, {"required": ["anonymousId"]}]

_STR = {"type": "string"}
_PRICE = {"type": "number", "minimum": 0, "description": "Price in the order's currency"}
_CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"}
_PRODUCT = {
    "type": "object",
    "properties": {
        "product_id": {"type": "string", "minLength": 1},
        "sku": _STR,
        "name": _STR,
        "brand": _STR,
        "category": _STR,
        "variant": _STR,
        "price": _PRICE,
        "quantity": {"type": "integer", "minimum": 1},
        "position": {"type": "integer", "minimum": 1},
        "coupon": _STR,
        "url": {"type": "string", "format": "uri"},
        "image_url": {"type": "string", "format": "uri"},
    },
    "required": ["product_id", "price", "quantity"],
}
_PRODUCTS = {"type": "array", "items": _PRODUCT}

#: event name -> (payload properties, required, draft)
EVENTS: dict[str, tuple[dict[str, Any], list[str], str]] = {
    "Products Searched": ({"query": {"type": "string", "maxLength": 500}}, ["query"], DRAFT7),
    "Product List Viewed": (
        {"list_id": _STR, "category": _STR, "products": _PRODUCTS}, ["list_id", "products"],
        DRAFT4,
    ),
    "Product Viewed": (
        {k: v for k, v in _PRODUCT["properties"].items() if k != "quantity"}
        | {"currency": _CURRENCY},
        ["product_id", "price", "currency"], DRAFT7,
    ),
    "Product Added": (
        _PRODUCT["properties"] | {"cart_id": _STR, "currency": _CURRENCY},
        ["cart_id", "product_id", "price", "quantity"], DRAFT7,
    ),
    "Cart Viewed": ({"cart_id": _STR, "products": _PRODUCTS}, ["cart_id", "products"], DRAFT7),
    "Checkout Started": (
        {"order_id": _STR, "value": _PRICE, "revenue": _PRICE, "shipping": _PRICE,
         "tax": _PRICE, "discount": _PRICE, "coupon": _STR, "currency": _CURRENCY,
         "products": _PRODUCTS},
        ["order_id", "value", "currency", "products"], DRAFT4,
    ),
    "Order Completed": (
        {"checkout_id": _STR, "order_id": _STR, "affiliation": _STR, "total": _PRICE,
         "subtotal": _PRICE, "revenue": _PRICE, "shipping": _PRICE, "tax": _PRICE,
         "discount": _PRICE, "coupon": _STR, "currency": _CURRENCY,
         "payment_method": {"type": "string", "enum": ["card", "paypal", "apple_pay",
                                                       "gift_card"]},
         "products": _PRODUCTS},
        ["order_id", "total", "currency", "products"], DRAFT7,
    ),
    "Product Reviewed": (
        {"product_id": _STR, "review_id": _STR, "review_body": {"type": "string",
                                                                 "maxLength": 2000},
         "rating": {"type": "integer", "minimum": 1, "maximum": 5}},
        ["product_id", "review_id", "rating"], DRAFT7,
    ),
}


def _track_schema(props: dict[str, Any], required: list[str], draft: str) -> dict[str, Any]:
    return {
        "$schema": draft,
        "type": "object",
        "labels": {"team": "web"},
        "properties": {
            "context": {},
            "traits": {"type": "object"},
            "properties": {"type": "object", "properties": props, "required": required},
        },
        "required": ["properties"],
        "anyOf": IDENTITY,
    }


def export() -> dict[str, Any]:
    """The tracking plan as Segment's Public API exports it."""
    stamp = "2025-11-03T09:12:44.000Z"
    rules: list[dict[str, Any]] = [{
        "type": "COMMON",
        "key": None,
        "version": 1,
        "jsonSchema": {
            "$schema": DRAFT7,
            "type": "object",
            "labels": {},
            "properties": {
                "context": {
                    "type": "object",
                    "properties": {
                        "library": {"type": "object",
                                    "properties": {"name": _STR, "version": _STR}},
                        "locale": _STR,
                    },
                },
                "traits": {},
                "properties": {},
            },
        },
        "createdAt": stamp, "updatedAt": stamp, "deprecatedAt": None,
    }]
    for name, (props, required, draft) in EVENTS.items():
        rules.append({
            "type": "TRACK", "key": name, "version": 1,
            "jsonSchema": _track_schema(props, required, draft),
            "createdAt": stamp, "updatedAt": stamp, "deprecatedAt": None,
        })
    return {
        "id": "tp_2vQbHk3e1mXcUo0Lw8fPZtYxR4n", "name": "Shop Web", "slug": "shop-web",
        "description": "Web storefront events", "type": "LIVE",
        "createdAt": stamp, "updatedAt": stamp, "rules": rules,
    }


# -- events ------------------------------------------------------------------------------
_CATEGORIES = ("Shoes", "Jackets", "Bags", "Accessories", "Kids", "Outdoor")
_BRANDS = ("Northpeak", "Ardent", "Lumen & Co", "Kestrel", "Fjordline")
_WORDS = ("running", "waterproof", "leather", "wool", "blue", "black", "size 42", "kids",
          "trail", "winter", "sale", "linen", "vegan", "slim fit", "backpack", "gift")
_REVIEW = (
    "Fits true to size and the colour matches the photos.",
    "Arrived quickly, but the stitching came loose after two weeks.",
    "Great value. Would buy again!",
    "Comfortable from day one; a bit warm for summer.",
    "The zip feels cheap, otherwise fine.",
    "Perfect gift, my brother loved it \u2013 merci!",
    "Not waterproof as advertised \U0001f62c",
)
_PII_TEXT = (
    "Please call me back on +44 20 7946 0958 about the order",
    "Contact jane.doe@example.com for the exchange",
    "my email is o.adeyemi@example.org",
)
_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
)
_LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "nl-NL")
_CURRENCIES = ("USD", "EUR", "GBP")


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.t = 1_730_000_000_000  # ms
        self.catalogue = [self._catalogue_item(i) for i in range(400)]

    def _id(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def _catalogue_item(self, i: int) -> dict[str, Any]:
        r = self.r
        cat = r.choice(_CATEGORIES)
        pid = f"prod_{r.getrandbits(40):010x}"
        return {
            "product_id": pid,
            "sku": f"{cat[:3].upper()}-{i:05d}",
            "name": f"{r.choice(_BRANDS)} {r.choice(_WORDS).title()} {cat}",
            "brand": r.choice(_BRANDS),
            "category": cat,
            "price": round(r.uniform(4, 400), 2),
            "url": f"https://shop.example.com/p/{pid}",
            "image_url": f"https://cdn.example.com/img/{pid}.jpg",
        }

    def _when(self) -> str:
        self.t += self.r.randint(5, 4000)
        secs, milli = divmod(self.t, 1000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{milli:03d}Z"

    def _product(self, position: int | None = None, *, qty: bool = True) -> dict[str, Any]:
        item = dict(self.r.choice(self.catalogue))
        if qty:
            item["quantity"] = self.r.choice((1, 1, 1, 2, 3))
        if position is not None:
            item["position"] = position
        if self.r.random() < 0.3:
            item["variant"] = self.r.choice(("S", "M", "L", "XL", "38", "42"))
        return item

    def _products(self, low: int, high: int, **kw: Any) -> list[dict[str, Any]]:
        return [self._product(i + 1, **kw) for i in range(self.r.randint(low, high))]

    def properties(self, name: str) -> dict[str, Any]:
        r = self.r
        cur = r.choice(_CURRENCIES)
        if name == "Products Searched":
            query = " ".join(r.sample(_WORDS, r.randint(1, 3)))
            if r.random() < 0.004:
                query = r.choice(_PII_TEXT)
            return {"query": query}
        if name == "Product List Viewed":
            cat = r.choice(_CATEGORIES)
            return {"list_id": f"list_{cat.lower()}", "category": cat,
                    "products": self._products(4, 12)}
        if name == "Product Viewed":
            p = self._product(qty=False)
            return p | {"currency": cur}
        if name == "Product Added":
            return self._product() | {"cart_id": f"cart_{r.getrandbits(32):08x}",
                                      "currency": cur}
        if name == "Cart Viewed":
            return {"cart_id": f"cart_{r.getrandbits(32):08x}", "products": self._products(1, 5)}
        products = self._products(1, 5)
        subtotal = round(sum(p["price"] * p["quantity"] for p in products), 2)
        tax = round(subtotal * 0.08, 2)
        shipping = r.choice((0, 4.95, 9.9))
        if name == "Checkout Started":
            out = {"order_id": f"ord_{r.getrandbits(48):012x}", "value": subtotal,
                   "revenue": subtotal, "shipping": shipping, "tax": tax,
                   "currency": cur, "products": products}
            if r.random() < 0.2:
                out["coupon"], out["discount"] = "WINTER10", round(subtotal * 0.1, 2)
            return out
        if name == "Order Completed":
            return {"checkout_id": self._id(), "order_id": f"ord_{r.getrandbits(48):012x}",
                    "affiliation": "Web Store", "total": round(subtotal + tax + shipping, 2),
                    "subtotal": subtotal, "revenue": subtotal, "shipping": shipping,
                    "tax": tax, "currency": cur,
                    "payment_method": r.choice(("card", "card", "paypal", "apple_pay")),
                    "products": products}
        body = r.choice(_REVIEW)
        if r.random() < 0.02:
            body = body + " " + r.choice(_PII_TEXT)
        return {"product_id": r.choice(self.catalogue)["product_id"],
                "review_id": f"rev_{r.getrandbits(32):08x}", "review_body": body,
                "rating": r.choice((5, 5, 4, 4, 3, 2, 1))}

    def event(self) -> dict[str, Any]:
        r = self.r
        name = r.choices(list(EVENTS), weights=(14, 14, 28, 12, 10, 8, 6, 8))[0]
        when = self._when()
        anon = self._id()
        user = f"usr_{r.randint(1, 30000):06d}" if r.random() < 0.45 else None
        slug = name.lower().replace(" ", "-")
        event: dict[str, Any] = {
            "type": "track",
            "event": name,
            "messageId": f"ajs-next-{r.getrandbits(128):032x}",
            "anonymousId": anon,
            "userId": user,
            "timestamp": when,
            "sentAt": when,
            "originalTimestamp": when,
            "properties": self.properties(name),
            "context": {
                "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
                "locale": r.choice(_LOCALES),
                "page": {"path": f"/{slug}", "referrer": "https://www.example.com/",
                         "search": "", "title": "Shop", "url": f"https://shop.example.com/{slug}"},
                "userAgent": r.choice(_AGENTS),
            },
            "integrations": {},
        }
        if r.random() < 0.25:
            event["context"]["campaign"] = {"name": "winter_sale", "source": "newsletter",
                                            "medium": "email"}
        self.mistake(event)
        return event

    def mistake(self, event: dict[str, Any]) -> None:
        """About 9% of events break the plan, 1% carry an unplanned property."""
        r = self.r
        props = event["properties"]
        roll = r.random()
        if roll < 0.01:
            props["experiment_arm"] = r.choice(("a", "b"))  # unplanned: omitted
            return
        if roll >= 0.10:
            return
        kind = r.randrange(8)
        if kind == 0 and "price" in props:
            props["price"] = str(props["price"])
        elif kind == 1:
            required = EVENTS[event["event"]][1]
            props.pop(r.choice(required), None)
        elif kind == 2 and "currency" in props:
            props["currency"] = props["currency"].lower()
        elif kind == 3 and "rating" in props:
            props["rating"] = 6
        elif kind == 4:
            event["userId"] = None
            event.pop("anonymousId")
        elif kind == 5 and isinstance(props.get("products"), list) and props["products"]:
            props["products"][0]["quantity"] = 0
        elif kind == 6:
            event["properties"] = None
        else:
            props.pop(EVENTS[event["event"]][1][0], None)


def events(count: int, seed: int = 17) -> list[dict[str, Any]]:
    """``count`` events (the same for the same seed)."""
    gen = _Gen(seed)
    return [gen.event() for _ in range(count)]


def write(plan_path: Path, events_path: Path, count: int, seed: int = 17) -> None:
    """Write the export and ``count`` NDJSON events."""
    plan_path.write_bytes(orjson.dumps(export(), option=orjson.OPT_INDENT_2))
    gen = _Gen(seed)
    with events_path.open("wb") as out:
        for _ in range(count):
            out.write(orjson.dumps(gen.event()) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("plan", type=Path)
    parser.add_argument("events", type=Path)
    parser.add_argument("--events", dest="count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    write(args.plan, args.events, args.count, args.seed)


if __name__ == "__main__":
    main()
