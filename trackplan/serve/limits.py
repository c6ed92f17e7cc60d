"""Admission: rate limits per source and backpressure, answered ``429`` so SDKs retry.

Segment's SDKs retry a ``429`` (and a ``5xx``) with backoff and keep the events meanwhile,
so a gateway that cannot take more now says so with ``429`` and ``Retry-After`` instead of
queueing without bound. A request is refused whole, before any of its events is decided:
nothing of it was acknowledged, so the retry cannot duplicate anything. Plan violations
never produce a ``429`` (they are answered ``200``).

- **Rate limit** per source: a token bucket of ``events_per_second`` refilled continuously,
  holding at most ``burst`` events. With several workers each takes its share of the rate.
- **In flight**: at most ``max_pending_events`` events being decided or waiting for the
  spool's disk flush at once.
- **Spool full**: when an output falls more than ``spool.max_mb`` behind (its undelivered
  spool bytes), new events wait at the client rather than fill the disk.

>>> bucket = TokenBucket(rate=100.0, burst=200.0)
>>> bucket.take(150, now=0.0), bucket.take(100, now=0.0)
(0.0, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RateSpec", "TokenBucket", "retry_after"]


@dataclass(frozen=True, slots=True)
class RateSpec:
    """``events_per_second`` and the ``burst`` a bucket holds (default: one second's)."""

    events_per_second: float
    burst: float | None = None

    def share(self, workers: int) -> RateSpec:
        """One worker's part of the limit when ``workers`` share it."""
        n = max(1, workers)
        burst = self.burst if self.burst is not None else self.events_per_second
        return RateSpec(self.events_per_second / n, burst / n)


class TokenBucket:
    """A token bucket over a caller-supplied clock (seconds)."""

    def __init__(self, *, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("a rate limit needs events_per_second above 0")
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self.tokens = self.burst
        self.at: float | None = None

    def take(self, count: int, *, now: float) -> float:
        """Take ``count`` tokens: 0.0 when granted, else the seconds until they would be
        there (nothing taken). A request larger than the bucket is granted when full."""
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        need = min(float(count), self.burst)
        if self.tokens >= need:
            self.tokens -= count  # may go below 0 for an oversized request: paid back later
            return 0.0
        return (need - self.tokens) / self.rate


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(seconds)))
