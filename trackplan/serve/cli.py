"""``trackplan serve`` and ``trackplan replay``: thin adapters over :mod:`trackplan.serve`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from trackplan.cliopts import format_option
from trackplan.errors import InputError

__all__ = ["COMMANDS", "serve", "replay"]


@click.command()
@click.argument("plan", type=click.Path(exists=True))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Serve config (YAML): sources and write keys, outputs, spool.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8088, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes sharing the port, each with its own spool.")
@click.option("--spool", "spool_dir", type=click.Path(file_okay=False),
              help="Spool directory (default: the config's, else .trackplan-spool).")
@click.option("--fsync", type=click.Choice(["always", "interval", "never"]),
              help="When the spool reaches the disk (default always: before each answer).")
@click.option("--suppression", type=click.Path(exists=True, dir_okay=False),
              help="Suppression list file: its subjects' events are blocked.")
@click.option("--output-json", "output_json", metavar="FILE",
              help="Stream every decision as NDJSON to FILE ('-' for stdout).")
@click.option("--drain-timeout", default=30.0, show_default=True, type=float,
              help="Seconds to deliver the spool on shutdown.")
@format_option(["json"], help="Log format on stderr: one JSON object a line.")
def serve(plan: str, config_path: str | None, host: str, port: int, workers: int,
          spool_dir: str | None, fsync: str | None, suppression: str | None,
          output_json: str | None, drain_timeout: float, fmt: str) -> None:
    """Run a gateway that Segment SDKs send to: PLAN enforced before events leave.

    Endpoints: POST /v1/{track,identify,page,screen,group,alias,batch} (and /v1/t ... /v1/b),
    GET /v1/projects/KEY/settings, the QA endpoints /trackplan/{all,good,bad,reset},
    /health, /ready, /metrics.
    """
    from trackplan.serve.gateway import open_output_json
    from trackplan.serve.runner import build_gateway, run, setup_logging

    setup_logging()
    stream = open_output_json(output_json)

    def factory(worker: int | None) -> Any:
        return build_gateway(plan, config_path=config_path, suppression=suppression,
                             output_json=stream, spool_dir=spool_dir, fsync=fsync,
                             worker=worker, workers=workers)

    sys.exit(run(factory, host=host, port=port, workers=workers, drain_timeout=drain_timeout))


def _records(path: Path) -> list[tuple[str, int, Any]]:
    files = sorted(path.glob("*.ndjson")) if path.is_dir() else [path]
    out = []
    for file in files:
        for number, line in enumerate(file.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise InputError(f"{file}:{number}: not a JSON quarantine record") from None
            if not isinstance(record, dict) or "event" not in record:
                raise InputError(f"{file}:{number}: a quarantine record needs an event")
            out.append((str(file), number, record))
    return out


@click.command()
@click.argument("quarantine", type=click.Path(exists=True))
@click.argument("plan", type=click.Path(exists=True))
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Write the events that now pass (NDJSON); default stdout.")
@click.option("--blocked", "blocked_path", type=click.Path(dir_okay=False),
              help="Write the records still blocked, with their new violations.")
@click.option("--forward", metavar="URL",
              help="Also POST what passes to a Segment-compatible /v1/batch URL.")
@click.option("--write-key-env", metavar="VAR", help="Environment variable holding the "
              "write key for --forward.")
@format_option(["text", "json"], help="Format of the counts on stderr.")
def replay(quarantine: str, plan: str, out_path: str | None, blocked_path: str | None,
           forward: str | None, write_key_env: str | None, fmt: str) -> None:
    """Re-run a QUARANTINE (file or directory) against PLAN; output what now passes.

    The quarantine holds the review copies (PII already handled as the old plan said), so
    replay never sees more than the quarantine kept. Exit 0; counts on stderr.
    """
    from trackplan.engine import compile_plan
    from trackplan.plan import load_plan
    from trackplan.serve.outputs import HttpOutput

    enforcer = compile_plan(load_plan(plan))
    passed: list[Any] = []
    still: list[bytes] = []
    records = _records(Path(quarantine))
    for _file, _line, record in records:
        result = enforcer.enforce(record["event"])
        if result.allowed:
            passed.append(result.event)
        else:
            still.append(orjson.dumps({**record, "violations": [
                v.to_dict() for v in result.violations]}) + b"\n")
    data = b"".join(orjson.dumps(e) + b"\n" for e in passed)
    if out_path:
        Path(out_path).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    if blocked_path:
        Path(blocked_path).write_bytes(b"".join(still))
    if forward and passed:
        output = HttpOutput("replay", forward, write_key_env=write_key_env)
        asyncio.run(output.deliver([orjson.dumps(e) for e in passed]))
    if fmt == "json":
        counts = {"replayed": len(records), "passed": len(passed), "blocked": len(still)}
        click.echo(orjson.dumps(counts).decode(), err=True)
    else:
        click.echo(f"replayed {len(records)} quarantined events: {len(passed)} pass, "
                   f"{len(still)} still blocked", err=True)


COMMANDS = [serve, replay]
