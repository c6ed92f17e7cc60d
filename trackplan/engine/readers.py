"""Read events from NDJSON, a JSON array, or Segment batch bodies, detecting which by content.

A pretty-printed batch body spans many lines, so detection looks at whether the first line
is a complete JSON value, not at the file name.

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
from typing import IO, Any, Literal

import orjson

from trackplan.errors import InputError

__all__ = ["Item", "InputFormat", "iter_events", "iter_file", "detect_format", "INPUT_FORMATS"]

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
    stripped = data.lstrip()
    if not stripped:
        return "ndjson"
    if stripped[:1] == b"[":
        return "json"
    first, _, rest = stripped.partition(b"\n")
    try:
        value = orjson.loads(first)
    except orjson.JSONDecodeError:
        return "batch" if _looks_like_batch(stripped) else "json"
    if isinstance(value, dict) and isinstance(value.get("batch"), list) and not rest.strip():
        return "batch"
    return "ndjson"


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
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
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


def _ndjson_items(lines: IO[bytes] | list[bytes]) -> Iterator[Item]:
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Item(number, loads(line))
        except decode_error as exc:
            yield Item(number, None, f"invalid JSON: {exc}")


def iter_events(data: bytes, fmt: InputFormat = "auto") -> Iterator[Item]:
    """Events in ``data`` (bytes), in order; unreadable ones as items with ``error``."""
    chosen = detect_format(data) if fmt == "auto" else fmt
    if chosen == "ndjson":
        return _ndjson_items(data.splitlines())
    return _document_items(data, chosen)


_HEAD = 1 << 16


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
            stream = io.BufferedReader(sys.stdin.buffer, buffer_size=1 << 20)
        elif path.endswith(".gz"):
            stream = gzip.open(path, "rb")
        else:
            stream = open(path, "rb")  # noqa: SIM115 - closed below
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


def iter_file(path: str, fmt: InputFormat = "auto") -> Iterator[Item]:
    """Events of a file (``-`` for stdin; ``.gz`` decompressed), streaming NDJSON line by line.

    Raises :class:`InputError` when the file cannot be opened or read.
    """
    with reading(path) as stream:
        chosen = choose_format(stream, fmt)
        if chosen == "ndjson":
            yield from _ndjson_items(stream)
        else:
            yield from _document_items(stream.read(), chosen)
