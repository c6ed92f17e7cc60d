"""Read events from NDJSON, a JSON array, or Segment batch bodies, detecting which by content.

A pretty-printed batch body spans many lines, so detection looks at whether the first line
is a complete JSON value, not at the file name; a broken first line followed by a complete
one is NDJSON with one malformed line. A leading UTF-8 byte order mark is skipped.

Lines and documents are read at most ``max_bytes`` at a time (:data:`MAX_LINE_BYTES` by
default, also inside gzip): a longer one is reported as malformed without being held in
memory. Numbers orjson would change (integers beyond 64 bits, ``1e-400``) are read exactly
through :mod:`trackplan.engine.exactjson`.

>>> [item.event["event"] for item in iter_events(b'{"event": "A"}\\n{"event": "B"}\\n')]
['A', 'B']
"""

from __future__ import annotations

import contextlib
import gzip
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal, Protocol

import orjson

from trackplan.engine import exactjson
from trackplan.errors import InputError

__all__ = [
    "Item",
    "InputFormat",
    "iter_events",
    "iter_file",
    "iter_lines",
    "loads_line",
    "detect_format",
    "INPUT_FORMATS",
    "MAX_LINE_BYTES",
    "BOM",
]

#: The default limit of one NDJSON line or one JSON document (Segment's batch limit is
#: 500 KB; this leaves ample room while bounding memory against hostile input).
MAX_LINE_BYTES = 32 << 20
BOM = b"\xef\xbb\xbf"

InputFormat = Literal["auto", "ndjson", "json", "batch"]
INPUT_FORMATS = ("auto", "ndjson", "json", "batch")


@dataclass(frozen=True, slots=True)
class Item:
    """One input event, or the reason it could not be read.

    ``line`` is the 1-based line number for NDJSON, the 1-based item index otherwise.
    """

    line: int
    event: Any = None
    error: str | None = None


def detect_format(data: bytes) -> Literal["ndjson", "json", "batch"]:
    """Which of NDJSON, a JSON document (array or one object) or a batch body ``data`` holds."""
    stripped = data.removeprefix(BOM).lstrip()
    if not stripped:
        return "ndjson"
    if stripped[:1] == b"[":
        return "json"
    first, _, rest = stripped.partition(b"\n")
    try:
        value = orjson.loads(first)
    except orjson.JSONDecodeError:
        if _looks_like_batch(stripped):
            return "batch"
        return "ndjson" if _next_line_complete(rest) else "json"
    if isinstance(value, dict) and isinstance(value.get("batch"), list) and not rest.strip():
        return "batch"
    return "ndjson"


def _next_line_complete(rest: bytes) -> bool:
    """Whether the first non-blank line of ``rest`` is a whole JSON object (so the text
    before it was a broken NDJSON line, not the start of a pretty-printed document)."""
    for line in rest.split(b"\n", 16)[:16]:
        if line.strip():
            try:
                return isinstance(orjson.loads(line), dict)
            except orjson.JSONDecodeError:
                return False
    return False


def loads_line(line: bytes) -> Any:
    """One JSON value, numbers kept exact (orjson when it reads them without change).

    Raises:
        ValueError: not JSON (``orjson.JSONDecodeError`` is a ``ValueError``).
    """
    if exactjson.may_lose(line):
        return exactjson.loads(line)
    return orjson.loads(line)


def _looks_like_batch(data: bytes) -> bool:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and isinstance(value.get("batch"), list)


def _merge_batch(body: dict[str, Any]) -> Iterator[Item]:
    """Items of a batch body, its top-level ``context`` and ``integrations`` merged in."""
    shared_ctx = body.get("context") if isinstance(body.get("context"), dict) else None
    shared_int = body.get("integrations") if isinstance(body.get("integrations"), dict) else None
    for index, item in enumerate(body["batch"], start=1):
        if isinstance(item, dict) and (shared_ctx or shared_int):
            item = dict(item)
            if shared_ctx:
                own = item.get("context")
                item["context"] = {**shared_ctx, **own} if isinstance(own, dict) else dict(
                    shared_ctx
                )
            if shared_int:
                own = item.get("integrations")
                item["integrations"] = {**shared_int, **own} if isinstance(own, dict) else dict(
                    shared_int
                )
        yield Item(index, item)


def _document_items(data: bytes, fmt: str) -> Iterator[Item]:
    try:
        value = loads_line(data.removeprefix(BOM))
    except ValueError as exc:
        yield Item(1, None, f"invalid JSON document: {exc}")
        return
    if isinstance(value, dict) and isinstance(value.get("batch"), list):
        yield from _merge_batch(value)
    elif fmt == "batch":
        yield Item(1, None, "not a batch body: expected an object with a 'batch' array")
    elif isinstance(value, list):
        for index, item in enumerate(value, start=1):
            yield Item(index, item)
    else:
        yield Item(1, value)


def _ndjson_items(lines: IO[bytes] | list[bytes], max_bytes: int = MAX_LINE_BYTES
                  ) -> Iterator[Item]:
    for number, line in iter_lines(lines, max_bytes):
        if line is None:
            yield Item(number, None, f"line longer than {max_bytes} bytes")
            continue
        if not line.strip():
            continue
        try:
            yield Item(number, loads_line(line))
        except ValueError as exc:
            yield Item(number, None, f"invalid JSON: {exc}")


class Readable(Protocol):
    """What the line reader needs of a stream (a binary file, or a slice of one)."""

    def read(self, size: int = -1, /) -> bytes: ...


def iter_lines(lines: Readable | list[bytes], max_bytes: int = MAX_LINE_BYTES, *,
               bom: bool = True) -> Iterator[tuple[int, bytes | None]]:
    """``(number, line)`` for each line (the first without a byte order mark, unless
    ``bom`` is false: a stream that starts inside a file); ``None`` for a line longer than
    ``max_bytes``, which is skipped without being kept in memory.

    Lines keep their ``\\n`` (the last one may have none); only ``\\n`` ends a line.
    """
    if not isinstance(lines, list):
        yield from _stream_lines(lines, max_bytes, bom=bom)
        return
    number = 0
    for chunk in lines:
        number += 1
        if number == 1:
            chunk = chunk.removeprefix(BOM)
        if len(chunk) > max_bytes and not (len(chunk) == max_bytes + 1 and chunk[-1:] == b"\n"):
            yield number, None
            continue
        yield number, chunk


_BLOCK = 1 << 20  # bytes read at a time: lines are cut from blocks, not read one by one


def _stream_lines(stream: Readable, max_bytes: int, *, bom: bool = True
                  ) -> Iterator[tuple[int, bytes | None]]:
    """:func:`iter_lines` of a stream, read in blocks (a line longer than ``max_bytes`` is
    dropped as it is read: at most ``max_bytes`` plus a block are held)."""
    # read1: what is there (at most a block), so lines piped in slowly are not held back
    read = getattr(stream, "read1", stream.read)
    number = 0
    rest = b""
    skipping = False  # inside a line already reported as too long
    first = bom
    while True:
        block = read(_BLOCK)
        if not block:
            break
        if first:
            first = False
            if len(block) < len(BOM) and BOM.startswith(block):
                block += read(len(BOM) - len(block))  # a BOM split across reads
            block = block.removeprefix(BOM)
        data = rest + block if rest else block
        find = data.find
        pos = 0
        while True:
            end = find(b"\n", pos)
            if end < 0:
                break
            if skipping:
                skipping = False
            else:
                number += 1
                if end - pos > max_bytes:
                    yield number, None
                else:
                    yield number, data[pos : end + 1]
            pos = end + 1
        if skipping:
            rest = b""
        else:
            rest = data[pos:] if pos else data
            if len(rest) > max_bytes:  # no newline yet and already too long: drop it
                number += 1
                yield number, None
                skipping = True
                rest = b""
    if rest:
        number += 1
        yield number, None if len(rest) > max_bytes else rest


def iter_events(data: bytes, fmt: InputFormat = "auto", *, max_bytes: int = MAX_LINE_BYTES
                ) -> Iterator[Item]:
    """Events in ``data`` (bytes), in order; unreadable ones as items with ``error``."""
    chosen = detect_format(data) if fmt == "auto" else fmt
    if chosen == "ndjson":
        return _ndjson_items(data.splitlines(keepends=True), max_bytes)
    if len(data) > max_bytes:
        return iter([Item(1, None, f"JSON document longer than {max_bytes} bytes")])
    return _document_items(data, chosen)


def read_document(stream: Any, max_bytes: int = MAX_LINE_BYTES) -> bytes | None:
    """The rest of ``stream``, or None when it holds more than ``max_bytes``."""
    data: bytes = stream.read(max_bytes + 1)
    return None if len(data) > max_bytes else data


_HEAD = 1 << 16
_BUFFER = 1 << 20  # a large read buffer halves the cost of reading a line


def choose_format(stream: Any, fmt: InputFormat = "auto") -> str:
    """``fmt``, or for ``auto`` the format of a buffered ``stream`` without consuming it:
    decided on the first line when it is complete, else one long document (``json``)."""
    if fmt != "auto":
        return fmt
    head = stream.peek(_HEAD)[:_HEAD] if hasattr(stream, "peek") else b""
    if b"\n" in head.lstrip() or len(head) < _HEAD:
        return detect_format(head)
    return "json"


@contextlib.contextmanager
def reading(path: str) -> Iterator[Any]:
    """A buffered binary stream of ``path`` (``-`` for stdin; ``.gz`` decompressed), closed
    afterwards; read errors inside the block become :class:`InputError`.

    Raises :class:`InputError` when the file cannot be opened.
    """
    try:
        stream: Any
        if path == "-":
            if sys.stdin is None:
                raise InputError("-: standard input is closed")
            stream = io.BufferedReader(sys.stdin.buffer, buffer_size=1 << 20)
        elif path.endswith(".gz"):
            stream = gzip.open(path, "rb")
        else:
            stream = open(path, "rb", buffering=_BUFFER)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        yield stream
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except EOFError:
        raise InputError(f"{path}: truncated compressed file") from None
    finally:
        if path != "-":
            stream.close()


def iter_file(path: str, fmt: InputFormat = "auto", *, max_bytes: int = MAX_LINE_BYTES
              ) -> Iterator[Item]:
    """Events of a file (``-`` for stdin; ``.gz`` decompressed), streaming NDJSON line by line.

    Raises :class:`InputError` when the file cannot be opened or read.
    """
    with reading(path) as stream:
        chosen = choose_format(stream, fmt)
        if chosen == "ndjson":
            yield from _ndjson_items(stream, max_bytes)
        else:
            data = read_document(stream, max_bytes)
            if data is None:
                yield Item(1, None, f"JSON document longer than {max_bytes} bytes")
            else:
                yield from _document_items(data, chosen)
