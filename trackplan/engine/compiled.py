"""A plan rule compiled for enforcement, and what enforcing it returns.

:class:`CompiledRule` holds one rule's whole-call validator (envelope, common rule and the
rule as one ``allOf``), its fast variant (flattened, closed to unplanned properties where
the controls say so), what the controls need to know about the payload, and the PII
``transform`` the enforcer installs. :class:`Result` is what enforcing an event decided;
:class:`Allowed` is the cheap result of the fast path. :func:`schema_location` turns a
validator's schema path into ``file#pointer`` into the plan.

The enforcer (:mod:`trackplan.engine.enforcer`) composes these; the typed NDJSON path
(:mod:`trackplan.engine.typed`) reads them without importing the enforcer.
"""

from __future__ import annotations

import abc
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

import jsonschema_rs

from trackplan import pointer as jp
from trackplan.errors import CompileError
from trackplan.plan.assemble import call_schema
from trackplan.plan.model import PAYLOAD_KEY, CallControls, Plan, Rule, RuleKind
from trackplan.schema.envelope import envelope_schema
from trackplan.schema.flatten import flatten
from trackplan.schema.relax import shape_of
from trackplan.schema.validator import make_validator
from trackplan.schema.violations import Violation

__all__ = [
    "COMMON_BRANCH",
    "ENVELOPE_BRANCH",
    "RULE_BRANCH",
    "Allowed",
    "CompiledRule",
    "Result",
    "listed_properties",
    "schema_location",
    "stamp",
]

#: Indexes of the whole-call schema's ``allOf`` branches.
ENVELOPE_BRANCH, COMMON_BRANCH, RULE_BRANCH = 0, 1, 2


class Result(metaclass=abc.ABCMeta):  # noqa: B024 - ABCMeta only to register Allowed
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


class Allowed(tuple):  # type: ignore[type-arg]
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


Result.register(Allowed)


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


class CompiledRule:
    """One compiled rule: its validators and what the controls need to know about it.

    The whole-call schema and its two validators are built at the rule's first use
    (:meth:`compile`): a run that sees a few of a plan's events pays for those rules only.
    What can refuse a rule cheaply (its ``patternProperties`` regexes) is checked here, up
    front; :meth:`Enforcer.compile_all <trackplan.engine.enforcer.Enforcer.compile_all>`
    compiles every rule now, so that a schema the engine cannot compile is reported before
    the first event.
    """

    __slots__ = (
        "rule",
        "kind",
        "_plan",
        "_schema",
        "_validator",
        "_fast",
        "is_valid_fast",
        "payload_key",
        "planned",
        "patterns",
        "controls",
        "locations",
        "check_unplanned",
        "_transform",
        "transform_valid",
        "_shape",
    )

    def __init__(
        self, plan: Plan, kind: str, rule: Rule | None, controls: CallControls
    ) -> None:
        self.rule = rule
        self.kind = kind
        self.payload_key = PAYLOAD_KEY.get(kind)
        self._plan = plan
        self._schema: dict[str, Any] | None = None
        self._validator: Any = None
        self._fast: Any = None
        #: the fast validator's bound is_valid: one attribute lookup on the hot path (until
        #: the first call, a stand-in that compiles the rule and puts the real one here)
        self.is_valid_fast: Callable[[Any], bool] = self._compile_then_is_valid
        self.controls = controls
        payload = rule.payload if rule is not None else None
        where = f"{rule.source if rule else plan.source} [{rule.label if rule else kind}]"
        self.planned, self.patterns, listed_only = listed_properties(payload, where)
        self.check_unplanned = controls.unplanned_properties != "allow" and listed_only
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
        self._shape: Callable[[Any], bool] | None = None

    @property
    def schema(self) -> dict[str, Any]:
        """The assembled whole-call schema (envelope, common rule, rule) the validators
        check. Read-only: it is the rule's own; copy it before handing it to anything that
        may change it. The validators are compiled before it is handed out, so what a
        caller does to it cannot change what this rule enforces."""
        self.compile()
        return self._assembled()

    def _assembled(self) -> dict[str, Any]:
        if self._schema is None:
            plan, rule, kind = self._plan, self.rule, self.kind
            envelope = envelope_schema(kind)
            if rule is None:
                # no rule for this call type: envelope and common rule only
                placeholder_kind = cast(RuleKind, kind if kind != "alias" else "track")
                placeholder = Rule(placeholder_kind, None, 1, None, None, None, plan.draft, "",
                                   "")  # fmt: skip
                schema = call_schema(plan, placeholder, extra=[envelope])
            else:
                schema = call_schema(plan, rule, extra=[envelope])
            if plan.common is None:
                # keep branch indexes stable: envelope, common, rule
                schema["allOf"].insert(COMMON_BRANCH, True)
            self._schema = schema
        return self._schema

    @property
    def validator(self) -> Any:
        """The validator of :attr:`schema`, which explains a refused event."""
        if self._validator is None:
            self.compile()
        return self._validator

    @property
    def fast(self) -> Any:
        """The fast validator: :meth:`fast_schema` of :attr:`schema`."""
        if self._fast is None:
            self.compile()
        return self._fast

    def compile(self) -> CompiledRule:
        """Compile both validators now (done at first use otherwise). Returns the rule.

        Raises:
            CompileError: a schema jsonschema-rs cannot compile.
        """
        if self._fast is not None:
            return self
        schema = self._assembled()
        rule = self.rule
        try:
            # explains failing events: errors masked (classified by kind, never by message)
            validator = make_validator(schema, mask="<value>")
            fast_schema = self.fast_schema(schema)
            fast = validator if fast_schema is schema else make_validator(fast_schema)
        except (ValueError, jsonschema_rs.ValidationError) as exc:
            where = rule.source if rule else self._plan.source
            label = rule.label if rule else self.kind
            raise CompileError(f"{where} [{label}]: cannot compile schema: {exc}") from None
        self._validator = validator
        self._fast = fast
        self.is_valid_fast = fast.is_valid
        return self

    def shape_is_valid(self, event: Any) -> bool:
        """Whether ``event`` has the shape of a valid event (:mod:`trackplan.schema.relax`:
        valid but for missing required properties, patterns and bounds), which is what the
        valid-event transform relies on. Compiled at first use."""
        check = self._shape
        if check is None:
            fast_schema = self.fast_schema(self._assembled())
            shape = shape_of(fast_schema)
            check = self.fast.is_valid if shape == fast_schema else make_validator(shape).is_valid
            self._shape = check
        try:
            return check(event)
        except (ValueError, TypeError, OverflowError):
            return False

    def _compile_then_is_valid(self, event: Any) -> bool:
        is_valid: Callable[[Any], bool] = self.compile().is_valid_fast
        return is_valid(event)

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
            inlined = _close_payload(schema["allOf"][RULE_BRANCH], self.payload_key)
            if inlined is not None:
                # the payload's own properties and patternProperties say what is planned:
                # closing it in place costs nothing over the plan's schema
                closed["allOf"] = [*schema["allOf"][:RULE_BRANCH], inlined,
                                   *schema["allOf"][RULE_BRANCH + 1:]]
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

    def enforce_valid(self, event: dict[str, Any]) -> Result:
        """The result of an event this rule's fast validator accepted: its transform (PII
        actions) applied, no re-validation."""
        transform = self.transform_valid
        if transform is None:
            return Allowed((event, self.rule))  # type: ignore[return-value]
        violations: list[Violation] = []
        out = transform(event, violations)
        if out is not None and not violations:
            return Allowed((out, self.rule))  # type: ignore[return-value]
        return self.transformed(event, out, violations)

    def transformed(
        self,
        event: dict[str, Any],
        out: Any,
        violations: list[Violation],
    ) -> Result:
        """The result of a valid event that its transform blocked or found PII in."""
        walk = self.transform
        if walk is not None and walk is not self.transform_valid:
            # something to report: the general walk gives it in the event's own order
            violations = []
            out = walk(event, violations)
        if out is None:
            scrub = getattr(self.transform, "scrub", None)  # PII out of the review copy
            scrubbed = scrub(event) if scrub is not None else dict(event)
            return Result(False, stamp(scrubbed, violations, [], []), tuple(violations),
                          rule=self.rule)
        out = stamp(out if out is not event else dict(event), violations, [], [])
        return Result(True, out, tuple(violations), (), (), self.rule)

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


def schema_location(compiled: CompiledRule, schema_path: list[Any]) -> tuple[int, str]:
    """Which branch failed and ``file#pointer`` into the plan file for it."""
    if schema_path and schema_path[0] in ("definitions", "$defs"):
        # reached through $ref: the plan's shared definitions (counted as the rule's)
        return RULE_BRANCH, compiled.locations[3] + jp.from_parts(schema_path[1:])
    if len(schema_path) < 2 or schema_path[0] != "allOf":
        return RULE_BRANCH, compiled.locations[RULE_BRANCH]
    branch = int(schema_path[1])
    rest = schema_path[2:]
    base = compiled.locations[branch] if branch < 3 else ""
    if branch == ENVELOPE_BRANCH:
        return ENVELOPE_BRANCH, "envelope#" + jp.from_parts(rest)
    rule = compiled.rule if branch == RULE_BRANCH else None
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


def stamp(
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
