"""How long a user waits before a command does anything: CLI start-up against bare Python.

Times, interleaved in one loop (so load on a shared machine hits every contender alike),
the median wall time of ``--runs`` runs each of:

- ``python -c pass`` (the floor: the interpreter alone, in the same environment);
- ``trackplan --help``;
- ``trackplan validate plans/ecommerce ONE_EVENT.ndjson`` (a one-event file: start-up, plan
  load and compile, one event), as a user's second run does it (the plan from the cache of
  loaded plans, in a directory of this run) and with ``TRACKPLAN_NO_CACHE=1``;
- ``trackplan scan plans/ecommerce examples/export.parquet`` (for scale: a batch command
  that needs pyarrow).

and prints each as a ratio to the floor. Targets (issue: fresh machine): ``--help`` at most
4x, ``validate`` of one event at most 6x. ``--importtime`` also prints the slowest imports of
the validate run (``python -X importtime``).

Run from the repository root with trackplan installed: ``python benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENT = (
    b'{"type":"track","event":"Product Viewed","userId":"u1","messageId":"m1",'
    b'"timestamp":"2026-01-01T00:00:00Z","properties":{"product_id":"p1","price":9.5}}\n'
)


def _trackplan() -> list[str]:
    exe = shutil.which("trackplan", path=str(Path(sys.executable).parent)) or shutil.which(
        "trackplan"
    )
    return [exe] if exe else [sys.executable, "-m", "trackplan"]


def _time(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument("--module", action="store_true",
                        help="run `python -m trackplan` (with PYTHONPATH: another checkout)")
    parser.add_argument("--before", type=Path,
                        help="also time validate of another checkout (the 'before' figure)")
    args = parser.parse_args()

    # as a user runs it: bytecode caches written by the first run and used after
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["TRACKPLAN_HASH_KEY"] = "bench-key"
    env.pop("TRACKPLAN_NO_CACHE", None)
    with tempfile.TemporaryDirectory() as tmp:
        env["TRACKPLAN_CACHE_DIR"] = str(Path(tmp) / "cache")  # never the user's own
        no_cache = {**env, "TRACKPLAN_NO_CACHE": "1"}
        one = Path(tmp) / "one.ndjson"
        one.write_bytes(EVENT)
        tp = [sys.executable, "-m", "trackplan"] if args.module else _trackplan()
        contenders = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "trackplan --help": [*tp, "--help"],
            "trackplan validate (1 event)": [*tp, "validate", "plans/ecommerce", str(one)],
            "  same, no plan cache": [*tp, "validate", "plans/ecommerce", str(one)],
            "trackplan scan (1,200 rows)": [*tp, "scan", "plans/ecommerce",
                                            "examples/export.parquet", "--quiet"],
        }  # fmt: skip
        envs = {name: no_cache if "no plan cache" in name else env for name in contenders}
        cwds = {name: ROOT for name in contenders}
        if args.before is not None:
            before = args.before.resolve()
            name = f"before: validate ({before.name})"
            contenders[name] = [sys.executable, "-m", "trackplan", "validate",
                                "plans/ecommerce", str(one)]  # fmt: skip
            envs[name] = {**no_cache, "PYTHONPATH": str(before)}
            cwds[name] = before  # python -m puts the working directory first on the path
        for name, cmd in contenders.items():  # warm the file cache (and plan cache) once
            _time(cmd, envs[name], cwds[name])
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.runs):
            for name, cmd in contenders.items():
                times[name].append(_time(cmd, envs[name], cwds[name]))
        floor = statistics.median(times["python -c pass"])
        print(f"median of {args.runs} runs, interleaved; ratio to `python -c pass`")
        print(f"{'command':<34}{'median ms':>10}{'ratio':>8}")
        for name, samples in times.items():
            med = statistics.median(samples)
            print(f"{name:<34}{med * 1000:>10.1f}{med / floor:>7.1f}x")
        if args.importtime:
            proc = subprocess.run(
                [sys.executable, "-X", "importtime", "-m", "trackplan", "validate",
                 "plans/ecommerce", str(one)],
                cwd=ROOT, env=env, capture_output=True, text=True,
            )  # fmt: skip
            rows = []
            for line in proc.stderr.splitlines():
                if line.startswith("import time:") and line[12:].strip()[:1].isdigit():
                    self_us, cum_us, name = (p.strip() for p in line[12:].split("|"))
                    rows.append((int(cum_us), int(self_us), name))
            print("\nslowest imports of `trackplan validate` (cumulative us, self us):")
            for cum, own, name in sorted(rows, reverse=True)[:15]:
                print(f"  {cum:>9} {own:>9}  {name}")


if __name__ == "__main__":
    main()
