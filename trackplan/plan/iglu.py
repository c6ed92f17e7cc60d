"""Read a Snowplow Iglu schema folder as a plan, so Snowplow users can lint and diff.

An Iglu folder holds self-describing JSON Schemas at
``schemas/<vendor>/<name>/jsonschema/<MODEL-REVISION-ADDITION>`` (files without an
extension). Each schema becomes a track event: its name is the schema's ``name`` (the
vendor joins it, ``vendor/name``, when two vendors use one name), its version is the
SchemaVer MODEL, and its payload is the schema without ``self`` and ``$schema``.
Within one MODEL only the newest REVISION-ADDITION is kept: SchemaVer promises that it
reads the data of the others, and a trackplan event version is one schema. The dropped
ones are named in the notes; ``x-iglu`` on each event keeps the full ``iglu:`` URI.

>>> imported = import_iglu(Path("iglu-central"))          # doctest: +SKIP
>>> imported.plan.event("link_click").extra["x-iglu"]     # doctest: +SKIP
'iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.drafts import normalise
from trackplan.plan.load import build_plan
from trackplan.plan.segment import Imported

__all__ = ["import_iglu", "IgluSchema", "SELF_DESC"]

#: The meta-schema every self-describing JSON Schema names in ``$schema``.
SELF_DESC = (
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
)
_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSION = re.compile(r"^([1-9][0-9]*)-([0-9]+)-([0-9]+)$")


@dataclass(frozen=True, slots=True)
class IgluSchema:
    """One schema file of the folder."""

    vendor: str
    name: str
    version: tuple[int, int, int]
    body: dict[str, Any]
    file: Path

    @property
    def uri(self) -> str:
        model, revision, addition = self.version
        return f"iglu:{self.vendor}/{self.name}/jsonschema/{model}-{revision}-{addition}"


def _read(file: Path, root: Path, issues: list[PlanIssue]) -> IgluSchema | None:
    rel = file.relative_to(root).parts
    shown = str(file)
    if len(rel) < 4 or rel[-2] != "jsonschema":
        return None  # not a schema file (README, .DS_Store, ...)
    vendor, name, version = rel[-4], rel[-3], rel[-1]
    found = _VERSION.match(version)
    if found is None:
        issues.append(
            PlanIssue(shown, "", f"{version!r} is not a SchemaVer (MODEL-REVISION-ADDITION)")
        )
        return None
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        issues.append(PlanIssue(shown, "", f"not a JSON file: {exc}"))
        return None
    if not isinstance(body, dict):
        issues.append(PlanIssue(shown, "", "a self-describing JSON Schema must be an object"))
        return None
    me = body.get("self")
    if not isinstance(me, dict):
        issues.append(PlanIssue(shown, "/self", "missing: a self-describing schema names itself"))
        return None
    expected = {"vendor": vendor, "name": name, "format": "jsonschema", "version": version}
    for key, value in expected.items():
        if me.get(key) != value:
            message = f"{me.get(key)!r} does not match the path ({value!r})"
            issues.append(PlanIssue(shown, f"/self/{key}", message))
    triple = (int(found[1]), int(found[2]), int(found[3]))
    return IgluSchema(vendor, name, triple, body, file)


def import_iglu(folder: Path) -> Imported:
    """Read the Iglu folder at ``folder`` (its ``schemas/`` directory or a parent of it).

    Raises:
        PlanError: every problem at once (bad paths, files that are not schemas, ``self``
            that does not match the path, schemas the plan loader rejects).
    """
    root = folder / "schemas" if (folder / "schemas").is_dir() else folder
    if not root.is_dir():
        raise PlanError([PlanIssue(str(folder), "", "not a directory of Iglu schemas")])
    issues: list[PlanIssue] = []
    found = [s for f in sorted(root.rglob("*")) if f.is_file()
             for s in [_read(f, root, issues)] if s is not None]  # fmt: skip
    if issues:
        raise PlanError(issues)
    if not found:
        raise PlanError(
            [PlanIssue(str(root), "", "no schemas at <vendor>/<name>/jsonschema/<version>")]
        )
    vendors: dict[str, set[str]] = {}
    for schema in found:
        vendors.setdefault(schema.name, set()).add(schema.vendor)
    newest: dict[tuple[str, str, int], IgluSchema] = {}
    for schema in found:
        key = (schema.vendor, schema.name, schema.version[0])
        if key not in newest or newest[key].version < schema.version:
            newest[key] = schema
    notes = [f"{s.uri}: replaced by {newest[(s.vendor, s.name, s.version[0])].uri} (same MODEL)"
             for s in found if newest[(s.vendor, s.name, s.version[0])] is not s]  # fmt: skip
    events = []
    for (vendor, name, model), schema in sorted(newest.items()):
        label = name if len(vendors[name]) == 1 else f"{vendor}/{name}"
        payload = {k: v for k, v in schema.body.items() if k not in ("self", "$schema")}
        payload, rewrites = normalise(
            {"$schema": "http://json-schema.org/draft-07/schema#", **payload}
        )
        notes += [f"{schema.uri}: {note}" for note in rewrites if " read as " not in note]
        event: dict[str, Any] = {"name": label, "version": model, "x-iglu": schema.uri}
        if isinstance(payload.get("description"), str):
            event["description"] = payload["description"]
        event["properties"] = payload
        events.append(event)
    doc: dict[str, Any] = {"trackplan": 1, "name": f"Iglu schemas in {folder.name or folder}",
                           "draft": "draft-07", "events": events}  # fmt: skip
    if all(_SNAKE.match(str(e["name"])) for e in events):
        doc["lint"] = {"event_case": "snake"}  # Iglu's naming, not Segment's Title Case
    plan = build_plan(str(root), doc, source=str(root))
    return Imported(plan, tuple(notes))
