"""Core enforcement: trackplan's full ``enforce`` against bare validation by its peers.

One process, one plan (plans/ecommerce), the same events for every contender: realistic
shop journeys made by examples/make_events.py (fixed seed; page, track, identify and group
calls, about 890 B each), once all valid and once with its ~14% injected mistakes.

Dicts in: trackplan ``enforce`` (controls on: unplanned events blocked, unplanned
properties and violations omitted, ``context.protocols`` stamped) against ``is_valid`` of
jsonschema-rs, fastjsonschema and jsonschema (``Draft7Validator`` + ``FormatChecker``) on
the same whole-call schemas the engine compiles (envelope, common rule and event rule as one
``allOf``), every peer dispatching by call type and event name through a dict.
Bytes in: ``orjson.loads`` alone, ``orjson.loads`` + jsonschema-rs, ``orjson.loads`` +
``enforce``, and trackplan's NDJSON path ``enforcer.enforce_bytes``.

Two plans: as shipped (PII actions: emails hashed, IPs masked) and a variant without
``x-pii`` and ``pii`` (the core fast path alone). Timed with process CPU time, per chunk of
2,000 events the best of ``--repeat`` runs, contenders interleaved, so a load spike on a
shared machine spoils one sample, not a figure. jsonschema is about 100x slower than the
others and runs on the first ``--slow`` events only.

    TRACKPLAN_HASH_KEY=... python benchmarks/bench_enforce.py [--events 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import common
import fastjsonschema
import jsonschema
import jsonschema_rs
import orjson
from common import PLAN, best_of, drain, keep, make_events, without_pii

from trackplan.engine import compile_plan
from trackplan.plan.assemble import call_schema
from trackplan.plan.load import load_plan
from trackplan.plan.model import Plan, Rule
from trackplan.schema.envelope import envelope_schema


def whole_call_schemas(plan: Plan) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The schema the engine compiles per (call type, event name); ``None``: unplanned."""
    out: dict[tuple[str, str | None], dict[str, Any]] = {}
    for kind in ("identify", "group", "page", "screen", "alias", "track"):
        rule = plan.rule(kind) if kind not in ("alias", "track") else None  # type: ignore[arg-type]
        if rule is None:
            rule_kind = "track" if kind == "alias" else kind
            rule = Rule(rule_kind, None, 1, None, None, None, plan.draft, "", "")  # type: ignore[arg-type]
        out[(kind, None)] = call_schema(plan, rule, extra=[envelope_schema(kind)])
    for name in plan.event_names:
        oldest = plan.versions(name)[0]  # peers skip version selection: the oldest
        out[("track", name)] = call_schema(plan, oldest, extra=[envelope_schema("track")])
    return out


Check = Callable[[Any], bool]


def dispatcher(checks: Mapping[tuple[str, str | None], Check]) -> Check:
    """``check(event)``: one dict lookup by (type, event), as every peer does."""
    get = checks.get
    unplanned = checks[("track", None)]

    def check(event: Any) -> bool:
        kind = event.get("type")
        if kind == "track":
            return get(("track", event.get("event")), unplanned)(event)
        found = get((kind, None))
        return found(event) if found is not None else False

    return check


def peers(plan: Plan) -> dict[str, Callable[[Any], bool]]:
    schemas = whole_call_schemas(plan)
    rs = {
        k: jsonschema_rs.validator_for(s, validate_formats=True).is_valid
        for k, s in schemas.items()
    }
    fast: dict[tuple[str, str | None], Callable[[Any], bool]] = {}
    for key, schema in schemas.items():
        validate = fastjsonschema.compile(copy.deepcopy(schema))  # it rewrites $ref in place

        def ok(event: Any, validate: Callable[[Any], Any] = validate) -> bool:
            try:
                validate(event)
            except fastjsonschema.JsonSchemaException:
                return False
            return True

        fast[key] = ok
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    ref = {k: jsonschema.Draft7Validator(s, format_checker=checker).is_valid
           for k, s in schemas.items()}  # fmt: skip
    return {"jsonschema-rs": dispatcher(rs), "fastjsonschema": dispatcher(fast),
            "jsonschema": dispatcher(ref)}  # fmt: skip


def row(name: str, seconds: float, count: int, base: float, base_name: str) -> str:
    per = seconds / count
    return (f"  {name:<34}{per * 1e6:>9.2f} us{count / seconds if seconds else 0:>13,.0f}/s"
            f"{per / base:>8.2f}x {base_name}")  # fmt: skip


def run(plan: Plan, label: str, events: list[dict[str, Any]], repeat: int, slow: int) -> None:
    enforcer = compile_plan(plan)
    enforce = enforcer.enforce
    enforce_bytes = enforcer.enforce_bytes
    check = peers(plan)
    rs, fast, ref = check["jsonschema-rs"], check["fastjsonschema"], check["jsonschema"]
    lines = [orjson.dumps(e) for e in events]
    loads = orjson.loads
    n = len(events)
    blocked = sum(not enforce(e).allowed for e in events)
    # warm up (the bytes path builds its typed decoders on first use) and check it agrees
    agree = sum(enforce_bytes(x).allowed == enforce(loads(x)).allowed for x in lines)
    assert agree == len(lines), f"enforce_bytes and enforce disagree on {len(lines) - agree}"
    invalid = sum(not rs(e) for e in events)
    transform = sum(c.transform is not None for c in enforcer.compiled_rules())
    print(
        f"\n{label}: {n} events, {sum(map(len, lines)) // n} B/event, {invalid / n:.1%} invalid "
        f"(jsonschema-rs), {blocked / n:.1%} blocked, {transform} rules with a PII transform"
    )
    t_enf, t_rs, t_fast = best_of([drain(enforce), drain(rs), drain(fast)], events, repeat)
    sub = events[:slow]
    (t_ref,) = best_of([drain(ref)], sub, max(1, repeat // 2))
    print("  dicts in                              per event     events/s")
    print(row("jsonschema-rs is_valid", t_rs, n, t_rs / n, "rs"))
    print(row("trackplan enforce (controls on)", t_enf, n, t_rs / n, "rs"))
    print(row("fastjsonschema", t_fast, n, t_rs / n, "rs"))
    print(row(f"jsonschema Draft7 ({len(sub)} events)", t_ref, len(sub), t_rs / n, "rs"))
    print(f"  -> enforce throughput = {t_rs / t_enf:.2f}x bare jsonschema-rs (target >= 0.8x)")
    t_loads, t_bytes, t_le, t_lrs, k_loads, k_bytes, k_le = best_of(
        [drain(loads), drain(enforce_bytes), drain(lambda x: enforce(loads(x))),
         drain(lambda x: rs(loads(x))), keep(loads), keep(enforce_bytes),
         keep(lambda x: enforce(loads(x)))],
        lines, repeat,
    )  # fmt: skip
    print("  NDJSON bytes in, each result dropped at once (streaming)")
    print(row("orjson.loads alone", t_loads, n, t_loads / n, "loads"))
    print(row("trackplan enforce_bytes", t_bytes, n, t_loads / n, "loads"))
    print(row("orjson.loads + enforce", t_le, n, t_loads / n, "loads"))
    print(row("orjson.loads + jsonschema-rs", t_lrs, n, t_loads / n, "loads"))
    print("  NDJSON bytes in, results kept per chunk of 2,000 (batch in memory)")
    print(row("orjson.loads alone", k_loads, n, k_loads / n, "loads"))
    print(row("trackplan enforce_bytes", k_bytes, n, k_loads / n, "loads"))
    print(row("orjson.loads + enforce", k_le, n, k_loads / n, "loads"))
    print(
        f"  -> enforce_bytes time = {t_bytes / t_loads:.2f}x orjson.loads streaming, "
        f"{k_bytes / k_loads:.2f}x kept (target <= 1.6x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slow", type=int, default=4000, help="events for jsonschema")
    parser.add_argument("--wall", action="store_true", help="wall time, not process CPU time")
    args = parser.parse_args()
    if args.wall:
        common.CLOCK = time.perf_counter
    # the shipped plan hashes emails: a stand-in key for timing (never a real secret)
    os.environ.setdefault("TRACKPLAN_HASH_KEY", "benchmark-key-not-secret")
    shipped = load_plan(PLAN)
    core = without_pii(shipped)
    valid = make_events(args.events, mistakes=False)
    mixed = make_events(args.events, mistakes=True)
    for plan, name in ((core, "plan without PII (core path)"), (shipped, "plan as shipped (PII)")):
        run(plan, f"{name}, valid events", valid, args.repeat, args.slow)
        run(plan, f"{name}, with mistakes", mixed, args.repeat, args.slow)


if __name__ == "__main__":
    main()
