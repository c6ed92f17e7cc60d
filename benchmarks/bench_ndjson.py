"""NDJSON bytes in: ``orjson.loads`` alone vs ``loads`` + ``enforce`` vs ``enforce_bytes``.

One process, the same lines for every contender: realistic shop events of plans/ecommerce
made by examples/make_events.py (its journeys: page, track, identify and group calls).
Two plans: the example as shipped, and a variant with PII stripped (``x-pii`` annotations and
the ``pii`` section removed), since rules with PII actions need the event as a dict.
Best of 5 repeats (the machine may be shared).

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

from trackplan.engine.typed import TypedPath
from trackplan.plan.load import load_plan

ROOT = Path(__file__).resolve().parents[1]
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


def best_of(contenders: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best time of each contender; repeats interleave them so load spikes hit all alike."""
    times: list[list[float]] = [[] for _ in contenders]
    gc.disable()  # collections triggered by one contender's garbage would bill the next
    try:
        for _ in range(repeat):
            for fn, into in zip(contenders, times, strict=True):
                start = time.perf_counter()
                fn()
                into.append(time.perf_counter() - start)
                gc.collect()
    finally:
        gc.enable()
    return [min(t) for t in times]


def run(plan_dir: Path, label: str, lines: list[bytes], repeat: int) -> None:
    enforcer = load_plan(plan_dir).compile()
    path = TypedPath(enforcer)
    loads = orjson.loads
    enforce = enforcer.enforce
    enforce_bytes = enforcer.enforce_bytes
    enforce_bytes(lines[0])  # builds the typed path (compile cost is not per event)
    enforce_bytes = enforcer.enforce_bytes
    typed = sum(path.match(line) is not None for line in lines)
    transform = sum(c.transform is not None for c in enforcer.compiled_rules())
    t_loads, t_enforce, t_bytes = best_of(
        [
            lambda: [loads(x) for x in lines],
            lambda: [enforce(loads(x)) for x in lines],
            lambda: [enforce_bytes(x) for x in lines],
        ],
        repeat,
    )
    n = len(lines)
    print(f"\n{label}: {n} lines, {sum(map(len, lines)) // n} B/line, "
          f"{typed / n:.0%} decided on the typed path, {transform} rules with a transform")
    print(f"  untyped rules: {path.untyped or 'none'}")
    print(f"  {'contender':<28}{'us/event':>10}{'events/s':>12}{'x loads':>9}")
    for name, t in (("orjson.loads", t_loads), ("orjson.loads + enforce", t_enforce),
                    ("enforce_bytes", t_bytes)):
        print(f"  {name:<28}{t / n * 1e6:>10.2f}{n / t:>12,.0f}{t / t_loads:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    valid = make_lines(args.events, mistakes=False)
    mixed = make_lines(args.events, mistakes=True)
    with tempfile.TemporaryDirectory() as tmp:
        nopii = plan_without_pii(Path(tmp))
        for plan_dir, name in ((PLAN, "example plan"), (nopii, "example plan without PII")):
            run(plan_dir, f"{name}, valid events", valid, args.repeat)
            run(plan_dir, f"{name}, ~14% with mistakes", mixed, args.repeat)


if __name__ == "__main__":
    main()
