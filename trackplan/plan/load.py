"""Load a plan from a directory or one file, checking everything and reporting all errors.

>>> plan = load_plan("plans/ecommerce")   # doctest: +SKIP
>>> plan.event("Order Completed").version  # doctest: +SKIP
1
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import jsonschema_rs

from trackplan import pointer as jp
from trackplan.errors import PlanError, PlanIssue
from trackplan.plan.assemble import rule_call_view
from trackplan.plan.cache import plan_key, read_entry, write_entry
from trackplan.plan.format_schema import EVENT_FILE_SCHEMA, PLAN_FORMAT_SCHEMA
from trackplan.plan.jsonutil import MAX_DEPTH, depth_exceeds, walk_schemas
from trackplan.plan.model import (
    DRAFT_URIS,
    PAYLOAD_KEY,
    CallControls,
    Controls,
    Plan,
    Rule,
    draft_of,
)

__all__ = [
    "load_plan", "read_document", "read_file", "parse_document", "build_plan", "PLAN_FILE_NAMES",
    "SECTION_FILES",
]  # fmt: skip

PLAN_FILE_NAMES = ("plan.yaml", "plan.yml", "plan.json")
SECTION_FILES = (
    "common", "identify", "group", "page", "screen", "definitions", "destinations", "consent",
    "pii", "lint", "policy",
)  # fmt: skip
_DOC_SUFFIXES = (".yaml", ".yml", ".json")
_RULE_SECTIONS = ("common", "identify", "group", "page", "screen")


_STR, _MAP, _SEQ = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq"))
_PLAIN_SCALARS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null")
)


class _Unusual(Exception):
    """A document the direct construction leaves to PyYAML's (merge keys, keys that are
    not strings, explicit tags other than the JSON ones)."""


@functools.cache
def _yaml() -> tuple[Any, Any, Any]:
    """PyYAML (imported when a plan file is parsed: a cached plan needs none of it), its
    loader for plans, and the base loader class.

    The loader is libyaml's parser when PyYAML has it, without implicit timestamps
    (``2026-01-01`` stays a string, as in JSON), building the document directly from the
    composed nodes: plans are JSON-shaped, and the generic constructor's per-node
    bookkeeping cost more than parsing.
    """
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        #: set when the document was built directly: then it is JSON (string keys, finite
        #: numbers) no deeper than MAX_DEPTH, and need not be checked again
        checked = False

        def construct_document(self, node: Any) -> Any:
            self.checked = False
            try:
                doc = self._direct(node, 0)
            except _Unusual:
                return super().construct_document(node)
            self.checked = True
            return doc

        def _direct(self, node: Any, depth: int) -> Any:
            if depth > MAX_DEPTH:
                raise _Unusual  # the generic path, then the loader's own depth check
            tag = node.tag
            if tag == _STR and isinstance(node, yaml.ScalarNode):
                return node.value
            if tag == _MAP and isinstance(node, yaml.MappingNode):
                out = {}
                direct = self._direct
                for key, value in node.value:
                    if key.tag != _STR or not isinstance(key, yaml.ScalarNode):
                        raise _Unusual
                    out[key.value] = direct(value, depth + 1)
                return out
            if tag == _SEQ and isinstance(node, yaml.SequenceNode):
                items = []
                direct = self._direct
                for item in node.value:  # a loop, not a comprehension: one frame a level
                    items.append(direct(item, depth + 1))
                return items
            if tag in _PLAIN_SCALARS and isinstance(node, yaml.ScalarNode):
                value = self.yaml_constructors[tag](self, node)
                if isinstance(value, float) and not math.isfinite(value):
                    raise _Unusual  # reported by the loader's JSON check
                return value
            raise _Unusual

    Loader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return yaml, Loader, base


#: The largest plan file read (plans are text written by people; this bounds hostile ones).
MAX_PLAN_FILE_BYTES = 8 << 20


def _outside(path: Path, root: Path | None, real_root: str | None = None) -> str | None:
    """Why ``path`` may not be read as part of the plan folder ``root``, if it may not (a
    plan file named directly on the command line is the user's own choice). ``real_root``
    is ``os.path.realpath(root)``, when the caller has it already."""
    if root is None:
        return None
    name = os.fspath(path)
    if os.path.islink(name):
        return "is a symbolic link; plan files must be regular files inside the plan folder"
    real_root = os.path.realpath(root) if real_root is None else real_root
    real = os.path.realpath(name)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        return "resolves outside the plan folder"
    return None


def _has_alias(text: str) -> bool:
    """Whether a YAML text uses an alias (``*name``): refused, as alias bombs expand
    exponentially while composing."""
    if "*" not in text:
        return False
    yaml, _loader, base = _yaml()
    return any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=base))


def read_document(path: Path, issues: list[PlanIssue], *, root: Path | None = None) -> Any:
    """Parse one YAML or JSON file; problems go to ``issues`` and ``None`` is returned.

    Symbolic links, files resolving outside ``root``, files over
    :data:`MAX_PLAN_FILE_BYTES` and YAML aliases are refused (plans from untrusted pull
    requests are read in CI).
    """
    raw = read_file(path, issues, root=root)
    return None if raw is None else parse_document(path, raw, issues)


def read_file(
    path: Path, issues: list[PlanIssue], *, root: Path | None = None, real_root: str | None = None
) -> bytes | None:
    """The bytes of one plan file, or ``None`` with the reason in ``issues`` (a symbolic
    link, a file outside ``root``, unreadable or over :data:`MAX_PLAN_FILE_BYTES`).
    ``real_root``: ``os.path.realpath(root)``, computed once for many files."""
    name = str(path)
    refused = _outside(path, root, real_root)
    if refused is not None:
        issues.append(PlanIssue(name, "", refused))
        return None
    try:
        # inside a plan folder a link is refused above; O_NOFOLLOW keeps it so if one is
        # swapped in between
        flags = os.O_RDONLY | (getattr(os, "O_NOFOLLOW", 0) if root is not None else 0)
        fd = os.open(name, flags)
        try:
            chunks = []
            left = MAX_PLAN_FILE_BYTES + 1
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        raw = b"".join(chunks)
    except OSError as exc:
        issues.append(PlanIssue(name, "", f"cannot read file: {exc.strerror or exc}"))
        return None
    if len(raw) > MAX_PLAN_FILE_BYTES:
        issues.append(PlanIssue(name, "", f"file is larger than {MAX_PLAN_FILE_BYTES} bytes"))
        return None
    return raw


def parse_document(path: Path, raw: bytes, issues: list[PlanIssue]) -> Any:
    """Parse the bytes of one YAML or JSON plan file (by ``path``'s suffix); problems go
    to ``issues`` and ``None`` is returned. YAML aliases are refused."""
    name = str(path)
    yaml, loader, _base = _yaml()
    checked = False
    try:
        if path.suffix == ".json":
            # the standard parser keeps big integers exact (plans are small)
            doc = json.loads(raw)
        else:
            text = raw.decode("utf-8")
            if _has_alias(text):
                issues.append(PlanIssue(
                    name, "", "YAML aliases (*name) are not allowed in plan files; "
                    "write the value out or use a $ref"))
                return None
            parser = loader(text)  # a SafeLoader subclass, as yaml.load(text, loader) uses it
            try:
                doc = parser.get_single_data()
                checked = parser.checked
            finally:
                parser.dispose()
    except json.JSONDecodeError as exc:
        issues.append(PlanIssue(name, "", f"invalid JSON: {exc}"))
        return None
    except yaml.YAMLError as exc:
        # parsers differ in how (and whether) they refuse deep nesting: judge it ourselves
        if _flow_depth(raw) > MAX_DEPTH:
            issues.append(PlanIssue(name, "", f"nesting is deeper than {MAX_DEPTH} levels"))
        else:
            issues.append(PlanIssue(name, "", f"invalid YAML: {exc}"))
        return None
    except UnicodeDecodeError:
        issues.append(PlanIssue(name, "", "file is not UTF-8 text"))
        return None
    except ValueError as exc:  # e.g. integers too long to parse
        issues.append(PlanIssue(name, "", f"invalid JSON: {exc}"))
        return None
    except RecursionError:
        issues.append(PlanIssue(name, "", f"nesting is deeper than {MAX_DEPTH} levels"))
        return None
    if checked:
        return doc  # built directly from YAML: JSON, and not too deep
    if depth_exceeds(doc):
        issues.append(PlanIssue(name, "", f"nesting is deeper than {MAX_DEPTH} levels"))
        return None
    bad = _non_json(doc)
    if bad is not None:
        issues.append(PlanIssue(name, bad[0], bad[1]))
        return None
    return doc


def _flow_depth(raw: bytes) -> int:
    """The deepest nesting of YAML flow brackets in ``raw``, skipping quoted scalars.

    Only asked after the parser has failed, so a rough scan is enough: it tells a file that
    is too deep from one that is malformed, whatever words the YAML library used.
    """
    depth = deepest = 0
    quote = 0
    for byte in raw:
        if quote:
            if byte == quote:
                quote = 0
        elif byte in (0x22, 0x27):  # " and '
            quote = byte
        elif byte in (0x5B, 0x7B):  # [ and {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D) and depth:
            depth -= 1
    return deepest


def _non_json(doc: Any) -> tuple[str, str] | None:
    """The first place where a YAML document holds something JSON cannot, if any."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        ptr, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    return ptr, f"key {key!r} is not a string (quote it)"
                stack.append((jp.join(ptr, key), value))
        elif isinstance(node, list):
            stack.extend((jp.join(ptr, i), v) for i, v in enumerate(node))
        elif not (node is None or isinstance(node, bool | int | float | str)):
            return ptr, f"value of type {type(node).__name__} is not JSON"
        elif isinstance(node, float) and not math.isfinite(node):
            return ptr, "NaN and infinite numbers are not JSON; write a finite number"
    return None


def _format_issues(
    doc: Any, schema: Mapping[str, Any], file: str, base: str, event: str | None
) -> list[PlanIssue]:
    if _format_fast_ok(doc, schema):
        return []
    # only documents the compiled check refuses pay for the detailed (pure-Python) explanation
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = jp.join(base, *err.absolute_path)
        out.append(PlanIssue(file, where, _describe_format_error(err), event))
    return out


_FORMAT_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def _format_fast_ok(doc: Any, schema: Mapping[str, Any]) -> bool:
    """The plan-format check compiled by jsonschema-rs; False means "explain in detail"."""
    cached = _FORMAT_VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, jsonschema_rs.Draft202012Validator(dict(schema)))
        _FORMAT_VALIDATORS[id(schema)] = cached
    try:
        return bool(cached[1].is_valid(doc))
    except (ValueError, TypeError, OverflowError):
        return False


def _describe_format_error(err: Any) -> str:
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        shown = [repr(k) if len(k) <= 40 else repr(k[:37]) + "..." for k in extra[:5]]
        if len(extra) > 5:
            shown.append(f"and {len(extra) - 5} more")
        return f"unknown key(s) {', '.join(shown)}; allowed: " + ", ".join(
            sorted(err.schema.get("properties", {}))
        )
    if err.validator == "required":
        return str(err.message)
    if err.validator == "enum":
        return "must be one of " + ", ".join(map(repr, err.validator_value))
    if err.validator == "type":
        return f"must be of type {err.validator_value}"
    return f"invalid ({err.validator} {err.validator_value!r})"


def _doc_files(root: Path) -> list[Path]:
    out = []
    for directory, subdirs, names in os.walk(root):  # never follows linked folders
        subdirs.sort()
        for name in names:
            if os.path.splitext(name)[1] not in _DOC_SUFFIXES:
                continue
            full = os.path.join(directory, name)
            try:
                mode = os.lstat(full).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                out.append(Path(full))  # a link is listed so that it is refused, not skipped
    return sorted(out)


def load_plan(path: str | Path) -> Plan:
    """Load and check a plan directory or file; raise :class:`PlanError` with every issue.

    A plan loaded before from the same bytes comes from the cache
    (:mod:`trackplan.plan.cache`) without being parsed or checked again.
    """
    root = Path(path)
    issues: list[PlanIssue] = []
    # every file's bytes first: they are the cache key
    if root.is_dir():
        plan_file = next((root / n for n in PLAN_FILE_NAMES if (root / n).is_file()), None)
        if plan_file is None:
            raise PlanError(
                [PlanIssue(str(root), "", f"no {' or '.join(PLAN_FILE_NAMES)} in the directory")]
            )
        files = [plan_file]
        section_files: dict[str, Path] = {}
        for name in SECTION_FILES:
            for suffix in _DOC_SUFFIXES:
                candidate = root / f"{name}{suffix}"
                if candidate.is_file() or candidate.is_symlink():
                    section_files[name] = candidate
                    files.append(candidate)
        events_dir = root / "events"
        if events_dir.is_symlink():
            issues.append(PlanIssue(str(events_dir), "", "is a symbolic link; plan files must "
                                    "be regular files inside the plan folder"))
        event_files = (_doc_files(events_dir)
                       if events_dir.is_dir() and not events_dir.is_symlink() else [])
        files += event_files
        real_root = os.path.realpath(root)
        raw = {f: read_file(f, issues, root=root, real_root=real_root) for f in files}
        base = root
    elif root.is_file():
        plan_file, section_files, event_files = root, {}, []
        raw = {root: read_file(root, issues)}
        base = root
    else:
        raise PlanError([PlanIssue(str(root), "", "no such file or directory")])

    key = None
    if not issues:
        named = [(_cache_name(f, base), data) for f, data in raw.items() if data is not None]
        key = plan_key(named)
        cached = read_entry(key, base)
        if cached is not None:
            return cached

    def parsed(file: Path) -> Any:
        data = raw[file]
        return None if data is None else parse_document(file, data, issues)

    doc = parsed(plan_file)
    sections = {name: (str(f), parsed(f)) for name, f in section_files.items()}
    event_docs = [(str(f), parsed(f)) for f in event_files]
    if issues:
        raise PlanError(issues)
    plan = build_plan(str(plan_file), doc, sections, event_docs, source=str(root),
                      depth_checked=True)  # fmt: skip
    if key is not None:
        write_entry(key, base, plan)
    return plan


def _cache_name(file: Path, base: Path) -> str:
    """How a file is named in the cache key: its path inside the plan folder, or its own
    name for a plan that is one file (the suffix says how it is parsed)."""
    if file == base:
        return file.name
    return file.relative_to(base).as_posix()


def build_plan(
    plan_file: str,
    doc: Any,
    sections: Mapping[str, tuple[str, Any]] | None = None,
    event_docs: list[tuple[str, Any]] | None = None,
    *,
    source: str = "",
    depth_checked: bool = False,
) -> Plan:
    """Check parsed documents and build the :class:`Plan` (raises :class:`PlanError`).

    ``depth_checked``: the documents come from :func:`parse_document`, which refuses
    nesting deeper than ``MAX_DEPTH`` (so it is not walked again here).
    """
    issues: list[PlanIssue] = []
    sections = dict(sections or {})
    event_docs = list(event_docs or [])
    too_deep = [] if depth_checked else [
        f for f, v in [(plan_file, doc), *sections.values(), *event_docs] if depth_exceeds(v)
    ]  # fmt: skip
    if too_deep:
        # checked first: the schema validators below recurse and would overflow the stack
        raise PlanError([PlanIssue(f, "", f"nesting is deeper than {MAX_DEPTH} levels")
                         for f in too_deep])  # fmt: skip
    if not isinstance(doc, dict):
        raise PlanError([PlanIssue(plan_file, "", "the plan file must hold a mapping")])
    issues += _format_issues(doc, PLAN_FORMAT_SCHEMA, plan_file, "", None)
    section_ok: set[str] = set()
    # where each section lives: (file, pointer-base, value)
    located: dict[str, tuple[str, str, Any]] = {}
    for key in SECTION_FILES:
        if key in doc:
            located[key] = (plan_file, jp.join("", key), doc[key])
        if key in sections:
            file, value = sections[key]
            if key in doc:
                issues.append(PlanIssue(file, "", f"'{key}' is also set in {plan_file}"))
                continue
            sub = PLAN_FORMAT_SCHEMA["properties"][key]
            found = _format_issues(value, sub, file, "", None)
            issues += found
            located[key] = (file, "", value)
            if not found:
                section_ok.add(key)
    if issues:
        # Files that do not depend on plan.yaml are still checked, so one run lists all.
        draft = doc.get("draft")
        draft = draft if isinstance(draft, str) and draft in DRAFT_URIS else "draft-07"
        for kind in _RULE_SECTIONS:
            if kind in section_ok:
                file, base, value = located[kind]
                _make_rule(kind, value, file, base, draft, issues)
        _event_file_rules(event_docs, draft, issues)
        raise PlanError(issues)

    default_draft = str(doc.get("draft", "draft-07"))
    rules: list[Rule] = []
    for kind in _RULE_SECTIONS:
        if kind in located:
            file, base, value = located[kind]
            rule = _make_rule(kind, value, file, base, default_draft, issues)
            if rule is not None:
                rules.append(rule)
    for i, ev in enumerate(doc.get("events", []) or []):
        rule = _make_rule("track", ev, plan_file, jp.join("", "events", i), default_draft, issues)
        if rule is not None:
            rules.append(rule)
    rules += _event_file_rules(event_docs, default_draft, issues)

    seen: dict[tuple[str | None, int], Rule] = {}
    for rule in rules:
        if rule.kind != "track":
            continue
        ident = (rule.name, rule.version)
        if ident in seen:
            other = seen[ident]
            issues.append(
                PlanIssue(
                    rule.source,
                    rule.pointer,
                    f"event {rule.name!r} version {rule.version} is also defined in "
                    f"{other.source} at {other.pointer or '/'}",
                    rule.label,
                )
            )
        seen[ident] = rule

    definitions = dict(located["definitions"][2]) if "definitions" in located else {}
    if "definitions" in located:
        dfile, dbase, _ = located["definitions"]
        for name, schema in definitions.items():
            issues += _meta_issues(
                schema, default_draft, dfile, jp.join(dbase, name), f"definition {name}"
            )

    order = {"common": 0, "identify": 1, "group": 2, "page": 3, "screen": 4, "track": 5}
    rules.sort(key=lambda r: (order[r.kind], r.name or "", r.version))
    controls = _make_controls(doc.get("controls", {}))
    destinations = located.get("destinations", ("", "", []))[2] or []
    plan = Plan(
        name=str(doc["name"]),
        version=str(doc.get("version", "1")),
        description=doc.get("description"),
        draft=default_draft,
        rules=tuple(rules),
        definitions=definitions,
        controls=controls,
        pii=dict(located.get("pii", ("", "", {}))[2] or {}),
        destinations=tuple(destinations),
        consent=dict(located.get("consent", ("", "", {}))[2] or {}),
        lint=dict(located.get("lint", ("", "", {}))[2] or {}),
        policy=dict(located.get("policy", ("", "", {}))[2] or {}),
        extra={k: v for k, v in doc.items() if k.startswith("x-")},
        source=source,
        sections={
            **{k: f"{f}#{b}" for k, (f, b, _v) in located.items()},
            **{k: f"{plan_file}#{jp.join('', k)}" for k in doc if k.startswith("x-")},
        },
    )
    for rule in plan.rules:
        issues += _ref_issues(plan, rule)
    if "definitions" in located:
        issues += _definition_ref_issues(definitions, located["definitions"][:2])
    if issues:
        raise PlanError(issues)
    return plan


def _event_file_rules(
    event_docs: list[tuple[str, Any]], default_draft: str, issues: list[PlanIssue]
) -> list[Rule]:
    """Check the files under events/ (format, then schemas) and make their rules."""
    rules = []
    for file, ev in event_docs:
        before = len(issues)
        issues += _format_issues(ev, EVENT_FILE_SCHEMA, file, "", _name_of(ev))
        if len(issues) == before:
            rule = _make_rule("track", ev, file, "", default_draft, issues)
            if rule is not None:
                rules.append(rule)
    return rules


def _name_of(ev: Any) -> str | None:
    return ev.get("name") if isinstance(ev, dict) and isinstance(ev.get("name"), str) else None


def _make_rule(
    kind: str, value: Any, file: str, base: str, default_draft: str, issues: list[PlanIssue]
) -> Rule | None:
    if not isinstance(value, dict):
        issues.append(PlanIssue(file, base, "a rule must be a mapping"))
        return None
    name = value.get("name") if kind == "track" else None
    label = str(name) if kind == "track" else kind
    payload_key = PAYLOAD_KEY.get(kind)
    wrong = {"properties", "traits"} - {payload_key}
    for key in sorted(wrong & set(value)):
        hint = f"use '{payload_key}'" if payload_key else "use 'call' for the whole call"
        issues.append(PlanIssue(file, jp.join(base, key), f"a {kind} rule has no {key}; {hint}",
                                label))
    payload = value.get(payload_key) if payload_key else None
    call = value.get("call")
    draft = draft_of(call, default_draft) if call is not None else default_draft
    pdraft = draft_of(payload, draft or default_draft) if payload is not None else draft
    if draft is None or pdraft is None:
        issues.append(PlanIssue(file, base, "unsupported $schema: use draft-07 or 2020-12", label))
        return None
    if payload is not None:
        issues += _meta_issues(payload, pdraft, file, jp.join(base, str(payload_key)), label)
    if call is not None:
        issues += _meta_issues(call, draft, file, jp.join(base, "call"), label)
    known = {"name", "version", "description", "properties", "traits", "call"}
    return Rule(
        kind=kind,  # type: ignore[arg-type]
        name=name,
        version=int(value.get("version", 1)),
        description=value.get("description"),
        payload=payload,
        call=call,
        draft=draft,
        source=file,
        pointer=base,
        extra={k: v for k, v in value.items() if k not in known},
    )


@functools.cache
def _meta_validator(draft: str) -> Any:
    # the pure-Python reference explains a refused schema; imported only when one is refused
    import jsonschema

    cls = {"draft-07": jsonschema.Draft7Validator, "2020-12": jsonschema.Draft202012Validator}[
        draft
    ]
    return cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)


def _meta_fast_ok(schema: Any, draft: str) -> bool:
    """The meta-schema check compiled by jsonschema-rs; False means "explain in detail"."""
    if not isinstance(schema, dict):
        return isinstance(schema, bool)
    try:
        return bool(jsonschema_rs.meta.is_valid({**schema, "$schema": DRAFT_URIS[draft]}))
    except (ValueError, TypeError, jsonschema_rs.ValidationError):
        return False


def _meta_issues(schema: Any, draft: str, file: str, base: str, event: str) -> list[PlanIssue]:
    out: list[PlanIssue] = []
    errors: Any = ()
    if not _meta_fast_ok(schema, draft):
        # only schemas the compiled meta-check refuses pay for the detailed explanation
        errors = _meta_validator(draft).iter_errors(schema)
    for err in errors:
        where = jp.join(base, *err.absolute_path)
        out.append(
            PlanIssue(
                file,
                where,
                f"not a valid {draft} schema: '{err.validator}' check failed "
                f"({_short(err.message)})",
                event,
            )
        )
    for path, node in walk_schemas(schema):
        patterns: list[tuple[tuple[str, ...], Any]] = [(("pattern",), node.get("pattern"))]
        pattern_props = node.get("patternProperties")
        if isinstance(pattern_props, dict):
            patterns += [(("patternProperties", p), p) for p in pattern_props]
        for keys, pattern in patterns:
            problem = _regex_problem(pattern) if isinstance(pattern, str) else None
            if problem:
                out.append(PlanIssue(file, jp.join(base, *path, *keys),
                                     f"invalid regular expression: {problem}", event))
    return out


def _regex_problem(pattern: str) -> str | None:
    """Why the engine's regex dialect (or Python's, used by the reference) refuses ``pattern``."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    try:
        jsonschema_rs.validator_for({"pattern": pattern})
    except (ValueError, jsonschema_rs.ValidationError) as exc:
        return str(exc).splitlines()[0]
    return None


def _short(message: str, limit: int = 160) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


_BASE = "urn:trackplan:rule"


def _ref_issues(plan: Plan, rule: Rule) -> list[PlanIssue]:
    """Refuse non-local ``$ref``s; check local ones resolve and do not loop."""
    out: list[PlanIssue] = []
    parts: list[tuple[str, str, Any]] = []
    if rule.payload is not None and rule.payload_key:
        parts.append((rule.payload_key, jp.join(rule.pointer, rule.payload_key), rule.payload))
    if rule.call is not None:
        parts.append(("call", jp.join(rule.pointer, "call"), rule.call))
    whole = rule_call_view(rule)  # read only
    root = {"definitions": dict(plan.definitions), "$defs": dict(plan.definitions), **whole}
    embedded_ids = {
        urldefrag(urljoin(_BASE, node["$id"]))[0]
        for _, node in walk_schemas(whole)
        if isinstance(node.get("$id"), str)
    }
    anchors: set[str] | None = None
    for _part, base, schema in parts:
        for path, node in walk_schemas(schema):
            ref = node.get("$ref")
            if not isinstance(ref, str):
                continue
            where = jp.join(base, *path, "$ref")
            target, fragment = urldefrag(urljoin(_BASE, ref))
            if not ref.startswith("#"):
                if target in embedded_ids:
                    continue
                out.append(PlanIssue(rule.source, where, _refusal(ref), rule.label))
                continue
            if fragment and not fragment.startswith("/"):
                if anchors is None:
                    anchors = _anchor_names(root)
                if fragment not in anchors:
                    out.append(PlanIssue(rule.source, where, f"$ref '#{fragment}' names an "
                                         "anchor no schema in the plan declares", rule.label))
                continue
            resource = _enclosing_resource(schema, path)
            if resource is not None:
                # an embedded $id changes the base: '#/...' points into that schema
                at, node_id, scope = resource
                problem = _resolve_local(scope, fragment)
                if problem:
                    out.append(PlanIssue(
                        rule.source, where,
                        f"$ref '{ref}' is read inside the schema whose $id is {node_id!r} "
                        f"(at {jp.join(base, *at)}), where it does not resolve: drop that "
                        "$id to refer to the plan's definitions", rule.label))
                continue
            problem = _resolve_local(root, fragment)
            if problem:
                out.append(PlanIssue(rule.source, where, problem, rule.label))
    return out


def _enclosing_resource(
    schema: Any, path: tuple[str | int, ...]
) -> tuple[tuple[str | int, ...], str, dict[str, Any]] | None:
    """The nearest schema above ``path`` whose ``$id`` (not a bare ``#anchor``) starts a
    resource of its own (``(its path, its $id, the schema)``), or None: then local refs
    resolve against the whole call."""
    found = None
    node: Any = schema
    for depth in range(len(path)):
        if isinstance(node, dict):
            node_id = node.get("$id")
            if isinstance(node_id, str) and not node_id.startswith("#"):
                found = (path[:depth], node_id, node)
        try:
            token = path[depth]
            node = node[token]
        except (KeyError, IndexError, TypeError):
            return found
    return found


def _definition_ref_issues(
    definitions: Mapping[str, Any], where: tuple[str, str]
) -> list[PlanIssue]:
    """A shared definition is copied into every rule that uses it, so its local ``$ref``s
    may point only at other definitions: anything else would mean something different in
    each rule (and in a Segment export, where the definitions travel with the rule)."""
    dfile, dbase = where
    root = {"definitions": dict(definitions), "$defs": dict(definitions)}
    out: list[PlanIssue] = []
    for name, schema in definitions.items():
        for path, node in walk_schemas(schema):
            ref = node.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                continue  # non-local refs are refused where a rule uses them
            problem = _resolve_local(root, ref[1:])
            if problem:
                pointer = jp.join(dbase, name, *path, "$ref")
                out.append(PlanIssue(dfile, pointer, problem + ": a definition may refer "
                                     "only to '#/definitions/<name>'", f"definition {name}"))
    return out


def _anchor_names(root: Any) -> set[str]:
    """Every anchor name declared in ``root`` (``$anchor``, ``$dynamicAnchor``, or a
    draft-07 ``$id``/``id`` of the form ``#name``), wherever it sits."""
    names: set[str] = set()
    for _path, node in walk_schemas(root):
        for key in ("$anchor", "$dynamicAnchor", "$recursiveAnchor"):
            value = node.get(key)
            if isinstance(value, str):
                names.add(value)
        for key in ("$id", "id"):
            value = node.get(key)
            if isinstance(value, str) and "#" in value:
                names.add(value.split("#", 1)[1])
    return names


def _refusal(ref: str) -> str:
    return (
        f"$ref {ref!r} points outside the plan; trackplan never fetches remote or file "
        "schemas: copy the schema into the plan's definitions and use '#/definitions/<name>'"
    )


def _resolve_local(root: Any, fragment: str) -> str | None:
    """None when ``#fragment`` resolves in ``root`` without a pure ``$ref`` loop."""
    seen: set[str] = set()
    current = fragment
    while True:
        if current in seen:
            return f"$ref cycle: '#{fragment}' only refers to itself"
        seen.add(current)
        if current and not current.startswith("/"):
            # anchors ($anchor, plain-name fragments) are resolved by the validator
            return None
        node: Any = root
        try:
            for token in jp.parse(current):
                node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError):
            return f"$ref '#{fragment}' does not resolve inside the plan"
        if isinstance(node, dict) and isinstance(node.get("$ref"), str) and len(node) == 1:
            nxt = node["$ref"]
            if not nxt.startswith("#"):
                return None
            current = nxt[1:]
            continue
        return None


def _make_controls(value: Mapping[str, Any]) -> Controls:
    return Controls(**{k: CallControls(**v) for k, v in (value or {}).items()})
