"""The QA store behind ``/trackplan/*`` (after Snowplow Micro's ``/micro/*``) and the metrics.

:class:`QaStore` keeps the last ``max_events`` good and bad events, each as the plan left it
(PII handled: the forwarded event, or the review copy of a blocked one), with its violations
and per-destination decisions; memory stays bounded whatever the traffic.
:class:`Metrics` counts what Prometheus scrapes from ``/metrics``.

With several workers each keeps its own store (nothing is exchanged per event) and
:class:`QaPeers` makes them one: the worker a QA request reaches asks the others over
Unix sockets (mode 0600, in a directory only the server's user can enter) and merges the
answers, so ``/trackplan/*`` sees every worker's events and ``reset`` clears them all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from trackplan.serve.http import HttpError, Request, Response, json_response, start
from trackplan.serve.http import close as close_server

__all__ = ["QaStore", "Metrics", "Filters", "QaPeers", "is_loopback"]

log = logging.getLogger("trackplan.serve")


def is_loopback(peer: str) -> bool:
    """Whether a client address is on this host's loopback (``127.0.0.0/8``, ``::1``)."""
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


class Filters:
    """``type``, ``event``, ``violation`` (a violation type), ``source`` and ``limit``."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        def text(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) and value else None

        self.type = text("type")
        self.event = text("event")
        self.violation = text("violation") or text("violation_type")
        self.source = text("source")
        limit = raw.get("limit")
        try:
            self.limit = int(limit) if limit is not None else None
        except (TypeError, ValueError):
            self.limit = None

    def matches(self, item: Mapping[str, Any]) -> bool:
        """Whether a stored item passes every filter given."""
        return self.matches_fields(*_fields(item))

    def matches_fields(self, kind: str | None, event: str | None, source: str | None,
                       violations: tuple[str, ...]) -> bool:
        """:meth:`matches` on the fields :class:`QaStore` keeps beside an encoded item."""
        if self.type is not None and kind != self.type:
            return False
        if self.event is not None and event != self.event:
            return False
        if self.source is not None and source != self.source:
            return False
        return self.violation is None or self.violation in violations


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def _fields(item: Mapping[str, Any]) -> tuple[str | None, str | None, str | None,
                                              tuple[str, ...]]:
    """What the filters read of an item: call type, event name, source, violation types."""
    event = item.get("event")
    event = event if isinstance(event, dict) else {}
    violations = item.get("violations", ())
    return (_text(event.get("type")), _text(event.get("event")), _text(item.get("source")),
            tuple(str(v.get("type")) for v in violations if isinstance(v, dict)))


#: One stored item: when it was recorded (ns since the epoch: the order across workers),
#: the fields the filters read, and the item as JSON. Encoded, the store holds no
#: containers the garbage collector would walk again and again under load.
_Entry = tuple[int, str | None, str | None, str | None, tuple[str, ...], bytes]


class QaStore:
    """The last good and bad events, and counts since the last reset."""

    def __init__(self, max_events: int = 10000) -> None:
        self.max_events = max_events
        self.good: deque[_Entry] = deque(maxlen=max_events)
        self.bad: deque[_Entry] = deque(maxlen=max_events)
        self.counts: Counter[str] = Counter()

    def add(self, item: dict[str, Any], *, allowed: bool, with_violations: bool) -> bytes:
        """Record one decision; returns the item encoded as JSON."""
        self.counts["received"] += 1
        self.counts["allowed" if allowed else "blocked"] += 1
        if with_violations:
            self.counts["with_violations"] += 1
        data = orjson.dumps(item)
        if self.max_events:
            (self.good if allowed else self.bad).append((time.time_ns(), *_fields(item), data))
        return data

    def all(self) -> dict[str, int]:
        """``/trackplan/all``: the counts."""
        return {k: self.counts.get(k, 0) for k in COUNTS}

    def keyed(self, which: str, filters: Filters) -> list[tuple[int, bytes]]:
        """The items :meth:`select` gives, encoded, each with its time of recording."""
        items = [(e[0], e[5]) for e in (self.good if which == "good" else self.bad)
                 if filters.matches_fields(e[1], e[2], e[3], e[4])]
        return _limited(items, filters.limit)

    def select(self, which: str, filters: Filters) -> list[dict[str, Any]]:
        """``/trackplan/good`` or ``/trackplan/bad`` with filters, oldest first."""
        return [orjson.loads(data) for _, data in self.keyed(which, filters)]

    def reset(self) -> None:
        """``/trackplan/reset``: forget everything."""
        self.good.clear()
        self.bad.clear()
        self.counts.clear()


COUNTS = ("received", "allowed", "blocked", "with_violations")


def _limited(items: list[Any], limit: int | None) -> list[Any]:
    if limit is not None and limit >= 0:
        return items[-limit:] if limit else []
    return items


class QaPeers:
    """This worker's QA socket and its peers' (none: one process, the store alone)."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.others: list[str] = []
        self.server: asyncio.Server | None = None

    def listen(self, path: str, others: Sequence[str]) -> None:
        """Bind this worker's socket at ``path`` (before forking, so peers can connect from
        the start) and remember the other workers' sockets."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(64)
        self.sock, self.others = sock, list(others)

    def forget(self) -> None:
        """Close a socket this process will not serve (another worker's)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    async def start(self, store: QaStore, metrics: Metrics | None = None) -> None:
        """Answer the peers' questions about ``store`` and ``metrics`` (when a socket is
        bound)."""
        if self.sock is None:
            return

        async def answer(request: Request) -> Response:
            try:
                raw = orjson.loads(request.body) if request.body else {}
            except orjson.JSONDecodeError:
                raise HttpError(400, "not JSON") from None
            if request.path == "/counts":
                return json_response(200, store.all())
            if request.path == "/metrics" and metrics is not None:
                return json_response(200, metrics.samples())
            if request.path in ("/good", "/bad") and isinstance(raw, dict):
                items = store.keyed(request.path[1:], Filters(raw))
                return Response(200, b"".join(b"%d\t%s\n" % pair for pair in items),
                                "application/x-ndjson")
            if request.path == "/reset":
                store.reset()
                return json_response(200, store.all())
            raise HttpError(404, "no such endpoint")

        self.server = await start(answer, sock=self.sock, cors=False)

    async def stop(self) -> None:
        """Stop answering peers."""
        if self.server is not None:
            await close_server(self.server, grace=1.0)
            self.server = None

    async def _ask(self, path: str, body: Any = None, *, raw: bool = False) -> list[Any]:
        data = orjson.dumps(body if body is not None else {})
        answers = await asyncio.gather(*(self._one(p, path, data, raw)
                                         for p in self.others))
        return [a for a in answers if a is not None]

    async def _one(self, peer: str, path: str, data: bytes, raw: bool) -> Any:
        head = (f"POST {path} HTTP/1.1\r\nHost: qa\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n").encode()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(peer), 2.0)
            try:
                writer.write(head + data)
                reply = await asyncio.wait_for(reader.read(), 10.0)
            finally:
                writer.close()
            status, _, payload = reply.partition(b"\r\n\r\n")
            if not status.startswith(b"HTTP/1.1 200"):
                raise ValueError("peer refused")
            return payload if raw else orjson.loads(payload)
        except (OSError, TimeoutError, ValueError) as exc:  # orjson's error is a ValueError
            log.warning("a worker's QA store did not answer", extra={"fields": {
                "peer": os.path.basename(peer), "error": type(exc).__name__}})
            return None

    async def counts(self, store: QaStore) -> dict[str, int]:
        """Every worker's counts, summed."""
        total = Counter(store.all())
        for other in await self._ask("/counts"):
            total.update({k: int(other.get(k, 0)) for k in COUNTS})
        return {k: total.get(k, 0) for k in COUNTS}

    async def select(self, store: QaStore, which: str, raw: Mapping[str, Any]) -> bytes:
        """Every worker's matching items as a JSON array, oldest first, the limit applied
        to the whole (items are joined as they were encoded, never decoded)."""
        filters = Filters(raw)
        items = store.keyed(which, filters)
        if self.others:
            for other in await self._ask(f"/{which}", dict(raw), raw=True):
                for line in other.splitlines():
                    when, _, data = line.partition(b"\t")
                    items.append((int(when), data))
            items.sort(key=lambda pair: pair[0])
            items = _limited(items, filters.limit)
        return b"[" + b",".join(data for _, data in items) + b"]"

    async def metrics(self, metrics: Metrics) -> str:
        """Every worker's metrics, summed, in Prometheus' text format."""
        others = await self._ask("/metrics") if self.others else []
        return metrics.render(others)

    async def reset(self, store: QaStore) -> dict[str, int]:
        """Clear every worker's store; the counts after (zeros)."""
        store.reset()
        await self._ask("/reset")
        return await self.counts(store)


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + inner + "}"


class Metrics:
    """Counters and gauges in Prometheus' text format (names only, never event values)."""

    def __init__(self) -> None:
        self.counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self.gauges: dict[str, Callable[[], list[tuple[tuple[tuple[str, str], ...], float]]]] = {}
        self.help: dict[str, str] = {}

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add ``amount`` to counter ``name`` with ``labels``."""
        self.counters[(name, tuple(sorted(labels.items())))] += amount

    def gauge(self, name: str, help_text: str,
              read: Callable[[], list[tuple[tuple[tuple[str, str], ...], float]]]) -> None:
        """Register a gauge read at scrape time."""
        self.gauges[name] = read
        self.help[name] = help_text

    def samples(self) -> list[list[Any]]:
        """Every counter and gauge now, as ``[kind, name, [[label, value], ...], value]``:
        what a worker sends the one answering a scrape (names and labels only)."""
        out: list[list[Any]] = [
            ["counter", name, [list(pair) for pair in labels], value]
            for (name, labels), value in self.counters.items()
        ]
        for name, read in self.gauges.items():
            out += [["gauge", name, [list(pair) for pair in labels], value]
                    for labels, value in read()]  # fmt: skip
        return out

    def render(self, others: Iterable[Any] = ()) -> str:
        """The exposition text: this worker's figures plus ``others``' :meth:`samples`
        (the other workers'), summed. Each worker has its own spool and outputs, so their
        lags and spool sizes add up as their counters do."""
        counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter(self.counters)
        gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for name, read in self.gauges.items():
            values = gauges[name] = {}
            for labels, value in read():
                values[labels] = values.get(labels, 0.0) + value
        for samples in others:
            for kind, name, labels, value in samples if isinstance(samples, list) else ():
                key = tuple((str(k), str(v)) for k, v in labels)
                if kind == "counter":
                    counters[(str(name), key)] += int(value)
                elif kind == "gauge" and name in gauges:
                    gauges[name][key] = gauges[name].get(key, 0.0) + float(value)
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), count in sorted(counters.items()):
            if name not in seen:
                seen.add(name)
                lines.append(f"# TYPE {name} counter")
            lines.append(f"{name}{_labels(labels)} {count}")
        for name, values in gauges.items():
            lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} gauge")
            for labels, gvalue in values.items():
                lines.append(f"{name}{_labels(labels)} {gvalue:g}")
        return "\n".join(lines) + "\n"
