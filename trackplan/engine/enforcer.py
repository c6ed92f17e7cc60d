"""Compile a plan into an :class:`Enforcer` and enforce it on events.

The per-event path is one validator call for events that pass (envelope, common rule and
event rule are one compiled ``allOf``); the detailed, all-errors explanation is built only
for events that fail. The input event is never mutated: when anything changes, the
result holds a copy, with what happened recorded in ``context.protocols`` as Segment does.

>>> enforcer = load_plan("plans/ecommerce").compile()           # doctest: +SKIP
>>> result = enforcer.enforce({"type": "track", "event": "Signed Up", ...})  # doctest: +SKIP
>>> result.allowed, result.violations                         # doctest: +SKIP
"""

from __future__ import annotations

import abc
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import jsonschema_rs
import orjson

from trackplan import pointer as jp
from trackplan.errors import CompileError
from trackplan.plan.jsonutil import MAX_DEPTH, depth_exceeds
from trackplan.plan.model import CallControls, Plan, Rule, RuleKind
from trackplan.schema.envelope import envelope_message, envelope_schema
from trackplan.schema.flatten import flatten
from trackplan.schema.validator import make_validator
from trackplan.schema.violations import (
    ADDITIONAL_PROPERTIES,
    ENVELOPE,
    OTHER,
    UNPLANNED_EVENT,
    Violation,
    from_rs_error,
)

__all__ = ["Enforcer", "Result", "compile_plan"]

_ENVELOPE, _COMMON, _RULE = 0, 1, 2


class Result(metaclass=abc.ABCMeta):  # noqa: B024 - ABCMeta only to register _Ok
    """What :meth:`Enforcer.enforce` decided for one event.

    Attributes:
        allowed: False when the event is blocked.
        event: the event as it should be forwarded (the input object itself when nothing
            changed; a copy otherwise). Kept for blocked events too, so they can be sent
            elsewhere for review.
        violations: every violation found, in a stable order.
        omitted: pointers of fields omitted as unplanned.
        omitted_on_violation: pointers of fields omitted because they violated the plan.
    """

    __slots__ = ("allowed", "event", "violations", "omitted", "omitted_on_violation", "rule")

    def __init__(
        self,
        allowed: bool,
        event: Any,
        violations: tuple[Violation, ...] = (),
        omitted: tuple[str, ...] = (),
        omitted_on_violation: tuple[str, ...] = (),
        rule: Rule | None = None,
    ) -> None:
        self.allowed = allowed
        self.event = event
        self.violations = violations
        self.omitted = omitted
        self.omitted_on_violation = omitted_on_violation
        self.rule = rule

    @property
    def decision(self) -> str:
        """``"allowed"`` or ``"blocked"``."""
        return "allowed" if self.allowed else "blocked"

    @property
    def forwarded(self) -> Any:
        """The event to forward, or None when blocked."""
        return self.event if self.allowed else None

    def __repr__(self) -> str:
        return f"Result({self.decision}, violations={list(self.violations)!r})"


class _Ok(tuple):  # type: ignore[type-arg]
    """An allowed event without violations: the fast path's result, ``(event, rule)``
    (the event as forwarded: the input itself, or its copy with PII actions applied).

    A tuple built by C is about twice as cheap as a slotted object filled in Python, and the
    fast path builds one per event; it is a :class:`Result` (registered), with the same
    attributes, and compares and hashes by identity like one.
    """

    __slots__ = ()
    allowed = True
    decision = "allowed"
    violations: tuple[Violation, ...] = ()
    omitted: tuple[str, ...] = ()
    omitted_on_violation: tuple[str, ...] = ()
    event = property(operator.itemgetter(0), doc="The event as forwarded.")
    forwarded = event
    rule = property(operator.itemgetter(1), doc="The rule that allowed it.")
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "Result(allowed, violations=[])"


Result.register(_Ok)


def listed_properties(
    payload: Any, where: str
) -> tuple[frozenset[str], tuple[re.Pattern[str], ...], bool]:
    """What a payload schema lists: the keys of its ``properties``, its
    ``patternProperties`` regexes, and whether any other key is unplanned (False for a
    payload of ``true`` or with ``additionalProperties`` a schema: every key is planned).

    Raises:
        CompileError: a ``patternProperties`` regex Python cannot use (``where`` names
            the rule).
    """
    if payload is True:
        return frozenset(), (), False
    if not isinstance(payload, Mapping):
        return frozenset(), (), True
    props = payload.get("properties")
    pats = payload.get("patternProperties")
    try:
        patterns = tuple(re.compile(p) for p in pats) if isinstance(pats, Mapping) else ()
    except re.error as exc:
        raise CompileError(
            f"{where}: patternProperties regex Python cannot use: {exc}"
        ) from None
    extra = payload.get("additionalProperties")
    planned = frozenset(props) if isinstance(props, Mapping) else frozenset()
    return planned, patterns, extra is None or isinstance(extra, bool)


class _Compiled:
    """One compiled rule: its validator and what the controls need to know about it."""

    __slots__ = (
        "rule",
        "kind",
        "validator",
        "fast",
        "is_valid_fast",
        "payload_key",
        "planned",
        "patterns",
        "controls",
        "locations",
        "check_unplanned",
        "_transform",
        "transform_valid",
        "schema",
    )

    def __init__(
        self, plan: Plan, kind: str, rule: Rule | None, controls: CallControls
    ) -> None:
        self.rule = rule
        self.kind = kind
        from trackplan.plan.assemble import call_schema
        from trackplan.plan.model import PAYLOAD_KEY

        self.payload_key = PAYLOAD_KEY.get(kind)
        envelope = envelope_schema(kind)
        if rule is None:
            # no rule for this call type: envelope and common rule only
            placeholder_kind = cast(RuleKind, kind if kind != "alias" else "track")
            placeholder = Rule(placeholder_kind, None, 1, None, None, None, plan.draft, "", "")
            schema = call_schema(plan, placeholder, extra=[envelope])
        else:
            schema = call_schema(plan, rule, extra=[envelope])
        if plan.common is None:
            # keep branch indexes stable: envelope, common, rule
            schema["allOf"].insert(_COMMON, True)
        try:
            self.validator = make_validator(schema)
        except (ValueError, jsonschema_rs.ValidationError) as exc:
            where = rule.source if rule else plan.source
            label = rule.label if rule else kind
            raise CompileError(f"{where} [{label}]: cannot compile schema: {exc}") from None
        self.fast = self.validator
        #: the assembled whole-call schema (envelope, common rule, rule) the validators check
        self.schema = schema
        self.controls = controls
        payload = rule.payload if rule is not None else None
        where = f"{rule.source if rule else plan.source} [{rule.label if rule else kind}]"
        self.planned, self.patterns, listed_only = listed_properties(payload, where)
        self.check_unplanned = controls.unplanned_properties != "allow" and listed_only
        fast_schema = self.fast_schema(schema)
        if fast_schema is not schema:
            self.fast = make_validator(fast_schema)
        #: the fast validator's bound is_valid: one attribute lookup on the hot path
        self.is_valid_fast = self.fast.is_valid
        common = plan.common
        self.locations = (
            "",
            f"{common.source}#{common.pointer}" if common else "",
            f"{rule.source}#{rule.pointer}" if rule else "",
            plan.sections.get("definitions", f"{plan.source}#/definitions"),
        )
        self._transform: Callable[[dict[str, Any], list[Violation]], Any] | None = None
        #: the transform for events the fast validator accepted (its ``valid`` variant)
        self.transform_valid: Callable[[dict[str, Any], list[Violation]], Any] | None = None

    def fast_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema the fast validator checks, made from an assembled call ``schema``:
        closed to unplanned properties where the controls omit or block them (one call
        decides the common case), and flattened (:mod:`trackplan.schema.flatten`)."""
        if self.check_unplanned and self.payload_key is not None:
            strict: dict[str, Any] = {
                "properties": {k: True for k in sorted(self.planned)},
                "additionalProperties": False,
            }
            if self.patterns:
                strict["patternProperties"] = {p.pattern: True for p in self.patterns}
            closed = dict(schema)
            inlined = _close_payload(schema["allOf"][_RULE], self.payload_key)
            if inlined is not None:
                # the payload's own properties and patternProperties say what is planned:
                # closing it in place costs nothing over the plan's schema
                closed["allOf"] = [*schema["allOf"][:_RULE], inlined,
                                   *schema["allOf"][_RULE + 1:]]
            else:
                closed["allOf"] = [
                    *schema["allOf"],
                    {"properties": {self.payload_key: strict}},
                ]
            return flatten(closed)
        return flatten(schema)

    @property
    def transform(self) -> Callable[[dict[str, Any], list[Violation]], Any] | None:
        """Set by later stages (PII actions): ``transform(event, violations)`` returns the
        event to forward (the same object when nothing changed, else a copy; never
        mutating its argument), or None to block; it appends its own violations. Its
        ``valid`` attribute, when it has one, is a variant for events known to be valid."""
        return self._transform

    @transform.setter
    def transform(self, fn: Callable[[dict[str, Any], list[Violation]], Any] | None) -> None:
        self._transform = fn
        self.transform_valid = None if fn is None else getattr(fn, "valid", fn)

    def unplanned(self, payload: dict[str, Any]) -> list[str]:
        extra = payload.keys() - self.planned
        if not extra:
            return []
        if self.patterns:
            extra = {k for k in extra if not any(p.search(k) for p in self.patterns)}
        return sorted(extra)


#: Keywords beside which ``additionalProperties: false`` would not mean "only the listed
#: properties" (draft-07 ignores siblings of $ref; applicators see other keys).
_NOT_CLOSABLE = frozenset({
    "additionalProperties", "unevaluatedProperties", "$ref", "$dynamicRef", "$recursiveRef",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependencies",
    "dependentSchemas",
})


def _close_payload(branch: Any, key: str) -> dict[str, Any] | None:
    """The rule branch with its payload schema closed to unplanned keys, when that is exact."""
    if type(branch) is not dict:
        return None
    props = branch.get("properties")
    if type(props) is not dict:
        return None
    payload = props.get(key)
    if type(payload) is not dict or _NOT_CLOSABLE & payload.keys():
        return None
    return {**branch, "properties": {**props, key: {**payload, "additionalProperties": False}}}


def _schema_location(compiled: _Compiled, schema_path: list[Any]) -> tuple[int, str]:
    """Which branch failed and ``file#pointer`` into the plan file for it."""
    if schema_path and schema_path[0] in ("definitions", "$defs"):
        # reached through $ref: the plan's shared definitions (counted as the rule's)
        return _RULE, compiled.locations[3] + jp.from_parts(schema_path[1:])
    if len(schema_path) < 2 or schema_path[0] != "allOf":
        return _RULE, compiled.locations[_RULE]
    branch = int(schema_path[1])
    rest = schema_path[2:]
    base = compiled.locations[branch] if branch < 3 else ""
    if branch == _ENVELOPE:
        return _ENVELOPE, "envelope#" + jp.from_parts(rest)
    rule = compiled.rule if branch == _RULE else None
    key = compiled.payload_key
    if (
        rule is not None
        and key is not None
        and len(rest) >= 2
        and rest[0] == "properties"
        and rest[1] == key
    ):
        return branch, base + jp.join("", key) + jp.from_parts(rest[2:])
    return branch, base + "/call" + jp.from_parts(rest)


def _blocked(event: Any, vtype: str, pointer: str, message: str) -> Result:
    return Result(False, event, (Violation(vtype, pointer, message),))


class Enforcer:
    """A compiled plan. Build it with :meth:`Plan.compile` or :func:`compile_plan`."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        controls = plan.controls
        self._track: dict[str, tuple[_Compiled, ...]] = {}
        for name in plan.event_names:
            self._track[name] = tuple(
                _Compiled(plan, "track", rule, controls.track) for rule in plan.versions(name)
            )
        self._kinds: dict[str, _Compiled] = {}
        for kind in ("identify", "group", "page", "screen", "alias"):
            rule = plan.rule(kind) if kind != "alias" else None  # type: ignore[arg-type]
            self._kinds[kind] = _Compiled(plan, kind, rule, controls.for_kind(kind))
        self._unplanned_track = _Compiled(plan, "track", None, controls.track)
        from trackplan.privacy.consent import reserved_rules

        reserved = reserved_rules(plan)  # Segment's consent event: accepted in every plan
        name = str(reserved[0][0].name)
        compiled_reserved = tuple(_Compiled(plan, "track", r, c) for r, c in reserved)
        self._reserved = {} if name in self._track else {name: compiled_reserved}
        if name in self._track:
            self._track[name] = compiled_reserved
        #: planned track events with one version: the hot path's only lookup
        self._single = {n: v[0] for n, v in self._track.items() if len(v) == 1}
        self._multi = {n: v for n, v in self._track.items() if len(v) > 1}
        #: page, screen, alias, identify, group: their compiled rule, one lookup away
        self._plain_kinds = dict(self._kinds)
        self._block_unplanned = controls.track.unplanned_events == "block"
        self.hooks: list[Callable[[Enforcer], None]] = []
        from trackplan.pii.engine import install

        #: the plan's PII policy; its actions are each compiled rule's ``transform``
        self.pii = install(self)
        #: review copies of blocked values no rule describes: scanned everywhere
        self._review_scrubber: Any = None

    # -- public API ------------------------------------------------------------------
    def route(self, event: Any) -> Any:
        """Enforce, then route to the plan's destinations (:mod:`trackplan.privacy.consent`)."""
        from trackplan.privacy.consent import route

        return route(self, event)

    def with_suppression(self, suppression: Any) -> Enforcer:
        """A copy that blocks suppressed subjects (:mod:`trackplan.privacy.suppression`)."""
        from trackplan.privacy.suppression import suppressed

        return suppressed(self, suppression)

    def compiled_rules(self) -> Iterator[_Compiled]:
        """Every compiled rule (track versions, then other call types)."""
        for versions in self._track.values():
            yield from versions
        yield from self._kinds.values()
        yield self._unplanned_track

    def enforce(self, event: Any) -> Result:
        """Enforce the plan on one event (a dict as parsed from JSON). Never raises."""
        # The common case costs two dict lookups and one validator call; everything else
        # (versions, unplanned events, odd shapes) goes through _dispatch.
        if type(event) is not dict:
            return self._dispatch(event)
        kind = event.get("type")
        try:
            if kind == "track":
                name = event.get("event")
                compiled = self._single.get(name)  # type: ignore[arg-type]
                if compiled is None:
                    versions = self._multi.get(name)  # type: ignore[arg-type]
                    if versions is None:
                        return self._dispatch(event)
                    compiled = _select_version(versions, event)
            else:
                compiled = self._plain_kinds.get(kind)  # type: ignore[arg-type]
                if compiled is None or (compiled.payload_key == "traits"
                                        and "traits" not in event):
                    return self._dispatch(event)
        except TypeError:  # unhashable event name or type
            return self._dispatch(event)
        try:
            valid = compiled.is_valid_fast(event)
        except (ValueError, TypeError, OverflowError):
            valid = False  # not plain JSON (or too deep): the slow path explains it
        if valid:
            transform = compiled.transform_valid
            if transform is None:
                return _Ok((event, compiled.rule))  # type: ignore[return-value]
            violations: list[Violation] = []
            out = transform(event, violations)
            if out is not None and not violations:
                return _Ok((out, compiled.rule))  # type: ignore[return-value]
            return self._transformed(compiled, event, out, violations)
        return self._explain(compiled, event)

    def _dispatch(self, event: Any) -> Result:
        """Everything but a single-version planned track event."""
        if type(event) is not dict:
            return _blocked(self._review(event), ENVELOPE, "", "an event must be a JSON object")
        kind = event.get("type")
        if kind == "track" or (kind is None and "event" in event):
            name = event.get("event")
            versions = (
                (self._track.get(name) or self._reserved.get(name)) if type(name) is str else None
            )
            if versions is None:
                compiled = self._unplanned_track
                if self._block_unplanned and type(name) is str and name:
                    scrub = getattr(compiled.transform, "scrub", None)  # PII out of the copy
                    return _blocked(
                        scrub(event) if scrub else event,
                        UNPLANNED_EVENT, "/event", "event is not in the tracking plan",
                    )
            elif len(versions) == 1:
                compiled = versions[0]
            else:
                compiled = _select_version(versions, event)
        else:
            found = self._kinds.get(kind) if type(kind) is str else None
            if found is None:
                return _blocked(
                    self._review(event),
                    ENVELOPE,
                    "/type",
                    "type must be one of track, identify, page, screen, group, alias",
                )
            compiled = found
        if compiled.payload_key != "traits" or "traits" in event or not _has_context_traits(event):
            try:
                valid = compiled.fast.is_valid(event)
            except (ValueError, TypeError, OverflowError):
                valid = False  # not plain JSON (or too deep): the slow path explains it
            if valid:
                if compiled.transform is None:
                    return _Ok((event, compiled.rule))  # type: ignore[return-value]
                return self._transform_valid(compiled, event)
        return self._explain(compiled, event)

    def _transform_valid(self, compiled: _Compiled, event: dict[str, Any]) -> Result:
        """A valid event whose rule has a transform (PII actions): apply it, no re-validation."""
        transform = compiled.transform_valid
        assert transform is not None
        violations: list[Violation] = []
        out = transform(event, violations)
        if out is not None and not violations:
            return _Ok((out, compiled.rule))  # type: ignore[return-value]
        return self._transformed(compiled, event, out, violations)

    def _transformed(
        self,
        compiled: _Compiled,
        event: dict[str, Any],
        out: Any,
        violations: list[Violation],
    ) -> Result:
        """The result of a valid event that its transform blocked or found PII in."""
        walk = compiled.transform
        if walk is not None and walk is not compiled.transform_valid:
            # something to report: the general walk gives it in the event's own order
            violations = []
            out = walk(event, violations)
        if out is None:
            scrub = getattr(compiled.transform, "scrub", None)  # PII out of the review copy
            scrubbed = scrub(event) if scrub is not None else dict(event)
            return Result(False, _stamp(scrubbed, violations, [], []), tuple(violations),
                          rule=compiled.rule)
        out = _stamp(out if out is not event else dict(event), violations, [], [])
        return Result(True, out, tuple(violations), (), (), compiled.rule)

    def enforce_bytes(self, line: bytes) -> Result:
        """Enforce the plan on one NDJSON line; the same Result as ``enforce(orjson.loads(line))``.

        Valid events of rules without PII actions are decided while parsing (see
        ``trackplan.engine.typed``); everything else is parsed and enforced as a dict.
        Raises ``orjson.JSONDecodeError`` where ``orjson.loads`` does (except numbers beyond
        the double range in fields the plan leaves unconstrained: valid JSON, accepted).
        """
        from trackplan.engine.typed import TypedPath

        return TypedPath.of(self).enforce(line)

    def enforce_many(self, events: Iterable[Any]) -> Iterator[Result]:
        """Enforce the plan on many events, lazily, in order."""
        enforce = self.enforce
        for event in events:
            yield enforce(event)

    # -- slow path -------------------------------------------------------------------
    def _review(self, value: Any) -> Any:
        """The copy of a blocked value that no rule describes kept for review: with PII
        detection on, every string in it scanned and handled as the plan says (None when
        it cannot be walked); the value itself when the plan detects nothing."""
        if not (self.pii.detection.enabled and (self.pii.detection.values
                                                or self.pii.detection.key_names)):
            return value
        if self._review_scrubber is None:
            from trackplan.pii.engine import Transformer

            self._review_scrubber = Transformer.review_scrubber(self.pii)
        return self._review_scrubber.scrub_any(value)

    def _explain(self, compiled: _Compiled, event: dict[str, Any]) -> Result:
        if _too_deep(event):
            return _blocked(self._review(event), OTHER, "",
                            f"event nests deeper than {MAX_DEPTH} levels")
        controls = compiled.controls
        key = compiled.payload_key
        violations: list[Violation] = []
        omitted: list[str] = []
        omitted_on_violation: list[str] = []
        out = dict(event)
        in_context = key == "traits" and "traits" not in event and _has_context_traits(event)
        payload = event["context"]["traits"] if in_context else event.get(key or "")
        unplanned: list[str] = []
        if compiled.check_unplanned and type(payload) is dict and payload:
            unplanned = compiled.unplanned(payload)
        payload_base = "/context/traits" if in_context else jp.join("", key or "")
        if unplanned:
            if controls.unplanned_properties == "block":
                for name in unplanned:
                    violations.append(
                        Violation(
                            ADDITIONAL_PROPERTIES,
                            jp.join(payload_base, name),
                            "property is not in the tracking plan",
                            compiled.locations[_RULE],
                        )
                    )
                if compiled.transform is not None:  # the review copy holds no PII either
                    out = compiled.transform.scrub(out)  # type: ignore[attr-defined]
                return Result(False, _stamp(out, violations, [], []), tuple(violations),
                              rule=compiled.rule)
            _omit(out, in_context, key, unplanned)
            omitted = [jp.join(payload_base, n) for n in unplanned]
        validated = out
        if in_context:
            validated = dict(out)
            validated["traits"] = out["context"]["traits"]
        blocked = False
        offending: set[str] = set()
        try:
            errors = list(compiled.validator.iter_errors(validated))
        except (ValueError, TypeError, OverflowError) as exc:
            kind = type(exc).__name__
            return _blocked(self._review(event), OTHER, "", f"event is not plain JSON ({kind})")
        for err in errors:
            path = list(err.schema_path)
            branch, location = _schema_location(compiled, path)
            ipath = list(err.instance_path)
            if in_context and ipath and ipath[0] == "traits":
                ipath = ["context", "traits", *ipath[1:]]
            if branch == _ENVELOPE:
                v = from_rs_error(err, schema_location="", instance_path=ipath, vtype=ENVELOPE)
                v.message = envelope_message(path[2:], v.message)
                v.schema_location = location
                violations.append(v)
                blocked = True
                continue
            v = from_rs_error(err, schema_location=location, instance_path=ipath)
            violations.append(v)
            action = controls.common_violations if branch == _COMMON else controls.violations
            if action == "block":
                blocked = True
            elif action == "omit" and key is not None:
                top = _payload_child(ipath, in_context, key)
                if top is not None:
                    offending.add(top)
        if offending and type(payload) is dict:
            offending &= payload.keys()  # a missing required property has nothing to omit
        if offending and not blocked:
            names = sorted(offending)
            _omit(out, in_context, key, names)
            omitted_on_violation = [jp.join(payload_base, n) for n in names]
        violations.sort(key=lambda v: (v.pointer, v.type, v.message))
        unchanged = True
        if compiled.transform is not None:
            changed = None if blocked else self._transform_explained(compiled, out, violations)
            if changed is None:
                blocked = True
                out = compiled.transform.scrub(out)  # type: ignore[attr-defined]
                unchanged = False
            else:
                unchanged = changed is out
                out = changed
        if violations or omitted or omitted_on_violation:
            out = _stamp(out, violations, omitted, omitted_on_violation)
        elif unchanged:
            out = event  # nothing changed (traits in context): forward the input itself
        return Result(
            not blocked,
            out,
            tuple(violations),
            tuple(omitted),
            tuple(omitted_on_violation),
            compiled.rule,
        )

    @staticmethod
    def _transform_explained(
        compiled: _Compiled, out: dict[str, Any], violations: list[Violation]
    ) -> Any:
        """The transform of an explained event: the specialised one when what is left after
        omissions is valid and it finds nothing to report, else the general walk."""
        walk = compiled.transform
        assert walk is not None
        fast = compiled.transform_valid
        if fast is not walk and fast is not None:
            try:
                valid = compiled.fast.is_valid(out)
            except (ValueError, TypeError, OverflowError):
                valid = False
            if valid:
                found: list[Violation] = []
                changed = fast(out, found)
                if changed is not None and not found:
                    return changed
        return walk(out, violations)


def _too_deep(event: dict[str, Any]) -> bool:
    """Deeper than MAX_DEPTH? orjson's encoder answers in C for anything up to its own limit
    (255 levels, below ours); only what it refuses pays for the exact Python walk."""
    try:
        orjson.dumps(event)
    except (TypeError, orjson.JSONEncodeError):
        return depth_exceeds(event)
    return False


def _has_context_traits(event: dict[str, Any]) -> bool:
    """Identify traits sent under ``context.traits`` (RudderStack and some SDKs)."""
    ctx = event.get("context")
    return type(ctx) is dict and type(ctx.get("traits")) is dict


def _payload_child(ipath: list[Any], in_context: bool, key: str) -> str | None:
    if in_context:
        if len(ipath) >= 3 and ipath[0] == "context" and ipath[1] == "traits":
            return str(ipath[2])
        return None
    if len(ipath) >= 2 and ipath[0] == key:
        return str(ipath[1])
    return None


def _omit(out: dict[str, Any], in_context: bool, key: str | None, names: list[str]) -> None:
    """Remove payload keys from ``out`` (copying what it changes, never the input)."""
    if in_context:
        ctx = dict(out["context"])
        traits = dict(ctx["traits"])
        for n in names:
            traits.pop(n, None)
        ctx["traits"] = traits
        out["context"] = ctx
    elif key is not None and type(out.get(key)) is dict:
        payload = dict(out[key])
        for n in names:
            payload.pop(n, None)
        out[key] = payload


def _stamp(
    out: dict[str, Any],
    violations: list[Violation],
    omitted: list[str],
    omitted_on_violation: list[str],
) -> dict[str, Any]:
    """Record what happened in ``context.protocols``, the way Segment does."""
    ctx = out.get("context")
    ctx = dict(ctx) if type(ctx) is dict else {}
    protocols = ctx.get("protocols")
    protocols = dict(protocols) if type(protocols) is dict else {}
    if omitted:
        protocols["omitted"] = [jp.dotted(jp.parse(p)) for p in omitted]
    if omitted_on_violation:
        protocols["omitted_on_violation"] = [jp.dotted(jp.parse(p)) for p in omitted_on_violation]
    if violations:
        protocols["violations"] = [v.to_dict() for v in violations]
    ctx["protocols"] = protocols
    out["context"] = ctx
    return out


def _select_version(versions: tuple[_Compiled, ...], event: dict[str, Any]) -> _Compiled:
    """The version ``context.protocols.event_version`` names; the oldest otherwise."""
    ctx = event.get("context")
    if type(ctx) is dict:
        protocols = ctx.get("protocols")
        if type(protocols) is dict:
            wanted = protocols.get("event_version")
            if type(wanted) is int:
                for compiled in versions:
                    if compiled.rule is not None and compiled.rule.version == wanted:
                        return compiled
    return versions[0]


def compile_plan(plan: Plan) -> Enforcer:
    """Compile ``plan`` into an :class:`Enforcer` (raises :class:`CompileError`)."""
    return Enforcer(plan)
