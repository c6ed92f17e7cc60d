"""Where the gateway delivers: HTTP forwarding, rotated NDJSON files, the quarantine.

Each output reads the spool from its own cursor, in spool order (so in order per source),
and saves the cursor only after the delivery is confirmed: at least once, with the same
``messageId`` on a repeat. A failing output is retried with exponential backoff and jitter
and holds no other output back.

- :class:`HttpOutput`: ``POST {url}`` a Segment batch (``{"batch": [...], "sentAt": ...}``,
  HTTP Basic with the write key read from ``write_key_env``), at most ``batch_events``
  events or about 450 KB per request. 408, 429 and 5xx (and network errors, timeouts) are
  retried; another 4xx is final: the batch is counted as rejected and skipped.
- :class:`FileOutput`: NDJSON files ``<prefix>-<UTC time>-<n>.ndjson`` rotated by size and
  age, flushed and fsynced before the cursor moves; the quarantine is one too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackplan.errors import MissingSecretError
from trackplan.serve.intake import iso_now
from trackplan.serve.spool import Position, Spool

__all__ = ["Output", "HttpOutput", "FileOutput", "Deliverer", "FinalError", "RetryPolicy"]

log = logging.getLogger("trackplan.serve")

_BATCH_BYTES = 450 * 1024


class FinalError(Exception):
    """A delivery the receiver refused for good (a 4xx other than 408 and 429)."""


class Output:
    """Something events are delivered to; ``deliver`` raises to ask for a retry."""

    name: str = ""
    batch_events: int = 100

    async def deliver(self, events: list[bytes]) -> None:  # pragma: no cover - abstract
        """Deliver events, each one JSON document as bytes (as spooled: never re-encoded)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release files and connections."""


class HttpOutput(Output):
    """Forward to a Segment-compatible ``/v1/batch`` endpoint."""

    def __init__(
        self, name: str, url: str, *, write_key_env: str | None = None,
        batch_events: int = 100, timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.url = url
        self.batch_events = batch_events
        self.timeout = timeout
        self.auth: str | None = None
        if write_key_env:
            key = os.environ.get(write_key_env)
            if not key:
                raise MissingSecretError(
                    f"output {name!r}: set {write_key_env} to the upstream write key"
                )
            self.auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode("ascii")

    def _post(self, body: bytes) -> int:
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        if self.auth:
            request.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                answer.read()
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    async def deliver(self, events: list[bytes]) -> None:
        chunk: list[bytes] = []
        size = 0
        for raw in events:
            if chunk and size + len(raw) > _BATCH_BYTES:
                await self._send(chunk)
                chunk, size = [], 0
            chunk.append(raw)
            size += len(raw) + 1
        if chunk:
            await self._send(chunk)

    async def _send(self, chunk: list[bytes]) -> None:
        body = (b'{"batch":[' + b",".join(chunk) + b'],"sentAt":"'
                + iso_now().encode() + b'"}')
        status = await asyncio.to_thread(self._post, body)
        if status in (408, 429) or status >= 500:
            raise ConnectionError(f"upstream answered {status}")
        if status >= 400:
            raise FinalError(f"upstream answered {status}")


class FileOutput(Output):
    """Rotated NDJSON files in ``directory``."""

    def __init__(
        self, name: str, directory: str | Path, *, prefix: str | None = None,
        rotate_bytes: int = 64 * 1024 * 1024, rotate_seconds: float = 3600.0,
        batch_events: int = 1000,
    ) -> None:
        self.name = name
        self.dir = Path(directory)
        self.prefix = prefix or name
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.batch_events = batch_events
        self._fh: Any = None
        self._opened = 0.0
        self._size = 0
        self._count = 0

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        while True:
            self._count += 1
            path = self.dir / f"{self.prefix}-{stamp}-{os.getpid()}-{self._count:04d}.ndjson"
            if not path.exists():
                break
        self._fh = open(path, "ab")  # noqa: SIM115 - held open across deliveries
        self._opened = time.monotonic()
        self._size = 0

    def _write(self, data: bytes) -> None:
        if self._fh is not None and (
            self._size >= self.rotate_bytes
            or time.monotonic() - self._opened >= self.rotate_seconds
        ):
            self._fh.close()
            self._fh = None
        if self._fh is None:
            self._open()
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._size += len(data)

    async def deliver(self, events: list[bytes]) -> None:
        data = b"\n".join(events) + b"\n"
        await asyncio.to_thread(self._write, data)

    async def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, between ``initial`` and ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1, 2, ...)."""
        return random.uniform(0, min(self.maximum, self.initial * 2 ** (attempt - 1)))


class Deliverer:
    """Moves one output's records from the spool to the output, cursor by cursor."""

    def __init__(
        self, spool: Spool, output: Output, *, retry: RetryPolicy | None = None,
        on_delivered: Callable[[str, int], None] | None = None,
        on_failure: Callable[[str, str], None] | None = None,
        on_advance: Callable[[], None] | None = None,
        read_bytes: int = 512 * 1024,
        cursor_seconds: float = 0.2,
    ) -> None:
        self.spool = spool
        #: while busy the cursor is saved at most this often (a save is a file write and a
        #: rename); always when the output catches up and on stop. A cursor saved late only
        #: means events delivered again after a crash, with the same messageId.
        self.cursor_seconds = cursor_seconds
        self._saved: tuple[float, Position] = (0.0, (0, 0))
        self.output = output
        self.retry = retry or RetryPolicy()
        self.position: Position = (0, 0)  # read from the cursor file when run() starts
        self.on_delivered = on_delivered
        self.on_failure = on_failure
        self.on_advance = on_advance
        self.read_bytes = read_bytes
        self.stopping = False

    @property
    def lag(self) -> int:
        """Spool bytes not yet delivered."""
        return self.spool.lag(self.position)

    def caught_up(self) -> bool:
        """True when every spooled record has been delivered."""
        return self.position == self.spool.end() or self.lag == 0

    def _events(self, lines: list[bytes]) -> list[bytes]:
        """This output's events among spool records (``<output>\\t<json>``), unparsed."""
        prefix = self.output.name.encode() + b"\t"
        cut = len(prefix)
        return [line[cut:] for line in lines if line.startswith(prefix)]

    async def run(self) -> None:
        """Deliver until stopped (after a drain: when stopped and caught up)."""
        self.position = self.spool.load_cursor(self.output.name)
        self._saved = (time.monotonic(), self.position)
        while True:
            lines, after = self.spool.read(self.position, self.read_bytes)
            if not lines:
                if self.stopping:
                    self._save()
                    return
                if time.monotonic() - self._saved[0] >= self.cursor_seconds:
                    self._save()  # caught up: record where (idle: within the wait below)
                self.position = after
                await self.spool.wait(0.5)
                continue
            events = self._events(lines)
            size = self.output.batch_events
            for start in range(0, len(events), size):
                await self._deliver(events[start:start + size])
            self.position = after
            if time.monotonic() - self._saved[0] >= self.cursor_seconds:
                self._save()
            if self.on_advance:
                self.on_advance()

    def _save(self) -> None:
        if self._saved[1] != self.position:
            self.spool.save_cursor(self.output.name, self.position)
            self._saved = (time.monotonic(), self.position)

    async def _deliver(self, events: list[bytes]) -> None:
        attempt = 0
        while True:
            try:
                await self.output.deliver(events)
                if self.on_delivered:
                    self.on_delivered(self.output.name, len(events))
                return
            except FinalError as exc:
                log.error("output refused a batch", extra={
                    "fields": {"output": self.output.name, "events": len(events),
                               "error": str(exc)}})
                if self.on_failure:
                    self.on_failure(self.output.name, "rejected")
                return
            except (OSError, TimeoutError, ConnectionError) as exc:
                attempt += 1
                if self.on_failure:
                    self.on_failure(self.output.name, "retry")
                log.warning("output delivery failed; retrying", extra={
                    "fields": {"output": self.output.name, "attempt": attempt,
                               "error": type(exc).__name__}})
                await asyncio.sleep(self.retry.delay(attempt))
