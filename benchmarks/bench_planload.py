"""Load and compile a 500-event plan: cold (no cache), warm (second run) and with the cache off.

Generates a realistic plan directory (``plan.yaml`` with shared definitions, PII defaults,
controls and destinations; 500 files under ``events/``, a few with a second version) whose
events have varied properties: bounded strings, enums, integer and number ranges, formats,
nested objects, arrays of ``$ref`` products, ``x-pii`` declarations. Then times, each in a
fresh ``python`` process, interleaved round by round:

- ``cold``: an empty cache directory (``TRACKPLAN_CACHE_DIR``), the plan read, checked,
  compiled and written to the cache;
- ``warm``: the same again with the cache the cold run wrote (a user's second run);
- ``no cache``: ``TRACKPLAN_NO_CACHE=1``;
- with ``--before DIR``: the same load and compile by another checkout (``PYTHONPATH=DIR``),
  for the "before" column.

Each process reports ``load_plan`` + ``compile_plan`` (what every command pays; rules'
validators are compiled at their first event) and, separately, ``compile_all`` (every
rule's validators compiled now, as ``trackplan check`` and the gateway do), excluding
interpreter start and imports (``bench_startup.py`` measures those). Targets (issue 17,
target 4): at most 0.5 s warm and 2 s cold.

Run from the repository root: ``python benchmarks/bench_planload.py [--events 500]
[--runs 5] [--before ../main]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a clone without installing

from trackplan.plan.write import dump_yaml  # noqa: E402  (block YAML, as plans are written)

_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import trackplan
assert trackplan.__file__.startswith(sys.argv[2]), trackplan.__file__
from trackplan.engine import compile_plan
from trackplan.plan.load import load_plan
t1 = time.perf_counter()
enforcer = compile_plan(load_plan(sys.argv[1]))
t2 = time.perf_counter()
if hasattr(enforcer, "compile_all"):
    enforcer.compile_all()
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load_compile": t2 - t1, "compile_all": t3 - t2,
                  "rules": sum(1 for _ in enforcer.compiled_rules())}))
"""

DOMAINS = ["Account", "Cart", "Checkout", "Order", "Product", "Search", "Video", "Article",
           "Subscription", "Coupon", "Review", "Wishlist", "Support Ticket", "Notification",
           "Payment", "Shipment", "Return", "Store", "Loyalty", "Referral"]  # fmt: skip
ACTIONS = ["Viewed", "Created", "Updated", "Deleted", "Shared", "Clicked", "Started",
           "Completed", "Failed", "Opened", "Closed", "Submitted", "Applied", "Removed",
           "Exported", "Imported", "Rated", "Saved", "Restored", "Scheduled", "Cancelled",
           "Paused", "Resumed", "Expanded", "Collapsed"]  # fmt: skip


def _property(rng: random.Random, index: int) -> tuple[str, dict[str, Any]]:
    """One property schema of a realistic kind, with its name."""
    kind = rng.choice(["id", "id", "enum", "int", "money", "currency", "bool", "when",
                       "url", "text", "email", "phone", "nested", "products", "tags"])
    name = f"{kind}_{index}"
    desc = f"The {kind} of the event ({index})."
    if kind == "id":
        return name, {"type": "string", "maxLength": 64, "description": desc, "x-pii": False}
    if kind == "enum":
        values = [f"v{rng.randrange(100)}_{i}" for i in range(rng.randint(2, 8))]
        return name, {"enum": values, "description": desc}
    if kind == "int":
        low = rng.randint(0, 10)
        return name, {"type": "integer", "minimum": low, "maximum": low + rng.randint(10, 10**6),
                      "description": desc}
    if kind == "money":
        return name, {"$ref": "#/definitions/money"}
    if kind == "currency":
        return name, {"$ref": "#/definitions/currency"}
    if kind == "bool":
        return name, {"type": "boolean", "description": desc}
    if kind == "when":
        return name, {"type": "string", "format": "date-time", "description": desc,
                      "x-pii": False}
    if kind == "url":
        return name, {"type": "string", "format": "uri", "maxLength": 2048,
                      "description": desc, "x-pii": {"category": "free_text", "action": "allow"}}
    if kind == "text":
        return name, {"type": "string", "maxLength": rng.choice([128, 512, 4096]),
                      "description": desc,
                      "x-pii": {"category": "free_text", "action": "allow",
                                "basis": "typed by staff; detectors still scan it"}}
    if kind == "email":
        return name, {"type": "string", "format": "email", "maxLength": 254,
                      "description": desc, "x-pii": {"category": "email", "action": "hash"}}
    if kind == "phone":
        return name, {"type": "string", "maxLength": 32, "description": desc,
                      "x-pii": {"category": "phone", "action": "hash"}}
    if kind == "nested":
        return name, {"type": "object", "description": desc,
                      "x-pii": {"category": "address", "action": "drop"},
                      "properties": {"street": {"type": "string", "maxLength": 256},
                                     "city": {"type": "string", "maxLength": 128},
                                     "postal_code": {"type": "string", "maxLength": 16},
                                     "country": {"type": "string", "pattern": "^[A-Z]{2}$"}}}
    if kind == "products":
        return name, {"type": "array", "maxItems": 200, "description": desc,
                      "items": {"$ref": "#/definitions/product"}}
    return name, {"type": "array", "maxItems": 20, "uniqueItems": True, "description": desc,
                  "items": {"type": "string", "maxLength": 64, "x-pii": False}}


def make_plan(root: Path, events: int, seed: int = 17) -> None:
    """Write a plan directory of ``events`` track events (about 3% with a version 2)."""
    rng = random.Random(seed)
    source = (ROOT / "plans" / "ecommerce" / "plan.yaml").read_text(encoding="utf-8")
    (root / "events").mkdir(parents=True)
    (root / "plan.yaml").write_text(source, encoding="utf-8")  # definitions, PII, controls
    names = [f"{d} {a}" for d in DOMAINS for a in ACTIONS]
    rng.shuffle(names)
    for i in range(events):
        name = names[i % len(names)] + ("" if i < len(names) else f" {i // len(names)}")
        for version in (1, 2) if i % 33 == 0 else (1,):
            props = dict(_property(rng, j) for j in range(rng.randint(5, 20)))
            required = sorted(rng.sample(sorted(props), k=min(len(props), rng.randint(1, 4))))
            doc = {"name": name, "version": version, "description": f"{name}, as it happens.",
                   "properties": {"type": "object", "required": required,
                                  "properties": props}}
            suffix = f".v{version}" if version > 1 else ""
            slug = name.lower().replace(" ", "-")
            (root / "events" / f"{slug}{suffix}.yaml").write_text(
                dump_yaml(doc, header="generated by bench_planload.py"), encoding="utf-8")


def _run(plan: Path, env: dict[str, str], pythonpath: str) -> dict[str, float]:
    run_env = {**env, "PYTHONPATH": pythonpath}
    # run outside any checkout: ``python -c`` puts the working directory first on the path
    done = subprocess.run([sys.executable, "-c", _PROBE, str(plan), pythonpath], env=run_env,
                          cwd=plan.parent, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"probe failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout to compare with")
    args = parser.parse_args()

    # as a user runs it: bytecode caches written by the first run and used after
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "TRACKPLAN_NO_CACHE",
                        "TRACKPLAN_CACHE_DIR")}  # fmt: skip
    env["TRACKPLAN_HASH_KEY"] = "bench-key"
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan"
        make_plan(plan, args.events)
        files = sorted(plan.rglob("*.yaml"))
        size = sum(p.stat().st_size for p in files)
        here = str(ROOT)
        contenders: dict[str, list[dict[str, float]]] = {"cold": [], "warm": [],
                                                         "no cache": []}  # fmt: skip
        if args.before is not None:
            contenders["before"] = []
        _run(plan, {**env, "TRACKPLAN_NO_CACHE": "1"}, here)  # bytecode and file cache
        for round_no in range(args.runs):
            cache = Path(tmp) / f"cache-{round_no}"
            contenders["cold"].append(_run(plan, {**env, "TRACKPLAN_CACHE_DIR": str(cache)},
                                           here))  # fmt: skip
            contenders["warm"].append(_run(plan, {**env, "TRACKPLAN_CACHE_DIR": str(cache)},
                                           here))  # fmt: skip
            contenders["no cache"].append(_run(plan, {**env, "TRACKPLAN_NO_CACHE": "1"}, here))
            if args.before is not None:
                before_env = {**env, "TRACKPLAN_CACHE_DIR": str(Path(tmp) / "before-cache")}
                contenders["before"].append(_run(plan, before_env, str(args.before.resolve())))
        rules = contenders["cold"][0]["rules"]
        print(f"{args.events}-event plan: {len(files)} files, {size / 1e6:.1f} MB, "
              f"{rules:.0f} compiled rules; median of {args.runs} fresh processes, interleaved")
        print(f"{'run':<10}{'load+compile s':>16}{'+compile_all s':>16}{'imports s':>11}"
              f"{'target':>9}{'':>8}")
        targets = {"cold": 2.0, "warm": 0.5}
        for name, samples in contenders.items():
            load = statistics.median(s["load_compile"] for s in samples)
            full = statistics.median(s["load_compile"] + s["compile_all"] for s in samples)
            imports = statistics.median(s["imports"] for s in samples)
            target = targets.get(name)
            verdict = "" if target is None else ("met" if load <= target else "MISSED")
            shown = f"{target:.1f} s" if target is not None else ""
            print(f"{name:<10}{load:>16.3f}{full:>16.3f}{imports:>11.3f}{shown:>9}"
                  f"{verdict:>8}")
        if args.before is not None:
            before = statistics.median(s["load_compile"] for s in contenders["before"])
            for name in ("cold", "warm", "no cache"):
                load = statistics.median(s["load_compile"] for s in contenders[name])
                print(f"{name} vs before: {before / load:.1f}x faster")


if __name__ == "__main__":
    main()
