"""The conformance events: the bundled examples, and hypothesis-generated events with PII of
every category planted in every position.

Generated events keep one JSON type per field path (a parquet or CSV column holds one type),
so every one of them can be written in every representation that holds its shape; the
type mismatches come from the examples (NDJSON surfaces). Each generated event has a
unique ``messageId`` (``m-00042``), which also identifies its row in batch outputs.

Positions PII is planted in: declared properties and traits (``email``, ``phone``,
``first_name``, ``shipping_address``), planned strings without a declaration
(``referral_code``, ``coupon``, ``sku``), properties declared not PII (a product's
``name``), unplanned properties (``notes``; a nested object ``contact``; an array
``tags``), array items (``products[].coupon``), free text (``query``, ``affiliation``),
``context.ip``, ``context.userAgent`` and ``context.traits``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

__all__ = ["EXAMPLES", "N_GENERATED", "SEED", "generated_events", "example_events", "PII_VALUES"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "events.ndjson"

#: Generated events per surface; CI runs the default, more locally with the variable.
N_GENERATED = int(os.environ.get("TRACKPLAN_CONFORMANCE_N", "1000"))
SEED = 20261207

Event = dict[str, Any]


# -- PII values of every category -------------------------------------------------------
def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counted from the check digit's left
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _card(prefix: str, digits: int, sep: str) -> str:
    length = 15 if prefix in ("34", "37") else 16
    needed = length - len(prefix) - 1
    number = _luhn_complete(prefix + str(digits).zfill(needed)[-needed:])
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return sep.join(groups)


USERS = ("jane.doe", "o.adeyemi", "maria_jose", "li.wei+shop", "k.nakamura")
DOMAINS = ("example.com", "example.org", "mail.example.net")

email = st.builds(
    lambda u, d, upper: f"{u}@{d}".title() if upper else f"{u}@{d}",
    st.sampled_from(USERS),
    st.sampled_from(DOMAINS),
    st.booleans(),
)
phone = st.sampled_from(
    (
        "+44 20 7946 0958",
        "07700 900742",
        "+1 415 555 0134",
        "(415) 555-0175",
        "+33 1 23 45 67 89",
        "+49 30 901820",
    )
)
payment_card = st.builds(
    _card,
    st.sampled_from(("4", "51", "55", "37", "6011")),
    st.integers(0, 10**14),
    st.sampled_from((" ", "-", "")),
)
iban = st.sampled_from(
    (
        "GB82 WEST 1234 5698 7654 32",
        "DE89370400440532013000",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
    )
)
ip = st.one_of(
    st.builds("203.0.113.{}".format, st.integers(1, 254)),
    st.builds("198.51.100.{}".format, st.integers(1, 254)),
    st.sampled_from(("2001:db8:85a3::8a2e:370:7334", "2001:db8::1")),
)
government_id = st.builds(
    "{:03d}-{:02d}-{:04d}".format, st.integers(100, 665), st.integers(1, 99), st.integers(1, 9999)
)
credentials = st.sampled_from(
    (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefghijABCDEFGHIJ0123456789",
    )
)
name = st.sampled_from(("Jane", "Doe", "Oluwaseun", "María José", "Nakamura"))

#: category -> strategy of values the detectors (or a declaration) should catch
PII_VALUES: dict[str, Any] = {
    "email": email,
    "phone": phone,
    "payment_card": payment_card,
    "bank_account": iban,
    "ip": ip,
    "government_id": government_id,
    "credentials": credentials,
}
any_pii = st.one_of(*PII_VALUES.values())

TEMPLATES = (
    "call me on {}",
    "contact {} please",
    "my card is {}",
    "sent from {} yesterday",
    "{}",
    "note: {} (urgent)",
)
free_text = st.builds(lambda t, v: t.format(v), st.sampled_from(TEMPLATES), any_pii)
clean_text = st.sampled_from(
    (
        "usb c cable",
        "red mug 350ml",
        "gift wrap",
        "size 42",
        "order 2026-11-01",
        "v1.2.3.4",
    )
)
clean_code = st.builds("REF-{}".format, st.integers(1, 9999))
#: a planned or unplanned string: clean, a PII value, or free text holding one
some_string = st.one_of(clean_text, clean_code, any_pii, free_text)


# -- events ----------------------------------------------------------------------------
def _opt(**fields: Any) -> Any:
    return st.fixed_dictionaries({}, optional=fields)


def _merge(req: Event, opt: Event) -> Event:
    return {**req, **opt}


#: a placeholder messageId, replaced by the event's index once drawn
_LONG = "-" + "x" * 100


def _envelope(who: str, long: bool) -> Event:
    out: Event = {"messageId": _LONG if long else "", "timestamp": "2026-11-01T08:00:00.000Z"}
    if who != "none":
        out["userId" if who == "user" else "anonymousId"] = who
    return out


def _track(
    name_: str, props: Event, extra: Event, ctx: Event, who: str, long: bool, v2: bool
) -> Event:
    event = {
        **_envelope(who, long),
        "type": "track",
        "event": name_,
        "properties": {**props, **extra},
        "context": dict(ctx),
    }
    if name_ == "Order Completed" and v2:
        event["properties"]["checkout_id"] = "c-1"
        event["context"]["protocols"] = {"event_version": 2}
        event["properties"].pop("shipping_address", None)  # not in v2
    return event


def _identify(payload: Event, extra: Event, ctx: Event, who: str, in_context: bool) -> Event:
    ctx = {k: v for k, v in ctx.items() if k != "traits"}
    event = {**_envelope(who, False), "type": "identify", "context": ctx}
    if in_context:
        event["context"]["traits"] = {**payload, **extra}
    else:
        event["traits"] = {**payload, **extra}
    return event


def event_strategy(*, valid: bool = False) -> Any:
    """One event; ``messageId`` and the user ids are filled in from its index afterwards.

    With ``valid``, only planned events and values the plan accepts (PII aside): the
    typed client's corpus, which cannot express the rest.
    """

    def pick(good: tuple[Any, ...], bad: tuple[Any, ...] = ()) -> Any:
        return st.sampled_from(good if valid else good + bad)

    def short(strategy: Any, limit: int) -> Any:  # maxLength of the plan's field
        return strategy.filter(lambda v: len(v) <= limit) if valid else strategy

    product = st.builds(
        _merge,
        st.fixed_dictionaries(
            {
                "product_id": st.builds("p-{}".format, st.integers(1, 500)),
                "price": pick((9.5, 19.99, 120.0), (-1.0,)),
            }
        ),
        _opt(
            quantity=pick((1, 2), (5000,)),
            name=st.one_of(clean_text, name, any_pii),
            coupon=short(some_string, 64),
        ),
    )
    signed_up = st.builds(
        _merge,
        st.fixed_dictionaries({"method": pick(("email", "google", "apple"), ("fax",))}),
        _opt(
            email=st.one_of(email, pick(("a@example.com",), ("not-an-email",))),
            phone=phone,
            first_name=name,
            referral_code=short(some_string, 32),
        ),
    )
    products_searched = st.fixed_dictionaries({"query": st.one_of(clean_text, free_text)})
    shipping_address = st.fixed_dictionaries(
        {
            "street": st.builds("{} High St".format, st.integers(1, 99)),
            "city": name,
            "country": pick(("GB", "FR"), ("gb",)),
        },
        optional={"postal_code": st.sampled_from(("LS1 4AP", "75001"))},
    )
    order_id = st.builds("o-{}".format, st.integers(1, 10**6))
    order_completed = st.builds(
        _merge,
        st.fixed_dictionaries(
            {
                "total": pick((12.5, 99.99), (-5.0,)),
                "currency": pick(("EUR", "USD"), ("eur",)),
                "products": st.lists(product, min_size=1 if valid else 0, max_size=3),
                **({"order_id": order_id} if valid else {}),
            }
        ),
        _opt(
            **({} if valid else {"order_id": order_id}),
            email=email,
            coupon=short(some_string, 64),
            affiliation=short(st.one_of(clean_text, free_text), 128),
            shipping_address=shipping_address,
        ),
    )
    product_added = st.builds(
        _merge,
        st.fixed_dictionaries(
            {
                "cart_id": st.builds("cart-{}".format, st.integers(1, 999)),
                "product_id": st.builds("p-{}".format, st.integers(1, 500)),
                "price": pick((9.5, 19.99), (-1.0,)),
                "quantity": pick((1, 2), (0,)),
            }
        ),
        _opt(sku=short(some_string, 64), name=st.one_of(clean_text, any_pii)),
    )
    track = {
        "Signed Up": signed_up,
        "Products Searched": products_searched,
        "Order Completed": order_completed,
        "Product Added": product_added,
    }
    if not valid:
        track["Wishlist Shared"] = st.fixed_dictionaries({"note": some_string})
    #: unplanned properties: a string, a nested object and an array
    unplanned = _opt(
        notes=some_string,
        contact=st.fixed_dictionaries({"email": email}, optional={"phone": phone}),
        tags=st.lists(some_string, min_size=1, max_size=3),
    )
    extra = st.just({}) if valid else st.one_of(st.just({}), unplanned)
    traits = _opt(
        email=email,
        phone=phone,
        first_name=name,
        last_name=name,
        plan=pick(("free", "pro"), ("gold",)),
    )
    context = st.builds(
        _merge,
        st.fixed_dictionaries(
            {
                "ip": st.one_of(ip, pick(("203.0.113.9",), ("not-an-ip",))),
                "library": st.just({"name": "analytics-python", "version": "2.4.0"}),
            }
        ),
        _opt(
            userAgent=st.one_of(st.just("Mozilla/5.0 (X11; Linux x86_64)"), free_text),
            traits=_opt(email=email, phone=phone),
        ),
    )
    identity = pick(("user", "user", "user", "anonymous"), ("none",))
    long_id = pick((False,) * 30, (True,))
    track_event = st.sampled_from(sorted(track)).flatmap(
        lambda n: st.builds(
            _track, st.just(n), track[n], extra, context, identity, long_id, st.booleans()
        )
    )
    identify_event = st.builds(
        _identify,
        traits,
        st.just({}) if valid else st.one_of(st.just({}), _opt(notes=some_string)),
        context,
        identity,
        st.just(False) if valid else st.booleans(),  # the client sends traits, not in context
    )
    return st.one_of(track_event, track_event, track_event, identify_event)


_PER_EXAMPLE = 25


def _number(event: Event, i: int) -> Event:
    event["messageId"] = f"m-{i:05d}" + event["messageId"]
    if "userId" in event:
        event["userId"] = f"u-{i % 97}"
    if "anonymousId" in event:
        event["anonymousId"] = f"anon-{i % 89}"
    return event


def _draw(n: int, valid: bool) -> list[Event]:
    drawn: list[Event] = []

    @seed(SEED)
    @settings(
        max_examples=n // _PER_EXAMPLE + 1,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(event_strategy(valid=valid), min_size=_PER_EXAMPLE, max_size=_PER_EXAMPLE))
    def draw(events: list[Event]) -> None:
        drawn.extend(events)

    draw()
    if len(drawn) < n:  # hypothesis may stop early on a small search space: say so
        raise AssertionError(f"hypothesis gave {len(drawn)} of {n} events")
    return [_number(e, i) for i, e in enumerate(drawn[:n])]


class Generation:
    """Events drawn in a fresh interpreter, started at once and collected on first use.

    Hypothesis biases its draws with constants it finds in the project's modules already
    imported, so the same seed gives other events once a test has imported more of
    trackplan; a fresh interpreter that imports only this module gives the same events
    every run. Two generations run in parallel.
    """

    def __init__(self, n: int = N_GENERATED, *, valid: bool = False) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        args = [sys.executable, "-m", "tests.conformance.events", str(n)]
        self._proc = subprocess.Popen(
            [*args, "--valid"] if valid else args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._events: list[Event] | None = None

    @property
    def events(self) -> list[Event]:
        if self._events is None:
            out, err = self._proc.communicate(timeout=600)
            assert self._proc.returncode == 0, err.decode()[-2000:]
            self._events = orjson.loads(out)
        return self._events


def generated_events(n: int = N_GENERATED, *, valid: bool = False) -> list[Event]:
    """``n`` events from :func:`event_strategy`, the same ones every run (fixed seed)."""
    return Generation(n, valid=valid).events


def example_events() -> list[Event]:
    """The bundled examples, in file order."""
    return [orjson.loads(line) for line in EXAMPLES.read_bytes().splitlines() if line.strip()]


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(_draw(int(sys.argv[1]), "--valid" in sys.argv)))
