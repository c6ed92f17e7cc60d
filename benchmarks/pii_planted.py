"""Planted PII that gets through ``validate --out`` on an imported Segment plan.

Generates the corpus of ``tests/pii/planted.py`` (every category in every position),
imports its Segment export with ``trackplan import segment`` (x-pii declarations, no
``pii`` section), runs ``trackplan validate --out`` as a user would, and counts the planted
values whose text is still in a forwarded event, by position and by category.

    PYTHONPATH=. python benchmarks/pii_planted.py [--events N]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pii.planted import corpus, leaked, segment_export  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=720)
    args = parser.parse_args()
    events, planted = corpus(args.events)
    env = {**os.environ, "TRACKPLAN_HASH_KEY": "bench-key", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "segment.json").write_text(json.dumps(segment_export()), encoding="utf-8")
        (base / "in.ndjson").write_text(
            "".join(json.dumps(e) + "\n" for e in events), encoding="utf-8"
        )
        run = [sys.executable, "-m", "trackplan"]
        subprocess.run([*run, "import", "segment", str(base / "segment.json"),
                        "--out", str(base / "plan")], check=True, env=env)  # fmt: skip
        validate = [*run, "validate", str(base / "plan"), str(base / "in.ndjson")]
        subprocess.run([*validate, "--out", str(base / "out.ndjson")], env=env,
                       capture_output=True)  # fmt: skip
        lines = (base / "out.ndjson").read_text(encoding="utf-8").splitlines()
    forwarded = [json.loads(line) for line in lines if line.strip()]
    through = leaked(forwarded, planted)
    print(f"{len(events)} events, {len(forwarded)} forwarded; "
          f"{len(through)} of {len(planted)} planted PII values got through")  # fmt: skip
    for what, key in (("position", "position"), ("category", "category")):
        total = collections.Counter(getattr(p, key) for p in planted)
        got = collections.Counter(getattr(p, key) for p in through)
        print(f"by {what}: " + ", ".join(f"{k} {got[k]}/{n}" for k, n in sorted(total.items())))


if __name__ == "__main__":
    main()
