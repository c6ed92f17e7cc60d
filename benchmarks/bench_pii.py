"""PII enforcement cost: the same plan and events with PII actions and detectors on vs off.

Run from the repository root: ``python benchmarks/bench_pii.py [--rounds 5] [--repeat 20]``.

"on" is the example plan as written (x-pii declarations: hash, mask, redact, drop, allow;
detectors on undeclared payload strings, ``context.ip`` and ``context.traits``). "off" is
the same plan with every ``x-pii`` stripped and detection disabled, so the engine's fast
path runs without a transform. "declared" keeps the x-pii actions, detection off. All
enforce the same events (``examples/events.ndjson``), interleaved, best of ``--rounds``;
one pass is ``--repeat`` times over the file.

The detectors cache strings found clean (never strings that held PII), so repeated values
(product names, categories) cost a set lookup. "on, cold" clears that cache before every
event: every new string then costs one prefiltered validator call per event (and a Python
scan when the prefilter cannot rule it out), the worst case for traffic where nothing
repeats. "bytes off" and "bytes on" time ``enforce_bytes`` on the file's NDJSON lines, what
``trackplan validate`` runs (the plan without PII takes the typed msgspec path).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackplan.pii import detect  # noqa: E402
from trackplan.plan.load import load_plan  # noqa: E402
from trackplan.plan.model import Plan  # noqa: E402


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "x-pii"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def without_pii(plan: Plan) -> Plan:
    """The plan with no x-pii and detection off: the engine without PII work."""
    rules = tuple(
        dataclasses.replace(r, payload=_strip(r.payload), call=_strip(r.call)) for r in plan.rules
    )
    return dataclasses.replace(
        plan, rules=rules, pii={"detection": False}, definitions=_strip(dict(plan.definitions))
    )


def run(enforce: Any, events: list[Any], repeat: int, cold: bool = False) -> float:
    """Seconds for ``repeat`` passes over ``events``."""
    clean = detect._CLEAN
    start = time.perf_counter()
    for _ in range(repeat):
        for event in events:
            if cold:
                clean.clear()
            enforce(event)
    return time.perf_counter() - start


def run_bytes(enforce_bytes: Any, lines: list[bytes], repeat: int) -> float:
    """Seconds for ``repeat`` passes over NDJSON ``lines`` (what ``trackplan validate`` runs)."""
    start = time.perf_counter()
    for _ in range(repeat):
        for line in lines:
            enforce_bytes(line)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--events", default=str(ROOT / "examples" / "events.ndjson"))
    args = parser.parse_args()
    os.environ.setdefault("TRACKPLAN_HASH_KEY", "benchmark-key-not-secret")
    plan = load_plan(ROOT / "plans" / "ecommerce")
    on = plan.compile()
    declared = dataclasses.replace(plan, pii={**plan.pii, "detection": False}).compile()
    off = without_pii(plan).compile()
    assert not any(c.transform for c in off.compiled_rules())
    lines = [line for line in Path(args.events).read_bytes().splitlines() if line]
    events = [orjson.loads(line) for line in lines]
    changed = sum(on.enforce(e).event is not e for e in events)
    pii_violations = sum(1 for e in events for v in on.enforce(e).violations if v.type == "PII")
    n = len(events) * args.repeat

    def clear_cold() -> float:
        # "cold" costs clear() per event on top: measure and subtract it
        start = time.perf_counter()
        for _ in range(args.repeat):
            for _e in events:
                detect._CLEAN.clear()
        return time.perf_counter() - start

    best = {"off": float("inf"), "declared": float("inf"), "on": float("inf"),
            "on, cold": float("inf"), "bytes off": float("inf"),
            "bytes on": float("inf")}  # fmt: skip
    for _ in range(args.rounds):
        best["off"] = min(best["off"], run(off.enforce, events, args.repeat))
        best["declared"] = min(best["declared"], run(declared.enforce, events, args.repeat))
        best["on"] = min(best["on"], run(on.enforce, events, args.repeat))
        cold = run(on.enforce, events, args.repeat, cold=True) - clear_cold()
        best["on, cold"] = min(best["on, cold"], cold)
        best["bytes off"] = min(best["bytes off"], run_bytes(off.enforce_bytes, lines, args.repeat))
        best["bytes on"] = min(best["bytes on"], run_bytes(on.enforce_bytes, lines, args.repeat))
    print(
        f"{len(events)} events x {args.repeat} passes, best of {args.rounds}; "
        f"{changed} events changed by PII actions, {pii_violations} PII violations"
    )
    print(f"{'case':12s} {'events/s':>12s} {'us/event':>9s} {'time vs off':>12s}")
    for name, seconds in best.items():
        base = best["bytes off"] if name.startswith("bytes") else best["off"]
        print(f"{name:12s} {n / seconds:12,.0f} {seconds / n * 1e6:9.2f} {seconds / base:11.2f}x")


if __name__ == "__main__":
    main()
