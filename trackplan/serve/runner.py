"""Build a gateway from a plan and a config, and run it: one process or several workers.

Several workers (``--workers N``) are forked after the plans are compiled; each listens on the
same port with ``SO_REUSEPORT`` (the kernel spreads connections) and keeps its own spool
(``<spool dir>/worker-<i>``) and QA store; the QA endpoints merge every worker's store
(:class:`trackplan.serve.qa.QaPeers`), and rate limits are shared out between workers.
``SIGTERM`` or ``SIGINT`` stops listening, drains the spool to the outputs (up to the drain
timeout) and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from typing import IO, Any

import orjson

from trackplan.engine import Enforcer, compile_plan
from trackplan.errors import InputError
from trackplan.plan import load_plan
from trackplan.privacy.consent import route, router_of
from trackplan.privacy.suppression import SuppressionList, suppressed
from trackplan.serve.config import ServeConfig, load_config
from trackplan.serve.gateway import DEFAULT_SOURCE, Gateway
from trackplan.serve.limits import RateSpec
from trackplan.serve.qa import is_loopback

__all__ = ["build_gateway", "run", "JsonLogFormatter", "setup_logging"]

log = logging.getLogger("trackplan.serve")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the record's ``fields`` (names,
    counts, statuses: the gateway never puts event values there)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        return orjson.dumps(out).decode()


def setup_logging(level: int = logging.INFO) -> None:
    """Structured logs on stderr for the ``trackplan.serve`` logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def build_gateway(
    plan_path: str,
    *,
    config_path: str | None = None,
    suppression: str | None = None,
    output_json: IO[bytes] | None = None,
    spool_dir: str | None = None,
    fsync: str | None = None,
    worker: int | None = None,
    workers: int = 1,
    **options: Any,
) -> Gateway:
    """Load and compile the plan(s), read the config, and build the gateway (not started)."""
    plan = load_plan(plan_path)
    config = load_config(config_path, plan)
    if spool_dir is not None:
        config = replace(config, spool_dir=spool_dir)
    if fsync is not None:
        config = replace(config, fsync=fsync)
    config = worker_config(config, worker)
    cache: dict[str, Enforcer] = {}

    def compiled(path: str | None) -> Enforcer:
        key = path or plan_path
        if key not in cache:
            # every rule compiled now: a plan the engine cannot compile fails at start
            enforcer = compile_plan(plan if path is None else load_plan(path)).compile_all()
            route(enforcer, {})  # destinations and consent checked before the first event
            # a server's first requests should cost what later ones do: generate the PII
            # transforms and routing checks now (before forking: workers share them)
            enforcer.warm_up()
            router_of(enforcer).forms.warm_up(
                [None, *(c.rule for c in enforcer.compiled_rules())])
            if suppression:
                enforcer = suppressed(enforcer, SuppressionList.load(suppression))
            cache[key] = enforcer
        return cache[key]

    enforcers: dict[str, Enforcer] = {}
    keys: dict[str, str] | None = None
    rates: dict[str, RateSpec] = {}
    if config.sources:
        keys = {}
        for source in config.sources:
            enforcers[source.name] = compiled(source.plan)
            rate = source.rate or config.rate
            if rate is not None:
                rates[source.name] = rate
            for key in source.write_keys:
                if key in keys:
                    raise InputError(f"{config_path}: a write key is listed for two sources")
                keys[key] = source.name
        if not keys:
            raise InputError(f"{config_path}: sources are configured but none has a write key")
    else:
        enforcers[DEFAULT_SOURCE] = compiled(None)
        if config.rate is not None:
            rates[DEFAULT_SOURCE] = config.rate
    for spec in config.outputs:
        if spec.destination is None:
            continue
        for name, enforcer in enforcers.items():
            if spec.destination not in {str(d.get("name")) for d in enforcer.plan.destinations}:
                raise InputError(
                    f"{config_path or plan_path}: output {spec.name!r} names destination "
                    f"{spec.destination!r}, which the plan of source {name!r} does not declare"
                )
    return Gateway(enforcers=enforcers, config=config, keys=keys, output_json=output_json,
                   workers=workers, rates=rates, **options)


async def _serve(gateway: Gateway, host: str, port: int, *, reuse_port: bool,
                 drain_timeout: float, announce: bool) -> int:
    bound = await gateway.start(host=host, port=port, reuse_port=reuse_port)
    fields = {"host": host, "port": bound, "outputs": sorted(gateway.outputs),
              "sources": sorted(gateway.enforcers), "fsync": gateway.config.fsync}
    log.info("trackplan serve listening", extra={"fields": fields})
    if announce:
        if gateway.keys is None:
            log.warning("no write keys configured: every write key is accepted "
                        "(local QA mode); configure sources in --config for production",
                        extra={"fields": {}})
        if gateway.admin_token is None and not is_loopback(host):
            log.warning("the QA endpoints and /metrics answer loopback clients only: set "
                        f"{gateway.config.token_env} to reach them from other hosts",
                        extra={"fields": {}})
        print(f"trackplan serve listening on http://{host}:{bound}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: draining the spool", extra={"fields": {}})
    drained = await gateway.stop(drain_timeout=drain_timeout)
    log.info("stopped", extra={"fields": {"drained": drained}})
    return 0


def run(gateway_factory: Any, *, host: str, port: int, workers: int = 1,
        drain_timeout: float = 30.0) -> int:
    """Run until SIGTERM/SIGINT. ``gateway_factory(worker_index)`` builds each worker's gateway."""
    if workers <= 1:
        return asyncio.run(_serve(gateway_factory(None), host, port, reuse_port=False,
                                  drain_timeout=drain_timeout, announce=True))
    if port == 0:
        raise InputError("--workers needs a fixed --port (the workers share it)")
    gateways = [gateway_factory(index) for index in range(workers)]  # compiled before forking
    # each worker answers the others' QA questions on a Unix socket bound now, so that a
    # peer that starts later is already reachable (its connections wait in the backlog)
    qa_dir = tempfile.mkdtemp(prefix="trackplan-qa-")  # mode 0700
    paths = [os.path.join(qa_dir, f"worker-{index}.sock") for index in range(workers)]
    for index, gateway in enumerate(gateways):
        gateway.peers.listen(paths[index], [p for p in paths if p != paths[index]])
    children = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            for other, gateway in enumerate(gateways):
                if other != index:
                    gateway.peers.forget()
            try:
                code = asyncio.run(_serve(gateways[index], host, port, reuse_port=True,
                                          drain_timeout=drain_timeout, announce=index == 0))
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for gateway in gateways:
        gateway.peers.forget()
    code = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        code = code or os.waitstatus_to_exitcode(status)
    shutil.rmtree(qa_dir, ignore_errors=True)
    return code


def worker_config(config: ServeConfig, index: int | None) -> ServeConfig:
    """A worker's config: its own spool directory."""
    if index is None:
        return config
    return replace(config, spool_dir=os.path.join(config.spool_dir, f"worker-{index}"))


__all__ += ["worker_config"]
