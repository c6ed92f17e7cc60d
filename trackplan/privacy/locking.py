"""Per-file locks and owned temporary files for in-place rewrites (``trackplan erase``).

Two runs that rewrite the same file must not interleave: each holds an exclusive
``flock`` on a lock file beside the data file (``.<name>.trackplan-erase.lock``) from
before it reads the file until it has verified the rewrite. The lock file is removed on
release; a waiter that wakes up holding the lock of a file that was meanwhile removed
(and perhaps recreated by a third run) notices by comparing inodes and tries again.

A rewrite goes through a temporary with a name of its own
(``.<name>.<pid>-<token>.trackplan-erase.tmp``), created and ``flock``-ed while the file
lock is held. A temporary is stale only when its writer is dead: :func:`remove_dead_temps`
removes temporaries of a file only while holding that file's lock, and only those whose
own lock it can take (the kernel drops a writer's locks when the writer dies).

>>> with FileLock.acquire(Path("d/events.csv")):            # doctest: +SKIP
...     with OwnedTemp.create(Path("d/events.csv")) as tmp:
...         tmp.path.write_bytes(b"...")
...         tmp.replace()
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from types import TracebackType

from trackplan import atomic
from trackplan.atomic import fsync_dir, remove_if_unlocked

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking, no stale-file cleanup
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "TMP_SUFFIX",
    "LOCK_SUFFIX",
    "TEMP_NAME",
    "FileLock",
    "OwnedTemp",
    "remove_dead_temps",
    "fsync_dir",
]

TMP_SUFFIX = ".trackplan-erase.tmp"
LOCK_SUFFIX = ".trackplan-erase.lock"
#: A temporary of ``target`` (this module's names, and the fixed name of older versions).
TEMP_NAME = re.compile(
    r"^\.(?P<target>.+?)(?:\.(?P<pid>\d+)-(?P<token>[0-9a-f]{12}))?" + re.escape(TMP_SUFFIX) + "$",
    re.DOTALL,
)


class FileLock(atomic.FileLock):
    """An exclusive lock on one data file, held through ``.<name>.trackplan-erase.lock``."""

    SUFFIX = LOCK_SUFFIX


class OwnedTemp:
    """A temporary beside ``target`` with a unique name, locked by this process."""

    def __init__(self, target: Path, path: Path, fd: int) -> None:
        self.target = target
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def create(cls, target: Path) -> OwnedTemp:
        """Create (exclusively) and lock a new empty temporary of ``target``."""
        name = f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}{TMP_SUFFIX}"
        path = target.with_name(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(target, path, fd)

    def replace(self) -> None:
        """Rename the temporary over the target (keeping the target's mode) and fsync."""
        if self.target.exists():
            os.chmod(self.path, self.target.stat().st_mode & 0o7777)
        os.replace(self.path, self.target)
        fsync_dir(self.target.parent)
        self._close()

    def discard(self) -> None:
        """Remove the temporary if it is still there."""
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OwnedTemp:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()


def remove_dead_temps(directory: Path, *, held: frozenset[Path] = frozenset()) -> int:
    """Remove temporaries in ``directory`` whose writers are dead; returns how many.

    ``held`` are the data files whose locks the caller holds; the temporaries of any other
    file are removed only if that file's lock is free right now.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return 0
    by_target: dict[Path, list[Path]] = {}
    for name in names:
        found = TEMP_NAME.match(name)
        if found is not None:
            by_target.setdefault(directory / found["target"], []).append(directory / name)
    removed = 0
    for target, temps in by_target.items():
        lock = None if target in held else FileLock.try_acquire(target)
        if target not in held and lock is None:
            continue  # a live run is rewriting that file
        try:
            removed += sum(remove_if_unlocked(t) for t in temps)
        finally:
            if lock is not None:
                lock.release()
    return removed
