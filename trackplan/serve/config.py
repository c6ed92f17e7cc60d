"""The gateway's configuration: sources and write keys, outputs per destination, the spool.

From a ``--config`` YAML file, and from the plan: a destination may carry its output under
``x-serve`` (``{http: {...}}`` or ``{file: {...}}``); the config file's outputs win by name.

.. code-block:: yaml

    sources:
      - name: web
        write_keys: [WEB_KEY]            # or write_keys_env: WEB_WRITE_KEYS (comma-separated)
        plan: plans/ecommerce            # default: the PLAN argument
        rate_limit: {events_per_second: 2000, burst: 4000}   # default: limits' rate
    spool: {dir: .trackplan-spool, fsync: always, max_mb: 1024}
    limits: {events_per_second: 5000, burst: 10000, max_pending_events: 50000}
    admin: {token_env: TRACKPLAN_SERVE_TOKEN}   # the QA endpoints' and /metrics' token
    outputs:
      - {name: amplitude, destination: Amplitude,
         http: {url: "http://127.0.0.1:9000/v1/batch", write_key_env: AMPLITUDE_KEY}}
      - {name: warehouse, destination: Snowflake, file: {dir: out/snowflake, rotate_mb: 64}}
      - {name: quarantine, quarantine: {dir: quarantine}}
    qa: {max_events: 10000}

An output with ``destination: NAME`` receives that destination's copy (its PII form, and
``integrations`` set to ``{"All": false, NAME: true}``); with ``stamped: true`` instead, the
enforced event once, with ``integrations`` set to every destination's decision (for a
downstream Segment workspace to fan out).

Requests over a rate limit, past ``max_pending_events`` in flight, or while an output is
more than ``spool.max_mb`` behind are answered ``429`` (:mod:`trackplan.serve.limits`).
The QA endpoints and ``/metrics`` need ``Authorization: Bearer <token>`` when the variable
``admin.token_env`` names is set; without it they answer loopback clients only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trackplan.errors import InputError
from trackplan.plan import Plan
from trackplan.serve.limits import RateSpec
from trackplan.serve.spool import FSYNC_POLICIES

__all__ = ["OutputSpec", "SourceSpec", "ServeConfig", "load_config", "TOKEN_ENV"]

#: The environment variable holding the token of the QA endpoints and ``/metrics``.
TOKEN_ENV = "TRACKPLAN_SERVE_TOKEN"


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One output: ``kind`` is ``http``, ``file`` or ``quarantine``."""

    name: str
    kind: str
    options: Mapping[str, Any]
    destination: str | None = None
    stamped: bool = False


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A source: its name, write keys and plan (None: the command's PLAN)."""

    name: str
    write_keys: tuple[str, ...]
    plan: str | None = None
    rate: RateSpec | None = None


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Everything ``trackplan serve`` needs besides the plan."""

    sources: tuple[SourceSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    spool_dir: str = ".trackplan-spool"
    fsync: str = "always"
    qa_max_events: int = 10000
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: every source's rate limit unless it names its own (None: no limit)
    rate: RateSpec | None = None
    max_pending_events: int = 50_000
    spool_max_bytes: int = 1024 * 1024 * 1024
    token_env: str = TOKEN_ENV


def _fail(where: str, message: str) -> InputError:
    return InputError(f"{where}: {message}")


def _output(raw: Any, where: str) -> OutputSpec:
    if not isinstance(raw, Mapping):
        raise _fail(where, "an output must be a mapping")
    kinds = [k for k in ("http", "file", "quarantine") if k in raw]
    if len(kinds) != 1:
        raise _fail(where, "an output needs exactly one of http, file, quarantine")
    kind = kinds[0]
    options = raw[kind] or {}
    if not isinstance(options, Mapping):
        raise _fail(f"{where}/{kind}", "must be a mapping")
    if kind == "http" and not isinstance(options.get("url"), str):
        raise _fail(f"{where}/http/url", "an http output needs a url")
    if kind != "http" and not isinstance(options.get("dir"), str):
        raise _fail(f"{where}/{kind}/dir", f"a {kind} output needs a dir")
    name = raw.get("name")
    destination = raw.get("destination")
    stamped = bool(raw.get("stamped", False))
    if kind != "quarantine" and not stamped and not isinstance(destination, str):
        raise _fail(where, "an output needs a destination (or stamped: true)")
    if not isinstance(name, str) or not name or not name.replace("-", "").replace(
            "_", "").isalnum():
        raise _fail(f"{where}/name", "an output needs a name of letters, digits, - and _")
    return OutputSpec(name, kind, dict(options), destination if isinstance(
        destination, str) else None, stamped)


def _rate(raw: Any, where: str) -> RateSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _fail(where, "must be a mapping with events_per_second (and burst)")
    rate, burst = raw.get("events_per_second"), raw.get("burst")
    if rate is None:
        return None
    if not _positive(rate) or (burst is not None and not _positive(burst)):
        raise _fail(where, "events_per_second and burst must be numbers above 0")
    return RateSpec(float(rate), float(burst) if burst is not None else None)


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _keys(raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
    keys = raw.get("write_keys", [])
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise _fail(f"{where}/write_keys", "write_keys must be a list of strings")
    env = raw.get("write_keys_env")
    if env is not None:
        value = os.environ.get(str(env), "")
        keys = [*keys, *(k.strip() for k in value.split(",") if k.strip())]
    return tuple(keys)


def plan_outputs(plan: Plan) -> list[OutputSpec]:
    """Outputs declared in the plan under a destination's ``x-serve``."""
    out = []
    for index, dest in enumerate(plan.destinations):
        spec = dest.get("x-serve")
        if spec is None:
            continue
        where = f"{plan.source}#/destinations/{index}/x-serve"
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", str(dest.get("name", ""))).strip("-")
        raw = {"name": name, **dict(spec),
               "destination": dest.get("name")}
        out.append(_output(raw, where))
    return out


def load_config(path: str | Path | None, plan: Plan) -> ServeConfig:
    """The configuration from ``path`` (None: none) merged with the plan's ``x-serve`` outputs."""
    data: Mapping[str, Any] = {}
    where = str(path) if path is not None else "config"
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read the serve config: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, Mapping):
            raise _fail(where, "the serve config must be a mapping")
        data = loaded or {}
    sources = []
    for index, raw in enumerate(data.get("sources", []) or []):
        at = f"{where}#/sources/{index}"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
            raise _fail(at, "a source needs a name")
        plan_path = raw.get("plan")
        sources.append(SourceSpec(raw["name"], _keys(raw, at),
                                  str(plan_path) if plan_path is not None else None,
                                  _rate(raw.get("rate_limit"), f"{at}/rate_limit")))
    outputs = {o.name: o for o in plan_outputs(plan)}
    for index, raw in enumerate(data.get("outputs", []) or []):
        spec = _output(raw, f"{where}#/outputs/{index}")
        outputs[spec.name] = spec
    spool = data.get("spool", {}) or {}
    fsync = str(spool.get("fsync", "always"))
    if fsync not in FSYNC_POLICIES:
        raise _fail(f"{where}#/spool/fsync", f"must be one of {', '.join(FSYNC_POLICIES)}")
    qa = data.get("qa", {}) or {}
    limits = data.get("limits", {}) or {}
    if not isinstance(limits, Mapping):
        raise _fail(f"{where}#/limits", "must be a mapping")
    pending = limits.get("max_pending_events", 50_000)
    if not _positive(pending):
        raise _fail(f"{where}#/limits/max_pending_events", "must be a number above 0")
    max_mb = spool.get("max_mb", 1024)
    if not _positive(max_mb):
        raise _fail(f"{where}#/spool/max_mb", "must be a number above 0")
    admin = data.get("admin", {}) or {}
    token_env = admin.get("token_env", TOKEN_ENV) if isinstance(admin, Mapping) else None
    if not isinstance(token_env, str) or not token_env:
        raise _fail(f"{where}#/admin/token_env", "must name an environment variable")
    return ServeConfig(
        sources=tuple(sources),
        outputs=tuple(outputs.values()),
        spool_dir=str(spool.get("dir", ".trackplan-spool")),
        fsync=fsync,
        qa_max_events=int(qa.get("max_events", 10000)),
        extra=dict(data),
        rate=_rate(limits, f"{where}#/limits"),
        max_pending_events=int(pending),
        spool_max_bytes=int(float(max_mb) * 1024 * 1024),
        token_env=token_env,
    )
