"""The NDJSON bytes path: plan rules compiled to msgspec types that validate while parsing.

jsonschema-rs validates Python objects only, so bytes in cost ``orjson.loads`` plus a
validator call. msgspec's typed decoding checks types, bounds, lengths and enums while it
parses, so for the common case (a valid event of a planned rule) one decode decides and the
line is forwarded as it came, never parsed into a dict. Track events are told apart by
``event`` (a tagged union of the planned names), other calls by ``type``; a versioned event
is typed as its oldest version, used only when the line cannot name a version.

Exactness comes first: a rule is typed only when every keyword of its whole-call schema has
an exact msgspec equivalent, or is a string keyword (``format``, ``pattern``, ``anyOf`` of
formats ...) that a jsonschema-rs validator post-checks on the decoded string, so the
verdict is jsonschema-rs's own. Anything else (``oneOf`` on objects, ``patternProperties``,
``uniqueItems``, recursive refs, names msgspec refuses ...) leaves the rule untyped, as do
PII transforms (they need the dict, and parse + validate is then cheaper than decode +
parse). Every line that does not decode and pass the checks takes the fallback,
``enforce(orjson.loads(line))``, so results never differ: the typed path can only say
"valid", never explain. The one documented difference: a number beyond the double range in
a field the plan leaves unconstrained (valid JSON, refused by orjson) is accepted.

>>> path = TypedPath.of(compile_plan(load_plan("plans/ecommerce")))  # doctest: +SKIP
>>> path.enforce(b'{"type": "track", "event": "Signed Up", ...}')  # doctest: +SKIP
>>> path.untyped                                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Union

import msgspec
import orjson

from trackplan.engine import exactjson
from trackplan.engine.compiled import CompiledRule, Result
from trackplan.engine.readers import (
    MAX_LINE_BYTES,
    InputFormat,
    Item,
    choose_format,
    iter_events,
    iter_file,
    iter_lines,
    read_document,
    reading,
)
from trackplan.plan.model import Rule
from trackplan.schema.msgtypes import (
    IDENTITY_ANYOF,
    Builder,
    Check,
    Unsupported,
    compile_check,
    local_refs,
)

if TYPE_CHECKING:
    from trackplan.schema.violations import Violation

__all__ = [
    "Enforcing", "LineResult", "TypedPath", "Unsupported", "implied_by_identity", "iter_results",
    "typed_rule",
]


class Enforcing(Protocol):
    """What the typed path needs of an enforcer (:class:`~trackplan.engine.Enforcer`,
    or a wrapper of one such as a suppression list's)."""

    @property
    def track_rules(self) -> Mapping[str, tuple[CompiledRule, ...]]: ...

    @property
    def call_rules(self) -> Mapping[str, CompiledRule]: ...

    def enforce(self, event: Any) -> Result: ...

    def enforce_bytes(self, line: bytes) -> Result: ...


class _Entry:
    """A typed rule: its compiled rule and the checks msgspec types cannot express."""

    __slots__ = ("compiled", "check", "versioned")

    def __init__(self, compiled: CompiledRule, check: Check) -> None:
        self.compiled = compiled
        self.check = check
        #: the oldest of several versions: right only when the event names no version
        self.versioned = False


def whole_call_schema(compiled: CompiledRule) -> dict[str, Any]:
    """The schema ``compiled.fast`` validates: envelope, common, rule, strict branch."""
    assert compiled.rule is not None
    schema = dict(compiled.schema)  # the assembled call schema the rule compiled
    schema["allOf"] = list(schema["allOf"])
    if compiled.check_unplanned and compiled.payload_key is not None:
        strict: dict[str, Any] = {
            "properties": {k: True for k in sorted(compiled.planned)},
            "additionalProperties": False,
        }
        if compiled.patterns:
            raise Unsupported("patternProperties")
        schema["allOf"].append({"properties": {compiled.payload_key: strict}})
    return schema


def typed_rule(compiled: CompiledRule) -> tuple[Any, _Entry]:
    """Compile one rule to a tagged Struct (raises Unsupported).

    Track events are tagged by ``event`` (the name), other calls by ``type``. Identify and
    group calls must carry ``traits`` (traits under ``context.traits`` take the dict path).
    """
    rule: Rule | None = compiled.rule
    kind = compiled.kind
    if rule is None or kind not in ("track", "page", "screen", "identify", "group"):
        raise Unsupported("no rule for this call type")
    if kind == "track":
        if not rule.name:
            raise Unsupported("a track rule without a name")
        tag, exclude, extra = ("event", rule.name), "event", {"type": [{"const": "track"}]}
    else:
        tag, exclude = ("type", kind), "type"
        extra = {"traits": []} if compiled.payload_key == "traits" else {}
    schema = whole_call_schema(compiled)
    branches = list(schema["allOf"])
    if IDENTITY_ANYOF not in [b.get("anyOf") for b in branches if isinstance(b, dict)]:
        raise Unsupported("no identity check")
    branches = [
        {k: v for k, v in b.items() if k != "anyOf"}
        if isinstance(b, dict) and (b.get("anyOf") == IDENTITY_ANYOF
                                    or implied_by_identity(b.get("anyOf"))) else b
        for b in branches
    ]
    builder = Builder(schema)
    if local_refs(schema):
        builder.no_ids = True  # a legacy "id" could change what a $ref resolves to
    top = builder.expand(branches)
    # the tag value must satisfy every constraint on its field
    tag_schemas = [s["properties"][tag[0]] for s in top
                   if isinstance(s.get("properties"), dict) and tag[0] in s["properties"]]
    expanded = builder.expand(tag_schemas)
    if expanded and not builder.post_validator(expanded)(tag[1]):
        raise Unsupported("the tag value fails its own rule")
    struct, check = builder.build(top, exclude=frozenset({exclude}), extra=extra, tag=tag)
    wire = {v: k for k, v in _rename_map(struct).items()}
    identity = (wire.get("userId", ""), wire.get("anonymousId", ""))
    return struct, _Entry(compiled, compile_check(check, identity))


#: what Segment's exports put on each rule's whole call: "userId or anonymousId present"
_PRESENT = ({"required": ["userId"]}, {"required": ["anonymousId"]})


def implied_by_identity(any_of: Any) -> bool:
    """Whether an ``anyOf`` on the whole call holds whenever the envelope's identity check
    does (userId or anonymousId present and non-empty): one of its branches asks only for
    ``userId`` to be present and another only for ``anonymousId``, as Segment's exports
    write on every rule. Such an ``anyOf`` adds nothing to the envelope's, which the typed
    path checks (:func:`~trackplan.schema.msgtypes.compile_check`), so it is dropped there.
    """
    return isinstance(any_of, list) and all(b in any_of for b in _PRESENT)


def _rename_map(struct: Any) -> dict[str, str]:
    """attribute -> wire name of a Struct made by :class:`Builder`."""
    return dict(zip(struct.__struct_fields__, struct.__struct_encode_fields__, strict=True))


def _decoder(structs: list[Any]) -> msgspec.json.Decoder[Any] | None:
    if not structs:
        return None
    return msgspec.json.Decoder(structs[0] if len(structs) == 1 else Union[tuple(structs)])  # noqa: UP007


class LineResult(Result):
    """An allowed, unchanged event decided on its bytes: the dict is parsed only if asked.

    ``line`` holds the input bytes, which can be forwarded as they are.
    """

    __slots__ = ("line",)
    allowed = True  # fixed: no slot to fill per event
    violations: tuple[Violation, ...] = ()
    omitted: tuple[str, ...] = ()
    omitted_on_violation: tuple[str, ...] = ()

    def __init__(self, line: bytes, rule: Rule | None) -> None:
        self.line = line
        self.rule = rule

    @property
    def rule_label(self) -> str:
        """The event name (what reports count by), without parsing the line."""
        rule = self.rule
        if rule is None:
            return "(no type)"
        if rule.kind == "track":
            return rule.name or "(track without event)"
        return f"({rule.kind})"

    @property
    def event(self) -> Any:
        try:
            return orjson.loads(self.line)
        except orjson.JSONDecodeError:
            # numbers beyond the double range, valid JSON orjson refuses: see enforce()
            return json.loads(self.line)


class TypedPath:
    """The bytes-in fast path of one :class:`Enforcer`."""

    def __init__(self, enforcer: Enforcing) -> None:
        self.enforcer = enforcer
        self.entries: dict[type, _Entry] = {}
        #: rule label -> why it stays on the dict path
        self.untyped: dict[str, str] = {}
        track: list[Any] = []
        calls: list[Any] = []
        candidates: list[tuple[str, CompiledRule, bool]] = [
            (name, versions[0], len(versions) > 1)
            for name, versions in sorted(enforcer.track_rules.items())
        ]
        candidates += [(f"({kind})", enforcer.call_rules[kind], False)
                       for kind in ("page", "screen", "identify", "group")]
        for label, compiled, versioned in candidates:
            if compiled.transform is not None:
                # a transform needs the dict: parse + validate beats decode + parse + transform
                self.untyped[label] = "has a transform (PII actions): needs the event as a dict"
                continue
            try:
                struct, entry = typed_rule(compiled)
                msgspec.json.Decoder(struct)  # msgspec checks the type here, not in defstruct
            except Unsupported as exc:
                self.untyped[label] = str(exc)
                continue
            except (ValueError, TypeError) as exc:  # msgspec refused a type we built
                self.untyped[label] = f"msgspec: {exc}"
                continue
            entry.versioned = versioned
            (track if compiled.kind == "track" else calls).append(struct)
            self.entries[struct] = entry
        self.track = _decoder(track)
        self.calls = _decoder(calls)
        # which decoders to try: by how the line starts (Segment writes "type" first)
        self._for_track = tuple(d for d in (self.track,) if d is not None)
        self._for_calls = tuple(d for d in (self.calls,) if d is not None)
        self._for_other = self._for_track + self._for_calls

    @classmethod
    def of(cls, enforcer: Enforcing) -> TypedPath:
        """The typed path of ``enforcer``, built on first use and kept on it.

        Its ``enforce`` then shadows :meth:`Enforcer.enforce_bytes` on the instance, so
        later calls pay no lookup.
        """
        found = enforcer.__dict__.get("_typed_path")
        if isinstance(found, TypedPath):
            return found
        path = cls(enforcer)
        enforcer.__dict__["_typed_path"] = path
        enforcer.__dict__["enforce_bytes"] = path.enforce if path.entries else path.parse
        return path

    def parse(self, line: bytes) -> Result:
        """``enforce(orjson.loads(line))``: the whole job when no rule is typed."""
        return self.enforcer.enforce(orjson.loads(line))

    def match(self, line: bytes) -> _Entry | None:
        """The typed rule ``line`` is a valid event of, or None (then: the dict path)."""
        # Segment writes "type" first: pick the decoder by it; otherwise try both
        if line.startswith(b'{"type":"'):
            decoders = self._for_track if line.startswith(b'track"', 9) else self._for_calls
        else:
            decoders = self._for_other
        if not line.isascii():
            try:
                line.decode("utf-8")  # msgspec does not check skipped strings
            except UnicodeDecodeError:
                return None
        for decoder in decoders:
            try:
                obj = decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                continue
            entry = self.entries[type(obj)]
            if entry.versioned and (b"event_version" in line or b"\\u" in line):
                return None  # the version may be named (a \\u escape could spell the key)
            return entry if entry.check(obj) else None
        return None

    def enforce(self, line: bytes) -> Result:
        """Enforce the plan on one NDJSON line: the same Result as ``enforce(orjson.loads(line))``.

        Raises ``orjson.JSONDecodeError`` where ``orjson.loads`` does, with one documented
        exception: a number beyond the double range (valid JSON that orjson refuses) in a
        field the plan leaves unconstrained is accepted, as RFC 8259 allows.
        """
        entry = self.match(line)
        if entry is None:
            return self.enforcer.enforce(orjson.loads(line))
        compiled = entry.compiled
        if compiled.transform is None:
            return LineResult(line, compiled.rule)
        return compiled.enforce_valid(orjson.loads(line))


def _never(line: bytes) -> bool:
    return False


def iter_results(enforcer: Enforcing, path: str, fmt: InputFormat = "auto", *,
                 max_bytes: int = MAX_LINE_BYTES, exact: bool = True
                 ) -> Iterator[tuple[Item, Result | None]]:
    """Enforce ``enforcer`` on the events of a file: ``(item, result)`` in order.

    NDJSON goes line by line through :meth:`Enforcer.enforce_bytes` (``item.event`` is then
    None: use ``result.event``, parsed on demand); other formats through the readers and
    :meth:`Enforcer.enforce`. Unreadable events come as items with ``error`` and no result,
    worded as the readers word them. With ``exact`` (for callers that write events out), a
    line whose numbers orjson would change is parsed exactly
    (:mod:`trackplan.engine.exactjson`) and enforced as a parsed event, so what is written
    keeps them. Raises :class:`InputError` when the file cannot be read.
    """
    if fmt not in ("auto", "ndjson"):
        for item in iter_file(path, fmt, max_bytes=max_bytes):
            yield item, None if item.error is not None else enforcer.enforce(item.event)
        return
    with reading(path) as raw:
        chosen = choose_format(raw, fmt)
        if chosen != "ndjson":
            data = read_document(raw, max_bytes)
            items = (
                iter([Item(1, None, f"JSON document longer than {max_bytes} bytes")])
                if data is None
                else iter_events(data, chosen, max_bytes=max_bytes)  # type: ignore[arg-type]
            )
            for item in items:
                yield item, None if item.error is not None else enforcer.enforce(item.event)
            return
        if "enforce_bytes" not in enforcer.__dict__:
            TypedPath.of(enforcer)  # builds the path and binds it as enforcer.enforce_bytes
        enforce_bytes = enforcer.enforce_bytes  # a wrapper (suppression lists) stays in force
        decode_error = orjson.JSONDecodeError
        may_lose = exactjson.may_lose if exact else _never
        for number, line in iter_lines(raw, max_bytes):
            if line is None:
                yield Item(number, None, f"line longer than {max_bytes} bytes"), None
                continue
            if not line.strip():
                continue
            try:
                result = enforce_bytes(line)
            except decode_error as exc:
                if not exactjson.may_lose(line):  # (1e400 is JSON orjson refuses)
                    yield Item(number, None, f"invalid JSON: {exc}"), None
                    continue
                result = None
            if result is None or (not isinstance(result, LineResult) and may_lose(line)):
                try:  # numbers orjson reads inexactly: enforce the exact parse instead
                    event = exactjson.loads(line)
                except ValueError as exc:
                    yield Item(number, None, f"invalid JSON: {exc}"), None
                    continue
                yield Item(number, event), enforcer.enforce(event)
                continue
            assert result is not None
            yield Item(number), result
