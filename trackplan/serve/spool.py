"""The append-only spool: every event answered ``200`` is written here first.

Records are lines ``<output>\t<JSON>`` (what one output receives of one event, encoded
once) in numbered segment files (``000000000001.log``, ...). Each output
keeps a cursor (segment, offset) in ``cursors/<output>``, saved by atomic rename after the
output confirmed delivery; on restart an output resumes from its cursor, so an event is
delivered at least once, and a repeat carries the same ``messageId`` (stamped before the
spool). A segment every cursor has passed is deleted.

Fsync policy (``fsync``):

- ``always`` (default): the answer waits until the record is on disk; concurrent requests
  share one ``fsync`` (group commit), so the cost is one disk flush per round, not per
  request. Survives a process kill and a power cut.
- ``interval``: records are written before the answer and flushed every 100 ms. Survives a
  process kill (the kernel holds the written bytes); a power cut may lose the last 100 ms.
- ``never``: the kernel flushes when it likes. Survives a process kill only.

A crash can leave a partial last line; :meth:`Spool.open` cuts it off (it was never
acknowledged: the answer is sent only after the whole write).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["FSYNC_POLICIES", "Position", "Spool"]

FSYNC_POLICIES = ("always", "interval", "never")
_SUFFIX = ".log"

Position = tuple[int, int]


def _segment_name(number: int) -> str:
    return f"{number:012d}{_SUFFIX}"


class Spool:
    """One process's spool directory. Not shared between processes: a spool per worker."""

    def __init__(
        self, directory: str | Path, *, fsync: str = "always",
        segment_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}")
        self.dir = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._fd = -1
        self._segment = 0
        self._oldest = 0
        self._size = 0
        self._written = 0  # bytes written since start (all segments)
        self._synced = 0
        self._sync_task: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._interval_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Create or recover the directory; cut a partial last record off."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "cursors").mkdir(exist_ok=True)
        segments = self.segments()
        self._segment = segments[-1] if segments else 1
        self._oldest = segments[0] if segments else 1
        path = self.dir / _segment_name(self._segment)
        if path.exists():
            data = path.read_bytes()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                with open(path, "r+b") as fh:
                    fh.truncate(keep)
                    os.fsync(fh.fileno())
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._sync_dir()

    def start_interval(self) -> None:
        """Under the ``interval`` policy, flush every 100 ms (call inside the event loop)."""
        if self.fsync == "interval" and self._interval_task is None:
            self._interval_task = asyncio.get_running_loop().create_task(self._every())

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self._synced < self._written:
                await self._sync()

    def close(self) -> None:
        """Flush and close the current segment."""
        if self._interval_task is not None:
            self._interval_task.cancel()
            self._interval_task = None
        if self._fd >= 0:
            if self.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def _sync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- writing ---------------------------------------------------------------------------
    def segments(self) -> list[int]:
        """Numbers of the segment files present, oldest first."""
        out = []
        for p in self.dir.glob(f"*{_SUFFIX}"):
            if p.stem.isdigit():
                out.append(int(p.stem))
        return sorted(out)

    def _rotate(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._segment += 1
        self._fd = os.open(
            self.dir / _segment_name(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        self._size = 0
        self._sync_dir()

    async def append(self, data: bytes) -> None:
        """Append whole records (``data`` ends with a newline); durable per the policy on return."""
        if not data:
            return
        if self._size and self._size + len(data) > self.segment_bytes:
            self._rotate()
        view = memoryview(data)
        while view:
            done = os.write(self._fd, view)
            view = view[done:]
        self._size += len(data)
        self._written += len(data)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self.fsync == "always":
            target = self._written
            while self._synced < target:
                task = self._sync_task
                if task is None:
                    task = self._sync_task = asyncio.get_running_loop().create_task(self._sync())
                await asyncio.shield(task)

    async def _sync(self) -> None:
        target, fd = self._written, self._fd
        try:
            await asyncio.to_thread(os.fdatasync, fd)
            self._synced = max(self._synced, target)
        finally:
            self._sync_task = None

    async def wait(self, timeout: float) -> None:
        """Wait until something is appended (or ``timeout`` seconds pass)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass

    # -- reading ---------------------------------------------------------------------------
    def end(self) -> Position:
        """Where the next record will be written."""
        return (self._segment, self._size)

    def first(self) -> Position:
        """The oldest position still in the spool."""
        segments = self.segments()
        return (segments[0] if segments else self._segment, 0)

    def read(self, pos: Position, max_bytes: int) -> tuple[list[bytes], Position]:
        """Whole records from ``pos`` (about ``max_bytes`` of them) and the position after."""
        segment, offset = pos
        while True:
            path = self.dir / _segment_name(segment)
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(max_bytes)
                    if data and not data.endswith(b"\n"):
                        cut = data.rfind(b"\n") + 1
                        if cut == 0:  # one record larger than max_bytes
                            data += fh.readline()
                            cut = data.rfind(b"\n") + 1
                        data = data[:cut]
            except FileNotFoundError:
                data = b""
            if data:
                return data.splitlines(), (segment, offset + len(data))
            if segment >= self._segment:
                return [], (segment, offset)
            segment, offset = segment + 1, 0  # this segment is done: go on to the next

    def lag(self, pos: Position) -> int:
        """Bytes between ``pos`` and the end of the spool."""
        segment, offset = pos
        if segment == self._segment:
            return max(0, self._size - offset)
        total = 0
        for number in self.segments():
            if number >= segment:
                try:
                    size = (self.dir / _segment_name(number)).stat().st_size
                except FileNotFoundError:
                    continue
                total += size - (offset if number == segment else 0)
        return max(0, total)

    def size(self) -> int:
        """Bytes held in the spool's segment files."""
        return self.lag(self.first())

    # -- cursors ---------------------------------------------------------------------------
    def load_cursor(self, name: str) -> Position:
        """An output's saved position, or the start of the spool."""
        try:
            text = (self.dir / "cursors" / name).read_text(encoding="ascii")
            segment, offset = (int(x) for x in text.split())
            return (segment, offset)
        except (FileNotFoundError, ValueError):
            return self.first()

    def save_cursor(self, name: str, pos: Position) -> None:
        """Save an output's position (atomic: write a temporary file, rename it over)."""
        path = self.dir / "cursors" / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{pos[0]} {pos[1]}\n", encoding="ascii")
        os.replace(tmp, path)

    def compact(self, positions: Iterable[Position]) -> None:
        """Delete the segments every position has passed (cheap when there are none)."""
        keep_from = min(min((p[0] for p in positions), default=self._segment), self._segment)
        if keep_from <= self._oldest:
            return
        for number in self.segments():
            if number < keep_from:
                (self.dir / _segment_name(number)).unlink(missing_ok=True)
        self._oldest = keep_from
