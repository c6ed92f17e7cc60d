"""Segment's HTTP Tracking API as the SDKs use it: paths, write keys, bodies, limits, stamps.

Everything here turns one request into the events it carries, or a 4xx answer:

- paths ``/v1/{track,identify,page,screen,group,alias,batch}`` and analytics.js's short
  ``/v1/{t,i,p,s,g,a,b}``;
- the write key from HTTP Basic (``writeKey:``), else the body's ``writeKey`` (analytics.js,
  also beside a bearer token);
- JSON whatever the ``Content-Type``; ``Content-Encoding: gzip`` decoded with a cap on the
  decompressed size (a gzip bomb is refused, not inflated);
- Segment's limits: 32 KB per call and per event inside a batch, 500 KB per batch request,
  2,500 events per batch; all answered ``400``;
- batch-level ``context`` and ``integrations`` merged into each item, ``receivedAt`` stamped,
  ``messageId`` given when missing, and ``timestamp`` corrected for the client's clock as
  Segment does: ``timestamp = receivedAt - (sentAt - originalTimestamp)``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from trackplan.serve.http import HttpError

__all__ = [
    "CALL_LIMIT",
    "BATCH_LIMIT",
    "MAX_BATCH_EVENTS",
    "CALL_TYPES",
    "Intake",
    "call_type",
    "decode_body",
    "write_key",
    "parse",
    "iso_now",
]

CALL_LIMIT = 32 * 1024
BATCH_LIMIT = 500 * 1024
MAX_BATCH_EVENTS = 2500

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")
_PATHS = {f"/v1/{t}": t for t in (*CALL_TYPES, "batch")}
_PATHS.update({f"/v1/{t[0]}": t for t in (*CALL_TYPES, "batch")})


def call_type(path: str) -> str | None:
    """``track`` ... ``alias`` or ``batch`` for a tracking path; None for any other path."""
    return _PATHS.get(path.rstrip("/") if len(path) > 4 else path)


def decode_body(body: bytes, encoding: str, *, cap: int) -> bytes:
    """The body, gunzipped when ``Content-Encoding`` says so, never beyond ``cap`` bytes."""
    enc = encoding.strip().lower()
    if not enc or enc == "identity":
        if len(body) > cap:
            raise HttpError(400, f"request body exceeds {cap} bytes")
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise HttpError(400, f"unsupported Content-Encoding {enc[:20]!r}; use gzip")
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, cap + 1)
    except zlib.error:
        raise HttpError(400, "request body is not valid gzip") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise HttpError(400, f"decompressed request body exceeds {cap} bytes")
    return out


def write_key(headers: dict[str, str], body: Any) -> str | None:
    """The write key: HTTP Basic ``writeKey:``, else the body's ``writeKey``."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "basic" and token:
        try:
            user = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise HttpError(400, "malformed Basic authorization header") from None
        key = user.partition(":")[0]
        if key:
            return key
    if type(body) is dict:
        found = body.get("writeKey")
        if type(found) is str and found:
            return found
    return None


def iso_now() -> str:
    """Now in UTC, as Segment writes ``receivedAt`` (milliseconds, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if type(value) is not str or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Intake:
    """What one request carries: the write key (None when absent) and its events."""

    key: str | None
    events: list[Any]


class _MessageIds:
    """``trackplan-<random per process>-<n>``: unique without a uuid4 per event; a forked
    worker draws its own prefix."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = f"trackplan-{uuid.uuid4().hex[:20]}-"
        self.count = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.count)}"


_IDS = _MessageIds()


def _stamp(event: dict[str, Any], received: datetime, received_text: str,
           sent_at: datetime | None) -> None:
    event["receivedAt"] = received_text
    if not event.get("messageId"):
        event["messageId"] = _IDS.next()
    if "sentAt" in event:
        sent_at = _parse_time(event["sentAt"])
    original = event.get("timestamp")
    stamp = _parse_time(original)
    if stamp is None:
        if original is None:
            event["timestamp"] = received_text
        return  # an unreadable timestamp stays as sent: the plan may flag it
    if sent_at is not None:
        event["originalTimestamp"] = original
        event["timestamp"] = _iso(received - (sent_at - stamp))


def parse(kind: str, raw: bytes, headers: dict[str, str]) -> Intake:
    """The events of one tracking request (``kind``: a call type or ``batch``).

    Raises:
        HttpError: 400 for invalid JSON, sizes beyond Segment's limits or a body that is
            not what the path expects.
    """
    limit = BATCH_LIMIT if kind == "batch" else CALL_LIMIT
    if len(raw) > limit:
        raise HttpError(400, f"request body exceeds {limit // 1024} KB")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"invalid JSON ({exc.msg} at char {exc.pos})") from None
    if type(body) is not dict:
        raise HttpError(400, "request body must be a JSON object")
    try:
        orjson.dumps(body)  # in C: refuses what nests deeper than orjson can write (254)
    except TypeError:
        raise HttpError(400, "JSON nests too deep to be forwarded") from None
    key = write_key(headers, body)
    received = datetime.now(UTC)
    received_text = _iso(received)
    sent = _parse_time(body.get("sentAt"))
    if kind != "batch":
        body.pop("writeKey", None)
        body.setdefault("type", kind)
        _stamp(body, received, received_text, sent)
        return Intake(key, [body])
    items = body.get("batch")
    if type(items) is not list:
        raise HttpError(400, "a batch request needs a 'batch' array")
    if len(items) > MAX_BATCH_EVENTS:
        raise HttpError(400, f"a batch holds at most {MAX_BATCH_EVENTS} events")
    shared_ctx = body.get("context")
    shared_int = body.get("integrations")
    measure = len(raw) > CALL_LIMIT
    events: list[Any] = []
    for index, item in enumerate(items):
        if type(item) is not dict:
            events.append(item)  # the plan blocks it as a malformed envelope
            continue
        if measure and len(orjson.dumps(item)) > CALL_LIMIT:
            raise HttpError(400, f"event {index} of the batch exceeds 32 KB")
        if type(shared_ctx) is dict:
            own = item.get("context")
            item["context"] = {**shared_ctx, **own} if type(own) is dict else dict(shared_ctx)
        if type(shared_int) is dict:
            own = item.get("integrations")
            item["integrations"] = (
                {**shared_int, **own} if type(own) is dict else dict(shared_int)
            )
        _stamp(item, received, received_text, sent)
        events.append(item)
    return Intake(key, events)
