"""Planted PII that gets through ``validate --out`` on an imported Segment plan.

Generates the corpus of ``tests/pii/planted.py`` (every category in every position),
imports its Segment export with ``trackplan import segment`` (x-pii declarations, no
``pii`` section), runs ``trackplan validate --out`` as a user would, and counts the planted
values whose text is still in a forwarded event, by position and by category.

    PYTHONPATH=. python benchmarks/pii_planted.py [--events N] [--client] [--src DIR]

``--client`` measures the generated client instead: the imported plan with
``pii: {client_side: true}`` is generated with ``trackplan codegen python``, and the same
calls (their planned properties and context) are made through it under ``python -I -S``
(standard library only); the planted values the SDK receives are counted. ``--src`` runs
the CLI from another checkout (an older commit, for the "before" figure).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pii.planted import corpus, leaked, segment_export  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=720)
    parser.add_argument("--client", action="store_true", help="measure the generated client")
    parser.add_argument("--src", type=Path, default=ROOT, help="the trackplan checkout to run")
    args = parser.parse_args()
    events, planted = corpus(args.events)
    env = {**os.environ, "TRACKPLAN_HASH_KEY": "bench-key", "PYTHONPATH": str(args.src)}
    if args.client:
        forwarded = _through_client(events, env)
        planted = [p for p in planted if p.position != "unplanned"]  # no argument for those
        _report("client", events, forwarded, planted)
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "segment.json").write_text(json.dumps(segment_export()), encoding="utf-8")
        (base / "in.ndjson").write_text(
            "".join(json.dumps(e) + "\n" for e in events), encoding="utf-8"
        )
        run = [sys.executable, "-m", "trackplan"]
        subprocess.run([*run, "import", "segment", str(base / "segment.json"),
                        "--out", str(base / "plan")], check=True, env=env, cwd=tmp)  # fmt: skip
        validate = [*run, "validate", str(base / "plan"), str(base / "in.ndjson")]
        subprocess.run([*validate, "--out", str(base / "out.ndjson")], env=env, cwd=tmp,
                       capture_output=True)  # fmt: skip
        lines = (base / "out.ndjson").read_text(encoding="utf-8").splitlines()
    forwarded = [json.loads(line) for line in lines if line.strip()]
    _report("validate --out", events, forwarded, planted)


_RUNNER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from tracking import Client
sent = []
class Sdk:
    def track(self, **kw): sent.append(kw)
client = Client(Sdk(), on_violation=lambda message, violations: None)
for kwargs, message_id in json.load(sys.stdin):
    before = len(sent)
    client.order_placed(**kwargs)
    if len(sent) > before:
        sent[-1]["messageId"] = message_id
print(json.dumps(sent))
"""


def _through_client(events: list[dict[str, Any]], env: dict[str, str]) -> list[dict[str, Any]]:
    run = [sys.executable, "-m", "trackplan"]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        export = segment_export()
        (base / "segment.json").write_text(json.dumps(export), encoding="utf-8")
        subprocess.run([*run, "import", "segment", str(base / "segment.json"),
                        "--out", str(base / "plan")], check=True, env=env, cwd=tmp)  # fmt: skip
        with (base / "plan" / "plan.yaml").open("a", encoding="utf-8") as f:
            f.write("pii: {client_side: true}\n")
        subprocess.run([*run, "codegen", "python", str(base / "plan"), "--out",
                        str(base / "gen" / "tracking")], check=True, env=env, cwd=tmp)  # fmt: skip
        schema = export["rules"][1]["jsonSchema"]["properties"]["properties"]["properties"]
        calls = [
            [{**{k: v for k, v in e["properties"].items() if k in schema},
              "user_id": e["userId"], "context": e["context"]}, e["messageId"]]
            for e in events
        ]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _RUNNER, str(base / "gen")],
            input=json.dumps(calls), capture_output=True, text=True, check=True,
            env={"TRACKPLAN_HASH_KEY": "bench-key"},
        )  # fmt: skip
    sent: list[dict[str, Any]] = json.loads(done.stdout)
    return sent


def _report(
    surface: str, events: list[Any], forwarded: list[dict[str, Any]], planted: list[Any]
) -> None:
    through = leaked(forwarded, planted)
    print(f"{surface}: {len(events)} events, {len(forwarded)} forwarded; "
          f"{len(through)} of {len(planted)} planted PII values got through")  # fmt: skip
    for what, key in (("position", "position"), ("category", "category")):
        total = collections.Counter(getattr(p, key) for p in planted)
        got = collections.Counter(getattr(p, key) for p in through)
        print(f"by {what}: " + ", ".join(f"{k} {got[k]}/{n}" for k, n in sorted(total.items())))


if __name__ == "__main__":
    main()
