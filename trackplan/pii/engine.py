"""PII actions and detectors in the enforcement engine.

A :class:`Transformer` is one rule's ``transform(event, violations)``; the enforcer
(:mod:`trackplan.engine.enforcer`) gives one to each compiled rule that needs it. It
applies the declared actions (inside arrays and nested objects too), runs the detectors
over string values no declaration covers (the payload, and the context fields the plan
selects), and returns the event to forward
(the input itself when nothing changed, else a copy: the input is never mutated), or
None to block. Detections append a ``PII`` violation naming the category, the pointer
and the detector, never the value.

Per rule, the paths to visit are precomputed as a small tree, so an event pays for the
fields the plan declares and for detectors on undeclared strings only. Events the rule's
validator accepted take ``Transformer.valid`` instead, a function generated from the
rule's schema (:mod:`trackplan.pii.fastpath`). Every value transformation is a function of
:mod:`trackplan.pii.actions`.

The walk serves what the generated functions do not: review copies of blocked events
(:meth:`Transformer.scrub`), events with violations, values the schema says too little
about. It skips strings in the detectors' clean caches inline, decides once per key
whether its name could be PII, and applies ``hash``, ``mask`` and ``redact`` to strings
through the bounded memos the generated functions share (held in memory only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trackplan import pointer as jp
from trackplan.pii.actions import act_on_spans, apply_action, mask_value
from trackplan.pii.detect import (
    CLEAN,
    Finding,
    clean_set,
    findings_for,
    match_key,
    name_category,
    remember,
)
from trackplan.pii.nodes import (
    DETECT_ALL,
    DROP,
    MAX_SCAN_DEPTH,
    MEMO_ACTIONS,
    Block,
    Node,
    inherit_detection,
    store,
)
from trackplan.pii.phones import e164
from trackplan.pii.policy import ANY, DeclaredField, PiiPolicy, stricter
from trackplan.plan.model import PAYLOAD_KEY, Rule
from trackplan.schema.violations import Violation

__all__ = ["PII", "Transformer"]

#: The violation type of PII findings and rejections.
PII = "PII"
#: ``keys_seen`` default: a key not seen yet (an object of the values' type, never stored)
_UNSEEN_KEY: set[object] = set()
_NONE: frozenset[str] = frozenset()


def _put(
    out: dict[str, Any] | None, value: dict[str, Any], key: str, new: Any
) -> dict[str, Any]:
    """Copy-on-write store: ``out`` (a copy of ``value``, made now if None) with ``key``
    set to ``new``, or removed for ``DROP``."""
    if out is None:
        out = dict(value)
    if new is DROP:
        del out[key]
    else:
        out[key] = new
    return out


class Transformer:
    """The PII transform of one compiled rule (``rule`` None: no rule for the call)."""

    __slots__ = (
        "policy",
        "root",
        "key",
        "canon",
        "region",
        "values",
        "names",
        "block",
        "scrubber",
        "keys_seen",
        "valid",
        "memos",
    )

    def __init__(
        self, policy: PiiPolicy, rule: Rule | None, kind: str, *, block: bool = True
    ) -> None:
        self.policy = policy
        #: False for the scrubber: ``reject`` redacts instead of blocking
        self.block = block
        self.scrubber: Transformer | None = None
        #: per key, outside and inside a person's traits: None when its name could be
        #: PII there, else the clean cache of its key's class (bounded like the caches)
        self.keys_seen: tuple[dict[str, set[object] | None], ...] = ({}, {})
        self.key = policy.key
        #: canonical forms before ``hash`` (phones in E.164, in the plan's default region)
        self.canon = policy.canon()
        self.region = policy.default_region
        det = policy.detection
        self.values = det.enabled and det.values
        self.names = det.enabled and det.key_names
        root = Node()
        for f in _fields_for(policy, rule):
            node = root
            for token in f.path:
                node = node.child(token)
            if node.leaf is None or _wins(f, node.leaf):
                node.leaf = f
        if det.enabled:
            payload_key = PAYLOAD_KEY.get(kind)
            if payload_key is not None:
                payload = root.child(payload_key)
                payload.detect = True
                payload.person = kind == "identify"
            context = root.child("context")
            for name in det.context:
                target = context if name == ANY else context.child(name)
                target.detect = True
                target.person = target.person or name == "traits"
        inherit_detection(root)
        self.root = root
        #: per (action, category): results of ``hash``, ``mask`` and ``redact`` on strings
        #: seen recently (bounded; held in memory only, like the events themselves)
        self.memos: dict[tuple[str, str], dict[str, Any]] = {}
        #: the transform for events valid against the rule (set by the enforcer)
        self.valid: Callable[[dict[str, Any], list[Violation]], Any] = self

    def memo(self, action: str, category: str) -> dict[str, Any]:
        """The memo of ``action`` on ``category`` strings (shared by the plan's rules)."""
        return self.memos.setdefault((action, category), {})

    def inert(self) -> bool:
        """True when this rule's transform can change nothing (no install needed)."""
        return self.root.inert()

    def __call__(self, event: dict[str, Any], violations: list[Violation]) -> Any:
        """The event to forward (``event`` itself when unchanged), or None to block."""
        try:
            out = self._visit(event, self.root, (), violations)
        except Block:
            return None
        return event if out is DROP else out

    # -- walking ------------------------------------------------------------------------
    def _visit(
        self, value: Any, node: Node, path: tuple[str | int, ...], violations: list[Violation]
    ) -> Any:
        leaf = node.leaf
        if leaf is not None:
            return self._declared(value, leaf, path, violations)
        kind = type(value)
        if kind is dict:
            out: dict[str, Any] | None = None
            if node.detect or node.star is not None:
                out = self._extras(value, node, _NONE, path, violations, None)
            else:
                for k, child in node.keys.items():
                    if k in value:
                        v = value[k]
                        if child.leaf is not None:
                            new = self._declared(v, child.leaf, (*path, k), violations)
                        else:
                            new = self._visit(v, child, (*path, k), violations)
                        if new is not v:
                            out = _put(out, value, k, new)
            return value if out is None else out
        if kind is list:
            star = node.star
            if star is None and (not node.detect or _all_clean(value)):
                return value
            items: list[Any] | None = None
            for i, v in enumerate(value):
                if star is not None:
                    new = self._visit(v, star, (*path, i), violations)
                elif type(v) is str:
                    if not self.values or len(v) < 6 or v in CLEAN:
                        new = v
                    else:
                        found = findings_for(None, v)
                        new = self._found(None, v, found, (*path, i), violations) if found else v
                else:
                    new = self._detect(None, v, (*path, i), False, violations, index=True)
                if new is not v:
                    if items is None:
                        items = list(value[:i])
                elif items is None:
                    continue
                if new is not DROP:
                    items.append(new)
            return value if items is None else items
        if kind is str and node.detect and self.values:
            # a scalar the plan selects for detection (context.ip)
            return self._text(None, value, path, violations)
        return value

    def _extras(
        self,
        value: dict[str, Any],
        node: Node,
        known: frozenset[str],
        path: tuple[str | int, ...],
        violations: list[Violation],
        out: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """Visit the keys of ``value`` not in ``known`` at a detecting (or starred) node;
        ``out`` is the copy made so far (None: nothing changed yet). Returns the copy."""
        keys, star, detect = node.keys, node.star, node.detect
        if detect and not keys and star is None and not known:
            return self._undeclared(value, node.person, path, violations, out)
        seen, clean, values = self.keys_seen[node.person], CLEAN, self.values
        for k, v in value.items():
            if k in known:
                continue
            child = keys.get(k) or star
            if child is not None:
                leaf = child.leaf
                if leaf is not None:
                    new = self._declared(v, leaf, (*path, k), violations)
                else:
                    new = self._visit(v, child, (*path, k), violations)
            elif not detect:
                continue
            else:
                # the common cases inline: a key that names nothing, a clean or new string
                cache = seen.get(k, _UNSEEN_KEY)
                if cache is _UNSEEN_KEY:
                    cache = self._key_cache(k, node.person)
                t = type(v)
                if cache is None or t is dict or t is list:
                    new = self._detect(k, v, path, node.person, violations)
                elif t is str:
                    if not values or len(v) < 6 or v in clean or v in cache:
                        continue
                    found = findings_for(k, v)
                    if not found:
                        continue
                    new = self._found(k, v, found, (*path, k), violations)
                else:
                    continue  # a number, a boolean, null: no content to scan
            if new is not v:
                out = _put(out, value, k, new)
        return out

    def _undeclared(
        self,
        value: dict[str, Any],
        person: bool,
        path: tuple[str | int, ...],
        violations: list[Violation],
        out: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """:meth:`_extras` of an object nothing is declared in (the loop without the
        declared keys' lookups: the common case, nested undeclared objects)."""
        seen, clean, values = self.keys_seen[person], CLEAN, self.values
        for k, v in value.items():
            cache = seen.get(k, _UNSEEN_KEY)
            if cache is _UNSEEN_KEY:
                cache = self._key_cache(k, person)
            t = type(v)
            if t is str and cache is not None:
                if not values or len(v) < 6 or v in clean or v in cache:
                    continue
                found = findings_for(k, v)
                if not found:
                    continue
                new = self._found(k, v, found, (*path, k), violations)
            elif cache is None or t is dict or t is list:
                new = self._detect(k, v, path, person, violations)
            else:
                continue  # a number, a boolean, null: no content to scan
            if new is not v:
                out = _put(out, value, k, new)
        return out

    def _names_pii(self, key: str, person: bool) -> bool:
        """Whether ``key`` could name PII (then :meth:`_detect` matches it; a key that
        does not cannot make :func:`match_key` answer)."""
        if not self.names:
            return False
        return name_category(key) is not None or (
            person and type(key) is str and key.strip().lower() == "name"
        )

    def _key_cache(self, key: str, person: bool) -> set[object] | None:
        """What :meth:`_extras` needs of a key: None when it could name PII, else the
        cache of strings clean under it (remembered per key, bounded)."""
        seen = self.keys_seen[person]
        if len(seen) >= 4096:
            seen.clear()
        cache = seen[key] = None if self._names_pii(key, person) else clean_set(key)
        return cache

    def _scan_keys(
        self,
        value: dict[str, Any],
        keys: tuple[str, ...],
        path: tuple[str | int, ...],
        violations: list[Violation],
        out: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """Scan the string values under ``keys`` (planned strings, names that name nothing)
        that the clean cache does not hold; ``out`` as for :meth:`_extras`."""
        for k in keys:
            v = value.get(k)
            cache = clean_set(k)
            if v.__class__ is not str:
                if v is None or type(v) in (int, float, bool):
                    remember(cache, v)
                continue
            if v in cache:
                continue
            if len(v) < 6 or v in CLEAN:
                remember(cache, v)
                continue
            new = self._text(k, v, (*path, k), violations)
            if new is not v:
                out = _put(out, value, k, new)
        return out

    def _declared(
        self,
        value: Any,
        f: DeclaredField,
        path: tuple[str | int, ...],
        violations: list[Violation],
    ) -> Any:
        action, category = f.action, f.category
        if category is None:
            return value
        if action == "reject":
            if self.block:
                pointer = jp.from_parts(path)
                violations.append(
                    Violation(
                        PII,
                        pointer,
                        f"declared {category} at {pointer}: "
                        "the plan's action is reject, the event is blocked",
                        f.location,
                    )
                )
                raise Block
            action = "redact"  # the review copy of a blocked event
        if action == "hash" and category == "phone":
            memo = self.memos.get((action, category))
            if type(value) is not str or memo is None or value not in memo:
                self._report_unparsed(value, f, path, violations)  # memoised: it parsed
        if action in MEMO_ACTIONS:  # hash, mask, redact
            kind = type(value)
            if kind is str:
                memo = self.memos.get((action, category))
                if memo is not None:
                    new = memo.get(value)
                    if new is not None:
                        return new
                return self._apply(action, category, value)
            if kind is list and not any(type(v) in (dict, list) for v in value):
                return [self._apply(action, category, v) for v in value]
            if action == "mask":
                return mask_value(category, value)  # what apply_action does, one call less
            return apply_action(action, category, value, self.key, canon=self.canon)[1]
        if action == "allow":
            if category == "free_text" and type(value) is str and self.values:
                # free text may hold PII
                return self._text(None, value, path, violations, in_free_text=True)
            return value
        if action == "drop":
            return DROP
        return apply_action(action, category, value, self.key, canon=self.canon)[1]

    def _report_unparsed(
        self, value: Any, f: DeclaredField, path: tuple[str | int, ...], violations: list[Violation]
    ) -> None:
        """A ``PII`` violation when a declared phone (or an item of a list of them) is no
        phone number: it is hashed as its digits, which joins with no other spelling."""
        items = value if type(value) is list else [value]
        for item in items:
            if type(item) in (dict, list) or item is None or type(item) is bool:
                continue
            text = item.strip() if type(item) is str else str(item)
            if e164(text, self.region) is None:
                pointer = jp.from_parts(path)
                if self.region:
                    where = f"in region {self.region}"
                else:  # without a region only numbers with a country code parse
                    where = "with + or 00 (set pii.default_region for national numbers)"
                violations.append(
                    Violation(
                        PII,
                        pointer,
                        f"declared phone at {pointer or '/'} does not parse as a phone number "
                        f"{where}: hashed as its digits",
                        f.location,
                    )
                )
                return

    def _apply(self, action: str, category: str, value: Any) -> Any:
        """``action`` (hash, mask or redact) on a value; strings through the memo of
        ``(action, category)`` that the generated transforms share, bounded alike."""
        if type(value) is not str:
            return apply_action(action, category, value, self.key, canon=self.canon)[1]
        memo = self.memos.get((action, category))
        if memo is None:
            memo = self.memo(action, category)
        new = memo.get(value)
        if new is None:
            if action == "mask":
                new = mask_value(category, value)
            else:
                new = apply_action(action, category, value, self.key, canon=self.canon)[1]
            if action != "hash" or category != "phone" or e164(value, self.region) is not None:
                store(memo, value, new)  # an unparsed phone is reported every time it comes
        return new

    def _detect(
        self,
        key: str | None,
        value: Any,
        parent: tuple[str | int, ...],
        person: bool,
        violations: list[Violation],
        *,
        index: bool = False,
    ) -> Any:
        """An undeclared value: its key's name first, then its content."""
        path = parent if index or key is None else (*parent, key)
        if key is not None and self.names:
            category = match_key(key, value, person=person)
            if category is not None:
                return self._act(category, "key_name", value, path, violations)
        kind = type(value)
        if kind is str:
            return self._text(key, value, path, violations) if self.values else value
        if kind is dict or kind is list:
            if len(path) > MAX_SCAN_DEPTH:  # too deep to scan within the recursion limit
                pointer = jp.from_parts(path)
                violations.append(
                    Violation(
                        PII,
                        pointer,
                        f"value at {pointer} nests too deep to scan for PII; action redact",
                    )
                )
                return apply_action("redact", "other", value, None)[1]
            return self._visit(value, DETECT_ALL, path, violations)
        return value

    def _text(
        self,
        key: str | None,
        value: str,
        path: tuple[str | int, ...],
        violations: list[Violation],
        *,
        in_free_text: bool = False,
    ) -> Any:
        found = findings_for(key, value)
        if not found:
            return value
        return self._found(key, value, found, path, violations, in_free_text=in_free_text)

    def _found(
        self,
        key: str | None,
        value: str,
        found: tuple[Finding, ...],
        path: tuple[str | int, ...],
        violations: list[Violation],
        *,
        in_free_text: bool = False,
    ) -> Any:
        """Report the findings in a string and apply the strictest action they call for."""
        pointer = jp.from_parts(path)
        each = [self._action(f.category) for f in found]
        for f, act in zip(found, each, strict=True):
            violations.append(
                Violation(
                    PII,
                    pointer,
                    _message(f.category, pointer, f.detector, act, in_free_text=in_free_text),
                )
            )
        spans = [(f.start, f.end, f.category, act) for f, act in zip(found, each, strict=True)]
        action, new = act_on_spans(value, spans, self.key, canon=self.canon)
        if action == "reject":
            raise Block
        return DROP if action == "drop" else new

    def _act(
        self,
        category: str,
        detector: str,
        value: Any,
        path: tuple[str | int, ...],
        violations: list[Violation],
    ) -> Any:
        pointer = jp.from_parts(path)
        action = self._action(category)
        violations.append(Violation(PII, pointer, _message(category, pointer, detector, action)))
        if action == "reject":
            raise Block
        if action == "drop":
            return DROP
        return apply_action(action, category, value, self.key, canon=self.canon)[1]

    def _action(self, category: str) -> str:
        action = self.policy.detection_action(category)
        return "redact" if action == "reject" and not self.block else action

    def scrub(self, event: Any) -> Any:
        """A copy of a blocked event with every PII action applied (``reject`` redacts), so
        the copy kept for review holds no more PII than a forwarded one."""
        if type(event) is not dict:
            return event
        scrubber = self.scrubber
        if scrubber is None:
            scrubber = self.scrubber = Transformer.scrubbing(self.policy, self.root)
            scrubber.memos = self.memos  # same policy, same key: the same results
        out = scrubber(event, [])
        return dict(event) if out is event else out

    @classmethod
    def scrubbing(cls, policy: PiiPolicy, root: Node) -> Transformer:
        """A walk of ``root``'s paths for review copies: ``reject`` redacts, never blocks."""
        return cls(policy, None, "alias", block=False)._adopt(root)

    @classmethod
    def review_scrubber(cls, policy: PiiPolicy) -> Transformer:
        """The scrubber of values no rule describes (see :meth:`scrub_any`)."""
        return cls.scrubbing(policy, DETECT_ALL)

    def scrub_any(self, value: Any) -> Any:
        """A review copy of a blocked value that no rule describes (a call of unknown type,
        a non-object, an event the engine refuses): every string in it, at any depth, is
        scanned and handled as the plan handles detections, and keys that name PII as such
        keys are. None when the value cannot be walked (nesting beyond the interpreter's
        stack, strings the detectors or actions refuse): then nothing is kept."""
        try:
            out = self._visit(value, self.root, (), [])
        except (Block, ValueError, TypeError, RecursionError):
            return None
        return None if out is DROP else out

    def _adopt(self, root: Node) -> Transformer:
        self.root = root
        return self


def _all_clean(items: list[Any]) -> bool:
    """Whether every item is a string (or null) known clean: nothing to scan."""
    try:
        return CLEAN.issuperset(items)
    except TypeError:  # an object or array item (unhashable)
        return False


def _message(
    category: str, pointer: str, detector: str, action: str, *, in_free_text: bool = False
) -> str:
    if in_free_text:
        return (
            f"{category} inside free text at {pointer or '/'} (detector: {detector}); "
            f"action {action}"
        )
    return (
        f"undeclared {category} at {pointer or '/'} (detector: {detector}); "
        f"action {action}: declare it with x-pii"
    )


def _wins(new: DeclaredField, old: DeclaredField) -> bool:
    """Whether ``new`` replaces ``old`` at the same path (PII over not-PII, stricter wins)."""
    if new.category is None:
        return False
    if old.category is None:
        return True
    return stricter(new.action, old.action) == new.action and new.action != old.action


def _fields_for(policy: PiiPolicy, rule: Rule | None) -> list[DeclaredField]:
    """Declarations that apply to a call of ``rule``: the common rule's, identify traits
    under ``context.traits`` (SDKs send them with every call), and the rule's own."""
    shared, by_rule = policy.declared_by_rule
    own = by_rule.get(id(rule), ()) if rule is not None else ()
    # in declaration order, as one pass over the policy's declarations gives them
    return [f for _place, f in sorted((*shared, *own), key=lambda pf: pf[0])]
