"""PII transforms specialised per rule, for events the rule's validator has accepted.

:class:`~trackplan.pii.engine.Transformer` walks any event along a tree of paths. An event
that passed validation is known to match its rule's schema, and that knowledge removes
most of the walk: a property whose schema admits only numbers, booleans, an ``enum`` of
clean words, a short string or a ``date-time`` can hold no PII a detector finds, and the
strings that do need scanning are looked up in the detectors' clean caches in one chain of
C-level lookups. When one is missing, a second validator (the call schema with a regex
prefilter on every scanned string, in Rust) rules out PII for the whole event at once, and
only what it cannot rule out is scanned in Python. :func:`build` generates one Python
function per rule that does what the walk does on such an event (the same result; findings
may come in another order), and calls back into the walk wherever the schema says too
little (unplanned keys, keys whose names look like PII, ``anyOf``, deep nesting).

Nothing from the plan enters the generated source: keys, paths and helpers are module
globals named ``_k<N>``, and the code only indexes them. The function copies what it
changes (copy on write) and never mutates its argument.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trackplan import pointer as jp
from trackplan.pii.detect import (
    CACHE_LEN,
    CLEAN,
    PREFILTER,
    PREFILTER_ID,
    RULED_OUT,
    SAFE_WHOLE,
    clean_set,
    key_class,
    name_category,
    prefilter_for,
    remember,
    rust_check,
    scan,
)
from trackplan.pii.nodes import DETECT_ALL, DROP, MEMO_ACTIONS, Block, Node

if TYPE_CHECKING:
    from trackplan.pii.engine import Transformer

__all__ = ["build"]

#: Formats whose valid values no detector flags (formats are asserted by the validators).
_SAFE_FORMATS = frozenset({"date-time", "date", "time", "uuid", "duration"})
#: Scalar types that hold no string.
_NO_TEXT = frozenset({"integer", "number", "boolean", "null"})
#: Nesting generated inline; deeper values go to the walk.
_MAX_DEPTH = 8
#: Strings shorter than this are never scanned (see ``detect.scan``).
_MIN_SCAN = 6


_INERT = "inert"
_STRING = "string"
_OBJECT = "object"
_ARRAY = "array"
_UNKNOWN = "unknown"

Kind = tuple[str, Any]


def _resolve(schema: Any, root: Any, depth: int = 0) -> Any:
    """``schema`` with local ``$ref``s followed; None when a ref cannot be followed here."""
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if depth > 16 or not isinstance(ref, str) or not ref.startswith("#"):
            return None
        target = jp.resolve(root, ref[1:], _MISSING)
        if target is _MISSING:
            return None
        schema, depth = target, depth + 1
    return schema


def kind_of(schema: Any, root: Any) -> Kind:
    """What a value valid against ``schema`` can be, as far as PII is concerned.

    ``("inert", None)``: nothing a detector could flag; ``("string", None)``: a string (or
    null); ``("object", properties)``; ``("array", item schema or None)``; ``("unknown",
    None)``: anything.
    """
    schema = _resolve(schema, root)
    if schema is False:
        return _INERT, None
    if not isinstance(schema, dict):
        return _UNKNOWN, None
    values: list[Any] | None = None
    if "const" in schema:
        values = [schema["const"]]
    elif isinstance(schema.get("enum"), list):
        values = schema["enum"]
    if values is not None and all(_clean_scalar(v) for v in values):
        return _INERT, None
    raw = schema.get("type")
    types = {raw} if isinstance(raw, str) else set(raw) if isinstance(raw, list) else None
    if not types or not all(isinstance(t, str) for t in types):
        return _UNKNOWN, None
    if types <= _NO_TEXT:
        return _INERT, None
    if types <= _NO_TEXT | {"string"}:
        if "string" not in types or types - {"string", "null"}:
            return (_STRING, None) if types <= {"string", "null"} else (_UNKNOWN, None)
        if schema.get("format") in _SAFE_FORMATS:
            return _INERT, None
        max_length = schema.get("maxLength")
        if type(max_length) is int and max_length < _MIN_SCAN:
            return _INERT, None
        return _STRING, None
    if types == {"object"}:
        props = schema.get("properties")
        return _OBJECT, props if isinstance(props, dict) else {}
    if types == {"array"}:
        items = schema.get("items")
        if "prefixItems" in schema or not isinstance(items, dict | bool):
            return _ARRAY, None
        return _ARRAY, items
    return _UNKNOWN, None


def _string_only(schema: Any, root: Any) -> bool:
    """Whether every value valid against ``schema`` is a string."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return False
    raw = schema.get("type")
    return raw == "string" or raw == ["string"]


def _clean_scalar(value: Any) -> bool:
    if value is None or type(value) in (bool, int, float):
        return True
    return type(value) is str and not scan(value)


class _Path:
    """A path while generating: constant tokens and loop variables (array indexes)."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[tuple[bool, Any], ...] = ()) -> None:
        self.parts = parts  # (is_variable, token or variable name)

    def key(self, token: str) -> _Path:
        return _Path((*self.parts, (False, token)))

    def index(self, variable: str) -> _Path:
        return _Path((*self.parts, (True, variable)))

    def parent(self) -> _Path:
        return _Path(self.parts[:-1])


class _Shape:
    """The parts of an object's generated code (see :meth:`_Gen.shape`)."""

    __slots__ = ("props", "leaves", "checked", "children", "scan_keys", "known", "extras")

    def __init__(self, props: dict[str, Any]) -> None:
        #: the object's ``properties``
        self.props = props
        #: declared fields with an action to apply
        self.leaves: list[tuple[str, Node]] = []
        #: declared free text (``allow``): scanned unless in the clean cache
        self.checked: list[tuple[str, Node]] = []
        #: (key, node, schema, undeclared): objects and arrays to go into
        self.children: list[tuple[str, Node, Any, bool]] = []
        #: undeclared planned strings: scanned unless in their key's clean cache
        self.scan_keys: list[str] = []
        #: the keys the code handles; others go to the walk (``extras``)
        self.known: frozenset[str] = frozenset()
        self.extras = False

    def pure(self) -> bool:
        """Whether the code only checks strings against the clean caches (and keys)."""
        return not self.leaves and not self.children


class _Gen:
    """Emits one rule's function."""

    def __init__(
        self, transformer: Transformer, payload_key: str | None, closed: frozenset[str] | None
    ) -> None:
        self.t = transformer
        #: every planned string the code scans: (owner schema id, key, prefilter's key)
        self.scanned: list[tuple[int, str, str | None]] = []
        self.payload_key = payload_key
        self.closed = closed
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self.ids: dict[int, str] = {}
        self.counter = 0
        self.detect_all = DETECT_ALL
        self.drop = self.const(DROP)
        #: the global the prefiltered validator's ``is_valid`` is bound to (after exec)
        self.prefiltered = self.const(_PrefilterSlot)
        self.missing = self.const(_MISSING)
        #: the whole-call schema (where its local ``$ref``s point)
        self.root: Any = None
        #: whether the code asks the prefiltered validator
        self.asks = False

    # -- names ----------------------------------------------------------------------------
    def const(self, value: Any) -> str:
        """A global name bound to ``value`` (one per distinct object)."""
        key = id(value)
        name = self.ids.get(key)
        if name is None:
            name = self.ids[key] = f"_k{len(self.names)}"
            self.names[name] = value
        return name

    def token(self, value: Any) -> str:
        """A global name for a plan string or tuple (interned by value)."""
        for name, held in self.names.items():
            if type(held) is type(value) and held == value:
                return name
        name = f"_k{len(self.names)}"
        self.names[name] = value
        return name

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def path(self, path: _Path) -> str:
        if not any(is_var for is_var, _ in path.parts):
            return self.token(tuple(token for _, token in path.parts))
        items = [tok if is_var else self.token(tok) for is_var, tok in path.parts]
        return "(" + ", ".join(items) + ",)"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def unless_prefiltered(self, ind: int, cleared: list[str], scan: list[str]) -> None:
        """Code running ``cleared`` when the prefiltered validator passes the event (asked
        once per event, on the first cache miss), else ``scan``."""
        self.asks = True
        self.emit(ind, "if clean is None:")
        self.emit(ind + 1, f"clean = {self.prefiltered}(event)")
        self.emit(ind, "if clean:")
        for line in cleared:
            self.emit(ind + 1, line)
        self.emit(ind, "else:")
        for line in scan:
            self.emit(ind + 1, line)

    # -- blocks ---------------------------------------------------------------------------
    def assign(
        self, ind: int, src: str, out: str, key: str, old: str, new: str, *,
        may_drop: bool = True,
    ) -> None:
        """Copy-on-write store of ``new`` under ``key`` when it is not ``old`` (``may_drop``:
        ``new`` may be DROP, which removes the key)."""
        self.emit(ind, f"if {new} is not {old}:")
        self.store(ind + 1, src, out, key, new, may_drop=may_drop)

    def store(
        self, ind: int, src: str, out: str, key: str, new: str, *, may_drop: bool = True
    ) -> None:
        """Copy-on-write store of ``new`` under ``key``."""
        self.emit(ind, f"if {out} is None:")
        self.emit(ind + 1, f"{out} = {src}.copy()")
        if may_drop:
            self.emit(ind, f"if {new} is {self.drop}:")
            self.emit(ind + 1, f"del {out}[{key}]")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{out}[{key}] = {new}")
        else:
            self.emit(ind, f"{out}[{key}] = {new}")

    def obj(
        self, ind: int, src: str, node: Node, props: dict[str, Any], path: _Path,
        root: Any, depth: int, closed: frozenset[str] | None = None,
    ) -> str | None:
        """Code turning the dict in ``src`` into its transform. Returns the name that holds
        the changed copy (None at run time while nothing changed), or None when the code
        could change nothing (then nothing is emitted).

        ``closed``: the keys the object is known to be limited to (a payload validated
        closed to unplanned properties), so no other key needs a look.
        """
        mark = len(self.lines)
        out = self.fresh("o")
        self.emit(ind, f"{out} = None")
        shape = self.shape(node, props, root, depth, closed)
        for key, child in shape.leaves:
            self.leaf(ind, src, out, key, child, path.key(key), props)
        for key, child, schema, undeclared in shape.children:
            closed_child = self.closed if depth == 0 and key == self.payload_key else None
            self.child(ind, src, out, key, child, schema, path, root, depth,
                       undeclared=undeclared, person=node.person, closed=closed_child)
        extras_at = ind
        if shape.checked or shape.scan_keys:
            # the common case first: every string this object's code checks is in its
            # key's clean cache (absent keys give None, which every cache holds); only
            # when one is not does the code below look at each and scan what is new
            test, with_keys = self.clean_test(ind, src, shape)
            self.emit(ind, f"if not ({test}):")
            for key, child in shape.checked:
                self.leaf(ind + 1, src, out, key, child, path.key(key), props)
            if shape.scan_keys:
                self.scan_new(ind + 1, src, out, shape.scan_keys, props, path)
            if with_keys:
                extras_at = ind + 1  # keys unknown to the code fail the test
        if shape.extras:
            known_set = self.token(shape.known)
            self.emit(extras_at, f"if not {src}.keys() <= {known_set}:")
            self.emit(extras_at + 1, f"{out} = {self.const(self.t._extras)}({src}, "
                                     f"{self.const(node)}, {known_set}, {self.path(path)}, "
                                     f"violations, {out})")
        if len(self.lines) == mark + 1:  # nothing to do here
            del self.lines[mark:]
            return None
        return out

    def shape(
        self, node: Node, props: dict[str, Any], root: Any, depth: int,
        closed: frozenset[str] | None,
    ) -> _Shape:
        """What the code of an object at ``node`` (its schema's ``props``) does."""
        t = self.t
        shape = _Shape(props)
        known: set[str] = set()
        for key, child in node.keys.items():
            known.add(key)
            f = child.leaf
            if f is None:
                shape.children.append((key, child, props.get(key, True), False))
            elif f.category is None:
                continue  # declared not PII
            elif f.action == "allow" and f.category == "free_text" and t.values:
                shape.checked.append((key, child))  # free text: scanned unless clean
            elif f.action != "allow":
                shape.leaves.append((key, child))
        if node.detect and node.star is None:  # (with a star, the walk routes every key)
            for key, schema in props.items():
                if key in known or self.names_key(key, node.person):
                    continue
                kind, _ = kind_of(schema, root)
                if kind == _INERT or (kind == _STRING and not t.values):
                    known.add(key)
                elif kind == _STRING:
                    known.add(key)
                    shape.scan_keys.append(key)
                elif kind in (_OBJECT, _ARRAY):
                    known.add(key)
                    shape.children.append((key, self.detect_all, schema, True))
        shape.known = frozenset(known)
        shape.extras = bool((node.detect or node.star is not None)
                            and not (closed is not None and known >= closed))
        return shape

    def clean_test(self, ind: int, src: str, shape: _Shape) -> tuple[str, bool]:
        """An expression true when every string ``shape`` checks is in its clean cache:
        no Python frame, one lookup per key (one C loop over the values when the object
        may hold nothing else). Also whether the expression checks the keys too (then it
        is false when the object holds a key ``shape`` does not know)."""
        pairs = [(key, CLEAN) for key, _ in shape.checked]
        pairs += [(key, clean_set(key)) for key in shape.scan_keys]
        if (shape.extras and shape.known == {key for key, _ in pairs}
                and all(cache is CLEAN for _, cache in pairs)
                and all(kind_of(shape.props.get(key), self.root)[0] == _STRING
                        for key, _ in pairs)):
            # every key it may hold is a checked string (or null: hashable), so once its
            # keys are known its values go to the cache in one call
            return (f"{src}.keys() <= {self.token(shape.known)} and "
                    f"{self.const(CLEAN.issuperset)}({src}.values())"), True
        get = f"{src}.get"
        if len(pairs) > 1:
            get = self.fresh("g")
            self.emit(ind, f"{get} = {src}.get")
        return " and ".join(f"{get}({self.token(key)}) in {self.const(cache)}"
                            for key, cache in pairs), False

    def scan_new(
        self, ind: int, src: str, out: str, scan_keys: list[str], props: dict[str, Any],
        path: _Path,
    ) -> None:
        """Code for planned strings missing from their clean caches: each new one ruled
        out by the detectors' prefilter (in Rust, then cached) in one chain of C-level
        calls, or scanned in Python."""
        t = self.t
        self.scanned.extend((id(props), key, key) for key in scan_keys)
        get = self.fresh("g")
        self.emit(ind, f"{get} = {src}.get")
        keep = self.const(_keep)
        tests = []
        for key in scan_keys:
            value, cache = self.fresh("s"), self.const(clean_set(key))
            ruled_out = self.const(_RULED_OUT_UNDER_ID if key_class(key)[0] else RULED_OUT)
            tests.append(f"(({value} := {get}({self.token(key)})) in {cache} or "
                         f"{ruled_out}({value}) and {keep}({cache}, {value}))")
        keys = self.token(tuple(scan_keys))
        self.emit(ind, f"if not ({' and '.join(tests)}):")
        self.emit(ind + 1, f"{out} = {self.const(t._scan_keys)}({src}, {keys}, "
                           f"{self.path(path)}, violations, {out})")

    def child(
        self, ind: int, src: str, out: str, key: str, node: Node, schema: Any, path: _Path,
        root: Any, depth: int, *, undeclared: bool = False, person: bool = False,
        closed: frozenset[str] | None = None,
    ) -> None:
        """Code for the value under ``key`` of the dict in ``src``, stored into ``out``."""
        k = self.token(key)
        value = self.fresh("v")
        kind, sub = kind_of(schema, root)
        if kind == _OBJECT and depth + 1 <= _MAX_DEPTH:
            # valid: an object when present (None when absent), so no fallback is needed
            mark = len(self.lines)
            self.emit(ind, f"{value} = {src}.get({k})")
            self.emit(ind, f"if {value}.__class__ is dict:")
            changed = self.obj(ind + 1, value, node, sub, path.key(key), root, depth + 1,
                               closed)
            if changed is None:  # nothing to do in it
                del self.lines[mark:]
                return
            self.emit(ind + 1, f"if {changed} is not None:")
            self.store(ind + 2, src, out, k, changed, may_drop=False)
            return
        else:
            self.emit(ind, f"{value} = {src}.get({k}, {self.missing})")
            self.emit(ind, f"if {value} is not {self.missing}:")
            new = self.value(ind + 1, value, node, schema, path.key(key), root, depth + 1,
                             undeclared=key if undeclared else None, person=person)
        self.assign(ind + 1, src, out, k, value, new)

    def names_key(self, key: str, person: bool) -> bool:
        """Whether the walk checks this key's name (then the walk handles it)."""
        if not self.t.names:
            return False
        return name_category(key) is not None or (person and key.strip().lower() == "name")

    def leaf(
        self, ind: int, src: str, out: str, key: str, node: Node, path: _Path,
        props: dict[str, Any],
    ) -> None:
        f = node.leaf
        assert f is not None
        if f.category is None:
            return  # declared not PII
        if f.action == "allow" and not (f.category == "free_text" and self.t.values):
            return
        k = self.token(key)
        if f.action == "drop":
            self.emit(ind, f"if {k} in {src}:")
            self.emit(ind + 1, f"if {out} is None:")
            self.emit(ind + 2, f"{out} = {src}.copy()")
            self.emit(ind + 1, f"del {out}[{k}]")
            return
        value, new = self.fresh("v"), self.fresh("n")
        declared = self.const(self.t._declared)
        call = f"{declared}({value}, {self.const(f)}, {self.path(path)}, violations)"
        self.emit(ind, f"{value} = {src}.get({k}, {self.missing})")
        self.emit(ind, f"if {value} is not {self.missing}:")
        if f.action == "allow":  # free text: scanned unless cached or prefiltered clean
            cache = self.const(CLEAN)
            self.emit(ind + 1, f"if {value}.__class__ is str and {value} in {cache}:")
            self.emit(ind + 2, f"{new} = {value}")
            if key in props:
                self.scanned.append((id(props), key, None))  # scanned without its key
                self.emit(ind + 1, f"elif {value}.__class__ is str:")
                self.unless_prefiltered(
                    ind + 2,
                    [f"{self.const(remember)}({cache}, {value})", f"{new} = {value}"],
                    [f"{new} = {call}"],
                )
            self.emit(ind + 1, "else:")
            self.emit(ind + 2, f"{new} = {call}")
        elif f.action in MEMO_ACTIONS:
            # hash, mask and redact keep the key (reject raises Block): never DROP
            memo = self.const(self.t.memo(f.action, f.category))
            if _string_only(props.get(key), self.root):
                # valid: a string when present, so the absent key is None
                self.lines[-2:] = []
                self.emit(ind, f"{value} = {src}.get({k})")
                self.emit(ind, f"if {value} is not None:")
                self.memo_lookup(ind + 1, value, new, memo, call)
            else:
                self.emit(ind + 1, f"if {value}.__class__ is str:")
                self.memo_lookup(ind + 2, value, new, memo, call)
                self.emit(ind + 1, "else:")
                self.emit(ind + 2, f"{new} = {call}")
            self.assign(ind + 1, src, out, k, value, new, may_drop=False)
            return
        else:
            self.emit(ind + 1, f"{new} = {call}")
        self.assign(ind + 1, src, out, k, value, new)

    def memo_lookup(self, ind: int, value: str, new: str, memo: str, call: str) -> None:
        """``new``: the memoised result for the string in ``value``, or on a miss ``call``
        (which fills the memo)."""
        self.emit(ind, f"{new} = {memo}.get({value})")
        self.emit(ind, f"if {new} is None:")
        self.emit(ind + 1, f"{new} = {call}")

    def value(
        self, ind: int, src: str, node: Node, schema: Any, path: _Path, root: Any,
        depth: int, undeclared: str | None = None, person: bool = False,
        closed: frozenset[str] | None = None,
    ) -> str:
        """Code for a value at ``node`` (a declared subtree, or undeclared under detection)."""
        t = self.t
        result = self.fresh("n")
        walk = (f"{self.const(t._detect)}({self.token(undeclared)}, {src}, "
                f"{self.path(path.parent())}, {person}, violations)"
                if undeclared is not None
                else f"{self.const(t._visit)}({src}, {self.const(node)}, "
                     f"{self.path(path)}, violations)")
        kind, sub = kind_of(schema, root)
        if depth > _MAX_DEPTH or kind not in (_OBJECT, _ARRAY):
            self.emit(ind, f"{result} = {walk}")
            return result
        if kind == _OBJECT:
            self.emit(ind, f"if {src}.__class__ is dict:")
            changed = self.obj(ind + 1, src, node, sub, path, root, depth, closed)
            if changed is None:
                self.emit(ind + 1, f"{result} = {src}")
            else:
                self.emit(ind + 1, f"{result} = {src} if {changed} is None else {changed}")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{result} = {walk}")
            return result
        items_node = node.star if node.star is not None else (
            self.detect_all if node.detect else None)
        if items_node is None or sub is None or node.leaf is not None:
            self.emit(ind, f"{result} = {walk}")
            return result
        item_kind, item_props = kind_of(sub, root)
        if item_kind == _INERT and not items_node.keys and items_node.leaf is None:
            self.emit(ind, f"{result} = {src}")
            return result
        if item_kind == _STRING and items_node.leaf is None and not items_node.keys:
            resolved = _resolve(schema, root)
            issuperset = self.const(CLEAN.issuperset)
            self.emit(ind, f"if {src}.__class__ is list and {issuperset}({src}):")
            self.emit(ind + 1, f"{result} = {src}")
            if isinstance(resolved, dict):
                self.scanned.append((id(resolved), "items", None))
                self.emit(ind, f"elif {src}.__class__ is list:")
                self.unless_prefiltered(
                    ind + 1,
                    [f"{self.const(_remember_items)}({src})", f"{result} = {src}"],
                    [f"{result} = {walk}"],
                )
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{result} = {walk}")
            return result
        if item_kind != _OBJECT or items_node.leaf is not None:
            self.emit(ind, f"{result} = {walk}")
            return result
        # a list of objects: each item inline, the list copied on the first change
        items, index, item = self.fresh("l"), self.fresh("i"), self.fresh("e")
        item_path = path.index(index)
        if node.star is not None:
            item_walk = (f"{self.const(t._visit)}({item}, {self.const(items_node)}, "
                         f"{self.path(item_path)}, violations)")
        else:
            item_walk = (f"{self.const(t._detect)}(None, {item}, {self.path(item_path)}, "
                         f"False, violations, index=True)")
        self.emit(ind, f"if {src}.__class__ is list:")
        loop = ind + 1
        shape = self.shape(items_node, item_props, root, depth + 1, None)
        start = len(self.lines)
        if shape.pure():
            # the common case first: every item's checked strings in their clean caches
            # and no key the code does not know; the loop below only when one is not
            first = self.fresh("e")
            self.emit(ind + 1, f"{result} = {src}")
            self.emit(ind + 1, f"for {first} in {src}:")
            tests = [f"{first}.__class__ is dict"]
            with_keys = False
            if shape.checked or shape.scan_keys:
                test, with_keys = self.clean_test(ind + 2, first, shape)
                tests.append(test)
            if shape.extras and not with_keys:
                tests.append(f"{first}.keys() <= {self.token(shape.known)}")
            self.emit(ind + 2, f"if not ({' and '.join(tests)}):")
            loop = ind + 3
        self.emit(loop, f"{items} = None")
        self.emit(loop, f"for {index}, {item} in enumerate({src}):")
        self.emit(loop + 1, f"if {item}.__class__ is dict:")
        changed = self.obj(loop + 2, item, items_node, item_props, item_path, root, depth + 1)
        if changed is None:  # valid items are objects, and there is nothing to do in them
            del self.lines[start:]
            self.emit(ind + 1, f"{result} = {src}")
        else:
            new_item = self.fresh("n")
            self.emit(loop + 2, f"{new_item} = {item} if {changed} is None else {changed}")
            self.emit(loop + 1, "else:")
            self.emit(loop + 2, f"{new_item} = {item_walk}")
            self.emit(loop + 1, f"if {new_item} is not {item}:")
            self.emit(loop + 2, f"if {items} is None:")
            self.emit(loop + 3, f"{items} = {src}[:{index}]")
            self.emit(loop + 1, f"elif {items} is None:")
            self.emit(loop + 2, "continue")
            self.emit(loop + 1, f"if {new_item} is not {self.drop}:")
            self.emit(loop + 2, f"{items}.append({new_item})")
            self.emit(loop, f"{result} = {src} if {items} is None else {items}")
            if shape.pure():
                self.emit(loop, "break")
        self.emit(ind, "else:")
        self.emit(ind + 1, f"{result} = {walk}")
        return result


_MISSING = object()


#: Strings ruled out under id-like keys: by the general prefilter, or by the one for such
#: keys (:func:`trackplan.pii.detect.findings_for` decides them the same way).
_RULED_OUT_UNDER_ID = rust_check(
    {"anyOf": [{"not": {"pattern": PREFILTER}}, {"not": {"pattern": PREFILTER_ID}},
               {"pattern": SAFE_WHOLE}]}
)


def _keep(cache: set[object], value: object) -> bool:
    """Cache a string the prefilter ruled out (not a long one); True, for the chain."""
    if value.__class__ is str and len(value) <= CACHE_LEN:
        remember(cache, value)
    return True


def _remember_items(items: list[Any]) -> None:
    for value in items:
        if value.__class__ is str:
            remember(CLEAN, value)


class _PrefilterSlot:
    """Placeholder for the prefiltered validator until it is compiled."""


Compile = Callable[[dict[str, Any]], Callable[[Any], bool]]


def build(
    transformer: Transformer,
    root_schema: Any,
    payload_key: str | None,
    closed: frozenset[str] | None = None,
    compile_schema: Compile | None = None,
) -> Callable[[dict[str, Any], list[Any]], Any]:
    """The transform of ``transformer`` for events valid against ``root_schema``.

    Planned strings are looked up in the detectors' clean caches first. When one is not
    there, the whole event is checked once by a validator of ``root_schema`` with the
    prefilter on every string the transform scans (compiled by ``compile_schema``, in
    Rust): if it passes, no detector can fire on any of them, they are cached and nothing
    is scanned in Python; if not, the strings missing from the caches are scanned.

    Args:
        transformer: the rule's walk (its tree of declared and detected paths).
        root_schema: the assembled whole-call schema (``allOf`` of envelope, common rule,
            rule), which the event is known to be valid against.
        payload_key: ``properties`` or ``traits``, or None.
        closed: the keys a valid payload is limited to, when validation closes it to
            unplanned properties (None: any key may appear).
        compile_schema: schema -> ``is_valid``; None: no prefiltered validator (every
            string missing from the caches is scanned).

    Returns:
        ``fn(event, violations)``: the event to forward (``event`` itself when unchanged),
        or None to block, as ``transformer(event, violations)`` does on a valid event
        (the same event and findings; findings may come in another order).
    """
    gen = _Gen(transformer, payload_key, closed)
    gen.root = root_schema
    props: dict[str, Any] = {}
    branches = root_schema.get("allOf", []) if isinstance(root_schema, dict) else []
    common = branches[1] if len(branches) > 1 else None
    rule = branches[2] if len(branches) > 2 else None
    if payload_key is not None and isinstance(rule, dict):
        props[payload_key] = (rule.get("properties") or {}).get(payload_key, True)
    if isinstance(common, dict):
        props["context"] = (common.get("properties") or {}).get("context", True)
    gen.emit(1, "clean = None")  # (removed below when the code never asks)
    gen.emit(1, "try:")
    changed = gen.obj(2, "event", transformer.root, props, _Path(), root_schema, 0)
    result = "event" if changed is None else f"event if {changed} is None else {changed}"
    if changed is None:
        gen.emit(2, "pass")
    gen.emit(1, f"except {gen.const(Block)}:")  # the walk reports every finding, then blocks
    gen.emit(2, "del violations[:]")
    gen.emit(2, f"return {gen.const(transformer)}(event, violations)")
    gen.emit(1, f"except {gen.const(ValueError)}:")  # a lone surrogate, which Rust refuses
    gen.emit(2, "del violations[:]")
    gen.emit(2, f"return {gen.const(transformer)}(event, violations)")
    gen.emit(1, f"return {result}")
    if not gen.asks:
        gen.lines.remove("    clean = None")
    source = "def transform(event, violations):\n" + "\n".join(gen.lines) + "\n"
    namespace: dict[str, Any] = dict(gen.names)
    namespace["__builtins__"] = {"map": map, "enumerate": enumerate, "dict": dict, "str": str,
                                 "list": list}
    namespace[gen.prefiltered] = _never
    if gen.scanned and compile_schema is not None:
        schema, placed = _prefiltered(root_schema, gen.scanned)
        if placed:  # else a string would pass unchecked: every cache miss is scanned
            namespace[gen.prefiltered] = compile_schema(schema)
    exec(compile(source, "<trackplan pii transform>", "exec"), namespace)  # noqa: S102
    fn: Callable[[dict[str, Any], list[Any]], Any] = namespace["transform"]
    fn.source = source  # type: ignore[attr-defined]
    return fn


def _never(event: Any) -> bool:
    return False


def _prefiltered(
    root_schema: Any, scanned: list[tuple[int, str, str | None]]
) -> tuple[Any, bool]:
    """A copy of ``root_schema`` with the prefilter on every scanned string, and whether
    every guard found its place (one that did not would let its string through)."""
    memo: dict[int, Any] = {}
    copied = copy.deepcopy(root_schema, memo)
    placed = True
    for owner, key, as_key in scanned:
        target = memo.get(owner)
        if isinstance(target, dict) and key in target:
            guard = {"not": {"type": "string", "pattern": prefilter_for(as_key)}}
            target[key] = {"allOf": [target[key], guard]}
        else:
            placed = False
    return copied, placed
