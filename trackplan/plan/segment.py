"""Import and export Segment tracking plans without losing anything.

Segment rules describe the whole call (``context``, ``traits``, envelope fields) in one
``jsonSchema``; the native plan keeps the payload (``properties`` or ``traits``) apart
from the rest of the call, and :func:`trackplan.plan.assemble.split_call_schema` is the
exact inverse of the export, so keywords trackplan does not know (``labels``, ``x-pii``,
``id``) and constraints on ``context`` or ``messageId`` all survive the trip.

Two export forms are read: the Public API form (``rules`` a list of ``{type, key,
jsonSchema, version}``, optionally wrapped as ``{"data": {"trackingPlan": ...}}``) and
the legacy Config API form (``rules.events[]``, ``rules.global``, ``rules.identify_traits``,
``rules.group_traits``). Export writes the Public API form.

>>> plan = import_segment(json.load(open("plan.json")), source="plan.json")  # doctest: +SKIP
>>> export_segment(plan)["rules"][0]["type"]                                  # doctest: +SKIP
'TRACK'
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trackplan import pointer as jp
from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.assemble import DEFS_KEYS, rule_call_schema, split_call_schema
from trackplan.plan.drafts import normalise
from trackplan.plan.jsonutil import MAX_DEPTH, depth_exceeds, walk_schemas
from trackplan.plan.load import build_plan
from trackplan.plan.model import DRAFT_URIS, PAYLOAD_KEY, Plan, Rule

__all__ = [
    "import_segment", "read_segment", "import_rudderstack", "Imported", "export_segment",
    "SEGMENT_TYPES", "EXTRA_PREFIX",
]  # fmt: skip

#: Segment rule type -> trackplan rule kind.
SEGMENT_TYPES: Mapping[str, str] = {
    "COMMON": "common",
    "TRACK": "track",
    "IDENTIFY": "identify",
    "GROUP": "group",
    "PAGE": "page",
    "SCREEN": "screen",
}
_KIND_TO_TYPE = {kind: typ for typ, kind in SEGMENT_TYPES.items()}
_KIND_ORDER = ("common", "identify", "group", "page", "screen", "track")

#: Prefix of the plan and rule ``extra`` keys that hold Segment metadata.
EXTRA_PREFIX = "x-segment-"

#: Legacy section -> rule kind (``identify`` and ``group`` are spellings seen in the wild).
_LEGACY_SECTIONS: Mapping[str, str] = {
    "global": "common",
    "identify_traits": "identify",
    "identify": "identify",
    "group_traits": "group",
    "group": "group",
    "page": "page",  # RudderStack's tracking plans (Segment's legacy form has none)
    "screen": "screen",
}
#: Legacy plan metadata with a Public API name; the rest keeps its own name.
_LEGACY_META = {"create_time": "createdAt", "update_time": "updatedAt", "name": "resource_name"}
#: Older drafts some Segment rules declare; Segment validates every rule as draft-07.
_OLD_DRAFT_URIS = frozenset(
    f"http://json-schema.org/draft-0{n}/schema{h}" for n in (4, 6) for h in ("#", "")
)
_DECLARED = EXTRA_PREFIX + "declared-schema"
_PUBLIC_RULE_KEYS = frozenset({"type", "key", "jsonSchema", "version", "description"})
_LEGACY_RULE_KEYS = frozenset({"name", "description", "rules", "version"})


@dataclasses.dataclass(slots=True)
class _Located:
    """A Segment rule in native form, with where its parts sit in the Segment file."""

    kind: str
    doc: dict[str, Any]
    base: str  # pointer of the rule object in the Segment file
    schema: str  # pointer of its whole-call schema in the Segment file
    name_key: str  # the key holding the event name ("key" or "name")


class _Reader:
    """Collects native rule documents and issues while walking a Segment document."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.issues: list[PlanIssue] = []
        self.rules: list[_Located] = []
        self.notes: list[str] = []  # what was rewritten to fit a supported draft

    def issue(self, pointer: str, message: str, event: str | None = None) -> None:
        self.issues.append(PlanIssue(self.source, pointer, message, event))

    # -- one rule ------------------------------------------------------------------
    def add(
        self,
        kind: str,
        *,
        name: Any,
        version: Any,
        description: Any,
        schema: Any,
        others: Mapping[str, Any],
        base: str,
        schema_ptr: str,
        name_key: str,
        version_ptr: str,
    ) -> None:
        label = name if isinstance(name, str) else kind
        ok = True
        doc: dict[str, Any] = {}
        if kind == "track":
            if not isinstance(name, str) or not name:
                self.issue(jp.join(base, name_key), "a TRACK rule needs a non-empty event name")
                ok = False
            doc["name"] = name
        if version is None:
            version = 1
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.issue(version_ptr, "version must be an integer >= 1", label)
            ok = False
        if kind == "track" or version != 1:
            doc["version"] = version
        if description is not None:
            if not isinstance(description, str):
                self.issue(jp.join(base, "description"), "description must be a string", label)
                ok = False
            doc["description"] = description
        if not isinstance(schema, dict):
            what = "missing" if schema is None else "not a JSON object"
            self.issue(schema_ptr, f"the rule's JSON Schema is {what}", label)
            return
        declared = schema.get("$schema")
        schema, notes = normalise(schema, pointer=schema_ptr)
        self.notes += [f"{label}: {note}" for note in notes]
        if (
            isinstance(declared, str)
            and declared in _OLD_DRAFT_URIS
            and all(" read as " in n for n in notes)
        ):
            # only the URI changed: validated as draft-07 (as Segment does) and the
            # declared URI is given back on export
            doc[_DECLARED] = declared
        payload, call = split_call_schema(kind, schema)
        key = PAYLOAD_KEY.get(kind)
        if key is not None and payload is not None:
            doc[key] = payload
        if call is not None:
            doc["call"] = call
        for extra_key, value in others.items():
            keep = extra_key.startswith("x-") or extra_key == "labels"
            doc[extra_key if keep else EXTRA_PREFIX + extra_key] = value
        if ok:
            self.rules.append(_Located(kind, doc, base, schema_ptr, name_key))

    def public_rule(self, index: int, rule: Any, base: str) -> None:
        if not isinstance(rule, dict):
            self.issue(base, "a rule must be a JSON object")
            return
        typ = rule.get("type")
        kind = SEGMENT_TYPES.get(typ.upper()) if isinstance(typ, str) else None
        if kind is None:
            self.issue(
                jp.join(base, "type"),
                "rule type must be one of " + ", ".join(SEGMENT_TYPES),
                rule.get("key") if isinstance(rule.get("key"), str) else None,
            )
            return
        others = {k: v for k, v in rule.items() if k not in _PUBLIC_RULE_KEYS}
        if typ != kind.upper():
            others["type"] = typ  # keep an unusual spelling such as "track"
        if kind != "track" and "key" in rule:
            others["key"] = rule["key"]
        schema = rule.get("jsonSchema")
        description = rule.get("description")
        if description is None and isinstance(schema, dict):
            # Public API rules keep the event description inside the schema; it stays
            # there too, so the exported jsonSchema is the imported one.
            found = schema.get("description")
            description = found if isinstance(found, str) else None
        self.add(
            kind,
            name=rule.get("key") if kind == "track" else None,
            version=rule.get("version"),
            description=description,
            schema=schema,
            others=others,
            base=base,
            schema_ptr=jp.join(base, "jsonSchema"),
            name_key="key",
            version_ptr=jp.join(base, "version"),
        )

    def legacy_rule(self, kind: str, value: Any, base: str) -> None:
        """A legacy ``RuleMetadata`` (``{name, description, rules, version}``)."""
        if not isinstance(value, dict):
            self.issue(base, "a rule must be a JSON object")
            return
        others = {k: v for k, v in value.items() if k not in _LEGACY_RULE_KEYS}
        if kind != "track" and "name" in value:
            others["key"] = value["name"]
        self.add(
            kind,
            name=value.get("name"),
            version=value.get("version"),
            description=value.get("description"),
            schema=value.get("rules"),
            others=others,
            base=base,
            schema_ptr=jp.join(base, "rules"),
            name_key="name",
            version_ptr=jp.join(base, "version"),
        )

    def legacy_section(self, kind: str, value: Any, base: str) -> None:
        """``global``, ``identify_traits`` or ``group_traits``: a schema or RuleMetadata list."""
        if value is None or value == [] or value == {}:
            return
        if isinstance(value, list):
            if len(value) > 1:
                self.issue(
                    base,
                    f"{len(value)} rules for one call type; trackplan keeps one {kind} rule: "
                    "merge them into one schema",
                )
                return
            self.legacy_rule(kind, value[0], jp.join(base, 0))
        elif isinstance(value, dict) and isinstance(value.get("rules"), dict):
            self.legacy_rule(kind, value, base)
        else:
            self.add(
                kind, name=None, version=None, description=None, schema=value, others={},
                base=base, schema_ptr=base, name_key="name", version_ptr=base,
            )  # fmt: skip


def _unwrap(doc: Any, base: str = "") -> tuple[dict[str, Any], str, Any, str]:
    """``(plan metadata, its pointer, rules, rules pointer)`` for the shapes Segment emits."""
    if isinstance(doc, list):
        return {}, base, doc, base
    if not isinstance(doc, dict):
        raise PlanError([PlanIssue("", base, "a Segment tracking plan must be a JSON object")])
    if "rules" not in doc:
        if isinstance(doc.get("data"), dict | list):
            return _unwrap(doc["data"], jp.join(base, "data"))
        plans = doc.get("tracking_plans", doc.get("trackingPlans"))
        if isinstance(plans, list) and len(plans) == 1:
            key = "tracking_plans" if "tracking_plans" in doc else "trackingPlans"
            return _unwrap(plans[0], jp.join(base, key, 0))
        if isinstance(doc.get("trackingPlan"), dict):
            meta, mbase, rules, rbase = _unwrap(doc["trackingPlan"], jp.join(base, "trackingPlan"))
            if rules is None and "rules" in doc:
                rules, rbase = doc["rules"], jp.join(base, "rules")
            return meta, mbase, rules, rbase
    if isinstance(doc.get("trackingPlan"), dict) and "rules" in doc:
        # rules fetched separately and stored beside the plan
        return (
            doc["trackingPlan"],
            jp.join(base, "trackingPlan"),
            doc["rules"],
            jp.join(base, "rules"),
        )
    return doc, base, doc.get("rules"), jp.join(base, "rules")


def _metadata(
    meta: Mapping[str, Any], base: str, legacy: bool, source: str, reader: _Reader
) -> dict[str, Any]:
    """The native plan document's top level: name, description, ``x-segment-*`` metadata."""
    out: dict[str, Any] = {"trackplan": 1}
    extra: dict[str, Any] = {}
    name: Any = None
    for key, value in meta.items():
        if key in ("rules", "trackingPlan", "pagination"):
            continue
        if legacy and key == "display_name":
            name = value
            if not isinstance(value, str) or not value:
                reader.issue(jp.join(base, key), "display_name must be a non-empty string")
            continue
        if key == "name" and not legacy:
            name = value
            if not isinstance(value, str) or not value:
                reader.issue(jp.join(base, key), "name must be a non-empty string")
            continue
        if key == "description" and (value is None or isinstance(value, str)):
            if value is not None:
                out["description"] = value
            continue
        if key == "version" and isinstance(value, str | int) and not isinstance(value, bool):
            out["version"] = str(value)
            continue
        if key.startswith("x-"):
            extra[key] = value  # a native plan's own x-* keys, exported as they are
            continue
        new_key = _LEGACY_META.get(key, key) if legacy else key
        extra[EXTRA_PREFIX + new_key] = value
    if not isinstance(name, str) or not name:
        resource = meta.get("name") if legacy else None
        if isinstance(resource, str) and resource.strip("/"):
            name = resource.rstrip("/").rsplit("/", 1)[-1]
        else:
            name = Path(source).stem if source else "Segment tracking plan"
    out["name"] = name
    out["draft"] = "draft-07"
    out.update(sorted(extra.items()))
    return out


def _read_rules(rules: Any, rbase: str, reader: _Reader) -> bool:
    """Walk the rules of either form; True when the document is the legacy form."""
    if isinstance(rules, list):
        for i, rule in enumerate(rules):
            reader.public_rule(i, rule, jp.join(rbase, i))
        return False
    if not isinstance(rules, dict):
        reader.issue(rbase, "no rules: expected a list (Public API) or an object (legacy)")
        return False
    for key, value in rules.items():
        where = jp.join(rbase, key)
        if key == "events":
            if not isinstance(value, list):
                reader.issue(where, "rules.events must be a list")
                continue
            for i, ev in enumerate(value):
                reader.legacy_rule("track", ev, jp.join(where, i))
        elif key in _LEGACY_SECTIONS:
            reader.legacy_section(_LEGACY_SECTIONS[key], value, where)
        else:
            reader.issue(
                where,
                f"unknown legacy rules section {key!r}; known: events, "
                + ", ".join(_LEGACY_SECTIONS),
            )
    return True


def _check_duplicates(reader: _Reader) -> list[_Located]:
    """Drop (and report) a second rule for the same event version or call type."""
    seen: dict[tuple[str, Any, Any], _Located] = {}
    kept = []
    for loc in reader.rules:
        ident = (loc.kind, loc.doc.get("name"), loc.doc.get("version", 1))
        if loc.kind != "track":
            ident = (loc.kind, None, None)
        first = seen.get(ident)
        if first is not None:
            what = (
                f"event {loc.doc['name']!r} version {ident[2]}"
                if loc.kind == "track"
                else f"a second {_KIND_TO_TYPE[loc.kind]} rule"
            )
            reader.issue(loc.base, f"{what} is also defined at {first.base}",
                         loc.doc.get("name"))  # fmt: skip
            continue
        seen[ident] = loc
        kept.append(loc)
    return kept


def _remap(pointer: str, native: Mapping[str, _Located], top: str, legacy: bool) -> str:
    """Translate a pointer into the native document into one into the Segment file."""
    try:
        tokens = jp.parse(pointer)
    except ValueError:
        return pointer
    if not tokens:
        return top
    head, rest = tokens[0], tokens[1:]
    loc: _Located | None
    if head == "events" and rest:
        loc = native.get(f"events/{rest[0]}")
        rest = rest[1:]
    elif head in _KIND_TO_TYPE:
        loc = native.get(head)
    else:
        return jp.join(top, "display_name" if legacy and head == "name" else head, *rest)
    if loc is None:
        return pointer
    if not rest:
        return loc.base
    key = PAYLOAD_KEY.get(loc.kind)
    if rest[0] == key:
        return jp.join(loc.schema, "properties", key, *rest[1:])
    if rest[0] == "call":
        return jp.join(loc.schema, *rest[1:])
    if rest[0] == "name":
        return jp.join(loc.base, loc.name_key, *rest[1:])
    if rest[0].startswith(EXTRA_PREFIX):
        return jp.join(loc.base, rest[0][len(EXTRA_PREFIX) :], *rest[1:])
    return jp.join(loc.base, *rest)


@dataclasses.dataclass(frozen=True, slots=True)
class Imported:
    """An imported plan and the notes of what the import rewrote (drafts normalised)."""

    plan: Plan
    notes: tuple[str, ...] = ()


def import_segment(doc: Any, *, source: str = "") -> Plan:
    """Read a Segment tracking plan export (Public API or legacy form) into a :class:`Plan`.

    The plan is checked exactly like a native one; every problem is reported at once as a
    :class:`PlanError` whose pointers point into the Segment document. Rules written for
    draft-04, -06, 2019-09 or 2020-12 are normalised (:func:`read_segment` says how).

    Args:
        doc: the parsed JSON export.
        source: the file name used in errors and as ``plan.source``.
    """
    return read_segment(doc, source=source).plan


def import_rudderstack(doc: Any, *, source: str = "") -> Imported:
    """Read a RudderStack tracking plan into a :class:`Plan`, with notes.

    Two shapes are read: the tracking plan its config backend serves (``rules`` with
    ``events[]`` of ``{name, description, rules: <whole-event schema>}`` and ``identify``,
    ``group``, ``page``, ``screen`` schemas: Segment's legacy form plus page and screen),
    and a list of ``events`` with ``eventType`` and ``rules`` (the Data Catalog form).
    """
    if isinstance(doc, dict) and "rules" not in doc and isinstance(doc.get("events"), list):
        rules = []
        for event in doc["events"]:
            if not isinstance(event, dict):
                rules.append(event)  # reported by the reader as "a rule must be an object"
                continue
            kind = str(event.get("eventType", "track")).upper()
            rule = {"type": kind, "jsonSchema": event.get("rules", {"type": "object"}),
                    "version": event.get("version", 1)}  # fmt: skip
            if kind == "TRACK":
                rule["key"] = event.get("name")
            if isinstance(event.get("description"), str):
                rule["description"] = event["description"]
            rules.append(rule)
        meta = {k: v for k, v in doc.items() if k != "events"}
        doc = {**meta, "rules": rules}
    return read_segment(doc, source=source)


def read_segment(doc: Any, *, source: str = "") -> Imported:
    """:func:`import_segment`, with the notes of what was rewritten to fit a draft."""
    if depth_exceeds(doc):
        raise PlanError([PlanIssue(source, "", f"nesting is deeper than {MAX_DEPTH} levels")])
    try:
        meta, mbase, rules, rbase = _unwrap(doc)
    except PlanError as exc:
        raise PlanError([dataclasses.replace(i, file=source) for i in exc.issues]) from None
    reader = _Reader(source)
    legacy = _read_rules(rules, rbase, reader)
    top = _metadata(meta, mbase, legacy, source, reader)
    located = _check_duplicates(reader)
    native: dict[str, _Located] = {}
    events: list[dict[str, Any]] = []
    for loc in sorted(located, key=lambda r: _KIND_ORDER.index(r.kind)):
        if loc.kind == "track":
            native[f"events/{len(events)}"] = loc
            events.append(loc.doc)
        else:
            native[loc.kind] = loc
            top[loc.kind] = loc.doc
    if events:
        top["events"] = events
    issues = list(reader.issues)
    plan: Plan | None = None
    try:
        plan = build_plan(source, top, source=source)
    except PlanError as exc:
        issues += [
            dataclasses.replace(i, pointer=_remap(i.pointer, native, mbase, legacy))
            for i in exc.issues
        ]
    if issues or plan is None:
        raise PlanError(issues)
    rules_out = []
    for rule in plan.rules:
        # point each rule at its place in the Segment file, for later error messages
        found = native.get(rule.pointer[1:])
        rules_out.append(dataclasses.replace(rule, pointer=found.base) if found else rule)
    sections = {
        key: f"{source}#{native[key].base}" if key in native else where
        for key, where in plan.sections.items()
    }
    plan = dataclasses.replace(plan, rules=tuple(rules_out), sections=sections)
    return Imported(plan, tuple(reader.notes))


# -- export --------------------------------------------------------------------------
def _inline_definitions(schema: dict[str, Any], definitions: Mapping[str, Any]) -> None:
    """Copy the plan definitions ``schema`` refers to (transitively) into its root."""
    if not definitions:
        return
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        for _path, sub in walk_schemas(node):
            ref = sub.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#/"):
                continue
            try:
                tokens = jp.parse(ref[1:])
            except ValueError:
                continue
            if len(tokens) < 2 or tokens[0] not in DEFS_KEYS or tokens[1] not in definitions:
                continue
            section = schema.setdefault(tokens[0], {})
            if isinstance(section, dict) and tokens[1] not in section:
                section[tokens[1]] = copy.deepcopy(definitions[tokens[1]])
                pending.append(section[tokens[1]])


def _export_rule(plan: Plan, rule: Rule) -> dict[str, Any]:
    schema = rule_call_schema(rule)
    _inline_definitions(schema, plan.definitions)
    if rule.draft != "draft-07" and "$schema" not in schema:
        schema = {"$schema": DRAFT_URIS[rule.draft], **schema}
    declared = rule.extra.get(_DECLARED)
    if declared is not None and schema.get("$schema") == DRAFT_URIS["draft-07"]:
        schema["$schema"] = declared
    out: dict[str, Any] = {"type": rule.extra.get(EXTRA_PREFIX + "type", _KIND_TO_TYPE[rule.kind])}
    if rule.kind == "track":
        out["key"] = rule.name
    elif EXTRA_PREFIX + "key" in rule.extra:
        out["key"] = rule.extra[EXTRA_PREFIX + "key"]
    out["version"] = rule.version
    if rule.description is not None and rule.description != schema.get("description"):
        out["description"] = rule.description
    out["jsonSchema"] = schema
    for key, value in rule.extra.items():
        if key in (EXTRA_PREFIX + "type", EXTRA_PREFIX + "key", _DECLARED):
            continue
        name = key[len(EXTRA_PREFIX) :] if key.startswith(EXTRA_PREFIX) else key
        if name not in out:
            out[name] = copy.deepcopy(value)
    return out


def export_segment(plan: Plan) -> dict[str, Any]:
    """The Public API form of ``plan``: metadata and a ``rules`` list, in a stable order.

    Plan metadata kept from an import (``x-segment-*``) is given back under its own name;
    plan-wide definitions a rule refers to are copied into that rule's ``jsonSchema`` so
    each rule stands alone, as Segment requires. Schema controls, PII, destinations and
    consent have no place in a Segment tracking plan and are not exported.
    """
    out: dict[str, Any] = {"name": plan.name}
    if plan.description is not None:
        out["description"] = plan.description
    if plan.version != "1":
        out["version"] = plan.version
    for key, value in plan.extra.items():
        # x-segment-* metadata under its own name; other x-* keys as they are
        name = key[len(EXTRA_PREFIX) :] if key.startswith(EXTRA_PREFIX) else key
        if name not in out and name != "rules":
            out[name] = copy.deepcopy(value)
    ordered = sorted(plan.rules, key=lambda r: (_KIND_ORDER.index(r.kind), r.name or "", r.version))
    out["rules"] = [_export_rule(plan, rule) for rule in ordered]
    return out
