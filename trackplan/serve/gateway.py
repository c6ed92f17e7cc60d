"""The gateway: requests in, the plan per event, the spool, the outputs, the QA endpoints.

Per event, only the public API of the floors below: ``route(enforcer, event)`` of
:mod:`trackplan.privacy.consent` (schema controls, PII actions, consent, suppression when
the enforcer carries a list) gives the decision and each
destination's copy. What each output should receive is written to the spool before the
answer (raw events never reach the disk: only what the plan lets out, and the review copy of
blocked events with PII handled); the deliverers take it from there.

>>> enforcers = {"default": compile_plan(plan)}                            # doctest: +SKIP
>>> gateway = Gateway(enforcers=enforcers, config=ServeConfig())           # doctest: +SKIP
>>> await gateway.start(host="127.0.0.1", port=8088)                                # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson

from trackplan.engine import Enforcer
from trackplan.privacy.consent import route
from trackplan.serve.config import OutputSpec, ServeConfig
from trackplan.serve.http import HttpError, Limits, Request, Response, json_response, start
from trackplan.serve.http import close as close_server
from trackplan.serve.intake import BATCH_LIMIT, CALL_LIMIT, call_type, decode_body, parse
from trackplan.serve.limits import RateSpec, TokenBucket, retry_after
from trackplan.serve.outputs import Deliverer, FileOutput, HttpOutput, Output, RetryPolicy
from trackplan.serve.qa import Metrics, QaPeers, QaStore, is_loopback
from trackplan.serve.spool import Spool

__all__ = ["Gateway", "DEFAULT_SOURCE"]

log = logging.getLogger("trackplan.serve")

#: The source name of events when no write keys are configured (every key accepted).
DEFAULT_SOURCE = "default"

_OK = Response(200, b'{"success":true}')
_CORS = [
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    ("Access-Control-Allow-Headers", "Content-Type, Authorization, Content-Encoding"),
    ("Access-Control-Max-Age", "86400"),
]


def _label(event: Any) -> str:
    if type(event) is not dict:
        return "(not an object)"
    kind = event.get("type")
    if kind in (None, "track") and type(event.get("event")) is str:
        return str(event["event"])
    return str(kind) if type(kind) is str else "(no type)"


def build_output(spec: OutputSpec) -> Output:
    """The output a spec describes."""
    opts = spec.options
    if spec.kind == "http":
        return HttpOutput(
            spec.name, str(opts["url"]), write_key_env=opts.get("write_key_env"),
            batch_events=int(opts.get("batch_events", 100)),
            timeout=float(opts.get("timeout", 10.0)),
        )
    return FileOutput(
        spec.name, str(opts["dir"]), prefix=opts.get("prefix"),
        rotate_bytes=int(float(opts.get("rotate_mb", 64)) * 1024 * 1024),
        rotate_seconds=float(opts.get("rotate_seconds", 3600)),
    )


class Gateway:
    """One gateway process. ``enforcers`` maps a source name to its compiled plan."""

    def __init__(
        self,
        *,
        enforcers: Mapping[str, Enforcer],
        config: ServeConfig,
        keys: Mapping[str, str] | None = None,
        output_json: IO[bytes] | None = None,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        workers: int = 1,
        rates: Mapping[str, RateSpec] | None = None,
    ) -> None:
        self.enforcers = dict(enforcers)
        self.config = config
        #: the QA endpoints' and /metrics' token (None: loopback clients only); never logged
        self.admin_token: str | None = os.environ.get(config.token_env) or None
        #: source -> its token bucket (this worker's share of the source's rate limit)
        self.buckets: dict[str, TokenBucket] = {}
        for source, rate in (rates or {}).items():
            mine = rate.share(workers)
            self.buckets[source] = TokenBucket(rate=mine.events_per_second, burst=mine.burst)
        self.pending = 0  # events being decided or waiting for the spool's flush
        self._spool_bytes = (-1.0, 0)  # (when measured, bytes the outputs are behind)
        self.peers = QaPeers()
        #: write key -> source; None: every key accepted, events go to DEFAULT_SOURCE
        self.keys = dict(keys) if keys else None
        self.output_json = output_json
        self.limits = limits or Limits(max_body_bytes=BATCH_LIMIT * 4)
        self.qa = QaStore(config.qa_max_events)
        self.metrics = Metrics()
        self.specs = {s.name: s for s in config.outputs}
        self.outputs = {s.name: build_output(s) for s in config.outputs}
        self.spool = Spool(config.spool_dir, fsync=config.fsync) if self.outputs else None
        self.deliverers = (
            {n: Deliverer(self.spool, o, retry=retry, on_delivered=self._delivered,
                          on_failure=self._failed, on_advance=self._compact)
             for n, o in self.outputs.items()}
            if self.spool is not None else {}
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.server: asyncio.Server | None = None
        self.started = 0.0
        self.ready = False
        self._by_destination: dict[str, list[OutputSpec]] = {}
        self._stamped: list[OutputSpec] = []
        self._quarantine: list[OutputSpec] = []
        for spec in config.outputs:
            if spec.kind == "quarantine":
                self._quarantine.append(spec)
            elif spec.stamped:
                self._stamped.append(spec)
            elif spec.destination is not None:
                self._by_destination.setdefault(spec.destination, []).append(spec)
        self.metrics.gauge("trackplan_output_lag_bytes", "Spool bytes an output has not yet "
                           "delivered.", lambda: [((("output", n),), float(d.lag))
                                                  for n, d in self.deliverers.items()])
        self.metrics.gauge("trackplan_spool_bytes", "Bytes held in the spool.",
                           lambda: [((), float(self.spool.size() if self.spool else 0))])

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, *, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False
                    ) -> int:
        """Open the spool, start the deliverers and listen; returns the bound port."""
        if self.spool is not None:
            self.spool.open()
            self.spool.start_interval()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(d.run()) for d in self.deliverers.values()]
        self.server = await start(self.handle, host=host, port=port, limits=self.limits,
                                  reuse_port=reuse_port)
        await self.peers.start(self.qa, self.metrics)
        self.started = time.time()
        self.ready = True
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self, *, drain_timeout: float = 30.0) -> bool:
        """Stop listening, deliver what the spool holds (up to ``drain_timeout``), close.

        Returns True when every output caught up; what is left stays in the spool for the
        next start.
        """
        self.ready = False
        if self.server is not None:
            await close_server(self.server)
        await self.peers.stop()
        for d in self.deliverers.values():
            d.stopping = True
        drained = True
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=drain_timeout)
            for task in pending:
                task.cancel()
            drained = not pending
        for output in self.outputs.values():
            await output.close()
        if self.spool is not None:
            self.spool.close()
        return drained

    # -- hooks from the deliverers ---------------------------------------------------------
    def _delivered(self, output: str, count: int) -> None:
        self.metrics.inc("trackplan_output_events_total", count, output=output)

    def _compact(self) -> None:
        if self.spool is not None:
            self.spool.compact([d.position for d in self.deliverers.values()])

    def _failed(self, output: str, reason: str) -> None:
        self.metrics.inc("trackplan_output_failures_total", output=output, reason=reason)

    # -- requests --------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        path, method = request.path, request.method
        if method == "OPTIONS":
            return Response(204, b"", headers=_CORS)
        kind = call_type(path)
        if kind is not None:
            if method != "POST":
                raise HttpError(405, "tracking endpoints take POST")
            return await self._track(request, kind)
        if path.startswith("/v1/projects/") and path.endswith("/settings"):
            return self._settings(request)
        if path.startswith("/trackplan/"):
            self._authorize(request)
            return await self._qa(request)
        if path in ("/health", "/healthz"):
            return json_response(200, {"status": "ok"})
        if path in ("/ready", "/readyz"):
            return json_response(200 if self.ready else 503, {"ready": self.ready})
        if path == "/metrics":
            self._authorize(request)
            return Response(200, (await self.peers.metrics(self.metrics)).encode(),
                            "text/plain; version=0.0.4; charset=utf-8")
        raise HttpError(404, "no such endpoint")

    def _authorize(self, request: Request) -> None:
        """The QA endpoints and /metrics: the admin token when one is set, else loopback
        clients only (they hold events after PII handling, and counts by source)."""
        if self.admin_token is None:
            if not is_loopback(request.peer):
                self.metrics.inc("trackplan_requests_refused_total", reason="admin_remote")
                raise HttpError(403, f"set {self.config.token_env} to reach this endpoint "
                                     "from another host (answered to loopback clients only)")
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.admin_token.encode()):
            self.metrics.inc("trackplan_requests_refused_total", reason="admin_token")
            raise HttpError(401, "this endpoint needs Authorization: Bearer <token> (the "
                                 f"value of {self.config.token_env})",
                            headers=[("WWW-Authenticate", 'Bearer realm="trackplan"')])

    def _admit(self, source: str, count: int) -> None:
        """Refuse the request with 429 (before any event is decided) when the source is
        over its rate, too many events are in flight, or the spool is full."""
        bucket = self.buckets.get(source)
        if bucket is not None:
            wait = bucket.take(count, now=time.monotonic())
            if wait:
                self._refuse("rate_limited", f"source {source!r} is over its rate limit",
                             wait)
        if self.pending + count > self.config.max_pending_events:
            self._refuse("busy", "too many events in flight; retry later", 1.0)
        if self.deliverers and self._behind() > self.config.spool_max_bytes:
            self._refuse("spool_full", "the spool is full (outputs are behind); retry later",
                         5.0)

    def _refuse(self, reason: str, message: str, wait: float) -> None:
        self.metrics.inc("trackplan_requests_refused_total", reason=reason)
        raise HttpError(429, message, headers=[("Retry-After", retry_after(wait))])

    def _behind(self) -> int:
        """Spool bytes the slowest output has not delivered (read at most every 0.5 s)."""
        now = time.monotonic()
        at, size = self._spool_bytes
        if now - at > 0.5:
            size = max((d.lag for d in self.deliverers.values()), default=0)
            self._spool_bytes = (now, size)
        return size

    def _source(self, key: str | None) -> str:
        if self.keys is None:
            return DEFAULT_SOURCE
        if key is None:
            self.metrics.inc("trackplan_requests_refused_total", reason="no_write_key")
            raise HttpError(401, "a write key is required (HTTP Basic or the body's writeKey)")
        source = self.keys.get(key)
        if source is None:
            self.metrics.inc("trackplan_requests_refused_total", reason="unknown_write_key")
            raise HttpError(401, "unknown write key")
        return source

    async def _track(self, request: Request, kind: str) -> Response:
        cap = BATCH_LIMIT if kind == "batch" else CALL_LIMIT
        try:
            raw = decode_body(request.body, request.headers.get("content-encoding", ""), cap=cap)
            intake = parse(kind, raw, request.headers)
        except HttpError:
            self.metrics.inc("trackplan_requests_refused_total", reason="bad_request")
            raise
        source = self._source(intake.key)
        enforcer = self.enforcers[source]
        count = len(intake.events)
        self._admit(source, count)
        self.pending += count
        try:
            lines: list[bytes] = []
            for event in intake.events:
                line = self._decide(source, enforcer, event)
                if line is not None:
                    lines.append(line)
            if self.output_json is not None:
                self.output_json.flush()
            if lines and self.spool is not None:
                await self.spool.append(b"".join(lines))
        finally:
            self.pending -= count
        self.metrics.inc("trackplan_requests_total", kind=kind)
        return _OK

    def _decide(self, source: str, enforcer: Enforcer, event: Any) -> bytes | None:
        """Route one event; record it for QA and metrics; its spool line (None: no output)."""
        routing = route(enforcer, event)
        result = routing.result
        violations = [v.to_dict() for v in result.violations]
        decision = result.decision
        counters = self.metrics.counters
        counters[("trackplan_events_total", (("decision", decision), ("source", source)))] += 1
        for v in result.violations:
            counters[("trackplan_violations_total", (("type", v.type),))] += 1
        destinations = {d.destination: d.reason for d in routing.deliveries}
        item = {"source": source, "decision": decision, "event": result.event,
                "violations": violations, "destinations": destinations}
        data = self.qa.add(item, allowed=result.allowed, with_violations=bool(violations))
        if self.output_json is not None:
            self.output_json.write(data + b"\n")
        outs: dict[str, Any] = {}
        if result.allowed:
            for delivery in routing.deliveries:
                if not delivery.send:
                    continue
                for spec in self._by_destination.get(delivery.destination, ()):
                    copy = dict(delivery.event)
                    copy["integrations"] = {"All": False, delivery.destination: True}
                    outs[spec.name] = copy
            if self._stamped:
                stamped = routing.stamped()
                for spec in self._stamped:
                    outs[spec.name] = stamped
        else:
            for spec in self._quarantine:
                outs[spec.name] = {"source": source, "event": result.event,
                                   "violations": violations, "receivedAt": _received(event)}
        if not outs:
            return None
        # one spool record per output: "<output>\t<json>", delivered without re-parsing
        return b"".join(name.encode() + b"\t" + orjson.dumps(value) + b"\n"
                        for name, value in outs.items())

    # -- analytics.js settings -------------------------------------------------------------
    def _settings(self, request: Request) -> Response:
        if request.method != "GET":
            raise HttpError(405, "settings take GET")
        key = request.path[len("/v1/projects/"):-len("/settings")]
        if self.keys is not None and key not in self.keys:
            raise HttpError(404, "unknown write key")
        self.metrics.inc("trackplan_requests_total", kind="settings")
        host = request.headers.get("host", "localhost")
        proto = request.headers.get("x-forwarded-proto", "http")
        return json_response(200, settings_document(key, host=host, protocol=proto))

    # -- QA endpoints ----------------------------------------------------------------------
    async def _qa(self, request: Request) -> Response:
        name = request.path[len("/trackplan/"):].strip("/")
        if name == "all" and request.method == "GET":
            counts = await self.peers.counts(self.qa)
            return json_response(200, {**counts, "outputs": {
                n: {"lag_bytes": d.lag} for n, d in self.deliverers.items()}})
        if name in ("good", "bad") and request.method in ("GET", "POST"):
            raw: dict[str, Any] = dict(parse_qsl(request.query))
            if request.method == "POST" and request.body.strip():
                try:
                    body = orjson.loads(request.body)
                except orjson.JSONDecodeError:
                    raise HttpError(400, "filters must be a JSON object") from None
                if not isinstance(body, dict):
                    raise HttpError(400, "filters must be a JSON object")
                raw.update(body)
            return Response(200, await self.peers.select(self.qa, name, raw))
        if name == "reset" and request.method == "POST":
            return json_response(200, await self.peers.reset(self.qa))
        raise HttpError(404, "QA endpoints: GET /trackplan/all, GET|POST /trackplan/good, "
                             "GET|POST /trackplan/bad, POST /trackplan/reset")


def settings_document(key: str, *, host: str, protocol: str) -> dict[str, Any]:
    """What analytics.js loads from ``/v1/projects/KEY/settings``: Segment.io pointed back at
    this gateway (``apiHost``), no destinations, no remote plugins, metrics off."""
    return {
        "integrations": {"Segment.io": {
            "apiKey": key,
            "apiHost": f"{host}/v1",
            "protocol": protocol,
            "unbundledIntegrations": [],
            "addBundledMetadata": True,
            "maybeBundledConfigIds": {},
            "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
        }},
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def _received(event: Any) -> Any:
    return event.get("receivedAt") if type(event) is dict else None


def open_output_json(target: str | None) -> IO[bytes] | None:
    """The stream ``--output-json`` writes to: a file path, ``-`` for stdout, or None."""
    if target is None:
        return None
    if target == "-":
        return sys.stdout.buffer
    return open(Path(target), "ab")  # noqa: SIM115 - open for the server's life


__all__ += ["open_output_json", "build_output", "settings_document"]
