"""Write a :class:`Plan` as a native plan directory: small files, stable order, diffable."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from trackplan.atomic import new_file_mode
from trackplan.plan.model import Controls, Plan, Rule

__all__ = ["write_plan", "dump_yaml", "event_file_name"]


class _Dumper(yaml.SafeDumper):
    """Block-style YAML that keeps key order and never emits aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_repr(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_repr)


def dump_yaml(value: Any, header: str | None = None) -> str:
    """YAML text for a JSON value, key order kept, optionally after a comment header."""
    text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    return text


def event_file_name(name: str, version: int, taken: set[str]) -> str:
    """A portable, unique file name for an event version (the real name stays inside)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "event"
    slug = slug[:80]
    stem = slug if version == 1 else f"{slug}.v{version}"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate)
    return candidate + ".yaml"


def _rule_doc(rule: Rule) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if rule.kind == "track":
        doc["name"] = rule.name
        doc["version"] = rule.version
    elif rule.version != 1:
        doc["version"] = rule.version
    if rule.description is not None:
        doc["description"] = rule.description
    if rule.payload is not None and rule.payload_key:
        doc[rule.payload_key] = rule.payload
    if rule.call is not None:
        doc["call"] = rule.call
    doc.update(rule.extra)
    return doc


def _controls_doc(controls: Controls) -> dict[str, Any]:
    default = asdict(Controls())
    out: dict[str, Any] = {}
    for kind, values in asdict(controls).items():
        changed = {k: v for k, v in values.items() if v != default[kind][k]}
        if changed:
            out[kind] = changed
    return out


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_plan(plan: Plan, out: str | Path, *, header: str | None = None) -> list[Path]:
    """Write ``plan`` under ``out`` (plan.yaml and events/*.yaml); return the files written."""
    root = Path(out)
    doc: dict[str, Any] = {"trackplan": 1, "name": plan.name, "version": plan.version}
    if plan.description is not None:
        doc["description"] = plan.description
    doc["draft"] = plan.draft
    controls = _controls_doc(plan.controls)
    if controls:
        doc["controls"] = controls
    if plan.definitions:
        doc["definitions"] = dict(plan.definitions)
    for rule in plan.rules:
        if rule.kind != "track":
            doc[rule.kind] = _rule_doc(rule)
    for key in ("pii", "consent", "lint", "policy"):
        value = getattr(plan, key)
        if value:
            doc[key] = dict(value)
    if plan.destinations:
        doc["destinations"] = [dict(d) for d in plan.destinations]
    doc.update(plan.extra)
    written = [root / "plan.yaml"]
    _write_atomic(written[0], dump_yaml(doc, header))
    taken: set[str] = set()
    for rule in plan.events:
        path = root / "events" / event_file_name(str(rule.name), rule.version, taken)
        _write_atomic(path, dump_yaml(_rule_doc(rule), header))
        written.append(path)
    return written
