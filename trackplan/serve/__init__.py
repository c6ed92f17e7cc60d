"""``trackplan serve``: a first-party gateway that Segment SDKs send to.

The plan is enforced per event (schema controls, PII, consent, suppression, per-destination
forms) before anything leaves; accepted events are spooled to disk before the answer and
delivered at least once to HTTP, file and quarantine outputs; QA endpoints show what arrived.

- :mod:`trackplan.serve.http`: the HTTP/1.1 server on asyncio streams.
- :mod:`trackplan.serve.intake`: Segment's tracking API (paths, keys, limits, stamps).
- :mod:`trackplan.serve.gateway`: requests, routing, QA endpoints, metrics.
- :mod:`trackplan.serve.spool`: the append-only spool and its fsync policy.
- :mod:`trackplan.serve.outputs`: HTTP forwarding, NDJSON files, retries.
- :mod:`trackplan.serve.config`: sources, write keys and outputs.
- :mod:`trackplan.serve.runner`: building and running (workers, signals, drain).
"""

from __future__ import annotations

from trackplan.serve.config import ServeConfig, load_config
from trackplan.serve.gateway import Gateway
from trackplan.serve.runner import build_gateway

__all__ = ["Gateway", "ServeConfig", "build_gateway", "load_config"]
