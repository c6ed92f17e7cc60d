"""Write files atomically: into a hidden temporary beside the target, fsync, then rename.

The one place trackplan replaces a file: batch outputs (redacted copies, reports),
suppression lists and erasure rewrites all go through it.

An interrupted run leaves no partial file under the target's name: either the old file
(or nothing) or the complete new one. Temporaries are named
``.<target name>.trackplan-<pid>-<random>.part``, so readers of the output directory skip
them, and are removed on failure.

A run killed outright (SIGKILL, power loss) cannot remove its temporary. So that the
next run can, with certainty that it removes only what is abandoned, every temporary is
held under an exclusive ``flock`` by its writer from before it appears under its name
until it is renamed or removed; the kernel drops the lock when the writer dies.
:func:`remove_stale_parts` removes files of that naming whose lock it can take.

>>> with atomic_path(Path("out.parquet")) as tmp:        # doctest: +SKIP
...     pq.write_table(table, tmp)
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no stale-file cleanup
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "PART_NAME",
    "PartFile",
    "atomic_path",
    "fsync_dir",
    "remove_stale_parts",
    "replace_file",
    "write_bytes_atomic",
    "write_text_atomic",
]

#: The name of a temporary this module made (target name, writer's pid, random token).
PART_NAME = re.compile(r"^\.(?P<target>.+)\.trackplan-(?P<pid>\d+)-(?P<token>[0-9a-f]{12})\.part$")


class PartFile:
    """A locked temporary beside ``target``; :meth:`commit` renames it into place.

    Example:
        >>> part = PartFile(Path("out/a.parquet"))                  # doctest: +SKIP
        >>> pq.write_table(table, part.path); part.commit()      # doctest: +SKIP
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        stem = f".{target.name}.trackplan-{os.getpid()}-{secrets.token_hex(6)}"
        self.path = target.with_name(stem + ".part")
        # lock under a name the cleaner ignores, then rename: a .part file is never
        # visible unlocked while its writer lives
        pending = target.with_name(stem + ".lock")
        self._fd: int | None = os.open(pending, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.replace(pending, self.path)

    def commit(self) -> None:
        """Rename the temporary to the target (see :func:`replace_file`) and release it."""
        try:
            replace_file(self.path, self.target)
        finally:
            self._release()

    def discard(self) -> None:
        """Remove the temporary (if still there) and release it."""
        try:
            if self.path.exists():
                self.path.unlink()
        finally:
            self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def replace_file(tmp: Path, target: Path) -> None:
    """Rename the written, fsynced ``tmp`` over ``target``, keeping ``target``'s permissions
    when it exists, and fsync the directory so the rename survives a crash."""
    if target.exists():
        shutil.copymode(target, tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename in it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_parts(directory: Path, *, target: str | None = None) -> list[Path]:
    """Remove temporaries left in ``directory`` (and below) by killed runs.

    Only files named as :class:`PartFile` names them, and only those no live writer holds
    (a concurrent run's temporaries stay). With ``target``, only temporaries of that file
    name, directly in ``directory``. Returns the removed paths.
    """
    if fcntl is None or not directory.is_dir():
        return []
    removed: list[Path] = []
    found_paths = (
        directory.rglob(".*.part") if target is None else directory.glob(f".{target}.*.part")
    )
    for path in sorted(found_paths):
        found = PART_NAME.match(path.name)
        if found is None or (target is not None and found["target"] != target):
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live writer holds it
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``target``.

    Temporaries of ``target`` abandoned by killed runs are removed first.

    Example:
        >>> with atomic_path(Path("out.parquet")) as tmp:        # doctest: +SKIP
        ...     pq.write_table(table, tmp)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target.parent, target=target.name)
    part = PartFile(target)
    try:
        yield part.path
        part.commit()
    finally:
        part.discard()


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def write_bytes_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (aside, fsync, rename)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
