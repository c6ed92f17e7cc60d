"""Real processes and servers on loopback for the gateway's tests: no mocks."""

from __future__ import annotations

import base64
import gzip
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "plans" / "ecommerce"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: Any = None, *, method: str | None = None, raw: bytes | None = None,
            headers: dict[str, str] | None = None, key: str | None = None,
            gzipped: bool = False, timeout: float = 10) -> tuple[int, Any]:
    """(status, parsed JSON body or text) of one request."""
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    hdrs = dict(headers or {})
    if gzipped and data is not None:
        data = gzip.compress(data)
        hdrs["Content-Encoding"] = "gzip"
    if key is not None:
        hdrs["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            status, payload = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, orjson.loads(payload)
    except orjson.JSONDecodeError:
        return status, payload.decode("utf-8", "replace")


def event(name: str = "Product Viewed", *, user: str = "u1", mid: str | None = None,
          **props: Any) -> dict[str, Any]:
    props = props or {"product_id": "p-1", "price": 9.5}
    out: dict[str, Any] = {"type": "track", "event": name, "userId": user, "properties": props,
                           "timestamp": "2026-11-01T08:00:00.000Z"}
    if mid is not None:
        out["messageId"] = mid
    return out


class ServeProcess:
    """``python -m trackplan serve`` in a subprocess, waited on until it is ready."""

    def __init__(self, args: list[str], *, cwd: Path, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "trackplan", "serve", *args, "--port", str(self.port)]
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = cwd / f"serve-{self.port}.log"

    def start(self) -> ServeProcess:
        self.stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited: {self.stderr_path.read_text()[-2000:]}")
            try:
                if request(self.url + "/ready", timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not become ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.stderr.close()

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.stderr.close()
        return code

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextmanager
def serving(args: list[str], *, cwd: Path, **kw: Any) -> Iterator[ServeProcess]:
    proc = ServeProcess(args, cwd=cwd, **kw).start()
    try:
        yield proc
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.stop()


class FakeUpstream:
    """A Segment-compatible ``/v1/batch`` receiver on loopback that can fail, stall, recover.

    ``mode``: ``ok`` (200), ``fail`` (503), ``reject`` (400), ``stall`` (hold the request
    ``stall`` seconds, then 503: longer than the output's timeout, so the gateway retries).
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.stall = 3.0
        self.batches: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.requests = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with outer.lock:
                    outer.requests += 1
                    mode = outer.mode
                if mode in ("fail", "reject"):
                    self.send_response(503 if mode == "fail" else 400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "stall":
                    time.sleep(outer.stall)
                with outer.lock:
                    if mode == "ok":
                        outer.batches.append(orjson.loads(body))
                        outer.auth.append(self.headers.get("Authorization"))
                self.send_response(200 if mode == "ok" else 503)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/batch"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for b in self.batches for e in b["batch"]]


def wait_for(check: Any, timeout: float = 20, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def ndjson_dir(path: Path) -> list[dict[str, Any]]:
    out = []
    for file in sorted(path.glob("*.ndjson")):
        out.extend(orjson.loads(line) for line in file.read_bytes().splitlines() if line)
    return out
