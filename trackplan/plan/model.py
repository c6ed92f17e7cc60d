"""The plan model: frozen dataclasses every backend reads.

A plan is loaded once (:mod:`trackplan.plan.load`) and then handed, never re-parsed,
to the enforcement engine, code generators, batch scanner, CI checks and privacy
reports. Schemas inside the model are plain JSON values: treat them as read-only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from trackplan import pointer as jp
from trackplan.errors import PlanError, PlanIssue

__all__ = [
    "CALL_KINDS",
    "RULE_KINDS",
    "PAYLOAD_KEY",
    "DRAFT_URIS",
    "CallKind",
    "RuleKind",
    "Controls",
    "CallControls",
    "Rule",
    "Plan",
    "draft_of",
    "detection_off",
    "number_problem",
]

CallKind = Literal["track", "identify", "page", "screen", "group", "alias"]
RuleKind = Literal["common", "track", "identify", "page", "screen", "group"]
CALL_KINDS: tuple[CallKind, ...] = ("track", "identify", "page", "screen", "group", "alias")
RULE_KINDS: tuple[RuleKind, ...] = ("common", "track", "identify", "page", "screen", "group")

#: Which top-level key of a call holds the payload a rule describes.
PAYLOAD_KEY: Mapping[str, str] = {
    "track": "properties",
    "page": "properties",
    "screen": "properties",
    "identify": "traits",
    "group": "traits",
}

DRAFT_URIS: Mapping[str, str] = {
    "draft-07": "http://json-schema.org/draft-07/schema#",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}

_URI_TO_DRAFT = {
    "http://json-schema.org/draft-07/schema#": "draft-07",
    "http://json-schema.org/draft-07/schema": "draft-07",
    "https://json-schema.org/draft/2020-12/schema": "2020-12",
    "https://json-schema.org/draft/2020-12/schema#": "2020-12",
}


def draft_of(schema: Any, default: str) -> str | None:
    """The draft a schema declares with ``$schema`` (``None`` if unsupported), else ``default``."""
    if isinstance(schema, dict) and "$schema" in schema:
        uri = schema["$schema"]
        return _URI_TO_DRAFT.get(uri) if isinstance(uri, str) else None
    return default


def detection_off(raw: Any) -> bool:
    """Whether a ``pii.detection`` value turns the PII detectors off.

    Detection is on for every plan, with or without a ``pii`` section; only an explicit
    ``detection: off`` (YAML reads it as ``false``; ``"off"`` in JSON) or
    ``detection: {enabled: false}`` turns it off.
    """
    if raw is False or raw == "off":
        return True
    return isinstance(raw, Mapping) and raw.get("enabled") is False


UnplannedEvents = Literal["allow", "block"]
Unplanned = Literal["allow", "omit", "block"]
OnViolation = Literal["allow", "omit", "block"]


@dataclass(frozen=True, slots=True)
class CallControls:
    """Schema controls for one call type, as Segment Protocols offers them."""

    unplanned_events: UnplannedEvents = "allow"
    unplanned_properties: Unplanned = "allow"
    violations: OnViolation = "allow"
    common_violations: OnViolation = "allow"


@dataclass(frozen=True, slots=True)
class Controls:
    """Schema controls per call type. Defaults forward everything, as Segment does."""

    track: CallControls = field(default_factory=CallControls)
    identify: CallControls = field(default_factory=CallControls)
    group: CallControls = field(default_factory=CallControls)
    page: CallControls = field(default_factory=CallControls)
    screen: CallControls = field(default_factory=CallControls)
    alias: CallControls = field(default_factory=CallControls)

    def for_kind(self, kind: str) -> CallControls:
        """The controls of a call type."""
        value: CallControls = getattr(self, kind)
        return value


def number_problem(value: Any) -> tuple[str, str] | None:
    """The first number in ``value`` that JSON has no literal for (NaN, an infinity).
    Returns (its JSON pointer within ``value``, what to do), or None. Integers of any size
    are JSON, and kept exactly (the digest, code generation and reports write them)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        ptr, node = stack.pop()
        if isinstance(node, Mapping):
            stack.extend((jp.join(ptr, str(k)), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list | tuple):
            stack.extend((jp.join(ptr, i), v) for i, v in reversed(list(enumerate(node))))
        elif isinstance(node, float) and not math.isfinite(node):
            return ptr, "NaN and infinite numbers are not JSON; write a finite number"
    return None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the plan: the schema of a track event (one version) or of another call.

    ``payload`` is the JSON Schema of the call's ``properties`` (track, page, screen) or
    ``traits`` (identify, group); ``call`` is an optional JSON Schema applied to the
    whole call, for constraints on ``context`` or envelope fields such as ``messageId``.
    ``extra`` keeps keys trackplan does not interpret (``x-*``, Segment's ``labels``).
    """

    kind: RuleKind
    name: str | None
    version: int
    description: str | None
    payload: Mapping[str, Any] | bool | None
    call: Mapping[str, Any] | None
    draft: str
    source: str
    pointer: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def payload_key(self) -> str | None:
        """``properties`` or ``traits``: where the payload sits in a call."""
        return PAYLOAD_KEY.get(self.kind)

    @property
    def label(self) -> str:
        """How errors name this rule: the event name, or the call kind."""
        if self.kind == "track":
            return str(self.name)
        return self.kind if self.name is None else f"{self.kind} {self.name}"

    def content(self) -> dict[str, Any]:
        """The rule without its location, for equality across files and formats."""
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "payload": self.payload,
            "call": self.call,
            "draft": self.draft,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """A loaded, validated tracking plan.

    Sections other backends interpret (``pii``, ``destinations``, ``consent``, ``lint``,
    ``policy``) are kept as their JSON values; each backend reads them through one
    function of its own, never from the files.
    """

    name: str
    version: str
    description: str | None
    draft: str
    rules: tuple[Rule, ...]
    definitions: Mapping[str, Any]
    controls: Controls
    pii: Mapping[str, Any] = field(default_factory=dict)
    destinations: tuple[Mapping[str, Any], ...] = ()
    consent: Mapping[str, Any] = field(default_factory=dict)
    lint: Mapping[str, Any] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    #: where each top-level section was read from: ``{"definitions": "plan.yaml#/definitions"}``
    sections: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        """Refuse numbers JSON has no literal for, however the plan was built (a plan made
        in Python skips the file checks): every backend reads the plan as JSON.

        Raises:
            PlanError: naming the file, the rule and the JSON pointer of each.
        """
        issues = self._number_issues()
        if issues:
            raise PlanError(issues)

    def _number_issues(self) -> list[PlanIssue]:
        try:  # the C encoder decides for nearly every plan: nothing to walk
            json.dumps(self.content(), allow_nan=False)
            return []
        except (TypeError, ValueError):
            pass
        issues: list[PlanIssue] = []
        for rule in self.rules:
            parts = [(rule.payload_key or "properties", rule.payload), ("call", rule.call),
                     *rule.extra.items()]  # fmt: skip
            for key, value in parts:
                found = number_problem(value)
                if found is not None:
                    where = jp.join(rule.pointer, key) + found[0]
                    issues.append(PlanIssue(rule.source, where, found[1], rule.label))
        sections: list[tuple[str, Any]] = [
            ("definitions", self.definitions), ("pii", self.pii),
            ("destinations", self.destinations), ("consent", self.consent),
            ("lint", self.lint), ("policy", self.policy), *self.extra.items(),
        ]  # fmt: skip
        for name, value in sections:
            found = number_problem(value)
            if found is not None:
                at = self.sections.get(name) or f"{self.source}#{jp.join('', name)}"
                file, _, base = at.partition("#")
                issues.append(PlanIssue(file, base + found[0], found[1]))
        return issues

    # -- lookups -----------------------------------------------------------------
    @property
    def events(self) -> tuple[Rule, ...]:
        """Track event rules, sorted by name then version."""
        return tuple(r for r in self.rules if r.kind == "track")

    @property
    def event_names(self) -> tuple[str, ...]:
        """Distinct track event names, sorted."""
        return tuple(sorted({str(r.name) for r in self.events}))

    def versions(self, name: str) -> tuple[Rule, ...]:
        """Every version of one track event, oldest first."""
        return tuple(r for r in self.events if r.name == name)

    def event(self, name: str, version: int | None = None) -> Rule:
        """One track event rule; the oldest version when ``version`` is None or unknown."""
        found = self.versions(name)
        if not found:
            raise KeyError(name)
        for rule in found:
            if rule.version == version:
                return rule
        return found[0]

    def rule(self, kind: RuleKind, name: str | None = None) -> Rule | None:
        """The rule of a non-track kind (``common``, ``identify``, ...), if the plan has one."""
        for r in self.rules:
            if r.kind == kind and r.name == name:
                return r
        return None

    @property
    def common(self) -> Rule | None:
        """The common rule applied to every call."""
        return self.rule("common")

    @property
    def detects_pii(self) -> bool:
        """True unless the plan turns PII detection off (``pii: {detection: off}``)."""
        pii = self.pii if isinstance(self.pii, Mapping) else {}
        return not detection_off(pii.get("detection"))

    # -- derived -----------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        """The whole plan without file locations: what "the same plan" means."""
        from dataclasses import asdict

        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "draft": self.draft,
            "rules": [r.content() for r in self.rules],
            "definitions": dict(self.definitions),
            "controls": asdict(self.controls),
            "pii": dict(self.pii),
            "destinations": [dict(d) for d in self.destinations],
            "consent": dict(self.consent),
            "lint": dict(self.lint),
            "policy": dict(self.policy),
            "extra": dict(self.extra),
        }

    def digest(self) -> str:
        """A stable SHA-256 of :meth:`content`, for generated-code headers and caches."""
        content = self.content()
        try:
            blob = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # integers beyond 64 bits: the standard encoder writes them exactly
            blob = json.dumps(
                content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
            ).encode()
        return hashlib.sha256(blob).hexdigest()

