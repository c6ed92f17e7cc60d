"""Routing throughput: plain ``enforce`` vs ``route`` (consent + per-destination PII forms),
and ``enforce`` with a suppression list, on the same events in one run.

Run from the repository root with TRACKPLAN_HASH_KEY set (the example plan hashes PII).
Events: examples/events.ndjson (realistic shop journeys), repeated; a third of them carry
``context.consent.categoryPreferences`` (analytics only, everything, nothing), so consent
decisions and PII copies both happen. Four destinations (plans/ecommerce). CPU time, best
of ``--repeat``, contenders interleaved (the machine may be shared).

    python benchmarks/bench_route.py [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from trackplan.engine import compile_plan
from trackplan.plan.load import load_plan
from trackplan.privacy.consent import route
from trackplan.privacy.suppression import SuppressionList
from trackplan.privacy.suppression import suppressed as with_suppression

ROOT = Path(__file__).resolve().parents[1]
CLOCK = time.process_time
PREFS = [None, {"analytics": True}, {"analytics": True, "advertising": True}, {}]


def make_events(count: int) -> list[dict[str, Any]]:
    """``count`` events from the example file, a share of them with consent preferences."""
    source = [orjson.loads(line) for line in
              (ROOT / "examples" / "events.ndjson").read_bytes().splitlines() if line.strip()]
    out = []
    for i in range(count):
        event = copy.deepcopy(source[i % len(source)])
        prefs = PREFS[i % len(PREFS)]
        if prefs is not None:
            event.setdefault("context", {})["consent"] = {"categoryPreferences": prefs}
        out.append(event)
    return out


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best CPU time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    plan = load_plan(ROOT / "plans" / "ecommerce")
    enforcer = compile_plan(plan)
    events = make_events(args.events)
    route(enforcer, events[0])  # build the router once, outside the timing
    # 1,000 suppressed subjects, none of them in the events: the list's cost on normal traffic
    ids = [f"gone_{n}" for n in range(1000)]
    suppressed = with_suppression(enforcer, SuppressionList.from_ids(ids, key=b"bench"))
    sent = sum(len(route(enforcer, e).sent) for e in events)
    blocked = sum(
        any(v.type == "Suppressed" for v in suppressed.enforce(e).violations) for e in events
    )

    contenders: dict[str, Callable[[], object]] = {
        "enforce (reference)": lambda: [enforcer.enforce(e) for e in events],
        "route: enforce + consent + PII forms, 4 destinations": lambda: [
            route(enforcer, e) for e in events],
        "enforce with a suppression list (1,000 ids, HMAC)": lambda: [
            suppressed.enforce(e) for e in events],
    }
    results = {name: float("inf") for name in contenders}
    for _ in range(args.repeat):  # interleaved
        for name, fn in contenders.items():
            results[name] = min(results[name], best(fn, 1))
    ref = results["enforce (reference)"]
    print(f"{args.events} events, {sent} deliveries, {blocked} suppressed; best of {args.repeat}")
    print(f"{'contender':<56} {'events/s':>10} {'x enforce':>10}")
    for name, seconds in results.items():
        print(f"{name:<56} {args.events / seconds:>10,.0f} {seconds / ref:>10.2f}")


if __name__ == "__main__":
    main()
