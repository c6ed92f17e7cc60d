"""The QA store behind ``/trackplan/*`` (after Snowplow Micro's ``/micro/*``) and the metrics.

:class:`QaStore` keeps the last ``max_events`` good and bad events, each as the plan left it
(PII handled: the forwarded event, or the review copy of a blocked one), with its violations
and per-destination decisions; memory stays bounded whatever the traffic.
:class:`Metrics` counts what Prometheus scrapes from ``/metrics``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["QaStore", "Metrics", "Filters"]


class Filters:
    """``type``, ``event``, ``violation`` (a violation type), ``source`` and ``limit``."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        def text(key: str) -> str | None:
            value = raw.get(key)
            return value if isinstance(value, str) and value else None

        self.type = text("type")
        self.event = text("event")
        self.violation = text("violation") or text("violation_type")
        self.source = text("source")
        limit = raw.get("limit")
        try:
            self.limit = int(limit) if limit is not None else None
        except (TypeError, ValueError):
            self.limit = None

    def matches(self, item: Mapping[str, Any]) -> bool:
        """Whether a stored item passes every filter given."""
        event = item.get("event")
        event = event if isinstance(event, dict) else {}
        if self.type is not None and event.get("type") != self.type:
            return False
        if self.event is not None and event.get("event") != self.event:
            return False
        if self.source is not None and item.get("source") != self.source:
            return False
        if self.violation is not None and not any(
            v.get("type") == self.violation for v in item.get("violations", ())
        ):
            return False
        return True


class QaStore:
    """The last good and bad events, and counts since the last reset."""

    def __init__(self, max_events: int = 10000) -> None:
        self.max_events = max_events
        self.good: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.bad: deque[dict[str, Any]] = deque(maxlen=max_events)
        self.counts: Counter[str] = Counter()

    def add(self, item: dict[str, Any], *, allowed: bool, with_violations: bool) -> None:
        """Record one decision."""
        self.counts["received"] += 1
        self.counts["allowed" if allowed else "blocked"] += 1
        if with_violations:
            self.counts["with_violations"] += 1
        if self.max_events:
            (self.good if allowed else self.bad).append(item)

    def all(self) -> dict[str, int]:
        """``/trackplan/all``: the counts."""
        return {k: self.counts.get(k, 0)
                for k in ("received", "allowed", "blocked", "with_violations")}

    def select(self, which: str, filters: Filters) -> list[dict[str, Any]]:
        """``/trackplan/good`` or ``/trackplan/bad`` with filters, oldest first."""
        items = [i for i in (self.good if which == "good" else self.bad) if filters.matches(i)]
        if filters.limit is not None and filters.limit >= 0:
            items = items[-filters.limit:] if filters.limit else []
        return items

    def reset(self) -> None:
        """``/trackplan/reset``: forget everything."""
        self.good.clear()
        self.bad.clear()
        self.counts.clear()


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + inner + "}"


class Metrics:
    """Counters and gauges in Prometheus' text format (names only, never event values)."""

    def __init__(self) -> None:
        self.counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self.gauges: dict[str, Callable[[], list[tuple[tuple[tuple[str, str], ...], float]]]] = {}
        self.help: dict[str, str] = {}

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add ``amount`` to counter ``name`` with ``labels``."""
        self.counters[(name, tuple(sorted(labels.items())))] += amount

    def gauge(self, name: str, help_text: str,
              read: Callable[[], list[tuple[tuple[tuple[str, str], ...], float]]]) -> None:
        """Register a gauge read at scrape time."""
        self.gauges[name] = read
        self.help[name] = help_text

    def render(self) -> str:
        """The exposition text."""
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(self.counters.items()):
            if name not in seen:
                seen.add(name)
                lines.append(f"# TYPE {name} counter")
            lines.append(f"{name}{_labels(labels)} {value}")
        for name, read in self.gauges.items():
            lines.append(f"# HELP {name} {self.help[name]}")
            lines.append(f"# TYPE {name} gauge")
            for labels, gvalue in read():
                lines.append(f"{name}{_labels(labels)} {gvalue:g}")
        return "\n".join(lines) + "\n"
