"""Test helpers for apps that use trackplan: a local collector to point real SDKs at.

:func:`collector` runs a ``trackplan serve`` gateway in a background thread on a free
loopback port, like Snowplow Micro in a test suite; point the SDK at ``collector.url`` and
ask what arrived::

    import pytest
    import trackplan.testing

    @pytest.fixture
    def collector():
        with trackplan.testing.collector("plans/ecommerce") as running:
            yield running

    def test_checkout_is_tracked(collector):
        client = segment.analytics.Client("any-key", host=collector.url, sync_mode=True)
        client.track("u1", "Checkout Started", {"order_id": "o1"})
        assert collector.bad() == []
        assert [e["event"]["event"] for e in collector.good()] == ["Checkout Started"]
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from trackplan.serve.runner import build_gateway

__all__ = ["Collector", "collector"]


class Collector:
    """A running gateway: its ``url`` and the QA endpoints as methods."""

    def __init__(self, url: str, gateway: Any) -> None:
        self.url = url
        self.gateway = gateway

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        token = getattr(self.gateway, "admin_token", None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return orjson.loads(answer.read())

    def all(self) -> dict[str, Any]:
        """Counts: received, allowed, blocked, with_violations."""
        result: dict[str, Any] = self._call("GET", "/trackplan/all")
        return result

    def good(self, **filters: Any) -> list[dict[str, Any]]:
        """Allowed events (filters: type, event, source, limit)."""
        result: list[dict[str, Any]] = self._call("POST", "/trackplan/good", filters)
        return result

    def bad(self, **filters: Any) -> list[dict[str, Any]]:
        """Blocked events (filters: type, event, violation, source, limit)."""
        result: list[dict[str, Any]] = self._call("POST", "/trackplan/bad", filters)
        return result

    def reset(self) -> None:
        """Forget what arrived so far."""
        self._call("POST", "/trackplan/reset")


@contextmanager
def collector(plan: str | Path, *, config: str | Path | None = None,
              spool_dir: str | Path | None = None, **options: Any) -> Iterator[Collector]:
    """Run a gateway for ``plan`` on a free loopback port for the duration of the block.

    Args:
        plan: the plan's directory or file.
        config: an optional serve config (sources, outputs).
        spool_dir: where the spool lives when outputs are configured (default: a
            temporary directory removed afterwards).
        options: passed to :class:`trackplan.serve.Gateway` (``retry``, ``limits``, ...).
    """
    with tempfile.TemporaryDirectory(prefix="trackplan-collector-") as tmp:
        gateway = build_gateway(str(plan), config_path=str(config) if config else None,
                                spool_dir=str(spool_dir or Path(tmp) / "spool"), **options)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        port: list[int] = []
        errors: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                port.append(loop.run_until_complete(gateway.start(host="127.0.0.1", port=0)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, name="trackplan-collector", daemon=True)
        thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        try:
            yield Collector(f"http://127.0.0.1:{port[0]}", gateway)
        finally:
            future = asyncio.run_coroutine_threadsafe(gateway.stop(drain_timeout=10), loop)
            future.result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()
