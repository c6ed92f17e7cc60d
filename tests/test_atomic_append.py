"""``AtomicOutput.append_file``: a file's content appended in the kernel where it can be,
through user space where it cannot (a pipe), the target replaced only on commit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from trackplan.atomic import AtomicOutput


def _source(tmp_path: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = bytes((i * 7 + len(name)) % 251 for i in range(size))
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def test_appended_files_follow_what_was_written(tmp_path: Path) -> None:
    first, one = _source(tmp_path, "one", (3 << 20) + 17)
    second, two = _source(tmp_path, "two", 5)
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    out = AtomicOutput(target)
    out.write(b"head\n")
    out.append_file(first)
    out.write(b"middle\n")
    out.append_file(second)
    assert target.read_bytes() == b"old"  # nothing replaced before the commit
    out.commit()
    assert target.read_bytes() == b"head\n" + one + b"middle\n" + two


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_target_gets_the_content_through_user_space(tmp_path: Path) -> None:
    source, data = _source(tmp_path, "part", (2 << 20) + 3)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    out = AtomicOutput(fifo)
    assert out.direct
    out.write(b">")
    out.append_file(source)
    out.commit()
    reader.join(30)
    assert got == [b">" + data]
