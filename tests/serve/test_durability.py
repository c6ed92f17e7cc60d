"""Nothing acknowledged is lost: a real ``trackplan serve`` SIGKILLed under load, restarted."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.serve.helpers import (
    FakeUpstream,
    ServeProcess,
    event,
    free_port,
    ndjson_dir,
    request,
    wait_for,
)
from trackplan.serve.spool import Spool

PLAN_ARG = str(Path(__file__).resolve().parents[2] / "plans" / "ecommerce")


class Load:
    """Threads posting batches with fresh messageIds; remembers which were answered 200."""

    def __init__(self, url: str, threads: int = 2, batch: int = 20) -> None:
        self.url = url
        self.batch = batch
        self.acked: list[str] = []
        self.attempted = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]
        self.counter = 0

    def _run(self, index: int) -> None:
        while not self.stop.is_set():
            with self.lock:
                start = self.counter
                self.counter += self.batch
            ids = [f"t{index}-{n}" for n in range(start, start + self.batch)]
            try:
                status, _ = request(f"{self.url}/v1/batch",
                                    {"batch": [event(mid=m) for m in ids]}, timeout=5)
            except OSError:
                self.stop.wait(0.02)  # the server is down: not acknowledged, try again later
                continue
            with self.lock:
                self.attempted += 1
                if status == 200:
                    self.acked.extend(ids)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_sigkill_under_load_loses_no_acknowledged_event(tmp_path: Path, fsync: str) -> None:
    rng = random.Random(19)
    port = free_port()
    with FakeUpstream() as up:
        cfg = tmp_path / "serve.yaml"
        cfg.write_text(
            "outputs:\n"
            f"  - {{name: amp, destination: Amplitude, http: {{url: '{up.url}', timeout: 2}}}}\n"
            f"  - {{name: wh, destination: Snowflake, file: {{dir: '{tmp_path / 'wh'}'}}}}\n")
        args = [PLAN_ARG, "--config", str(cfg), "--spool", str(tmp_path / "spool"),
                "--fsync", fsync]
        server = ServeProcess(args, cwd=tmp_path, port=port).start()
        with Load(server.url) as load:
            for _round in range(4):
                wait_for(lambda: load.attempted > 5)
                threading.Event().wait(rng.uniform(0.1, 0.6))
                server.kill()
                kills_acked = len(load.acked)
                server = ServeProcess(args, cwd=tmp_path, port=port).start()
                wait_for(lambda n=kills_acked: len(load.acked) > n)  # type: ignore[misc]
        assert server.stop() == 0  # SIGTERM: drains the spool, exits 0
        acked = set(load.acked)
        assert len(acked) > 200
        delivered = [e["messageId"] for e in up.events()]
        written = [e["messageId"] for e in ndjson_dir(tmp_path / "wh")]
    for got in (delivered, written):
        assert acked <= set(got), f"lost {len(acked - set(got))} acknowledged events"
        # only events that were sent arrive, and a repeat is the same messageId again
        assert set(got) <= {f"t{i}-{n}" for i in range(2) for n in range(load.counter)}
    repeats = Counter(delivered)
    assert all(count >= 1 for count in repeats.values())
    assert '"stopped"' in server.log() and '"drained":true' in server.log()


def test_spool_cuts_a_partial_last_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync="never")
    spool.open()
    spool.close()
    segment = next(tmp_path.glob("*.log"))
    segment.write_bytes(b'{"s":"a","o":{}}\n{"s":"b","o"')
    again = Spool(tmp_path)
    again.open()
    lines, _ = again.read(again.first(), 1 << 20)
    again.close()
    assert lines == [b'{"s":"a","o":{}}']


def test_restart_resumes_from_the_cursor_without_resending(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"outputs:\n  - {{name: wh, destination: Snowflake, "
                   f"file: {{dir: '{tmp_path / 'wh'}'}}}}\n")
    args = [PLAN_ARG, "--config", str(cfg), "--spool", str(tmp_path / "spool")]
    server = ServeProcess(args, cwd=tmp_path, port=port).start()
    request(f"{server.url}/v1/batch", {"batch": [event(mid=f"a{i}") for i in range(5)]})
    wait_for(lambda: len(ndjson_dir(tmp_path / "wh")) == 5)
    assert server.stop() == 0
    server = ServeProcess(args, cwd=tmp_path, port=port).start()
    request(f"{server.url}/v1/batch", {"batch": [event(mid=f"b{i}") for i in range(5)]})
    wait_for(lambda: len(ndjson_dir(tmp_path / "wh")) >= 10)
    assert server.stop() == 0
    ids = [e["messageId"] for e in ndjson_dir(tmp_path / "wh")]
    assert sorted(ids) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)])


def test_spool_deletes_segments_every_output_has_passed(tmp_path: Path) -> None:
    async def fill() -> list[int]:
        spool = Spool(tmp_path, fsync="always", segment_bytes=100)
        spool.open()
        for i in range(10):
            await spool.append(b'{"s":"a","o":{"x":%d}}\n' % i * 3)  # ~70 bytes: a segment each
        segments = spool.segments()
        lines, after = spool.read(spool.first(), 1 << 20)
        assert len(lines) == 3  # one segment at a time
        everything: list[bytes] = []
        pos = spool.first()
        while True:
            got, pos = spool.read(pos, 1 << 20)
            if not got:
                break
            everything += got
        assert len(everything) == 30
        spool.compact([after, pos])  # one cursor still in the first segment: nothing goes
        assert spool.segments() == segments
        spool.compact([pos, pos])
        assert spool.segments() == [segments[-1]]
        spool.close()
        return segments

    assert len(asyncio.run(fill())) == 10
