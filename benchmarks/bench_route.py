"""Routing throughput: plain ``enforce`` vs ``route`` (consent + per-destination PII forms),
and ``enforce`` with a suppression list, on the same events in one run.

Run from the repository root with TRACKPLAN_HASH_KEY set (the example plan hashes PII).
Events: examples/events.ndjson (realistic shop journeys), repeated; a third of them carry
``context.consent.categoryPreferences`` (analytics only, everything, nothing), so consent
decisions and PII copies both happen. Four destinations (plans/ecommerce). CPU time, best
of ``--repeat``, contenders interleaved (the machine may be shared). "One by one" is the
routing before destinations shared work (each destination's presence walk and copy on its
own, through the public per-destination ``DestinationForms.apply``), for before/after.

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
from trackplan.privacy.consent import (
    consent_allows,
    integrations_allow,
    preferences,
    route,
    router_of,
)
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


def one_by_one(enforcer: Any, event: Any) -> list[Any]:
    """Routing as it was before destinations shared work: consent, ``integrations`` and
    :meth:`DestinationForms.apply` (presence walk and copy) for each destination alone."""
    router = router_of(enforcer)
    result = enforcer.enforce(event)
    if not result.allowed:
        return []
    prefs = router.privacy.normalise(preferences(result.event))
    out = []
    for dest in router.privacy.destinations:
        if consent_allows(dest.consent, prefs) and integrations_allow(dest.name, result.event):
            out.append(router.forms.apply(dest, result.event, result.rule, source=event))
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

    def each(fn: Callable[[Any], object]) -> Callable[[], None]:
        def run() -> None:  # results dropped as a gateway drops them: none kept for the GC
            for e in events:
                fn(e)
        return run

    contenders: dict[str, Callable[[], object]] = {
        "enforce (reference)": each(enforcer.enforce),
        "route: enforce + consent + PII forms, 4 destinations": each(
            lambda e: route(enforcer, e)),
        "destinations one by one (the routing before shared copies)": each(
            lambda e: one_by_one(enforcer, e)),
        "enforce with a suppression list (1,000 ids, HMAC)": each(suppressed.enforce),
    }
    results = {name: float("inf") for name in contenders}
    for _ in range(args.repeat):  # interleaved
        for name, fn in contenders.items():
            results[name] = min(results[name], best(fn, 1))
    ref = results["enforce (reference)"]
    print(f"{args.events} events, {sent} deliveries, {blocked} suppressed; best of {args.repeat}")
    print(f"{'contender':<60} {'events/s':>10} {'x enforce':>10}")
    for name, seconds in results.items():
        print(f"{name:<60} {args.events / seconds:>10,.0f} {seconds / ref:>10.2f}")
    shared = results["route: enforce + consent + PII forms, 4 destinations"]
    alone = results["destinations one by one (the routing before shared copies)"]
    print(f"route / one by one: {shared / alone:.2f}x the CPU time; routing beyond enforce "
          f"{(shared - ref) / (alone - ref):.2f}x")


if __name__ == "__main__":
    main()
