"""``trackplan validate`` end to end against the peer loop (issue 17, target 1).

Generates (seeded, ``examples/segment_shop.py``) a Segment Public API export of an 8-event web
shop plan and 100,000 NDJSON events of it (about 9% breaking the plan, some PII in free
text), imports the export with ``trackplan import segment`` (not timed), then times as
subprocesses, interpreter start included, interleaved round by round:

- trackplan: ``trackplan validate PLAN events.ndjson --out OUT --format json`` with the
  plan's detectors on (the default) and ``TRACKPLAN_HASH_KEY`` set, as a user runs it (a
  large file is split across the machine's cores, ``--jobs``), and the same with
  ``--jobs 1`` (one process: its CPU time is the work itself); both must write and report
  the same bytes;
- the peer loop: ``orjson.loads`` each line, dispatch by event name to a jsonschema-rs
  validator of that event's ``jsonSchema`` from the export, ``orjson.dumps`` the valid
  events to a file.

Each figure is the best of ``--rounds`` runs, in CPU time of the child (user + system:
steadier than wall time on a shared machine) and in wall time; the ratio is trackplan's
over the peer's. The peer loop runs in one process: the wall-clock ratio of the default
run shows what splitting the file across cores gives a user, the CPU ratios what the work
costs. Target: at most 1.3x, then 1.0x.

    python benchmarks/bench_validate.py [--events 100000] [--rounds 5] [--keep DIR]
                                        [--detection-off]

``--detection-off`` adds the same run on the plan with ``pii: {detection: off}`` (where
Segment's rules are decided on the typed msgspec path), to show what the detectors cost.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import segment_shop  # noqa: E402 - examples/segment_shop.py generates the plan and events

PEER = r'''
import sys
import jsonschema_rs
import orjson

export = orjson.loads(open(sys.argv[1], "rb").read())
validators = {
    rule["key"]: jsonschema_rs.validator_for(rule["jsonSchema"])
    for rule in export["rules"] if rule["type"] == "TRACK"
}
loads, dumps = orjson.loads, orjson.dumps
with open(sys.argv[2], "rb") as lines, open(sys.argv[3], "wb") as out:
    write = out.write
    for line in lines:
        event = loads(line)
        validator = validators.get(event.get("event"))
        if validator is not None and validator.is_valid(event):
            write(dumps(event) + b"\n")
'''


def run(cmd: list[str], env: dict[str, str], *, cwd: Path, path: Path | None = None
        ) -> tuple[float, float, int]:
    """(CPU seconds of the child, wall seconds, exit code)."""
    if path is not None:  # another checkout's trackplan
        env = {**env, "PYTHONPATH": str(path)}
    start = time.perf_counter()
    # run outside any checkout: ``python -m`` would import the trackplan of its cwd first
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{cmd[:4]} failed ({code}): {err.decode(errors='replace')[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--keep", type=Path, help="generate into (and keep) this directory")
    parser.add_argument("--also", type=Path, metavar="CHECKOUT",
                        help="also time the trackplan of another checkout (say, before a "
                             "change), interleaved with the others")
    parser.add_argument("--detection-off", action="store_true",
                        help="also time the plan with PII detection off (for the split)")
    args = parser.parse_args()

    env = dict(os.environ)
    env["TRACKPLAN_HASH_KEY"] = "bench-validate-hash-key-0123456789"
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as a user runs it: bytecode cached
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export, events = work / "segment-export.json", work / "events.ndjson"
        segment_shop.write(export, events, args.events, args.seed)
        plan = work / "plan"
        subprocess.run([sys.executable, "-m", "trackplan", "import", "segment", str(export),
                        "-o", str(plan), "--force"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        # the same plan with detection off: what the run costs without the PII detectors
        # (shown for the split, not the target)
        plain = work / "plan-detection-off"
        subprocess.run([sys.executable, "-m", "trackplan", "import", "segment", str(export),
                        "-o", str(plain), "--force"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        head = plain / "plan.yaml"
        head.write_text(head.read_text(encoding="utf-8") + "pii:\n  detection: 'off'\n",
                        encoding="utf-8")
        peer = work / "peer.py"
        peer.write_text(PEER, encoding="utf-8")
        out_tp, out_peer, report = work / "trackplan.out", work / "peer.out", work / "report"
        contenders = {
            "trackplan validate": [sys.executable, "-m", "trackplan", "validate", str(plan),
                                   str(events), "--out", str(out_tp), "--format", "json"],
            # one process, as on a one-core machine: the CPU figure of the work itself
            "validate --jobs 1": [sys.executable, "-m", "trackplan", "validate", str(plan),
                                  str(events), "--out", str(work / "one.out"), "--format",
                                  "json", "--jobs", "1"],
            "peer loop": [sys.executable, str(peer), str(export), str(events), str(out_peer)],
        }
        paths: dict[str, Path | None] = {name: None for name in contenders}
        if args.also is not None:
            name = f"trackplan ({args.also.name})"
            contenders[name] = [*contenders["trackplan validate"][:-3], str(work / "also.out"),
                                "--format", "json"]
            paths[name] = args.also.resolve()
        if args.detection_off:
            contenders["(detection off)"] = [
                sys.executable, "-m", "trackplan", "validate", str(plain), str(events), "--out",
                str(work / "plain.out"), "--format", "json"]
        size = events.stat().st_size
        print(f"{args.events} events, {size / args.events:.0f} B/event, "
              f"{args.rounds} rounds interleaved, best of each")
        for name, cmd in contenders.items():  # warm the page cache and the bytecode cache
            run(cmd, env, cwd=work, path=paths.get(name))
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, cmd in contenders.items():
                c, w, _code = run(cmd, env, cwd=work, path=paths.get(name))
                cpu[name].append(c)
                wall[name].append(w)
        with_report = subprocess.run(contenders["trackplan validate"], cwd=work, env=env,
                                     capture_output=True)
        report.write_bytes(with_report.stdout)
        summary = orjson.loads(with_report.stdout)
        one = subprocess.run(contenders["validate --jobs 1"], cwd=work, env=env,
                             capture_output=True)
        assert one.stdout == with_report.stdout, "--jobs 1 reports differently"
        assert (work / "one.out").read_bytes() == out_tp.read_bytes(), "--jobs 1 writes otherwise"
        forwarded = sum(1 for _ in out_tp.open("rb"))
        valid = sum(1 for _ in out_peer.open("rb"))
        print(f"trackplan: {summary['allowed']} allowed, {summary['blocked']} blocked, "
              f"{summary['violations']} violations, {forwarded} lines written; "
              f"peer: {valid} valid lines written")
        if args.also is not None:
            other = subprocess.run(contenders[f"trackplan ({args.also.name})"], cwd=work,
                                   env={**env, "PYTHONPATH": str(args.also.resolve())},
                                   capture_output=True)
            same = (other.stdout == with_report.stdout
                    and (work / "also.out").read_bytes() == out_tp.read_bytes())
            print(f"--out and --format json identical to {args.also}'s: {same}")
        base_cpu, base_wall = min(cpu["peer loop"]), min(wall["peer loop"])
        print(f"{'':22} {'CPU s':>7} {'x peer':>7} {'wall s':>7} {'x peer':>7} "
              f"{'us/event':>9}")
        for name in contenders:
            c, w = min(cpu[name]), min(wall[name])
            print(f"{name:22} {c:7.2f} {c / base_cpu:7.2f} {w:7.2f} {w / base_wall:7.2f} "
                  f"{c / args.events * 1e6:9.1f}")


if __name__ == "__main__":
    main()
