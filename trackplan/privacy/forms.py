"""Per-destination PII forms: the copy of an enforced event one destination may receive.

The plan's PII actions (:mod:`trackplan.pii`) run first, in :meth:`Enforcer.enforce`: they
are the floor every destination gets. A destination's ``pii`` map can only tighten that:
for each declared PII field present in the event, the destination's form for the field's
category applies when it is more protective than the plan's action
(``allow < hash < mask < redact < drop < reject``). A category the destination does not
list is dropped. Where the plan already hashed or masked a value and the destination asks
for the other transformation, the raw value is gone, so the field is redacted. ``reject``
keeps the event away from that destination. A destination without a ``pii`` map gets the
plan's forms as they are (the data-protection report lists it as a gap).

``sha256`` (plain SHA-256 of the normalised value, what ad platforms match on) is the one
form that may differ from a plan's ``hash``: it is made from the raw value (the event as it
came in, which :meth:`DestinationForms.apply` takes as ``source``) where the plan allows or
hashes the category; where the plan masks it the field is redacted, and a stricter plan
action stands. Without the raw value a plan-hashed field is redacted, never passed on as
if its HMAC were the plain hash.

Each action is the one function of :mod:`trackplan.pii.actions`; nothing is redefined here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trackplan.pii.actions import Canon, apply_action, plain_hash
from trackplan.pii.policy import PiiPolicy, applies_to_every_call
from trackplan.plan.model import Plan, Rule
from trackplan.privacy.destinations import FORM_RANK, Destination, Privacy

__all__ = ["PiiField", "DestinationForms", "pii_fields", "effective_form"]

#: A path token matching every item of an array (or every value of an object).
ANY = "*"


@dataclass(frozen=True, slots=True)
class PiiField:
    """One declared PII field: the rule it belongs to (None: every call), where it sits in
    a call (tokens; :data:`ANY` for array items), its category and the plan's action."""

    rule: tuple[str, str | None, int] | None
    path: tuple[str, ...]
    category: str
    action: str


def _rule_key(rule: Rule) -> tuple[str, str | None, int]:
    return (rule.kind, rule.name, rule.version)


def pii_fields(plan: Plan, policy: PiiPolicy | None = None) -> list[PiiField]:
    """Every declared PII field of the plan, from its :class:`PiiPolicy`.

    Without ``policy`` one is built; the hash key is not needed for that (nothing is
    hashed here), so a placeholder stands in for it when the environment lacks it.
    """
    if policy is None:
        policy = policy_without_key(plan)
    out = []
    for f in policy.fields:
        if f.category is None:
            continue
        key = None if applies_to_every_call(f) else _rule_key(f.rule)
        out.append(PiiField(key, tuple(f.path), f.category, f.action))
    return out


def policy_without_key(plan: Plan, defaults: dict[str, str] | None = None) -> PiiPolicy:
    """The plan's PII policy built without its hash key (for reports and route planning).

    ``defaults`` replaces the plan's per-category defaults (the report uses it to tell
    declared actions from defaulted ones).
    """
    import dataclasses
    import os

    from trackplan.pii.policy import DEFAULT_KEY_ENV, PiiPolicy

    env_name = plan.pii.get("hash_key_env", DEFAULT_KEY_ENV) if plan.pii else DEFAULT_KEY_ENV
    environ = {**os.environ, str(env_name): "placeholder: never used to hash"}
    if defaults is not None:
        plan = dataclasses.replace(plan, pii={**plan.pii, "defaults": defaults})
    return PiiPolicy.from_plan(plan, environ=environ)


def effective_form(plan_action: str, form: str | None) -> str | None:
    """What the destination's form changes on top of the plan's action (None: nothing).

    ``hash`` and ``mask`` are not comparable: when the plan applied one and the
    destination asks for the other, the raw value is gone and the field is redacted.
    """
    if form is None or form == plan_action:
        return None
    if form == "sha256":  # a different hash, not a looser one: from the raw value
        if plan_action in ("allow", "hash"):
            return "sha256"
        return "redact" if plan_action == "mask" else None
    transforms = ("hash", "mask")
    if form in transforms and plan_action in transforms:
        return "redact"
    if FORM_RANK.get(form, 4) <= FORM_RANK.get(plan_action, 0):
        return None
    return form


class DestinationForms:
    """Applies each destination's PII forms to enforced events."""

    def __init__(self, plan: Plan, privacy: Privacy, policy: PiiPolicy | None = None) -> None:
        fields = pii_fields(plan, policy)
        self._policy = policy
        self._common = [f for f in fields if f.rule is None]
        self._by_rule: dict[tuple[str, str | None, int], list[PiiField]] = {}
        for f in fields:
            if f.rule is not None:
                self._by_rule.setdefault(f.rule, []).append(f)
        self._key: bytes | None = None
        # canonical forms before hashing (phones in E.164, in the plan's default region);
        # the keyless policy serves only for that: the key comes from _hash_key below
        self._canon = (policy or policy_without_key(plan)).canon()
        self._plans: dict[Any, tuple[tuple[PiiField, str], ...]] = {}
        self._dests = privacy.destinations
        self._rule_plans: dict[Any, _RulePlan] = {}
        needs_key = any(
            effective_form(f.action, d.form(f.category)) == "hash"
            for d in privacy.destinations
            for f in fields
        )
        if needs_key:
            self._key = _hash_key(plan, policy)

    def fields_for(self, rule: Rule | None) -> list[PiiField]:
        """Declared PII fields that apply to calls of ``rule``."""
        own = self._by_rule.get(_rule_key(rule), []) if rule is not None else []
        return [*self._common, *own]

    def _plan_for(self, dest: Destination, rule: Rule | None) -> tuple[tuple[PiiField, str], ...]:
        """The fields ``dest`` changes for calls of ``rule``, with the form (cached)."""
        key = (dest.name, _rule_key(rule) if rule is not None else None)
        found = self._plans.get(key)
        if found is None:
            found = tuple(
                (f, form)
                for f in self.fields_for(rule)
                if (form := effective_form(f.action, dest.form(f.category))) is not None
            )
            self._plans[key] = found
        return found

    def apply(
        self, dest: Destination, event: Any, rule: Rule | None = None, *, source: Any = None
    ) -> tuple[Any, tuple[str, ...]]:
        """``(copy for dest, rejected categories)``; the event itself when nothing changes.

        ``source`` is the event as it came in, before the plan's actions: ``sha256`` forms
        are made from its values. The copy shares every part of the event it does not
        change (copy on write).
        """
        if dest.pii is None or type(event) is not dict:
            return event, ()
        todo = [(f, form) for f, form in self._plan_for(dest, rule) if _present(event, f.path)]
        if not todo:
            return event, ()
        rejected = sorted({f.category for f, form in todo if form == "reject"})
        if rejected:
            return None, tuple(rejected)
        copy = dict(event)
        owned = {id(copy)}
        for f, form in todo:
            if form == "sha256":
                _plain(copy, owned, f, source, self._canon)
            else:
                _rewrite(copy, owned, f.path, f.category, form, self._key, self._canon)
        return copy, ()


    def apply_all(
        self, dests: Sequence[Destination], event: Any, rule: Rule | None = None, *,
        source: Any = None,
    ) -> list[tuple[Any, tuple[str, ...]]]:
        """:meth:`apply` for several destinations at once, sharing the work.

        The declared PII fields are looked up in the event once; destinations whose forms
        agree on the fields present get the same copy, made once. A copy may therefore be
        shared by several destinations and shares every unchanged part with ``event``:
        treat it as read-only. The result is what :meth:`apply` gives each destination.
        """
        if type(event) is not dict:
            return [(event, ())] * len(dests)
        plan = self._rule_plan(rule)
        present = plan.present(event)
        if not present:
            return [(event, ())] * len(dests)
        routes = plan.routes.get(present)
        if routes is None:
            routes = self._routes(plan, present)
        made: list[Any] = [None] * len(routes.todos)
        out: list[tuple[Any, tuple[str, ...]]] = []
        for dest in dests:
            if dest.pii is None:
                out.append((event, ()))
                continue
            what = routes.by_dest.get(dest.name)
            if what is None:  # a destination this router was not built with
                out.append(self.apply(dest, event, rule, source=source))
            elif isinstance(what, tuple):
                out.append((None, what))
            elif what < 0:
                out.append((event, ()))
            else:
                copy = made[what]
                if copy is None:
                    copy = made[what] = self._variant(plan, routes.todos[what], event, source)
                out.append((copy, ()))
        return out

    def _routes(self, plan: _RulePlan, present: tuple[int, ...]) -> _Routes:
        """Per destination, for calls of one rule with these fields present: the categories
        it rejects, -1 (the event as enforced) or the index of its form in ``todos``."""
        todos: list[tuple[tuple[int, str], ...]] = []
        by_dest: dict[str, tuple[str, ...] | int] = {}
        for name, forms in plan.forms.items():
            todo = tuple((i, form) for i in present if (form := forms[i]) is not None)
            rejected = tuple(sorted({plan.fields[i].category for i, form in todo
                                     if form == "reject"}))
            if rejected:
                by_dest[name] = rejected
            elif not todo:
                by_dest[name] = -1
            else:
                if todo not in todos:
                    todos.append(todo)
                by_dest[name] = todos.index(todo)
        found = _Routes(tuple(todos), by_dest)
        if len(plan.routes) >= 1024:  # bounded: combinations of fields present
            plan.routes.clear()
        plan.routes[present] = found
        return found

    def warm_up(self, rules: Iterable[Rule | None]) -> None:
        """Build now, for each of ``rules``, what is otherwise built at its first event
        (the fields its destinations change and their generated presence check)."""
        for rule in rules:
            self._rule_plan(rule)

    def _rule_plan(self, rule: Rule | None) -> _RulePlan:
        key = _rule_key(rule) if rule is not None else None
        found = self._rule_plans.get(key)
        if found is None:
            declared = self.fields_for(rule)
            forms = {d.name: tuple(effective_form(f.action, d.form(f.category))
                                   for f in declared) for d in self._dests}
            keep = [i for i in range(len(declared))
                    if any(per[i] is not None for per in forms.values())]
            fields = tuple(declared[i] for i in keep)
            paths = tuple((f.path[:-1], f.path[-1], ANY in f.path[:-1]) for f in fields)
            found = _RulePlan(
                key, fields, paths,
                {name: tuple(per[i] for i in keep) for name, per in forms.items()},
                _presence(paths),
            )
            self._rule_plans[key] = found
        return found

    def _variant(self, plan: _RulePlan, todo: tuple[tuple[int, str], ...],
                 event: dict[str, Any], source: Any) -> dict[str, Any]:
        """One destination form of ``event``: containers on the way to a changed field are
        copied once, everything else is shared."""
        copy = dict(event)
        run = plan.runs.get(todo, _ABSENT)
        if run is _ABSENT:
            tree = _tree(plan, todo)
            if len(plan.runs) >= 1024:  # bounded, as plan.routes
                plan.runs.clear()
            run = plan.runs[todo] = None if tree is None else self._compile(plan, tree)
        if run is not None:
            run(copy, source)
            return copy
        # one field inside another: field by field, in the plan's order, each at the
        # places it was found in the enforced event
        made: dict[tuple[Any, ...], Any] = {(): copy}
        for i, form in todo:
            f = plan.fields[i]
            head, last, wild = plan.paths[i]
            for prefix in _parents(event, head, last, wild):
                parent = _reach(prefix, made)
                if parent is None:
                    continue
                if form == "sha256":
                    raw = _walk(source if f.action != "allow" else copy, prefix)
                    for slot in _slots(parent, last):
                        value = _at(raw, slot)
                        if value is _ABSENT or value is None or isinstance(value, dict | list):
                            parent[slot] = apply_action("redact", f.category, parent[slot],
                                                        None)[1]
                        else:
                            parent[slot] = plain_hash(f.category, value, canon=self._canon)
                    continue
                for slot in reversed(_slots(parent, last)):
                    keep, value = apply_action(form, f.category, parent[slot], self._key,
                                               canon=self._canon)
                    if keep:
                        parent[slot] = value
                    else:
                        del parent[slot]
        return copy


    def _compile(self, plan: _RulePlan, tree: _Tree) -> Callable[[Any, Any], None]:
        """``tree`` as one straight-line Python function ``(copy, source)``: each container
        on the way copied once, each field's form applied where it is present.

        Path tokens come from the plan: they enter the code only as ``repr`` literals;
        actions are called through a table of functions, never written into the code.
        """
        lines: list[str] = []
        table: dict[str, Any] = {"_ABSENT": _ABSENT, "_at": _at}
        names = itertools.count()

        def slots(node: str) -> str:  # what a wildcard matches: list indexes or dict keys
            return (f"(range(len({node})) if type({node}) is list else list({node}) "
                    f"if type({node}) is dict else ())")

        def emit(depth: int, node: str, raw: str | None, sub: _Tree, is_dict: bool) -> None:
            pad = "    " * depth
            children, leaves = sub
            for token, child in children:
                n, r, k = f"n{next(names)}", f"r{next(names)}", f"k{next(names)}"
                lists = _wild_level(child)  # a list below only matters to a wildcard
                if token == ANY:
                    lines.append(f"{pad}for {k} in {slots(node)}:")
                    lines.append(f"{pad}    {n} = {node}[{k}]")
                    slot, inner = k, pad + "    "
                else:
                    get = f"{node}.get({token!r}, _ABSENT)"
                    lines.append(f"{pad}{n} = {get}" if is_dict else
                                 f"{pad}{n} = {get} if type({node}) is dict else _ABSENT")
                    slot, inner = repr(token), pad
                if lists:
                    lines.append(f"{inner}if type({n}) is dict or type({n}) is list:")
                    lines.append(f"{inner}    {n} = {node}[{slot}] = type({n})({n})")
                else:
                    lines.append(f"{inner}if type({n}) is dict:")
                    lines.append(f"{inner}    {n} = {node}[{slot}] = dict({n})")
                raw_child = None
                if raw is not None and _plain_below(child):  # sha256 reads the raw event
                    lines.append(f"{inner}    {r} = _at({raw}, {slot})")
                    raw_child = r
                emit(len(inner) // 4 + 1, n, raw_child, child, not lists)
            for last, index, form in leaves:
                act = f"a{next(names)}"
                if form != "drop":
                    table[act] = self._leaf(plan.fields[index], form)
                if last == ANY:
                    k = f"k{next(names)}"
                    lines.append(f"{pad}for {k} in reversed({slots(node)}):")
                    slot = k
                else:
                    test = f"{last!r} in {node}"
                    lines.append(f"{pad}if {test}:" if is_dict else
                                 f"{pad}if type({node}) is dict and {test}:")
                    slot = repr(last)
                if form == "drop":
                    lines.append(f"{pad}    del {node}[{slot}]")
                else:
                    given = f"_at({raw}, {slot})" if raw is not None and form == "sha256" \
                        else "None"
                    lines.append(f"{pad}    {node}[{slot}] = {act}({node}[{slot}], {given})")
            if not children and not leaves:
                lines.append(f"{pad}pass")

        emit(1, "copy", "source", tree, True)
        code = "def run(copy, source):\n" + "\n".join(lines) + "\n"
        table["__builtins__"] = {"dict": dict, "list": list, "type": type, "len": len,
                                 "range": range, "reversed": reversed}
        exec(compile(code, "<trackplan destination form>", "exec"), table)  # noqa: S102
        run: Callable[[Any, Any], None] = table["run"]
        run.source = code  # type: ignore[attr-defined]
        return run

    def _leaf(self, f: PiiField, form: str) -> Callable[[Any, Any], Any]:
        """``(value, raw value) -> new value`` for one field in one form (not drop)."""
        category, key, canon = f.category, self._key, self._canon
        if form == "sha256":
            from_raw = f.action != "allow"

            def plain(value: Any, raw: Any) -> Any:
                origin = raw if from_raw else value
                if origin is _ABSENT or origin is None or isinstance(origin, dict | list):
                    return apply_action("redact", category, value, None)[1]
                return plain_hash(category, origin, canon=canon)

            return plain

        def act(value: Any, raw: Any) -> Any:
            return apply_action(form, category, value, key, canon=canon)[1]

        return act


#: A destination form as a tree: (children: (token, subtree), leaves: (last token, field
#: index, form)); each container on the way is copied once.
_Tree = tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, int, str], ...]]


def _plain_below(tree: _Tree) -> bool:
    """Whether ``tree`` holds a ``sha256`` field (made from the event as it came in)."""
    children, leaves = tree
    return any(form == "sha256" for _, _, form in leaves) or any(
        _plain_below(sub) for _, sub in children)


def _wild_level(tree: _Tree) -> bool:
    """Whether the top level of ``tree`` has a wildcard (it then matches list items)."""
    children, leaves = tree
    return any(last == ANY for last, _, _ in leaves) or any(t == ANY for t, _ in children)


def _tree(plan: _RulePlan, todo: tuple[tuple[int, str], ...]) -> _Tree | None:
    """The fields of ``todo`` as a tree; None when one field lies inside another (then
    the order of the fields matters and the field-by-field walk applies)."""
    paths = [plan.fields[i].path for i, _ in todo]
    for a in paths:
        for b in paths:
            if a is not b and b[: len(a)] == a:
                return None
    root: dict[str, Any] = {}
    leaves: dict[int, list[tuple[str, int, str]]] = {}

    def node(at: dict[str, Any], token: str) -> dict[str, Any]:
        found: dict[str, Any] = at.setdefault(token, {})
        return found

    for i, form in todo:
        *head, last = plan.fields[i].path
        at = root
        for token in head:
            at = node(at, token)
        leaves.setdefault(id(at), []).append((last, i, form))

    def freeze(at: dict[str, Any]) -> _Tree:
        return (tuple((t, freeze(sub)) for t, sub in at.items()), tuple(leaves.get(id(at), ())))

    return freeze(root)


@dataclass(frozen=True, slots=True)
class _RulePlan:
    """The fields some destination changes in calls of one rule: ``paths`` holds each
    field's (parent path, last token, whether the parent path has a wildcard) and
    ``forms`` each destination's effective form per field (None: unchanged)."""

    key: Any
    fields: tuple[PiiField, ...]
    paths: tuple[tuple[tuple[str, ...], str, bool], ...]
    forms: dict[str, tuple[str | None, ...]]
    #: event -> indexes of the fields present in it, ascending
    present: Callable[[dict[str, Any]], tuple[int, ...]]
    #: fields present -> what each destination gets (filled as events arrive)
    routes: dict[tuple[int, ...], _Routes] = field(default_factory=dict)
    #: a destination form -> its compiled runner (None: the field-by-field walk)
    runs: dict[tuple[tuple[int, str], ...], Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Routes:
    """Destination forms for one set of fields present: ``todos`` the distinct forms
    (field index, form), ``by_dest`` per destination its rejected categories, -1 (no
    change) or the index of its form."""

    todos: tuple[tuple[tuple[int, str], ...], ...]
    by_dest: dict[str, tuple[str, ...] | int]


def _presence(paths: tuple[tuple[tuple[str, ...], str, bool], ...]
              ) -> Callable[[dict[str, Any]], tuple[int, ...]]:
    """One generated function telling which of the fields at ``paths`` an event holds (as
    :func:`_parents` would, each shared prefix looked up once). Tokens enter the code only
    as ``repr`` literals; fields under a wildcard are asked of :func:`_parents`."""
    trie: dict[str, Any] = {}
    #: (id of a trie node, last token) -> the fields that end there
    marks: dict[tuple[int, str], list[int]] = {}
    table: dict[str, Any] = {"_ABSENT": _ABSENT}
    lines = ["    out = []"]
    for i, (head, last, wild) in enumerate(paths):
        if wild or last == ANY:
            table[f"w{i}"] = lambda event, p=paths[i]: bool(_parents(event, *p))
            lines.append(f"    if w{i}(event):")
            lines.append(f"        out.append({i})")
            continue
        at = trie
        for token in head:
            at = at.setdefault(token, {})
        at.setdefault(last, {})
        marks.setdefault((id(at), last), []).append(i)
    names = itertools.count()

    def emit(depth: int, node: str, at: dict[str, Any]) -> None:
        pad = "    " * depth
        for token, sub in at.items():
            n = f"n{next(names)}"
            lines.append(f"{pad}{n} = {node}.get({token!r}, _ABSENT)")
            for i in marks.get((id(at), token), ()):
                lines.append(f"{pad}if {n} is not _ABSENT:")
                lines.append(f"{pad}    out.append({i})")
            if sub:
                lines.append(f"{pad}if type({n}) is dict:")
                emit(depth + 1, n, sub)

    emit(1, "event", trie)
    lines.append("    out.sort()")
    lines.append("    return tuple(out)")
    code = "def present(event):\n" + "\n".join(lines) + "\n"
    table["__builtins__"] = {"type": type, "tuple": tuple, "dict": dict}
    exec(compile(code, "<trackplan pii presence>", "exec"), table)  # noqa: S102
    fn: Callable[[dict[str, Any]], tuple[int, ...]] = table["present"]
    return fn


def _parents(event: Any, head: tuple[str, ...], last: str, wild: bool) -> list[tuple[Any, ...]]:
    """The concrete paths (dict keys, list indexes) of the containers under which a field
    with parent path ``head`` and last token ``last`` is present (as :func:`_present`)."""
    if not wild:
        node = event
        for token in head:
            if type(node) is not dict:
                return []
            node = node.get(token, _ABSENT)
        if last == ANY:
            return [head] if type(node) in (dict, list) and node else []
        return [head] if type(node) is dict and last in node else []
    out: list[tuple[Any, ...]] = []
    level: list[tuple[tuple[Any, ...], Any]] = [((), event)]
    for token in head:
        nxt = []
        for at, node in level:
            for slot in _slots(node, token):
                nxt.append(((*at, slot), node[slot]))
        level = nxt
    for at, node in level:
        if last == ANY:
            if type(node) in (dict, list) and node:
                out.append(at)
        elif type(node) is dict and last in node:
            out.append(at)
    return out


def _reach(prefix: tuple[Any, ...], made: dict[tuple[Any, ...], Any]) -> Any:
    """The container at ``prefix`` in the copy being made, copied (once) on the way; None
    when an earlier field removed or replaced it."""
    node = made.get(prefix)
    if node is not None:
        return node
    parent = _reach(prefix[:-1], made)
    if parent is None:
        return None
    slot = prefix[-1]
    child = _at(parent, slot)
    if type(child) is dict:
        child = dict(child)
    elif type(child) is list:
        child = list(child)
    else:
        return None
    parent[slot] = child
    made[prefix] = child
    return child


def _walk(node: Any, prefix: tuple[Any, ...]) -> Any:
    for slot in prefix:
        node = _at(node, slot)
    return node


def _plain(
    root: dict[str, Any], owned: set[int], f: PiiField, source: Any, canon: Canon
) -> None:
    """Write the plain SHA-256 of each raw value at ``f.path`` (read from ``source``; from
    the event itself where the plan allows the category); redact where no raw value is."""
    raw = source if f.action != "allow" else root
    *head, last = f.path
    pairs: list[tuple[Any, Any]] = [(root, raw)]
    for token in head:
        nxt = []
        for p, r in pairs:
            for slot in _slots(p, token):
                child = _own(p, slot, owned)
                nxt.append((child, _at(r, slot)))
        pairs = nxt
    for p, r in pairs:
        for slot in _slots(p, last):
            value = _at(r, slot)
            if value is _ABSENT or value is None or isinstance(value, dict | list):
                p[slot] = apply_action("redact", f.category, p[slot], None)[1]
            else:
                p[slot] = plain_hash(f.category, value, canon=canon)


_ABSENT = object()


def _at(node: Any, slot: Any) -> Any:
    """``node[slot]`` when it is there (a dict key or a list index), else ``_ABSENT``."""
    if type(node) is dict and type(slot) is str:
        return node.get(slot, _ABSENT)
    if type(node) is list and type(slot) is int and 0 <= slot < len(node):
        return node[slot]
    return _ABSENT


def _hash_key(plan: Plan, policy: PiiPolicy | None) -> bytes:
    """The plan's hash key: the policy's, else read from the variable the plan names."""
    import os

    from trackplan.errors import MissingSecretError
    from trackplan.pii.policy import DEFAULT_KEY_ENV

    if policy is not None and policy.key:
        return policy.key
    env = str(policy.hash_key_env if policy else plan.pii.get("hash_key_env", DEFAULT_KEY_ENV))
    value = os.environ.get(env)
    if not value:
        raise MissingSecretError(
            f"a destination receives hashed PII but the environment variable {env} is not "
            "set: set it to a secret key (never logged)"
        )
    return value.encode("utf-8")


def _present(node: Any, path: tuple[str, ...]) -> bool:
    for i, token in enumerate(path):
        if token == ANY:
            items = (
                node if type(node) is list else list(node.values()) if type(node) is dict else []
            )
            return any(_present(item, path[i + 1 :]) for item in items)
        if type(node) is not dict or token not in node:
            return False
        node = node[token]
    return True


def _own(parent: Any, slot: Any, owned: set[int]) -> Any:
    """``parent[slot]``, copied first unless this routing already owns it."""
    child = parent[slot]
    if id(child) in owned or type(child) not in (dict, list):
        return child
    child = dict(child) if type(child) is dict else list(child)
    parent[slot] = child
    owned.add(id(child))
    return child


def _slots(node: Any, token: str) -> list[Any]:
    if token == ANY:
        if type(node) is list:
            return list(range(len(node)))
        return list(node) if type(node) is dict else []
    return [token] if type(node) is dict and token in node else []


def _rewrite(
    root: dict[str, Any],
    owned: set[int],
    path: tuple[str, ...],
    category: str,
    form: str,
    key: bytes | None,
    canon: Canon | None = None,
) -> None:
    """Apply ``form`` at every match of ``path``, copying containers on the way (never the
    enforced event's own objects)."""
    *head, last = path
    parents: list[Any] = [root]
    for token in head:
        parents = [_own(p, slot, owned) for p in parents for slot in _slots(p, token)]
    for p in parents:
        for slot in reversed(_slots(p, last)):
            keep, value = apply_action(form, category, p[slot], key, canon=canon)
            if keep:
                p[slot] = value
            else:
                del p[slot]
