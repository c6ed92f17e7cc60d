"""Compile a plan into an :class:`Enforcer` and enforce it on events.

The per-event path is one validator call for events that pass (envelope, common rule and
event rule are one compiled ``allOf``); the detailed, all-errors explanation is built only
for events that fail. The input event is never mutated: when anything changes, the
result holds a copy, with what happened recorded in ``context.protocols`` as Segment does.

>>> enforcer = compile_plan(load_plan("plans/ecommerce"))         # doctest: +SKIP
>>> result = enforcer.enforce({"type": "track", "event": "Signed Up", ...})  # doctest: +SKIP
>>> result.allowed, result.violations                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from trackplan import pointer as jp
from trackplan.engine.compiled import (
    COMMON_BRANCH,
    ENVELOPE_BRANCH,
    RULE_BRANCH,
    Allowed,
    CompiledRule,
    Result,
    schema_location,
    stamp,
)
from trackplan.engine.typed import TypedPath
from trackplan.pii.engine import Transformer
from trackplan.pii.fastpath import build
from trackplan.pii.national import enable_for
from trackplan.pii.policy import PiiPolicy
from trackplan.plan.jsonutil import MAX_DEPTH, depth_exceeds
from trackplan.plan.model import Plan
from trackplan.plan.reserved import reserved_rules
from trackplan.schema.envelope import envelope_message
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



_WHERE = 1 << 16  # schema locations remembered


def _blocked(event: Any, vtype: str, pointer: str, message: str) -> Result:
    return Result(False, event, (Violation(vtype, pointer, message),))


class Enforcer:
    """A compiled plan. Build it with :func:`compile_plan` (``trackplan.compile``)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        controls = plan.controls
        self._track: dict[str, tuple[CompiledRule, ...]] = {}
        versions: dict[str, list[CompiledRule]] = {}  # one pass: plans have hundreds of events
        for event in plan.events:  # sorted by name, then version
            compiled = CompiledRule(plan, "track", event, controls.track)
            versions.setdefault(str(event.name), []).append(compiled)
        for name in sorted(versions):
            self._track[name] = tuple(versions[name])
        self._kinds: dict[str, CompiledRule] = {}
        for kind in ("identify", "group", "page", "screen", "alias"):
            rule = plan.rule(kind) if kind != "alias" else None  # type: ignore[arg-type]
            self._kinds[kind] = CompiledRule(plan, kind, rule, controls.for_kind(kind))
        self._unplanned_track = CompiledRule(plan, "track", None, controls.track)
        reserved = reserved_rules(plan)  # Segment's consent event: accepted in every plan
        name = str(reserved[0][0].name)
        compiled_reserved = tuple(CompiledRule(plan, "track", r, c) for r, c in reserved)
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
        #: the plan's PII policy; its actions are each compiled rule's ``transform``
        self.pii = PiiPolicy.from_plan(plan)
        self._install_pii()
        #: review copies of blocked values no rule describes: scanned everywhere
        self._review_scrubber: Any = None
        #: (compiled rule, *schema path) -> :func:`schema_location`: failing events repeat
        #: the same few paths, and the location is string work
        self._where: dict[tuple[Any, ...], tuple[int, str]] = {}

    def _install_pii(self) -> None:
        """Set each compiled rule's ``transform`` from the plan's PII policy: a
        :class:`~trackplan.pii.engine.Transformer` walk, with a variant generated for valid
        events (:func:`trackplan.pii.fastpath.build`). Rules whose transform can change
        nothing keep ``transform = None`` (the fast path).

        Raises:
            CompileError: invalid PII declarations; MissingSecretError: a hash without its key.
        """
        policy = self.pii
        enable_for(policy)
        memos: dict[tuple[str, str], dict[str, Any]] = {}  # one set per policy (one hash key)
        reserved = [c for versions in self._reserved.values() for c in versions]
        for compiled in [*self.compiled_rules(), *reserved]:
            transformer = Transformer(policy, compiled.rule, compiled.kind)
            if transformer.inert():
                compiled.transform = None
                continue
            transformer.memos = memos
            closed = (compiled.planned if compiled.check_unplanned and not compiled.patterns
                      else None)
            transformer.valid = _build_on_first_use(compiled, transformer, closed)
            compiled.transform = transformer

    # -- public API ------------------------------------------------------------------
    @property
    def track_rules(self) -> Mapping[str, tuple[CompiledRule, ...]]:
        """Planned track events: name -> compiled versions, oldest first."""
        return self._track

    @property
    def call_rules(self) -> Mapping[str, CompiledRule]:
        """identify, group, page, screen and alias: their compiled rule."""
        return self._kinds

    def compile_all(self) -> Enforcer:
        """Compile every rule's validators now (each is otherwise compiled at the rule's
        first event), so that a schema the engine cannot compile is reported up front.
        Returns the enforcer.

        Raises:
            CompileError: a rule whose schema jsonschema-rs cannot compile.
        """
        reserved = [c for versions in self._reserved.values() for c in versions]
        for compiled in [*self.compiled_rules(), *reserved]:
            compiled.compile()
        return self

    def warm_up(self) -> Enforcer:
        """Compile and generate now what is otherwise done at each rule's first event (its
        validators, :meth:`compile_all`, and the PII transforms for valid events), so a
        long-running server's first requests cost no more than later ones. Returns the
        enforcer."""
        self.compile_all()
        reserved = [c for versions in self._reserved.values() for c in versions]
        for compiled in [*self.compiled_rules(), *reserved]:
            install = getattr(compiled.transform_valid, "install", None)
            if install is not None:
                install()
        return self

    def compiled_rules(self) -> Iterator[CompiledRule]:
        """Every compiled rule (track versions, then other call types)."""
        for versions in self._track.values():
            yield from versions
        yield from self._kinds.values()
        yield self._unplanned_track

    def enforce(self, event: Any) -> Result:
        """Enforce the plan on one event (a dict as parsed from JSON). Never raises for
        any event; a rule whose schema the engine cannot compile raises
        :class:`~trackplan.errors.CompileError` at its first event (:meth:`compile_all`
        reports those before any event)."""
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
                return Allowed((event, compiled.rule))  # type: ignore[return-value]
            violations: list[Violation] = []
            out = transform(event, violations)
            if out is not None and not violations:
                return Allowed((out, compiled.rule))  # type: ignore[return-value]
            return compiled.transformed(event, out, violations)
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
                    return Allowed((event, compiled.rule))  # type: ignore[return-value]
                return compiled.enforce_valid(event)
        return self._explain(compiled, event)

    def enforce_bytes(self, line: bytes) -> Result:
        """Enforce the plan on one NDJSON line; the same Result as ``enforce(orjson.loads(line))``.

        Valid events of rules without PII actions are decided while parsing (see
        ``trackplan.engine.typed``); everything else is parsed and enforced as a dict.
        Raises ``orjson.JSONDecodeError`` where ``orjson.loads`` does (except numbers beyond
        the double range in fields the plan leaves unconstrained: valid JSON, accepted).
        """
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
            self._review_scrubber = Transformer.review_scrubber(self.pii)
        return self._review_scrubber.scrub_any(value)

    def _explain(self, compiled: CompiledRule, event: dict[str, Any]) -> Result:
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
                            compiled.locations[RULE_BRANCH],
                        )
                    )
                if compiled.transform is not None:  # the review copy holds no PII either
                    out = compiled.transform.scrub(out)  # type: ignore[attr-defined]
                return Result(False, stamp(out, violations, [], []), tuple(violations),
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
        where = self._where
        for err in errors:
            path = list(err.schema_path)
            try:
                branch, location = where[compiled, *path]
            except KeyError:
                branch, location = schema_location(compiled, path)
                if len(where) < _WHERE:
                    where[compiled, *path] = branch, location
            except TypeError:  # not a plain path
                branch, location = schema_location(compiled, path)
            ipath = list(err.instance_path)
            if in_context and ipath and ipath[0] == "traits":
                ipath = ["context", "traits", *ipath[1:]]
            if branch == ENVELOPE_BRANCH:
                v = from_rs_error(err, schema_location="", instance_path=ipath, vtype=ENVELOPE)
                v.message = envelope_message(path[2:], v.message)
                v.schema_location = location
                violations.append(v)
                blocked = True
                continue
            v = from_rs_error(err, schema_location=location, instance_path=ipath)
            violations.append(v)
            action = controls.common_violations if branch == COMMON_BRANCH else controls.violations
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
            out = stamp(out, violations, omitted, omitted_on_violation)
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
        compiled: CompiledRule, out: dict[str, Any], violations: list[Violation]
    ) -> Any:
        """The transform of an explained event: the specialised one when what is left after
        omissions has the shape of a valid event (it may still miss a required property or
        break a pattern or a bound, which the transform does not rely on) and it finds
        nothing to report, else the general walk."""
        walk = compiled.transform
        assert walk is not None
        fast = compiled.transform_valid
        if fast is not walk and fast is not None:
            if compiled.shape_is_valid(out):
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


def _select_version(versions: tuple[CompiledRule, ...], event: dict[str, Any]) -> CompiledRule:
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


def _fast_validity(compiled: CompiledRule) -> Callable[[dict[str, Any]], Callable[[Any], bool]]:
    """schema -> ``is_valid`` of its fast validator under ``compiled``'s controls."""

    def compile_schema(schema: dict[str, Any]) -> Callable[[Any], bool]:
        is_valid: Callable[[Any], bool] = make_validator(compiled.fast_schema(schema)).is_valid
        return is_valid

    return compile_schema


def _build_on_first_use(
    compiled: CompiledRule, transformer: Transformer, closed: frozenset[str] | None
) -> Callable[[dict[str, Any], list[Violation]], Any]:
    """The generated valid-event transform of ``compiled``, generated when first called.

    Generating and compiling it costs milliseconds per rule, which a run that sees a few of
    the plan's events (a CLI call on one file, a test) should not pay for every rule. The
    first call installs the real function on the rule, so later events call it directly.
    """
    built: list[Callable[[dict[str, Any], list[Violation]], Any]] = []

    def install() -> Callable[[dict[str, Any], list[Violation]], Any]:
        if not built:
            built.append(
                build(transformer, compiled.schema, compiled.payload_key, closed,
                      _fast_validity(compiled))
            )  # fmt: skip
            transformer.valid = built[0]
            compiled.transform = transformer  # re-reads ``valid`` into transform_valid
        return built[0]

    def first_use(event: dict[str, Any], violations: list[Violation]) -> Any:
        return install()(event, violations)

    first_use.install = install  # type: ignore[attr-defined]
    return first_use


def compile_plan(plan: Plan) -> Enforcer:
    """Compile ``plan`` into an :class:`Enforcer` (raises :class:`CompileError`).

    Each rule's validators are compiled at its first event; :meth:`Enforcer.compile_all`
    compiles them all now (``trackplan check`` and the gateway do), reporting a schema the
    engine cannot compile before any event is enforced.
    """
    return Enforcer(plan)
