"""Splitting one large NDJSON file across processes: line-aligned byte ranges, a reader of
one range, and forked workers that hand a small result back over a pipe.

Used by ``trackplan validate`` (``--jobs``): the file's first range is checked in the
process itself while forked children check the others, each writing its output to a part
file; the parent then appends the parts in order, so the output and the report are the
ones one process gives. POSIX only (``os.fork``); elsewhere ``available()`` is False.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any

from trackplan.errors import TrackplanError

__all__ = ["available", "cores", "chunk_bounds", "SliceReader", "Forked"]

#: The least bytes a range is given: below it, a process costs more than it saves.
MIN_CHUNK = 16 << 20


def available() -> bool:
    """Whether this platform can fork workers."""
    return hasattr(os, "fork")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def chunk_bounds(path: str, parts: int, min_bytes: int = MIN_CHUNK) -> list[tuple[int, int]]:
    """At most ``parts`` byte ranges ``[start, end)`` covering the file, each starting at
    the beginning of a line and (but the last) at least ``min_bytes`` long; one range when
    the file is too small to split."""
    size = os.path.getsize(path)
    parts = max(1, min(parts, size // max(1, min_bytes)))
    bounds = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            target = max(size * k // parts, bounds[-1] + 1)
            start = _next_line(fh, target, size)
            if start >= size:
                break
            bounds.append(start)
    bounds.append(size)
    return list(zip(bounds, bounds[1:], strict=False))


def _next_line(fh: IO[bytes], at: int, size: int) -> int:
    """The offset of the first line starting at or after ``at``."""
    fh.seek(at - 1)
    pos = at - 1
    while pos < size:
        block = fh.read(1 << 16)
        if not block:
            break
        found = block.find(b"\n")
        if found >= 0:
            return pos + found + 1
        pos += len(block)
    return size


class SliceReader:
    """``read1``/``read`` of the bytes ``[start, start + length)`` of an open file."""

    def __init__(self, fh: IO[bytes], start: int, length: int) -> None:
        fh.seek(start)
        self._fh = fh
        self._left = length
        self._read1 = getattr(fh, "read1", fh.read)

    def read1(self, size: int = -1, /) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        data: bytes = self._read1(want)
        self._left -= len(data)
        return data

    read = read1


def _end_with_parent(parent: int) -> None:
    """In a child: be killed when the parent dies (Linux ``PR_SET_PDEATHSIG``), so a
    killed run leaves no worker behind; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - no prctl in this libc
        return
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def _where(exc: BaseException) -> str:
    """An unexpected exception without its message: its type and the last frames."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    places = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}"
                        for f in reversed(frames))
    return f"{type(exc).__name__} at {places}" if places else type(exc).__name__


class Forked:
    """One forked child running ``fn(*args)``; :meth:`result` returns what it returned.

    A trackplan error raised there is raised again here, as it was (their messages never
    hold event values). Anything else is raised as :class:`TrackplanError` naming the
    exception's type and where it was raised, but not its message, which may quote a
    value; so is a child that ends without a result (killed, out of memory).
    """

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            os.close(read_end)
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it at once
            _end_with_parent(parent)
            status = 0
            try:
                try:
                    payload = ("ok", fn(*args))
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    status = 1
                    payload = ("error", (type(exc), str(exc)) if isinstance(
                        exc, TrackplanError) else (None, _where(exc)))
                try:
                    data = pickle.dumps(payload)
                except Exception:  # noqa: BLE001 - something that does not pickle
                    status = 1
                    data = pickle.dumps(("error", (None, "its result could not be sent")))
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(data)
            finally:
                os._exit(status)  # no atexit handlers, no flush of the parent's buffers
        os.close(write_end)
        self.pid = pid
        self._read = read_end

    def result(self) -> Any:
        read_end, self._read = self._read, -1
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        os.waitpid(self.pid, 0)
        self.pid = 0
        if not data:
            raise TrackplanError("a worker process ended without a result (killed?)")
        kind, value = pickle.loads(data)  # noqa: S301 - our own child's pipe
        if kind == "ok":
            return value
        cls, message = value
        if cls is None:
            raise TrackplanError(f"a worker process failed: {message}")
        try:
            error = cls(message)
        except Exception:  # noqa: BLE001 - an error class that takes other arguments
            error = TrackplanError(message)
        raise error

    def kill(self) -> None:
        """End the child now (after an error or an interrupt in the parent)."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = 0
        if self._read >= 0:
            os.close(self._read)
            self._read = -1
