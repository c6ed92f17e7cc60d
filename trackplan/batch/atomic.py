"""Write files atomically: into a hidden temporary beside the target, then rename.

An interrupted run leaves no partial file under the target's name: either the old file
(or nothing) or the complete new one. Temporaries start with ``.`` and end with ``.part``
so readers of the output directory skip them, and they are removed on failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomic"]


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``target``.

    Example:
        >>> with atomic_path(Path("out.parquet")) as tmp:        # doctest: +SKIP
        ...     pq.write_table(table, tmp)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
