"""Event builders shared by the test packages: calls shaped as the real SDKs send them."""

from __future__ import annotations

from typing import Any


def track_call(name: str, properties: Any, **over: Any) -> dict[str, Any]:
    """A track call as analytics-python sends it (``anonymousId: null`` beside ``userId``)."""
    event: dict[str, Any] = {
        "type": "track",
        "event": name,
        "userId": "usr_1",
        "anonymousId": None,
        "messageId": "0f9c3e0e-1f6e-4b7a-9c57-4d1f0b5e8a11",
        "timestamp": "2026-11-29T10:00:00.000+00:00",
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "integrations": {},
        "properties": properties,
    }
    event.update(over)
    return event
