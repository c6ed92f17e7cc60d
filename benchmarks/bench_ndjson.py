"""NDJSON bytes in: ``orjson.loads`` alone vs ``loads`` + ``enforce`` vs ``enforce_bytes``.

Run from the repository root with TRACKPLAN_HASH_KEY set (the example plan hashes PII).
One process, the same lines for every contender: realistic shop events of plans/ecommerce
made by examples/make_events.py (its journeys: page, track, identify and group calls).
Two plans: the example as shipped, and a variant without PII (``x-pii`` annotations removed,
detection off), since rules with PII actions need the event as a dict.
Timed in chunks of 2,000 lines, best of 5 per chunk, contenders interleaved (the machine
may be shared).

    python benchmarks/bench_ndjson.py [--events 60000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import common
import orjson
from common import PLAN, best_of, make_events, without_pii

from trackplan.engine import compile_plan
from trackplan.engine.typed import LineResult, TypedPath
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan


def make_lines(count: int, *, mistakes: bool) -> list[bytes]:
    """``count`` NDJSON lines of the example generator's events (see common.make_events)."""
    return [orjson.dumps(e) for e in make_events(count, mistakes=mistakes)]


def run(plan: Plan, label: str, lines: list[bytes], repeat: int) -> None:
    enforcer = compile_plan(plan)
    path = TypedPath.of(enforcer)
    loads = orjson.loads
    enforce = enforcer.enforce
    enforce_bytes = enforcer.enforce_bytes  # bound to the typed path built above
    typed = sum(path.match(line) is not None for line in lines)
    transform = sum(c.transform is not None for c in enforcer.compiled_rules())
    t_loads, t_enforce, t_bytes = best_of(
        [
            lambda part: [loads(x) for x in part],
            lambda part: [enforce(loads(x)) for x in part],
            lambda part: [enforce_bytes(x) for x in part],
        ],
        lines,
        repeat,
    )
    n = len(lines)
    forwarded = sum(type(enforce_bytes(x)) is LineResult for x in lines)
    print(f"\n{label}: {n} lines, {sum(map(len, lines)) // n} B/line, "
          f"{typed / n:.0%} decided on the typed path ({forwarded / n:.0%} without a dict), "
          f"{transform} rules with a transform")
    reasons: dict[str, list[str]] = {}
    for rule, reason in path.untyped.items():
        reasons.setdefault(reason, []).append(rule)
    for reason, rules in sorted(reasons.items()):
        print(f"  untyped ({reason}): {', '.join(rules)}")
    print(f"  {'contender':<28}{'us/event':>10}{'events/s':>12}{'x loads':>9}")
    for name, t in (("orjson.loads", t_loads), ("orjson.loads + enforce", t_enforce),
                    ("enforce_bytes", t_bytes)):
        print(f"  {name:<28}{t / n * 1e6:>10.2f}{n / t:>12,.0f}{t / t_loads:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--wall", action="store_true", help="wall time, not process CPU time")
    args = parser.parse_args()
    if args.wall:
        common.CLOCK = time.perf_counter
    valid = make_lines(args.events, mistakes=False)
    mixed = make_lines(args.events, mistakes=True)
    shipped = load_plan(PLAN)
    nopii = without_pii(shipped)
    for plan, name in ((shipped, "example plan"), (nopii, "example plan without PII")):
        run(plan, f"{name}, valid events", valid, args.repeat)
        run(plan, f"{name}, ~14% with mistakes", mixed, args.repeat)


if __name__ == "__main__":
    main()
