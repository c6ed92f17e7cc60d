"""The plan's PII policy: per-category defaults, the hash key, detection settings, and
every field the plan's schemas declare with ``x-pii``.

``x-pii`` on any schema (a property, a trait, an array's items, a context field) is a
category string (``x-pii: email``: the plan's default action for the category applies),
an object (``x-pii: {category: email, action: hash, basis: contract}``), or ``false``
(declared not PII: detectors leave it alone). The plan's ``pii`` section::

    pii:
      hash_key_env: TRACKPLAN_HASH_KEY   # where the HMAC key is read from, at compile time
      defaults: {email: hash, ip: mask}  # per category; redact where the plan sets none
      categories: [loyalty_id]           # the plan's own categories, beside the built-in ones
      default_region: GB                 # phones without a country code, for E.164 before hash
      phone_regions: [DE, TR]            # opt-in: national phone formats detected
      id_countries: [de, fr, it]         # opt-in: national identity numbers detected (stdnum)
      detection:                         # on for every plan, pii section or not; "off" turns it off
        enabled: true                    # detectors on undeclared values and key names
        values: true
        key_names: true
        context: [ip, traits]            # context fields covered ("*": all of context)
        action: default                  # on a detection: the category's default; an action
                                         # here is a floor (a stricter default still applies)

>>> policy = PiiPolicy.from_plan(load_plan("plans/ecommerce"))   # doctest: +SKIP
>>> policy.action_for("email")                                   # doctest: +SKIP
'hash'
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trackplan import pointer as jp
from trackplan.errors import CompileError, MissingSecretError
from trackplan.pii.actions import ACTIONS, CATEGORIES
from trackplan.pii.national_ids import ID_COUNTRIES, id_canon
from trackplan.pii.phones import canon_for, known_region
from trackplan.plan.assemble import rule_call_view
from trackplan.plan.model import Plan, Rule, detection_off

__all__ = [
    "DEFAULT_ACTION",
    "CATEGORY_DEFAULT",
    "DEFAULT_KEY_ENV",
    "ANY",
    "DeclaredField",
    "Detection",
    "PiiPolicy",
    "applies_to_every_call",
    "parse_annotation",
    "stricter",
]

DEFAULT_ACTION = "redact"
#: ``pii.detection.action`` meaning "the detected category's default action".
CATEGORY_DEFAULT = "default"
DEFAULT_KEY_ENV = "TRACKPLAN_HASH_KEY"
#: The path token for every item of an array (or every value of an object).
ANY = "*"
_RANK = {a: i for i, a in enumerate(ACTIONS)}  # lower is more protective


def stricter(a: str, b: str) -> str:
    """The more protective of two actions (``reject`` > ``drop`` > ... > ``allow``)."""
    return a if _RANK.get(a, 0) <= _RANK.get(b, 0) else b


@dataclass(frozen=True, slots=True)
class DeclaredField:
    """One field a rule declares with ``x-pii``.

    Attributes:
        rule: the rule declaring it (the common rule's fields apply to every call).
        path: tokens from the call's root (``("properties", "products", "*", "email")``);
            ``*`` stands for every item of an array (or every value of a map).
        category: the PII category, or ``None`` for ``x-pii: false`` (declared not PII).
        action: the action that applies (the annotation's, else the plan's default).
        basis: the lawful basis an ``allow`` records, when given.
        location: ``file#pointer`` of the annotation.
    """

    rule: Rule = field(repr=False)
    path: tuple[str, ...]
    category: str | None
    action: str
    basis: str | None = None
    location: str = ""

    @property
    def declared(self) -> bool:
        """True for PII, False for a field declared not PII."""
        return self.category is not None


@dataclass(frozen=True, slots=True)
class Detection:
    """Where detectors run and what a detection does.

    ``action`` is ``default`` (a detected value gets its category's action from the plan's
    ``pii.defaults``, ``redact`` where it sets none) or an action that every detection gets
    at least (a category whose default is stricter keeps its default).
    """

    enabled: bool = True
    values: bool = True
    key_names: bool = True
    context: tuple[str, ...] = ("ip", "traits")
    action: str = CATEGORY_DEFAULT


def parse_annotation(raw: Any) -> tuple[str | None, str | None, str | None] | str:
    """``(category, action, basis)`` of an ``x-pii`` value, or an error message.

    ``false``, ``null`` and ``"none"`` give ``(None, None, None)``: declared not PII.
    """
    if raw is False or raw is None or raw == "none":
        return None, None, None
    if raw is True:
        return "other", None, None
    if isinstance(raw, str):
        return raw, None, None
    if isinstance(raw, Mapping):
        cat, act, basis = raw.get("category"), raw.get("action"), raw.get("basis")
        if not isinstance(cat, str):
            return "x-pii needs a category string"
        if act is not None and not isinstance(act, str):
            return "x-pii action must be a string"
        if basis is not None and not isinstance(basis, str):
            return "x-pii basis must be a string"
        return (None if cat == "none" else cat), act, basis
    return "x-pii must be a category, {category, action}, or false"


def applies_to_every_call(f: DeclaredField) -> bool:
    """Whether a declaration applies to calls of every rule: the common rule's, and
    identify traits under ``context.traits`` (SDKs send them with every call)."""
    owner = f.rule
    return owner.kind == "common" or (
        owner.kind == "identify" and f.path[:2] == ("context", "traits")
    )


@dataclass(frozen=True)
class PiiPolicy:
    """The compiled PII policy of a plan. The hash key never appears in its repr."""

    defaults: Mapping[str, str]
    hash_key_env: str
    detection: Detection
    categories: tuple[str, ...]
    fields: tuple[DeclaredField, ...]
    not_pii: tuple[DeclaredField, ...]
    key: bytes | None = field(default=None, repr=False, compare=False)
    #: region of phone numbers without a country code (``pii.default_region``)
    default_region: str | None = None
    #: regions whose national phone formats the detectors know (``pii.phone_regions``)
    phone_regions: tuple[str, ...] = ()
    #: countries whose identity numbers the detectors know (``pii.id_countries``)
    id_countries: tuple[str, ...] = ()

    @functools.cached_property
    def declared_by_rule(
        self,
    ) -> tuple[tuple[tuple[int, DeclaredField], ...],
               Mapping[int, tuple[tuple[int, DeclaredField], ...]]]:
        """The declarations that apply to every call (the common rule's, and identify
        traits under ``context.traits``), and those of each rule by ``id(rule)``, each with
        its place in declaration order (``not_pii``, then ``fields``). Built once per
        policy, so each compiled rule finds its own without scanning the whole plan's."""
        shared: list[tuple[int, DeclaredField]] = []
        own: dict[int, list[tuple[int, DeclaredField]]] = {}
        for place, f in enumerate((*self.not_pii, *self.fields)):
            if applies_to_every_call(f):
                shared.append((place, f))
            else:
                own.setdefault(id(f.rule), []).append((place, f))
        return tuple(shared), {k: tuple(v) for k, v in own.items()}  # fmt: skip

    def canon(self) -> dict[str, Callable[[str], str | None]]:
        """The ``canon`` of :mod:`trackplan.pii.actions` under this policy: phones in
        E.164 (numbers without a country code read in :attr:`default_region`), and ids
        valid in one of :attr:`id_countries` in python-stdnum's compact form."""
        canon = {"phone": canon_for(self.default_region)}
        if self.id_countries:
            canon["government_id"] = id_canon(self.id_countries)
        return canon

    def action_for(self, category: str) -> str:
        """The plan's default action for ``category`` (``redact`` where none is set)."""
        return self.defaults.get(category, DEFAULT_ACTION)

    def detection_action(self, category: str) -> str:
        """What a detected value of ``category`` gets: the category's default action, or
        ``pii.detection.action`` where that is stricter (an undeclared card number in free
        text is blocked when the plan's default for ``payment_card`` is ``reject``)."""
        default = self.action_for(category)
        action = self.detection.action
        return default if action == CATEGORY_DEFAULT else stricter(action, default)

    def fields_for(self, rule: Rule | None) -> list[DeclaredField]:
        """Declarations that apply to a call of ``rule`` (None: a call without a rule):
        the common rule's, identify traits under ``context.traits`` (SDKs send them with
        every call), and the rule's own. Every surface applies declarations by this."""
        shared, by_rule = self.declared_by_rule
        own = by_rule.get(id(rule), ()) if rule is not None else ()
        # in declaration order, as one pass over the policy's declarations gives them
        return [f for _place, f in sorted((*shared, *own), key=lambda pf: pf[0])]

    def needs_key(self) -> list[str]:
        """Where a hash is asked for (``file#pointer`` or section), empty when nowhere."""
        where = [f.location for f in self.fields if f.action == "hash"]
        where += [f"pii/defaults/{c}" for c, a in sorted(self.defaults.items()) if a == "hash"]
        if self.detection.enabled and self.detection.action == "hash":
            where.append("pii/detection/action")
        return where

    @classmethod
    def from_plan(cls, plan: Plan, *, environ: Mapping[str, str] | None = None) -> PiiPolicy:
        """Parse ``plan.pii`` and collect every ``x-pii`` of every rule.

        Raises:
            CompileError: an unknown category or action, or a malformed ``pii`` section.
            MissingSecretError: a field or default needs ``hash`` and the key's environment
                variable is unset or empty (the message names the variable, never a value).
        """
        env = os.environ if environ is None else environ
        raw = plan.pii if isinstance(plan.pii, Mapping) else {}
        where = plan.sections.get("pii", f"{plan.source}#/pii")
        issues: list[str] = []
        extra = raw.get("categories") or []
        if not isinstance(extra, list) or not all(isinstance(c, str) for c in extra):
            issues.append(f"{where}/categories: must be a list of category names")
            extra = []
        categories = tuple(dict.fromkeys([*CATEGORIES, *extra]))
        defaults: dict[str, str] = {}
        for cat, act in dict(raw.get("defaults") or {}).items():
            if cat not in categories:
                issues.append(f"{where}/defaults/{jp.escape(cat)}: unknown category")
            elif act not in ACTIONS:
                issues.append(
                    f"{where}/defaults/{jp.escape(cat)}: action must be one of {', '.join(ACTIONS)}"
                )
            else:
                defaults[str(cat)] = str(act)
        key_env = raw.get("hash_key_env", DEFAULT_KEY_ENV)
        if not isinstance(key_env, str) or not key_env:
            issues.append(f"{where}/hash_key_env: must name an environment variable")
            key_env = DEFAULT_KEY_ENV
        # on for every plan, imported ones with no pii section included: silence is not "off"
        detection = _detection(raw.get("detection"), f"{where}/detection", issues)
        national = _national(raw, where, issues)
        fields: list[DeclaredField] = []
        not_pii: list[DeclaredField] = []
        for rule in plan.rules:
            for found in _declared(plan, rule, categories, defaults, issues):
                (fields if found.category is not None else not_pii).append(found)
        if issues:
            raise CompileError("invalid PII declarations:\n  " + "\n  ".join(issues))
        policy = cls(
            defaults, key_env, detection, categories, tuple(fields), tuple(not_pii), None, *national
        )
        needs = policy.needs_key()
        if not needs:
            return policy
        secret = env.get(key_env)
        if not secret:
            raise MissingSecretError(
                f"the plan hashes PII (first at {needs[0]}) but the environment variable "
                f"{key_env} is not set: set it to a secret key (read at compile time, never "
                "logged); trackplan never makes an unkeyed hash"
            )
        return cls(
            defaults,
            key_env,
            detection,
            categories,
            tuple(fields),
            tuple(not_pii),
            secret.encode("utf-8"),
            *national,
        )


def _national(
    raw: Mapping[str, Any], where: str, issues: list[str]
) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """``pii.default_region``, ``pii.phone_regions`` and ``pii.id_countries``, checked
    (phone regions against phonenumbers', countries against :mod:`national_ids`)."""
    region = raw.get("default_region")
    if region is not None:
        if not isinstance(region, str) or not _known_region(region.upper()):
            issues.append(f"{where}/default_region: must be a region code such as GB or DE")
            region = None
        else:
            region = region.upper()
    regions = raw.get("phone_regions") or []
    if not isinstance(regions, list) or not all(
        isinstance(r, str) and _known_region(r.upper()) for r in regions
    ):
        issues.append(f"{where}/phone_regions: must be a list of region codes such as DE, IN")
        regions = []
    countries = raw.get("id_countries") or []
    if not isinstance(countries, list) or not all(
        isinstance(c, str) and c.lower() in ID_COUNTRIES for c in countries
    ):
        issues.append(
            f"{where}/id_countries: must be a list of countries among "
            f"{', '.join(sorted(ID_COUNTRIES))}"
        )
        countries = []
    return (
        region,
        tuple(dict.fromkeys(r.upper() for r in regions)),
        tuple(dict.fromkeys(c.lower() for c in countries)),
    )


def _known_region(region: str) -> bool:
    return len(region) == 2 and region.isalpha() and known_region(region)


def _detection(raw: Any, where: str, issues: list[str]) -> Detection:
    if raw is None:
        return Detection()
    if not isinstance(raw, Mapping):
        if detection_off(raw):  # off (YAML's false) or "off"
            return Detection(enabled=False)
        issues.append(f"{where}: must be an object (or off)")
        return Detection()
    base = Detection()
    flags: dict[str, bool] = {}
    for name in ("enabled", "values", "key_names"):
        value = raw.get(name, getattr(base, name))
        if not isinstance(value, bool):
            issues.append(f"{where}/{name}: must be true or false")
            value = getattr(base, name)
        flags[name] = value
    context = raw.get("context", list(base.context))
    if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
        issues.append(f"{where}/context: must be a list of context field names")
        context = list(base.context)
    action = raw.get("action", base.action)
    if action not in (*ACTIONS, CATEGORY_DEFAULT):
        issues.append(f"{where}/action: must be one of {', '.join(ACTIONS)} or default")
        action = base.action
    return Detection(
        flags["enabled"], flags["values"], flags["key_names"], tuple(context), str(action)
    )


_SAME_PATH = ("allOf", "anyOf", "oneOf")
_SAME_PATH_ONE = ("if", "then", "else")
_ITEMS = ("items", "additionalItems", "prefixItems", "contains", "unevaluatedItems")
_VALUES = ("additionalProperties", "unevaluatedProperties")


def _declared(
    plan: Plan,
    rule: Rule,
    categories: tuple[str, ...],
    defaults: Mapping[str, str],
    issues: list[str],
) -> Iterator[DeclaredField]:
    """Every ``x-pii`` reachable in the rule's whole-call schema, with its call path.

    Local ``$ref`` to the plan's definitions are followed (once per chain: cycles end).
    Identify traits are declared under ``context.traits`` as well, where SDKs put them.
    """
    root = rule_call_view(rule)  # read only: never changed below
    defs = dict(plan.definitions)
    for key in ("definitions", "$defs"):
        own = root.get(key)
        if isinstance(own, Mapping):
            defs.update(own)
    seen: dict[tuple[str, ...], DeclaredField] = {}
    # (schema, call path, pointer in the rule's file, $refs followed on the way)
    stack: list[tuple[Any, tuple[str, ...], str, frozenset[str]]] = [
        (root, (), rule.pointer, frozenset())
    ]
    while stack:
        node, path, ptr, refs = stack.pop()
        if not isinstance(node, Mapping):
            continue
        if "x-pii" in node:
            parsed = parse_annotation(node["x-pii"])
            at = f"{rule.source}#{ptr}/x-pii"
            if isinstance(parsed, str):
                issues.append(f"{at} [{rule.label}]: {parsed}")
                continue
            category, action, basis = parsed
            if category is not None and category not in categories:
                issues.append(
                    f"{at} [{rule.label}]: unknown PII category {category!r}; "
                    f"known: {', '.join(categories)}"
                )
                continue
            if action is not None and action not in ACTIONS:
                issues.append(
                    f"{at} [{rule.label}]: unknown PII action {action!r}; "
                    f"expected one of {', '.join(ACTIONS)}"
                )
                continue
            if not path and category is not None:
                issues.append(
                    f"{at} [{rule.label}]: x-pii on the whole call; declare it on the "
                    "properties, traits or context fields that hold PII"
                )
                continue
            if category is None:
                act = "allow"
            else:
                act = action or defaults.get(category, DEFAULT_ACTION)
            found = DeclaredField(rule, path, category, act, basis, at)
            before = seen.get(path)
            if (
                before is None
                or (found.declared and not before.declared)
                or (found.declared and stricter(found.action, before.action) != before.action)
            ):
                seen[path] = found
            continue  # a declared value is handled whole
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = _resolve(ref, defs)
            if target is not None and ref not in refs:
                stack.append((target, path, ptr, refs | {ref}))
        props = node.get("properties")
        if isinstance(props, Mapping):
            for name, sub in props.items():
                if path:
                    at_ptr = jp.join(ptr, "properties", name)
                elif name == rule.payload_key:  # the payload sits at the rule's top level
                    at_ptr = jp.join(rule.pointer, name)
                else:
                    at_ptr = jp.join(rule.pointer, "call", "properties", name)
                stack.append((sub, (*path, str(name)), at_ptr, refs))
        pats = node.get("patternProperties")
        if isinstance(pats, Mapping):
            for pat, sub in pats.items():
                stack.append((sub, (*path, ANY), jp.join(ptr, "patternProperties", pat), refs))
        for key in _VALUES:
            sub = node.get(key)
            if isinstance(sub, Mapping):
                stack.append((sub, (*path, ANY), jp.join(ptr, key), refs))
        for key in _ITEMS:
            sub = node.get(key)
            if isinstance(sub, Mapping):
                stack.append((sub, (*path, ANY), jp.join(ptr, key), refs))
            elif isinstance(sub, list):  # tuple form: every item, the protective reading
                for i, item in enumerate(sub):
                    stack.append((item, (*path, ANY), jp.join(ptr, key, i), refs))
        for key in _SAME_PATH:
            subs = node.get(key)
            if isinstance(subs, list):
                for i, sub in enumerate(subs):
                    stack.append((sub, path, jp.join(ptr, key, i), refs))
        for key in _SAME_PATH_ONE:
            sub = node.get(key)
            if isinstance(sub, Mapping):
                stack.append((sub, path, jp.join(ptr, key), refs))
    for path in sorted(seen):
        found = seen[path]
        yield found
        if rule.kind == "identify" and path[:1] == ("traits",):
            yield DeclaredField(
                rule, ("context", *path), found.category, found.action, found.basis, found.location
            )


def _resolve(ref: str, defs: Mapping[str, Any]) -> Any:
    """The plan definition a local ``$ref`` names (``#/definitions/x`` or ``#/$defs/x``)."""
    for prefix in ("#/definitions/", "#/$defs/"):
        if ref.startswith(prefix):
            parts = jp.parse(ref[1:])[1:]
            node: Any = defs
            for part in parts:
                if not isinstance(node, Mapping) or part not in node:
                    return None
                node = node[part]
            return node
    return None
