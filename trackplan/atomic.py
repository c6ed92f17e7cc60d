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

Output files the CLI writes for users (``--out``, ``-o``, plan and package trees) go
through :class:`AtomicOutput`, :func:`write_atomic` and :func:`replace_tree`, written
whole or not at all, with the modes users expect. :class:`AtomicOutput` writes into a
hidden temporary beside the target (``.trackplan-<random>.tmp``), held under an exclusive
``flock`` by its writer, then fsyncs and renames it over the target. The new file gets the
replaced file's mode, or for a new file the mode the umask gives (never a blanket 0600).
Temporaries of runs that died (SIGKILL, power loss) are removed by the next run into the
same directory: only those whose lock can be taken, so a live run's temporary stays. Every
failure (a missing, read-only or full location, a directory in the way) is an
:class:`InputError` naming the path, and leaves no temporary behind. A target that exists
but is no regular file (a device such as ``/dev/stdout``, a pipe) is written directly,
never replaced.

>>> write_atomic(Path("report.md"), b"# DPIA\\n")        # doctest: +SKIP

Runs that rewrite the same file or tree must not interleave: :class:`FileLock` is an
exclusive ``flock`` held through a lock file beside the target (erasure locks each data
file; :func:`lock_tree` and :func:`replace_tree` lock a directory tree, so two
``codegen`` or ``import`` runs into one folder take turns and the later one's tree wins
whole).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from trackplan.errors import InputError

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
    "AtomicOutput",
    "write_atomic",
    "remove_dead_temps",
    "new_file_mode",
    "replace_tree",
    "small_tree",
    "FileLock",
    "lock_tree",
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


_PREFIX = ".trackplan-"
_SUFFIX = ".tmp"


def new_file_mode() -> int:
    """The mode a new file gets under the current umask (0o666 minus the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def remove_dead_temps(directory: Path) -> int:
    """Remove ``.trackplan-*.tmp`` files in ``directory`` no live writer holds."""
    return _remove_unlocked(
        directory, lambda name: name.startswith(_PREFIX) and name.endswith(_SUFFIX))


def _remove_unlocked(directory: Path, match: Callable[[str], bool], *,
                     tree: bool = False) -> int:
    """:func:`remove_if_unlocked` on each entry of ``directory`` whose name ``match``es;
    how many were removed."""
    try:
        names = [name for name in os.listdir(directory) if match(name)]
    except OSError:
        return 0
    return sum(remove_if_unlocked(directory / name, tree=tree) for name in names)


def remove_if_unlocked(path: Path, *, tree: bool = False) -> bool:
    """Remove ``path`` (a file; with ``tree``, a directory and all in it) when no live
    process holds an ``flock`` on it, as a dead run leaves its temporaries; True when
    removed. Links are not followed; without ``flock`` (not POSIX) nothing is removed."""
    if fcntl is None:  # pragma: no cover
        return False
    flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if tree else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if tree:
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
        return True
    except OSError:
        return False  # a live run holds it (or it vanished meanwhile)
    finally:
        os.close(fd)


#: Directories of part files (``validate --jobs``): ``.trackplan-parts-<random>``.
_PARTS = ".trackplan-parts-"


class PartsDir:
    """A private directory (mode 0700) for the part files of one run, beside its output
    (or in the temporary directory), removed by :meth:`close`.

    The run holds an ``flock`` on the directory while it lives (forked workers share it),
    so a run killed before :meth:`close` leaves one whose lock is free: the next run in the
    same place removes it (:func:`remove_dead_parts`), as :class:`AtomicOutput` does with
    its temporaries.
    """

    def __init__(self, near: Path | None) -> None:
        base = near if near is not None else Path(tempfile.gettempdir())
        remove_dead_parts(base)
        try:
            self.path = Path(tempfile.mkdtemp(prefix=_PARTS, dir=base))
        except OSError:
            if near is None:
                raise
            self.path = Path(tempfile.mkdtemp(prefix=_PARTS))
        self._fd = os.open(self.path, os.O_RDONLY)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self) -> None:
        """Remove the directory and everything in it, then release the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def remove_dead_parts(directory: Path) -> int:
    """Remove ``.trackplan-parts-*`` directories in ``directory`` no live run holds."""
    return _remove_unlocked(directory, lambda name: name.startswith(_PARTS), tree=True)


#: ``copy_file_range`` errors that mean "not here" (another file system, a kernel or file
#: type without it): the copy then goes through user space.
_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                            errno.EBADF})


class AtomicOutput:
    """A binary file handle whose content replaces ``target`` on :meth:`commit`.

    Raises:
        InputError: the target's directory is missing or not writable, or the target is a
            directory.
    """

    def __init__(self, target: str | Path) -> None:
        self.target = Path(target)
        if self.target.is_dir():
            raise InputError(f"{target}: is a directory; give a file name")
        directory = self.target.parent
        self.direct = self.target.exists() and not self.target.is_file()
        if self.direct:  # a device or a pipe: write into it
            self.path = self.target
            try:
                self.fh: IO[bytes] = open(self.target, "wb")  # noqa: SIM115 - closed in commit
            except OSError as exc:
                raise InputError(f"{target}: cannot write: {_why(exc)}") from None
            self._open = True
            return
        remove_dead_temps(directory)
        self.path = directory / f"{_PREFIX}{secrets.token_hex(8)}{_SUFFIX}"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise InputError(f"{target}: cannot write: {_why(exc)}") from None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        self.fh = os.fdopen(fd, "wb")
        self._open = True

    def write(self, data: bytes) -> None:
        """Write ``data``; a full disk or I/O error discards the temporary."""
        try:
            self.fh.write(data)
        except OSError as exc:
            self.abort()
            raise InputError(f"{self.target}: cannot write: {_why(exc)}") from None

    def append_file(self, source: str | Path) -> None:
        """Append the whole content of the file ``source`` (in the kernel where it can:
        ``copy_file_range``); errors as for :meth:`write`."""
        try:
            self.fh.flush()
            with open(source, "rb") as src:
                size = os.fstat(src.fileno()).st_size
                copied = 0
                copy_range = getattr(os, "copy_file_range", None)
                if copy_range is not None and not self.direct:
                    try:
                        while copied < size:
                            done = copy_range(src.fileno(), self.fh.fileno(), size - copied)
                            if done == 0:
                                break
                            copied += done
                    except OSError as exc:
                        if exc.errno not in _NO_COPY_RANGE or copied:
                            raise
                src.seek(copied)
                shutil.copyfileobj(src, self.fh, 1 << 20)
        except OSError as exc:
            self.abort()
            raise InputError(f"{self.target}: cannot write: {_why(exc)}") from None

    def commit(self) -> None:
        """Flush, fsync and rename into place (the replaced file's mode is kept)."""
        if not self._open:
            return
        try:
            self.fh.flush()
            if self.direct:
                self._open = False
                self.fh.close()
                return
            os.fsync(self.fh.fileno())
            try:
                mode = self.target.stat().st_mode & 0o7777
            except OSError:
                mode = new_file_mode()
            os.chmod(self.path, mode)
            os.replace(self.path, self.target)
        except OSError as exc:
            self.abort()
            raise InputError(f"{self.target}: cannot write: {_why(exc)}") from None
        self._open = False
        self.fh.close()  # releases the lock only now that the name is the target's

    def abort(self) -> None:
        """Remove the temporary; the target is left as it was."""
        if self._open:
            self._open = False
            try:
                if not self.direct:
                    self.path.unlink(missing_ok=True)
            finally:
                try:
                    self.fh.close()
                except OSError:
                    pass

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def write_atomic(target: str | Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically (see :class:`AtomicOutput`).

    Raises:
        InputError: the target cannot be written (names it and why).
    """
    with AtomicOutput(target) as out:
        out.write(data)


# -- locks ----------------------------------------------------------------------------------
class FileLock:
    """An exclusive lock on one file or tree, held through a lock file beside it.

    The lock file is ``.<target name><SUFFIX>``; subclasses name their own suffix so that
    different kinds of run on one target (erasure, tree swaps) never share a lock file.

    Example:
        >>> with FileLock.acquire(Path("d/events.csv")):        # doctest: +SKIP
        ...     rewrite(Path("d/events.csv"))
    """

    SUFFIX = ".trackplan.lock"

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def lock_path(cls, target: Path) -> Path:
        """The lock file of ``target``."""
        return target.with_name(f".{target.name}{cls.SUFFIX}")

    @classmethod
    def acquire(cls, target: Path) -> Self:
        """Lock ``target``, waiting until no other process holds it."""
        lock = cls._take(target, wait=True)
        assert lock is not None  # a blocking take returns a lock
        return lock

    @classmethod
    def try_acquire(cls, target: Path) -> Self | None:
        """Lock ``target`` if no other process holds it, else None."""
        return cls._take(target, wait=False)

    @classmethod
    def _take(cls, target: Path, *, wait: bool) -> Self | None:
        """Lock ``target``; blocks until free (``wait``) or returns None when held.

        The lock file is removed on release; a waiter that wakes up holding the lock of a
        file that was meanwhile removed (and perhaps recreated by a third run) notices by
        comparing inodes and tries again. Where no lock file can be created (a read-only
        directory), nothing can be written there either: the lock is a no-op and the
        write fails with its own error.
        """
        path = cls.lock_path(target)
        if fcntl is None:  # pragma: no cover
            return cls(path, None)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                    return cls(path, None)
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return cls(path, fd)
            os.close(fd)  # the holder before us removed it: lock the current file

    def release(self) -> None:
        """Remove the lock file and drop the lock (in that order: see :meth:`_take`)."""
        if self._fd is not None:
            try:
                self.path.unlink(missing_ok=True)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class _TreeLock(FileLock):
    SUFFIX = ".trackplan-tree.lock"


#: Trees this process holds locked, with how deep (a lock is taken once per process).
_HELD_TREES: dict[Path, int] = {}


@contextmanager
def lock_tree(target: Path) -> Iterator[None]:
    """Hold the lock of directory tree ``target`` (waiting for another run's to drop).

    Re-entrant within a process: :func:`replace_tree` inside it does not wait on itself.

    Raises:
        InputError: the folder that would hold the lock cannot be created.
    """
    target = Path(os.path.abspath(target))
    depth = _HELD_TREES.get(target, 0)
    if depth:
        _HELD_TREES[target] = depth + 1
        try:
            yield
        finally:
            _HELD_TREES[target] -= 1
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = _TreeLock.acquire(target)
    except OSError as exc:
        raise InputError(f"{target}: cannot write: {_why(exc)}") from None
    _HELD_TREES[target] = 1
    try:
        yield
    finally:
        del _HELD_TREES[target]
        lock.release()


# -- whole directory trees ------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries in one step (Linux ``renameat2``); False if unsupported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot swap
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_tree(target: Path, build: Callable[[Path], None]) -> None:
    """Replace directory ``target`` by a copy of it that ``build`` changed, in one step.

    The copy is made beside ``target`` (``.<name>.trackplan-<random>.new``), changed, then
    swapped with ``target`` atomically, so a kill at any moment leaves the whole old tree or
    the whole new one under the name; the old tree is removed afterwards. Where the file
    system cannot swap, two renames are used (a kill between them leaves the old tree
    under a temporary name, which the next run renames back first). The tree is locked
    throughout (:func:`lock_tree`): a concurrent run waits, then builds on this one's tree.

    Raises:
        InputError: the tree cannot be written (names it and why).
    """
    target = Path(os.path.abspath(target))
    with lock_tree(target):
        _replace_tree(target, build)


def _replace_tree(target: Path, build: Callable[[Path], None]) -> None:
    parent = target.parent
    token = secrets.token_hex(6)
    new = parent / f".{target.name}.trackplan-{token}.new"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        left = sorted(parent.glob(f".{target.name}.trackplan-*"))
        for stale in left:  # left by a killed run: an old tree comes back if it is all there is
            if stale.name.endswith(".old") and not target.exists():
                os.rename(stale, target)
        for stale in left:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
        if target.is_dir():
            shutil.copytree(target, new, symlinks=True)
        else:
            new.mkdir(mode=0o777)
        build(new)
        if not target.exists():
            os.rename(new, target)
        elif _exchange(new, target):
            shutil.rmtree(new)  # now the old tree
        else:
            old = parent / f".{target.name}.trackplan-{token}.old"
            os.rename(target, old)
            os.rename(new, target)
            shutil.rmtree(old)
    except OSError as exc:
        shutil.rmtree(new, ignore_errors=True)
        raise InputError(f"{target}: cannot write: {_why(exc)}") from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


def small_tree(root: Path, *, max_bytes: int = 64 << 20, max_entries: int = 5000) -> bool:
    """Whether ``root`` is missing or small enough to copy and swap whole (no ``.git``,
    no linked folders, at most ``max_entries`` entries and ``max_bytes`` bytes)."""
    if not root.exists():
        return True
    if root.is_symlink() or not root.is_dir():
        return False
    size = entries = 0
    for directory, subdirs, names in os.walk(root):
        if ".git" in subdirs or any(Path(directory, d).is_symlink() for d in subdirs):
            return False
        entries += len(subdirs) + len(names)
        for name in names:
            try:
                size += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                return False
        if entries > max_entries or size > max_bytes:
            return False
    return True
