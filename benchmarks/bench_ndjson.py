"""NDJSON bytes in: ``orjson.loads`` alone vs ``loads`` + ``enforce`` vs ``enforce_bytes``.

Run from the repository root with TRACKPLAN_HASH_KEY set (the example plan hashes PII).
One process, the same lines for every contender: realistic shop events of plans/ecommerce
made by examples/make_events.py (its journeys: page, track, identify and group calls).
Two plans: the example as shipped, and a variant with PII stripped (``x-pii`` annotations and
the ``pii`` section removed), since rules with PII actions need the event as a dict.
Timed in chunks of 2,000 lines, best of 5 per chunk, contenders interleaved (the machine
may be shared).

    python benchmarks/bench_ndjson.py [--events 60000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import yaml

from trackplan.engine.typed import LineResult, TypedPath
from trackplan.plan.load import load_plan

ROOT = Path(__file__).resolve().parents[1]
#: CPU time of this process: on a shared machine, wall time also counts other jobs' turns
CLOCK = time.process_time
PLAN = ROOT / "plans" / "ecommerce"


def make_lines(count: int, *, mistakes: bool) -> list[bytes]:
    """``count`` NDJSON lines from the example generator (deterministic seed)."""
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
    return [orjson.dumps(e) for e in events]


def _strip_pii(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_pii(v) for k, v in node.items() if k != "x-pii"}
    if isinstance(node, list):
        return [_strip_pii(v) for v in node]
    return node


def plan_without_pii(tmp: Path) -> Path:
    """A copy of the example plan without ``x-pii`` annotations and ``pii`` section."""
    out = tmp / "ecommerce-nopii"
    shutil.copytree(PLAN, out)
    for path in out.rglob("*.yaml"):
        doc = _strip_pii(yaml.safe_load(path.read_text()))
        if path.name == "plan.yaml":
            doc.pop("pii", None)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def best_of(contenders: list[Callable[[list[bytes]], object]], lines: list[bytes],
            repeat: int, chunk: int = 2000) -> list[float]:
    """Seconds per contender for all ``lines``: the sum over chunks of the best of ``repeat``.

    Each chunk is timed for every contender in turn, ``repeat`` times, so a load spike on
    the shared machine spoils one sample of one chunk, not a contender's whole figure.
    Pass ``--wall`` to time with ``perf_counter`` instead of process CPU time.
    """
    totals = [0.0] * len(contenders)
    gc.disable()  # collections triggered by one contender's garbage would bill the next
    try:
        for at in range(0, len(lines), chunk):
            part = lines[at:at + chunk]
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


def run(plan_dir: Path, label: str, lines: list[bytes], repeat: int) -> None:
    enforcer = load_plan(plan_dir).compile()
    path = TypedPath.of(enforcer)
    loads = orjson.loads
    enforce = enforcer.enforce
    enforce_bytes = enforcer.enforce_bytes
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
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    valid = make_lines(args.events, mistakes=False)
    mixed = make_lines(args.events, mistakes=True)
    with tempfile.TemporaryDirectory() as tmp:
        nopii = plan_without_pii(Path(tmp))
        for plan_dir, name in ((PLAN, "example plan"), (nopii, "example plan without PII")):
            run(plan_dir, f"{name}, valid events", valid, args.repeat)
            run(plan_dir, f"{name}, ~14% with mistakes", mixed, args.repeat)


if __name__ == "__main__":
    main()
