"""A small HTTP/1.1 server on asyncio streams: what the gateway needs and nothing more.

Keep-alive, ``Content-Length`` and chunked bodies, ``Expect: 100-continue``, a cap on the
header block and on the body, and timeouts for slow clients (a client that trickles its
headers or body is answered ``408`` and disconnected). Handlers are coroutines taking a
:class:`Request` and returning a :class:`Response`; a :class:`HttpError` raised anywhere
becomes a JSON error answer. Chosen over aiohttp and uvicorn by ``benchmarks/bench_serve.py``
(see benchmarks/README.md): no dependency, and the gateway's cost is in the plan, not here.

>>> server = await start(handler, host="127.0.0.1", port=0)     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import orjson

__all__ = ["Request", "Response", "HttpError", "Limits", "Handler", "start", "json_response"]


@dataclass(slots=True)
class Request:
    """One request: method, path (without the query), query string, lower-cased headers."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    peer: str = ""


@dataclass(slots=True)
class Response:
    """One answer; ``headers`` are extra headers beside the length, type and CORS ones."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class HttpError(Exception):
    """An error answer: ``status`` and a message that never holds request values."""

    def __init__(self, status: int, message: str, *,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that keep one client from holding the process: sizes in bytes, times in seconds."""

    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    #: open connections at most; one more is answered 503 (SDKs retry it) and closed,
    #: so memory stays bounded: about max_connections x max_body_bytes at worst
    max_connections: int = 1024


Handler = Callable[[Request], Awaitable[Response]]

_REASONS = {s.value: s.phrase for s in HTTPStatus}

log = logging.getLogger("trackplan.serve")


def json_response(status: int, value: object, *, headers: list[tuple[str, str]] | None = None
                  ) -> Response:
    """A JSON answer."""
    return Response(status, orjson.dumps(value), "application/json", headers or [])


def _error(status: int, message: str, headers: list[tuple[str, str]] | None = None
           ) -> Response:
    # ``code`` and ``message`` as Segment answers (segment-analytics-python reads both)
    code = _REASONS.get(status, "error").lower().replace(" ", "_")
    return json_response(status, {"success": False, "code": code, "message": message,
                                  "error": message}, headers=list(headers or []))


def _encode(response: Response, *, keep_alive: bool, cors_origin: str | None) -> bytes:
    reason = _REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Length: {len(response.body)}",
        f"Content-Type: {response.content_type}",
    ]
    if not keep_alive:
        lines.append("Connection: close")
    if cors_origin is not None:
        lines.append(f"Access-Control-Allow-Origin: {cors_origin}")
        lines.append("Vary: Origin")
    lines.extend(f"{k}: {v}" for k, v in response.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


def _parse_head(head: bytes) -> tuple[str, str, str, str, dict[str, str]]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise HttpError(400, "request head is not readable") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path, _, query = target.partition("?")
    return method, path, query, version, headers


async def _read_chunked(reader: asyncio.StreamReader, cap: int) -> bytes:
    out = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(400, "malformed chunk size") from None
        if size < 0 or len(out) + size > cap:
            raise HttpError(400, f"request body exceeds {cap} bytes")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers: ignored
            return bytes(out)
        out += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError(400, "malformed chunk")


async def _read_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str],
    limits: Limits,
) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return await _read_chunked(reader, limits.max_body_bytes)
    length_text = headers.get("content-length")
    if length_text is None:
        return b""
    try:
        length = int(length_text)
    except ValueError:
        raise HttpError(400, "malformed Content-Length") from None
    if length < 0:
        raise HttpError(400, "malformed Content-Length")
    if length > limits.max_body_bytes:
        raise HttpError(400, f"request body exceeds {limits.max_body_bytes} bytes")
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return await reader.readexactly(length) if length else b""


class _Connection:
    """Serves the requests of one connection in turn until it closes or misbehaves."""

    def __init__(self, handler: Handler, limits: Limits, cors: bool) -> None:
        self.handler = handler
        self.limits = limits
        self.cors = cors
        #: open connections: closed by :func:`close` (an asyncio server keeps them open)
        self.open: set[asyncio.Task[None]] = set()
        #: connections waiting for a request (none in progress): safe to cancel
        self.idle: set[asyncio.Task[None]] = set()
        self.closing = False

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self.open) >= self.limits.max_connections:
            busy = _error(503, "too many connections; retry later")
            busy.headers.append(("Retry-After", "1"))
            try:
                await self._send(writer, busy, keep_alive=False, origin=None)
            except ConnectionError:
                pass
            writer.close()
            return
        if task is not None:
            self.open.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self.open.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_text = str(peer[0]) if isinstance(peer, tuple) else ""
        limits = self.limits
        first = True
        task = asyncio.current_task()
        try:
            while not self.closing:
                wait = limits.header_timeout if first else limits.keepalive_timeout
                if task is not None:
                    self.idle.add(task)
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send(writer, _error(431, "request header block too large"),
                                     keep_alive=False, origin=None)
                    return
                except TimeoutError:
                    if not first:
                        return  # idle keep-alive connection: close quietly
                    await self._send(writer, _error(408, "request header timeout"),
                                     keep_alive=False, origin=None)
                    return
                finally:
                    if task is not None:
                        self.idle.discard(task)
                first = False
                keep_alive, origin, read = True, None, False
                try:
                    method, path, query, version, headers = _parse_head(head[:-4])
                    origin = headers.get("origin") if self.cors else None
                    if self.cors and origin is None:
                        origin = "*"
                    conn = headers.get("connection", "").lower()
                    keep_alive = (conn != "close") if version == "HTTP/1.1" else (
                        conn == "keep-alive")
                    try:
                        body = await asyncio.wait_for(
                            _read_body(reader, writer, headers, limits), limits.body_timeout
                        )
                    except TimeoutError:
                        raise HttpError(408, "request body timeout") from None
                    except asyncio.IncompleteReadError:
                        return
                    except asyncio.LimitOverrunError:
                        raise HttpError(400, "malformed chunked body") from None
                    read = True
                    response = await self.handler(
                        Request(method, path, query, headers, body, peer_text)
                    )
                except HttpError as exc:
                    # a body partly unread leaves the connection unusable; once it was
                    # read (the handler refused it), the client may send the next request
                    response = _error(exc.status, exc.message, exc.headers)
                    keep_alive = keep_alive and read
                except Exception as exc:  # noqa: BLE001 - a bug must not kill the server
                    log.error("request failed", extra={"fields": {
                        "error": type(exc).__name__}})  # the type only: no event values
                    response, keep_alive = _error(500, "internal error"), False
                keep_alive = keep_alive and not self.closing
                await self._send(writer, response, keep_alive=keep_alive, origin=origin)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, response: Response, *,
                    keep_alive: bool, origin: str | None) -> None:
        writer.write(_encode(response, keep_alive=keep_alive, cors_origin=origin))
        await writer.drain()


async def start(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits | None = None,
    cors: bool = True,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
) -> asyncio.Server:
    """Start serving ``handler`` on ``host:port`` (or an already bound ``sock``)."""
    limits = limits or Limits()
    conn = _Connection(handler, limits, cors)
    if sock is not None:
        server = await asyncio.start_server(conn, sock=sock, limit=limits.max_header_bytes)
    else:
        server = await asyncio.start_server(
            conn, host=host, port=port, limit=limits.max_header_bytes,
            reuse_port=reuse_port or None, backlog=1024,
        )
    _CONNECTIONS[server] = conn
    return server


_CONNECTIONS: dict[asyncio.Server, _Connection] = {}


async def close(server: asyncio.Server, *, grace: float = 5.0) -> None:
    """Stop listening, let requests in progress finish (up to ``grace`` seconds; an idle
    keep-alive connection is closed at once), then close every connection."""
    server.close()
    conn = _CONNECTIONS.pop(server, None)
    if conn is not None and conn.open:
        conn.closing = True
        for task in list(conn.idle):
            task.cancel()
        tasks = list(conn.open)
        _, late = await asyncio.wait(tasks, timeout=grace)  # requests in progress finish
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)
    await server.wait_closed()


def bound_port(server: asyncio.Server) -> int:
    """The port a started server listens on."""
    return int(server.sockets[0].getsockname()[1])


__all__ += ["bound_port", "close"]
