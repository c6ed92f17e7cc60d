"""Time ``trackplan lint`` and ``trackplan diff`` on a large generated plan.

Generates a plan of N events (default 500, 12 properties each, nested objects, arrays and
``$ref``s to shared definitions), and a changed copy (10% of events edited in place, 10%
given a new version). Times, side by side in one run:

* loading the plan (the reference cost every command pays),
* jsonschema's meta-schema check of every payload (what a schema linter must at least do),
* ``lint_plan``, ``diff_plans`` of the plan with itself and with the changed copy,
* loading the plan from a git revision (``git archive`` + the loader).

Run: ``python benchmarks/bench_ci.py [--events 500] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from trackplan.ci.diff import diff_plans
from trackplan.ci.git import load_plan_at
from trackplan.ci.lint import lint_plan
from trackplan.plan.load import load_plan

OBJECTS = ["Order", "Product", "Cart", "Checkout", "Coupon", "Account", "Video", "Article"]
ACTIONS = ["Viewed", "Added", "Removed", "Started", "Completed", "Shared", "Updated", "Rated"]


def _event(i: int) -> dict[str, Any]:
    name = f"{OBJECTS[i % 8]} {ACTIONS[(i // 8) % 8]} {i // 64 + 1}"
    props: dict[str, Any] = {
        "item_id": {"type": "string", "maxLength": 64, "description": "Id.", "x-pii": False},
        "total": {"$ref": "#/definitions/money"},
        "count": {"type": "integer", "minimum": 0, "maximum": 1000, "description": "Count.",
                  "x-pii": False},
        "tier": {"enum": ["free", "plus", "pro"], "description": "Tier.", "x-pii": False},
        "email": {"type": "string", "format": "email", "maxLength": 254, "description": "E.",
                  "x-pii": {"category": "email", "action": "hash"}},
        "at": {"type": "string", "format": "date-time", "description": "When.", "x-pii": False},
        "products": {"type": "array", "maxItems": 50, "items": {"$ref": "#/definitions/product"},
                     "description": "Products.", "x-pii": False},
        "box": {"type": "object", "additionalProperties": False, "description": "Box.",
                "x-pii": False, "properties": {
                    "w": {"type": "number", "minimum": 0, "maximum": 99, "description": "W."},
                    "h": {"type": "number", "minimum": 0, "maximum": 99, "description": "H."}}},
    }
    for k in range(4):
        props[f"field_{k}"] = {"type": ["string", "null"], "maxLength": 128,
                               "description": f"Field {k}.", "x-pii": False}
    return {"name": name, "version": 1, "description": f"Event {i}.",
            "properties": {"type": "object", "required": ["item_id", "total"],
                           "properties": props}}


def write_plan(root: Path, events: list[dict[str, Any]]) -> Path:
    """A plan directory with plan.yaml and one file per event."""
    (root / "events").mkdir(parents=True, exist_ok=True)
    plan = {
        "trackplan": 1, "name": "Bench", "version": "1",
        "controls": {"track": {"unplanned_properties": "omit"}},
        "definitions": {
            "money": {"type": "number", "minimum": 0, "maximum": 1e6, "description": "Money.",
                      "x-pii": False},
            "product": {"type": "object", "description": "Product.", "x-pii": False,
                        "properties": {
                            "sku": {"type": "string", "maxLength": 64, "description": "SKU.",
                                    "x-pii": False},
                            "price": {"$ref": "#/definitions/money"}}},
        },
        "pii": {"defaults": {"email": "hash"}},
    }
    (root / "plan.yaml").write_text(yaml.safe_dump(plan, sort_keys=False))
    for i, ev in enumerate(events):
        (root / "events" / f"e{i:04d}.v{ev['version']}.yaml").write_text(
            yaml.safe_dump(ev, sort_keys=False))
    return root


def changed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """10% edited in place (REVISION/ADDITION/MODEL mix), 10% given a new version."""
    out = copy.deepcopy(events)
    for i in range(0, len(out), 10):
        props = out[i]["properties"]["properties"]
        props["count"]["maximum"] = 5000
        props["note"] = {"type": ["string", "null"], "maxLength": 10, "description": "N.",
                         "x-pii": False}
        if i % 20 == 0:
            out[i]["properties"]["required"].append("count")
    for i in range(5, len(out), 10):
        bumped = copy.deepcopy(out[i])
        bumped["version"] = 2
        bumped["properties"]["properties"]["tier"]["enum"] = ["free", "pro"]
        out.append(bumped)
    return out


def best(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events = [_event(i) for i in range(args.events)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ci-"))
    try:
        old_dir = write_plan(tmp / "old", events)
        new_dir = write_plan(tmp / "new", changed(events))
        t_load, old = best(lambda: load_plan(old_dir), args.repeat)
        new = load_plan(new_dir)
        check = jsonschema.Draft7Validator.check_schema
        t_meta, _ = best(lambda: [check(dict(r.payload)) for r in old.events  # type: ignore[arg-type]
                                  ], args.repeat)
        t_lint, report = best(lambda: lint_plan(old), args.repeat)
        t_same, same = best(lambda: diff_plans(old, old), args.repeat)
        t_diff, diff = best(lambda: diff_plans(old, new), args.repeat)
        subprocess.run(["git", "init", "-q", str(tmp)], check=True)
        subprocess.run(["git", "-C", str(tmp), "add", "old"], check=True)
        subprocess.run(["git", "-C", str(tmp), "-c", "user.name=b", "-c",
                        "user.email=b@example.invalid", "commit", "-qm", "plan"], check=True)
        t_git, _ = best(lambda: load_plan_at("HEAD", "old", tmp), args.repeat)
        n = len(old.events)
        print(f"plan: {n} events, {sum(len(r.payload['properties']) for r in old.events)} "  # type: ignore[index]
              f"properties; changed copy: {len(new.events)} event versions")
        rows = [
            ("load plan (reference)", t_load, ""),
            ("jsonschema check_schema, every payload", t_meta, ""),
            ("lint_plan (25 rules)", t_lint, f"{len(report.findings)} findings"),
            ("diff_plans(p, p)", t_same, f"{len(same.changes)} changes"),
            ("diff_plans(p, changed)", t_diff,
             f"{len(diff.changes)} changes, {len(diff.violations)} violations"),
            ("load plan at a git revision", t_git, ""),
        ]
        print(f"{'step':<42}{'median ms':>10}{'events/s':>12}{'x load':>8}  result")
        for label, secs, note in rows:
            print(f"{label:<42}{secs * 1000:>10.1f}{n / secs:>12,.0f}{secs / t_load:>8.2f}  {note}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
