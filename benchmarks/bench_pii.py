"""PII enforcement cost: the same plan and events with PII actions and detectors on vs off.

Run from the repository root: ``python benchmarks/bench_pii.py [--events 20000] [--repeat 5]``.

Plans: "on" is the example plan as written (x-pii declarations: hash, mask, redact, drop,
allow; detectors on undeclared payload strings, ``context.ip`` and ``context.traits``).
"off" is the same plan with every ``x-pii`` stripped and detection disabled, so the engine's
fast path runs without a transform. "declared" keeps the x-pii actions, detection off.

Events, each set timed separately: the example file ``examples/events.ndjson`` (401 events,
about 12% with violations or unplanned properties, repeated to ``--events``), and the
example generator's shop journeys (examples/make_events.py), all valid ("clean traffic")
and with its ~14% injected mistakes.

Rows: off, declared and on take dicts in (``enforce``). "on, cold" clears the detectors'
clean caches and the action memos before every event (the clearing is timed alone and
subtracted): traffic where no value ever repeats; it is timed in a loop of its own against
a second "off" (the warm rows never run after a clearing). "copy floor" is off plus the least any
transform of this plan must do when it never mutates its input: copy the event and its
``context`` and set the masked ``context.ip`` (looked up in a dict), on every call, as the
plan's ``ip: mask`` asks. "bytes off/on" time ``enforce_bytes`` on NDJSON lines (what
``trackplan validate`` runs; the plan without PII takes the typed msgspec path).

Timing (benchmarks/common.py): process CPU time, per chunk of 2,000 events every contender
in turn, best of ``--repeat``, summed; ``--wall`` for wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import common
import orjson
from common import PLAN, ROOT, best_of, drain, make_events, without_pii

from trackplan.engine import compile_plan
from trackplan.engine.enforcer import Enforcer
from trackplan.pii import detect
from trackplan.plan.load import load_plan

Row = tuple[str, float, str]


def clear_caches(enforcer: Enforcer) -> Callable[[], None]:
    """A function emptying every cache the PII work keeps (as if no value ever repeated)."""
    sets = [detect.CLEAN, *getattr(detect, "_CLEAN_BY_CLASS", ())]
    memos: list[dict[str, Any]] = []
    for compiled in enforcer.compiled_rules():
        held = getattr(compiled.transform, "memos", None)
        if held:
            memos.extend(held.values())

    found = getattr(detect, "_FOUND", {})  # findings of strings that held PII
    try:  # E.164 forms of phones (issue 16), cached per value like the memos
        from trackplan.pii.phones import e164

        forget: Callable[[], None] = e164.cache_clear
    except ImportError:  # a version without phone normalisation

        def forget() -> None:
            pass

    def clear() -> None:
        forget()
        for cache in sets:
            cache.clear()
            cache.add(None)
        for memo in memos:
            memo.clear()
        found.clear()

    return clear


def copy_floor(off: Enforcer) -> Callable[[Any], object]:
    """``off.enforce`` plus the copy-on-write work an ``ip: mask`` plan needs on every call."""
    enforce = off.enforce
    masked: dict[str, str] = {}

    def floor(event: Any) -> object:
        result = enforce(event)
        ctx = event.get("context")
        if ctx.__class__ is dict and "ip" in ctx:
            ip = ctx["ip"]
            new = masked.get(ip)
            if new is None:
                new = masked[ip] = ip.rpartition(".")[0] + ".0" if type(ip) is str else ip
            out_ctx = ctx.copy()
            out_ctx["ip"] = new
            out = event.copy()
            out["context"] = out_ctx
        return result

    return floor


def measure(label: str, events: list[dict[str, Any]], plans: dict[str, Enforcer],
            repeat: int) -> list[Row]:  # fmt: skip
    on, off, declared = plans["on"], plans["off"], plans["declared"]
    clear = clear_caches(on)
    on_enforce = on.enforce

    def cold(event: Any) -> object:
        clear()
        return on_enforce(event)

    lines = [orjson.dumps(e) for e in events]
    changed = sum(on.enforce(e).event is not e for e in events)
    pii = sum(v.type == "PII" for e in events for v in on.enforce(e).violations)
    n = len(events)
    print(f"\n{label}: {n} events; {changed / n:.0%} changed by PII actions, "
          f"{pii} PII violations")
    # warm: the caches hold what earlier chunks and repeats left, as in a long run
    t_off, t_floor, t_dec, t_on = best_of(
        [drain(off.enforce), drain(copy_floor(off)), drain(declared.enforce),
         drain(on.enforce)],
        events, repeat,
    )  # fmt: skip
    # cold, in a loop of its own: it empties the caches the warm rows share, so timed
    # beside them it would bill "on" with the cache misses it causes
    t_off_cold, t_cold, t_clear = best_of(
        [drain(off.enforce), drain(cold), drain(lambda _e: clear())], events, repeat
    )
    for event in events:  # the caches warm again for whatever is timed next
        on_enforce(event)
    b_off, b_on = best_of([drain(off.enforce_bytes), drain(on.enforce_bytes)], lines, repeat)
    rows: list[Row] = [
        ("off", t_off, "off"), ("copy floor", t_floor, "off"), ("declared", t_dec, "off"),
        ("on", t_on, "off"), ("on, cold", t_cold - t_clear, "off, cold loop"),
        ("bytes off", b_off, "bytes off"), ("bytes on", b_on, "bytes off"),
    ]  # fmt: skip
    base = {"off": t_off, "off, cold loop": t_off_cold, "bytes off": b_off}
    print(f"  {'case':<12}{'events/s':>12}{'us/event':>10}{'time vs off':>13}")
    for name, seconds, against in rows:
        print(f"  {name:<12}{n / seconds:>12,.0f}{seconds / n * 1e6:>10.2f}"
              f"{seconds / base[against]:>12.2f}x")
    return rows


def clean_strings(count: int, repeat: int) -> None:
    """Cost of :func:`detect.scan` on strings seen for the first time that hold no PII
    (caches emptied before each pass): what the prefilter and detectors cost clean traffic.
    With ``enable_national`` (issue 16) also with every opt-in detector of a European plan."""
    import random
    import uuid

    rng = random.Random(7)
    words = ["Mug", "Lamp", "Chair", "Desk", "Kettle", "Shelf", "Rug", "Vase", "Clock"]
    makers: list[Callable[[int], str]] = [
        lambda i: f"{rng.choice(words)} {rng.choice(words)} {i}",
        lambda i: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        lambda i: f"https://shop.example.com/p/{rng.choice(words).lower()}-{i}?ref=home",
        lambda i: f"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_{i % 9}) Safari/605.1.{i}",
        lambda i: f"SKU-{rng.choice(words).upper()}-{i:06d}",
        lambda i: f"2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00.000Z",
        lambda i: f"{i % 1000}.{i % 100:02d} EUR",
        lambda i: f"Order confirmed for cart {i} with {i % 7} items",
    ]
    values = [makers[i % len(makers)](i) for i in range(count)]
    scan = detect.scan

    def run() -> float:
        best = float("inf")
        for _ in range(repeat):
            for cache in getattr(detect, "_CLEAN_BY_CLASS", (detect.CLEAN,)):
                cache.clear()
                cache.add(None)
            getattr(detect, "_FOUND", {}).clear()
            start = common.CLOCK()
            for v in values:
                scan(v)
            best = min(best, common.CLOCK() - start)
        return best

    print(f"\nclean strings, first sight: {count} values, best of {repeat}")
    print(f"  {'detectors':<34}{'us/string':>10}")
    print(f"  {'built-in':<34}{run() / count * 1e6:>10.3f}")
    enable = getattr(detect, "enable_national", None)
    if enable is not None:
        saved = dict(detect._NATIONAL)
        enable(phone_regions=["DE", "FR", "ES", "IT", "NL", "BE", "PL", "SE", "GB"],
               id_countries=["de", "fr", "es", "it", "nl", "be", "pl", "se", "gb"])
        print(f"  {'with 9 phone regions, 9 id countries':<34}{run() / count * 1e6:>10.3f}")
        detect._NATIONAL.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per set")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--wall", action="store_true", help="wall time, not process CPU time")
    parser.add_argument("--clean-only", action="store_true", help="only the clean-string pass")
    args = parser.parse_args()
    if args.wall:
        common.CLOCK = time.perf_counter
    os.environ.setdefault("TRACKPLAN_HASH_KEY", "benchmark-key-not-secret")
    clean_strings(args.events, args.repeat)
    if args.clean_only:
        return
    plan = load_plan(PLAN)
    plans = {
        "on": compile_plan(plan),
        "declared": compile_plan(dataclasses.replace(plan, pii={**plan.pii, "detection": False})),
        "off": compile_plan(without_pii(plan)),
    }
    assert not any(c.transform for c in plans["off"].compiled_rules())
    sample = [orjson.loads(line) for line in
              (ROOT / "examples" / "events.ndjson").read_bytes().splitlines() if line]
    example = (sample * (args.events // len(sample) + 1))[: args.events]
    sets = [("examples/events.ndjson", example),
            ("generated, clean traffic", make_events(args.events, mistakes=False)),
            ("generated, ~14% with mistakes", make_events(args.events, mistakes=True))]
    for label, events in sets:
        measure(label, events, plans, args.repeat)


if __name__ == "__main__":
    main()
