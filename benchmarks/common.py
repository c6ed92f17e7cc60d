"""What the enforcement benchmarks share: the example events, the plan without PII, and
the interleaved best-of timer.

Timing: per chunk of ``chunk`` items, every contender in turn, ``repeat`` times, keeping
each contender's best; a contender's figure is the sum of its best per chunk. A load spike
on a shared machine so spoils one sample of one chunk, not a whole figure. The clock is
process CPU time unless a benchmark sets ``common.CLOCK = time.perf_counter`` (``--wall``).
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a clone without installing

from trackplan.plan.model import Plan  # noqa: E402

PLAN = ROOT / "plans" / "ecommerce"
CLOCK: Callable[[], float] = time.process_time
Contender = Callable[[list[Any]], object]


def make_events(count: int, *, mistakes: bool) -> list[dict[str, Any]]:
    """``count`` events of realistic shop journeys from examples/make_events.py (a fresh
    module, so its fixed seed gives the same events every run); ``mistakes``: with its
    ~14% injected plan violations."""
    spec = importlib.util.spec_from_file_location("make_events", ROOT / "examples" /
                                                  "make_events.py")
    assert spec is not None and spec.loader is not None
    gen: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    clock = gen.Clock()
    events: list[dict[str, Any]] = []
    i = 0
    while len(events) < count:
        events.extend(gen.journey(gen.make_user(i), clock))
        i += 1
    events = events[:count]
    if mistakes:
        gen.inject(events)
    return events


def strip_pii(node: Any) -> Any:
    """A schema without its ``x-pii`` annotations."""
    if isinstance(node, dict):
        return {k: strip_pii(v) for k, v in node.items() if k != "x-pii"}
    if isinstance(node, list):
        return [strip_pii(v) for v in node]
    return node


def without_pii(plan: Plan) -> Plan:
    """The plan without ``x-pii`` annotations and with detection off: the engine with no
    PII work, so its fast path runs without a transform."""
    rules = tuple(
        dataclasses.replace(r, payload=strip_pii(r.payload), call=strip_pii(r.call))
        for r in plan.rules
    )
    defs = strip_pii(dict(plan.definitions))
    return dataclasses.replace(plan, rules=rules, definitions=defs, pii={"detection": False})


def best_of(contenders: list[Contender], items: list[Any], repeat: int, chunk: int = 2000
            ) -> list[float]:  # fmt: skip
    """Seconds per contender over all ``items`` (see the module's docstring)."""
    totals = [0.0] * len(contenders)
    gc.disable()  # collections triggered by one contender's garbage would bill the next
    try:
        for at in range(0, len(items), chunk):
            part = items[at : at + chunk]
            best = [float("inf")] * len(contenders)
            for _ in range(repeat):
                for index, fn in enumerate(contenders):
                    start = CLOCK()
                    fn(part)
                    best[index] = min(best[index], CLOCK() - start)
                gc.collect()
            totals = [t + b for t, b in zip(totals, best, strict=True)]
    finally:
        gc.enable()
    return totals


def drain(fn: Callable[[Any], object]) -> Contender:
    """Apply ``fn`` to every item in C, keeping no result (no contender pays for retention)."""
    return lambda part: collections.deque(map(fn, part), maxlen=0)


def keep(fn: Callable[[Any], object]) -> Contender:
    """Apply ``fn`` to every item, keeping the results in a list (a batch held in memory)."""
    return lambda part: list(map(fn, part))
