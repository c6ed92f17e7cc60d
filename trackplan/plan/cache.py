"""A cache of loaded plans, keyed by the digest of the plan's files: a second run skips
parsing and checking.

An entry is the resolved :class:`~trackplan.plan.model.Plan` as JSON (data only: nothing
read from the cache is ever executed), stored as ``<cache dir>/plans/<key>.json`` and
written atomically. The key is the SHA-256 of every plan file's path inside the plan and
bytes, of the Python version, and of this install's loader (the size and modification time
of trackplan's own plan modules and of the parsers they use), so an entry is never trusted
across versions, and an edited plan or upgraded trackplan simply misses. File locations
are stored relative to the plan's root and put back under the root being loaded, so the
same plan in another place (``trackplan diff``'s checkout of a revision) hits too.

The cache directory is ``$TRACKPLAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/trackplan``, else
``~/.cache/trackplan``; ``TRACKPLAN_NO_CACHE=1`` turns the cache off. It is safe to delete
at any time. An entry that cannot be read, does not match its key, or that another user
could have written is ignored (and rewritten); a directory that cannot be written only
costs the next run its speed.

>>> key = plan_key([("plan.yaml", b"name: Shop\\n")])            # doctest: +SKIP
>>> read_entry(key, Path("plans/shop")) is None                  # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from trackplan.atomic import write_bytes_atomic
from trackplan.errors import TrackplanError
from trackplan.plan.model import CALL_KINDS, CallControls, Controls, Plan, Rule

__all__ = [
    "FORMAT", "MAX_ENTRIES", "cache_dir", "plan_data", "plan_from_data", "plan_key", "read_entry",
    "write_entry",
]  # fmt: skip

#: The entry layout; part of every key.
FORMAT = 1

#: Entries kept; older ones are removed when a new one is written.
MAX_ENTRIES = 64

#: Third-party parsers whose version changes what a plan file reads as.
_PARSERS = ("yaml", "jsonschema_rs")


def cache_dir() -> Path | None:
    """Where plans are cached, or None when ``TRACKPLAN_NO_CACHE`` turns the cache off."""
    if os.environ.get("TRACKPLAN_NO_CACHE", "").strip() not in ("", "0"):
        return None
    explicit = os.environ.get("TRACKPLAN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "trackplan"


_CODE_ID: list[str] = []


def _code_id() -> str:
    """What identifies this install's loader: Python's version, and the size and
    modification time of trackplan's own modules below the plan floor and of the parsers
    (an edited checkout or an upgrade changes it)."""
    if _CODE_ID:
        return _CODE_ID[0]
    here = Path(__file__).resolve().parent  # trackplan/plan
    files = [here.parent / n for n in ("__init__.py", "errors.py", "pointer.py")]
    files += sorted(here.glob("*.py"))
    for name in _PARSERS:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    parts = [sys.version, sys.implementation.cache_tag or ""]
    for path in files:
        try:
            st = path.stat()
        except OSError:
            parts.append(f"{path}:-")
            continue
        parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
    _CODE_ID.append(hashlib.sha256("\n".join(parts).encode()).hexdigest())
    return _CODE_ID[0]


def plan_key(files: Iterable[tuple[str, bytes]]) -> str:
    """The cache key of a plan: its files' paths (relative to the plan's root, ``/``
    separated) and bytes, the entry format and :func:`_code_id`."""
    digest = hashlib.sha256(f"trackplan-plan-cache {FORMAT} {_code_id()}\n".encode())
    for name, data in files:
        encoded = name.encode("utf-8", "surrogateescape")
        digest.update(b"%d:%s%d:" % (len(encoded), encoded, len(data)))
        digest.update(data)
    return digest.hexdigest()


def _entry_path(directory: Path, key: str) -> Path:
    return directory / "plans" / f"{key}.json"


def _rel(path: str, root: Path) -> str:
    """``path`` (a file of the plan under ``root``) relative to the root, ``.`` for itself."""
    return Path(path).relative_to(root).as_posix()


def _rule_data(rule: Rule, root: Path) -> dict[str, Any]:
    return {
        "kind": rule.kind,
        "name": rule.name,
        "version": rule.version,
        "description": rule.description,
        "payload": rule.payload,
        "call": rule.call,
        "draft": rule.draft,
        "source": _rel(rule.source, root),
        "pointer": rule.pointer,
        "extra": rule.extra,
    }


def plan_data(plan: Plan, root: Path) -> dict[str, Any]:
    """``plan`` as JSON data, its file locations relative to ``root``.

    Raises:
        ValueError: a location outside ``root`` (not a plan this loader read from it).
    """
    sections = {}
    for key, where in plan.sections.items():
        file, _, pointer = where.rpartition("#")  # pointers of sections hold no '#'
        sections[key] = [_rel(file, root), pointer]
    controls = {kind: asdict(plan.controls.for_kind(kind)) for kind in CALL_KINDS}
    return {
        "name": plan.name,
        "version": plan.version,
        "description": plan.description,
        "draft": plan.draft,
        "rules": [_rule_data(r, root) for r in plan.rules],
        "definitions": plan.definitions,
        "controls": controls,
        "pii": plan.pii,
        "destinations": list(plan.destinations),
        "consent": plan.consent,
        "lint": plan.lint,
        "policy": plan.policy,
        "extra": plan.extra,
        "source": _rel(plan.source, root),
        "sections": sections,
    }


def plan_from_data(data: dict[str, Any], root: Path) -> Plan:
    """The :class:`Plan` of :func:`plan_data`, its locations put back under ``root``.

    Raises:
        KeyError, TypeError, ValueError: data of another shape (a damaged entry).
    """

    def place(rel: str) -> str:
        if not isinstance(rel, str) or rel.startswith("/") or ".." in rel.split("/"):
            raise ValueError("a location outside the plan")
        return str(root / rel)

    rules = tuple(
        Rule(
            kind=r["kind"], name=r["name"], version=r["version"],
            description=r["description"], payload=r["payload"], call=r["call"],
            draft=r["draft"], source=place(r["source"]), pointer=r["pointer"],
            extra=r["extra"],
        )
        for r in data["rules"]
    )  # fmt: skip
    controls = Controls(**{k: CallControls(**v) for k, v in data["controls"].items()})
    plan = Plan(
        name=data["name"],
        version=data["version"],
        description=data["description"],
        draft=data["draft"],
        rules=rules,
        definitions=data["definitions"],
        controls=controls,
        pii=data["pii"],
        destinations=tuple(data["destinations"]),
        consent=data["consent"],
        lint=data["lint"],
        policy=data["policy"],
        extra=data["extra"],
        source=place(data["source"]),
        sections={k: f"{place(f)}#{p}" for k, (f, p) in data["sections"].items()},
    )
    for value in (plan.name, plan.version, plan.draft):
        if not isinstance(value, str):
            raise TypeError("a damaged entry")
    for rule in rules:
        if not (isinstance(rule.version, int) and isinstance(rule.kind, str)
                and isinstance(rule.extra, dict) and isinstance(rule.pointer, str)):
            raise TypeError("a damaged entry")  # fmt: skip
    return plan


def read_entry(key: str, root: Path) -> Plan | None:
    """The cached plan of ``key`` loaded from ``root``, or None (no cache, no entry, or an
    entry that cannot be read: it is ignored, and rewritten by the caller)."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        with open(_entry_path(directory, key), "rb") as handle:
            if not _own(os.fstat(handle.fileno())):
                return None
            raw = handle.read()
    except OSError:
        return None
    try:
        # written by the standard encoder (integers beyond 64 bits, which orjson would
        # read as floats) when it starts with a space: then read exactly by its parser
        entry = json.loads(raw) if raw[:1] == b" " else orjson.loads(raw)
        if entry.get("format") != FORMAT or entry.get("key") != key:
            return None
        return plan_from_data(entry["plan"], root)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def _own(st: os.stat_result) -> bool:
    """Whether an entry is this user's and only theirs to change: an entry another user
    could have written (a shared TRACKPLAN_CACHE_DIR) would be another plan."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # pragma: no cover - Windows: no owners to compare
        return True
    return st.st_uid == getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def write_entry(key: str, root: Path, plan: Plan) -> None:
    """Cache ``plan`` (loaded from ``root``) under ``key``; a failure to write is ignored
    (the cache only saves time)."""
    directory = cache_dir()
    if directory is None:
        return
    try:
        entry = {"format": FORMAT, "key": key, "plan": plan_data(plan, root)}
    except ValueError:
        return
    try:
        blob = orjson.dumps(entry)
    except TypeError:  # integers beyond 64 bits: the standard encoder writes them exactly
        blob = b" " + json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
    target = _entry_path(directory, key)
    try:
        if not _own(os.lstat(target)):
            target.unlink()  # else the rewrite would keep its mode
    except OSError:
        pass
    try:
        write_bytes_atomic(target, blob)
        _prune(directory / "plans")
    except (OSError, TrackplanError):
        return


def _prune(directory: Path) -> None:
    """Keep the :data:`MAX_ENTRIES` newest entries."""
    entries = [p for p in directory.iterdir() if p.suffix == ".json"]
    if len(entries) <= MAX_ENTRIES:
        return
    dated = []
    for path in entries:
        try:
            dated.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    for _mtime, path in sorted(dated)[: len(dated) - MAX_ENTRIES]:
        try:
            path.unlink()
        except OSError:
            pass
