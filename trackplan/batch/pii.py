"""PII detection in batches: the enforcer's detectors and actions, on the rows that need them.

The enforcer gives every compiled rule a :class:`trackplan.pii.engine.Transformer`: a tree
of the paths the plan declares (``x-pii``) and of the places the detectors scan (the
payload, the context fields the policy selects, declared free text). A batch asks the
same tree which of its columns the detectors would read, and rules rows out column by
column, the way the detectors' own prefilter does value by value:

* a string column is matched once (per distinct value, when dictionary-encoded or
  repetitive) against the detectors' prefilter regex (:data:`trackplan.pii.detect.PREFILTER`,
  with :data:`~trackplan.pii.detect.PREFILTER_ID` under id-like keys) in Arrow's RE2,
  and values that are whole UUIDs or timestamps (``SAFE_WHOLE``) or shorter than six
  characters are dropped, exactly the strings ``findings_for`` rules out unscanned;
* a column whose key could name PII (``phone``, ``email``), and a declared field whose
  action is ``reject``, make every row holding a value a candidate.

Only the candidate rows are turned into events and handed to the rule's ``Transformer``
itself, so the violations (type ``PII``, pointer, message) and the values written to a
cleaned copy are the enforcer's, not a re-implementation of them.

The policy is whatever :meth:`PiiPolicy.from_plan` compiles: detection is on or off as it
says. A plan that hashes needs its key; for a scan that writes nothing, a key made for
the run stands in (the hashes never leave the process); ``--redact-to`` asks for the real
one before the scan starts.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from trackplan import pointer as jp
from trackplan.batch.formats import match_repetitive
from trackplan.batch.mapping import snake_case
from trackplan.batch.rules import to_json
from trackplan.errors import MissingSecretError
from trackplan.pii.detect import PREFILTER, PREFILTER_ID, SAFE_WHOLE, name_category, prefilter_for
from trackplan.pii.engine import Transformer
from trackplan.pii.national import enable_for
from trackplan.pii.policy import DEFAULT_KEY_ENV, PiiPolicy
from trackplan.plan.model import Plan, Rule

__all__ = [
    "batch_policy", "RowPii", "Finding", "Located", "flat_context", "events_of",
    "detect_rows", "field_name", "strings_mask",
]  # fmt: skip

#: Shorter strings hold nothing a detector finds (``findings_for`` skips them).
MIN_LENGTH = 6


def batch_policy(plan: Plan) -> PiiPolicy:
    """The plan's PII policy; a key made for this run when the plan hashes and its key is
    not set (only a cleaned copy needs the real one, and asks for it first)."""
    try:
        policy = PiiPolicy.from_plan(plan)
    except MissingSecretError:
        raw = plan.pii if isinstance(plan.pii, Mapping) else {}
        name = raw.get("hash_key_env", DEFAULT_KEY_ENV)
        env = {**os.environ, str(name): secrets.token_hex(32)}
        policy = PiiPolicy.from_plan(plan, environ=env)
    enable_for(policy)  # the plan's opt-in national detectors, as the enforcer has them
    return policy


@dataclass(frozen=True, slots=True)
class Finding:
    """One PII violation of one candidate row, as the enforcer reports it.

    Attributes:
        index: the row's position among the rows given to :meth:`RowPii.run`.
        pointer: the enforcer's JSON pointer (``/properties/query``).
        parts: the pointer's tokens, list indexes as ints.
        detail: the enforcer's message (category, detector, action; never the value).
        replacement: the value the cleaned copy holds there, as JSON (None: removed).
        blocked: the row is blocked (a ``reject``); the replacement is the review copy's.
    """

    index: int
    pointer: str
    parts: tuple[str | int, ...]
    detail: str
    replacement: str | None
    blocked: bool


def _indexed(event: Any, pointer: str) -> tuple[str | int, ...]:
    """``pointer``'s tokens, those that index an array in ``event`` as ints."""
    out: list[str | int] = []
    node = event
    for token in jp.parse(pointer):
        if isinstance(node, list) and token.isdigit():
            index = int(token)
            out.append(index)
            node = node[index] if index < len(node) else None
        else:
            out.append(token)
            node = node.get(token) if isinstance(node, dict) else None
    return tuple(out)


_MISSING = object()


def _at(value: Any, parts: Sequence[str | int]) -> Any:
    for part in parts:
        if isinstance(value, dict) and isinstance(part, str) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return _MISSING
    return value


#: Sampled values per batch to learn the shapes of ids (``ord-`` and digits), and the
#: share of the sample a prefix needs.
ID_SAMPLE = 256
ID_SHARE = 0.1
#: A prefix the id shape test may trust: lower-case letters and one separator, at most.
_ID_PREFIX = re.compile(r"[a-z]{1,10}[-_]?")
_ID_DIGITS = 20
#: prefix -> whether no string of it and 1 to 20 ASCII digits can match PREFILTER_ID
_ID_PREFIXES: dict[str, bool] = {}


def _id_prefix_ok(prefix: str) -> bool:
    """Whether ``prefix`` followed by 1 to 20 ASCII digits never matches ``PREFILTER_ID``.

    Such a string has no ``@``, ``%``, ``(``, ``+``, ``.``, ``:``, space, upper-case
    letter or non-ASCII character, and its one possible separator follows a letter, so
    only a credential prefix inside ``prefix`` itself (``sk-``, ``ghp_``, ``npm_``) could
    match: the regex decides that on the prefix with digits after it.
    """
    known = _ID_PREFIXES.get(prefix)
    if known is None:
        probes = pa.array([prefix + d for d in ("0", "1234567890", "9" * _ID_DIGITS)])
        known = (
            bool(_ID_PREFIX.fullmatch(prefix))
            and not pc.any(pc.match_substring_regex(probes, PREFILTER_ID)).as_py()
        )
        if len(_ID_PREFIXES) >= 256:
            _ID_PREFIXES.clear()
        _ID_PREFIXES[prefix] = known
    return known


def _id_shaped(arr: pa.Array) -> np.ndarray | None:
    """Rows of a string array under an id-like key that are a trusted prefix and 1 to 20
    ASCII digits (``ord-1234567``): nothing the detectors report there (None: no such
    prefix in this batch). A few C kernels a value instead of a regex match."""
    step = max(1, len(arr) // ID_SAMPLE)
    sample = arr.slice(0, step * ID_SAMPLE)
    if step > 1:
        sample = pc.take(sample, pa.array(range(0, len(sample), step)))
    counts: dict[str, int] = {}
    for value in sample.to_pylist():
        if isinstance(value, str):
            head = value.rstrip("0123456789")
            if head != value:
                counts[head] = counts.get(head, 0) + 1
    total = max(1, len(sample))
    prefixes = [p for p, c in counts.items() if c >= ID_SHARE * total and _id_prefix_ok(p)]
    if not prefixes:
        return None
    binary = pa.large_binary() if pa.types.is_large_string(arr.type) else pa.binary()
    raw = arr.view(binary)
    size = pc.binary_length(arr)
    sure: np.ndarray | None = None
    for prefix in prefixes[:4]:
        width = len(prefix)
        starts = pc.and_(
            pc.starts_with(arr, prefix),
            pc.and_(pc.greater(size, width), pc.less_equal(size, width + _ID_DIGITS)),
        )
        digits = pc.binary_slice(raw, width, width + _ID_DIGITS).view(arr.type)
        ok = pc.fill_null(pc.and_(starts, pc.ascii_is_decimal(digits)), False)
        hit = ok.to_numpy(zero_copy_only=False)
        sure = hit if sure is None else sure | hit
    return sure


def strings_mask(arr: pa.Array, key: str | None) -> np.ndarray:
    """Rows of a string array the detectors could find something in (see module doc).

    Each test runs only on what the previous one kept: the length, then (under id-like
    keys) the id shapes and the narrower id prefilter, the prefilter, the safe shapes.
    """
    n = len(arr)
    # bytes >= characters: a superset of the strings of six characters or more
    mask = pc.fill_null(pc.greater_equal(pc.binary_length(arr), MIN_LENGTH), False)
    keep = mask.to_numpy(zero_copy_only=False)
    tests = [(PREFILTER, True), (SAFE_WHOLE, False)]
    if prefilter_for(key) == PREFILTER_ID:
        tests.insert(0, (PREFILTER_ID, True))
        shaped = _id_shaped(arr)
        if shaped is not None:
            keep = keep & ~shaped
    left = np.flatnonzero(keep)
    for pattern, wanted in tests:
        if not len(left):
            break
        values = arr if len(left) == n else arr.take(pa.array(left))
        hit = pc.fill_null(match_repetitive(values, pattern), not wanted)
        keep = hit.to_numpy(zero_copy_only=False)
        left = left[keep if wanted else ~keep]
    out = np.zeros(n, dtype=bool)
    out[left] = True
    return out


def _by_index(inner: np.ndarray, indices: pa.Array) -> np.ndarray | None:
    """Rows of a dictionary array whose value is true in ``inner`` (one per distinct
    value; a null index: none), or None when no value is."""
    if not inner.any():
        return None
    if indices.null_count:
        indices = pc.fill_null(indices, len(inner))  # points past the dictionary: false
    rows: np.ndarray = np.append(inner, False)[indices.to_numpy(zero_copy_only=False)]
    return rows


def _present(arr: pa.Array) -> np.ndarray:
    mask: np.ndarray = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    return mask


class _Detecting:
    """What a node of the transform tree is for undeclared keys under a detecting node:
    detecting, nothing declared (the enforcer's ``_DETECT_ALL``)."""

    keys: dict[str, Any] = {}
    star = None
    leaf = None
    detect = True
    person = False


_ANYWHERE = _Detecting()


class RowPii:
    """The enforcer's PII transform of one rule (or of calls without one), for batches."""

    def __init__(self, policy: PiiPolicy, rule: Rule | None, kind: str) -> None:
        self.transformer = Transformer(policy, rule, kind)
        #: nothing to do for any row (no declared field, no detection)
        self.inert = self.transformer.inert()
        self.values = self.transformer.values
        self.names = self.transformer.names

    def share_memos(self, memos: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Share the ``hash``/``mask``/``redact`` memos of one policy, as the enforcer does."""
        self.transformer.memos = memos

    # -- candidates -------------------------------------------------------------------
    def candidates(
        self,
        views: Mapping[str, pa.Array],
        n: int,
        omitted: tuple[str, Mapping[str, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Rows of ``n`` whose values (``views``: call key -> array) the transform could
        change or report; every other row it would leave as it is, unreported.
        ``omitted``: (view, field -> rows) of values dropped before the transform."""
        mask = np.zeros(n, dtype=bool)
        root: Any = self.transformer.root
        for key, arr in views.items():
            child = root.keys.get(key) or root.star
            if child is None:
                continue
            skip = omitted[1] if omitted is not None and omitted[0] == key else None
            if skip and pa.types.is_struct(arr.type):
                found = self._struct(arr, child, (key,), skip)
            else:
                found = self._node(arr, child, None, (key,))
            if found is not None:
                mask |= found
        return mask

    def _node(
        self, arr: pa.Array, node: Any, key: str | None, path: tuple[str, ...]
    ) -> np.ndarray | None:
        """Candidate rows of ``arr``, the values at ``node`` (None: none); ``path``: the
        call path of ``node`` (``*`` for list items)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        leaf = node.leaf
        if leaf is not None:
            if leaf.category is None:
                return None  # declared not PII
            if leaf.action == "reject" and self.transformer.block:
                return _present(arr)
            if leaf.category == "free_text" and leaf.action == "allow" and self.values:
                return self._scan(arr, None, whole=True)
            if leaf.category == "phone" and leaf.action == "hash":
                return self._reported(arr, path)  # a value that is no phone number
            return None  # a declared action, applied column-wise, reports nothing
        if pa.types.is_dictionary(arr.type):
            inner = self._node(arr.dictionary, node, key, path)
            return None if inner is None else _by_index(inner, arr.indices)
        typ = arr.type
        if pa.types.is_struct(typ):
            return self._struct(arr, node, path)
        if pa.types.is_list(typ) or pa.types.is_large_list(typ):
            item = node.star if node.star is not None else (_ANYWHERE if node.detect else None)
            if item is None or len(arr.values) == 0:
                return None
            flat = pc.list_flatten(arr)
            inner = self._node(flat, item, None, (*path, "*"))
            if inner is None or not inner.any():
                return None
            parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
            out = np.zeros(len(arr), dtype=bool)
            out[parents[inner]] = True
            return out
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            return self._scan(arr, key) if node.detect and self.values else None
        if (
            pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
            or pa.types.is_null(typ) or pa.types.is_temporal(typ) or pa.types.is_decimal(typ)
        ):  # fmt: skip
            return None  # no content a detector reads (a date prints as a SAFE_WHOLE shape)
        return _present(arr) if node.detect else None  # maps, binaries: the walk decides

    def _struct(
        self,
        arr: pa.Array,
        node: Any,
        path: tuple[str, ...],
        skip: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray | None:
        out: np.ndarray | None = None
        for i, field in enumerate(arr.type):
            name = field.name
            child = node.keys.get(name) or node.star
            undeclared = child is None
            if undeclared:
                if not node.detect:
                    continue
                child = _ANYWHERE
            values = pc.struct_field(arr, i)
            found: np.ndarray | None = None
            if undeclared and self.names and self._names_pii(name, bool(node.person)):
                found = _present(values)  # the key's name decides, given the value
            else:
                found = self._node(values, child, name if undeclared else None, (*path, name))
            if found is not None and skip is not None and name in skip:
                found = found & ~skip[name]
            if found is not None:
                out = found if out is None else out | found
        return out

    def _reported(self, arr: pa.Array, path: tuple[str, ...]) -> np.ndarray | None:
        """Rows of a declared field whose value the transform reports (a declared phone
        that does not parse): the transform itself decides, once per distinct value."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_nested(arr.type):
            return _present(arr)
        encoded = arr if pa.types.is_dictionary(arr.type) else pc.dictionary_encode(arr)
        hits = [self._reports(path, v) for v in to_json(encoded.dictionary.to_pylist())]
        if not any(hits):
            return None
        taken = pc.take(pa.array(hits, pa.bool_()), encoded.indices)
        mask: np.ndarray = pc.fill_null(taken, False).to_numpy(zero_copy_only=False)
        return mask

    def _reports(self, path: tuple[str, ...], value: Any) -> bool:
        """Whether the transform reports ``value`` alone at ``path`` (a call path)."""
        if value is None:
            return False
        event = value
        for token in reversed(path):
            event = [event] if token == "*" else {token: event}
        found: list[Any] = []
        self.transformer(event, found)
        return any(v.type == "PII" for v in found)

    def _names_pii(self, key: str, person: bool) -> bool:
        return name_category(key) is not None or (person and key.strip().lower() == "name")

    def _scan(self, arr: pa.Array, key: str | None, *, whole: bool = False) -> np.ndarray | None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            # declared free text read dictionary-encoded: its distinct values, once each
            inner = self._scan(arr.dictionary, key, whole=whole)
            return None if inner is None else _by_index(inner, arr.indices)
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return _present(arr) if whole else None
        if len(arr) == 0 or arr.null_count == len(arr):
            return None
        return strings_mask(arr, key)

    # -- the enforcer's transform on candidate rows --------------------------------------
    def run(self, events: Sequence[dict[str, Any]]) -> list[Finding]:
        """The transform on each event: its PII violations and the values it forwards."""
        out: list[Finding] = []
        transformer = self.transformer
        for index, event in enumerate(events):
            violations: list[Any] = []
            forwarded = transformer(event, violations)
            found = [v for v in violations if v.type == "PII"]
            if not found:
                continue
            blocked = forwarded is None
            copy = transformer.scrub(event) if blocked else forwarded
            for v in found:
                parts = _indexed(event, v.pointer)
                value = _at(copy, parts)
                text = None if value is _MISSING else orjson.dumps(value, default=str).decode()
                out.append(Finding(index, v.pointer, parts, v.message, text, blocked))
        return out


def flat_context(
    batch: pa.RecordBatch, names: Sequence[str], person_traits: bool = True
) -> tuple[pa.StructArray | None, dict[tuple[str, ...], str]]:
    """The ``context`` of a flat (warehouse) table as a struct, from its ``context_*``
    columns: ``names`` (the context keys the transform reads, by their schema spelling)
    from ``context_<snake_case(name)>``, and ``context.traits.*`` from ``context_traits_*``.
    Returns the struct (None: no such column) and call path -> column."""
    columns = batch.schema.names
    children: dict[str, pa.Array] = {}
    sources: dict[tuple[str, ...], str] = {}
    for name in names:
        if name == "traits":
            continue
        column = "context_" + snake_case(name)
        if column in columns:
            children[name] = batch.column(column)
            sources[("context", name)] = column
    if person_traits:
        traits: dict[str, pa.Array] = {}
        for column in columns:
            if column.startswith("context_traits_") and len(column) > len("context_traits_"):
                key = column[len("context_traits_") :]
                traits[key] = batch.column(column)
                sources[("context", "traits", key)] = column
        if traits:
            nulls = [pc.is_null(a) for a in traits.values()]
            absent = nulls[0]
            for more in nulls[1:]:
                absent = pc.and_(absent, more)
            children["traits"] = pa.StructArray.from_arrays(
                list(traits.values()), names=list(traits), mask=absent
            )
    if not children:
        return None, sources
    return pa.StructArray.from_arrays(list(children.values()), names=list(children)), sources


def events_of(
    views: Mapping[str, pa.Array],
    rows: np.ndarray,
    omitted: tuple[str, Mapping[str, np.ndarray]] | None = None,
) -> list[dict[str, Any]]:
    """The events (as the enforcer sees them) of ``rows`` of ``views``; absent values
    (nulls) are absent keys, and so are the ``omitted`` ones (see :meth:`RowPii.candidates`)."""
    take = pa.array(rows, pa.int64())
    columns = {key: to_json(arr.take(take).to_pylist()) for key, arr in views.items()}
    events: list[dict[str, Any]] = [{} for _ in range(len(rows))]
    for key, values in columns.items():
        for event, value in zip(events, values, strict=True):
            if value is not None:
                event[key] = value
    if omitted is not None:
        view, drop = omitted
        for name, where in drop.items():
            for event, gone in zip(events, where[rows], strict=True):
                payload = event.get(view)
                if gone and isinstance(payload, dict):
                    payload.pop(name, None)
    return events


@dataclass(frozen=True, slots=True)
class Located:
    """A finding placed in a batch: its row, the scan's field name and the source column."""

    position: int
    field: str
    column: str | None
    finding: Finding


def field_name(parts: Sequence[str | int], payload_key: str | None, in_context: bool) -> str:
    """The scan's notation (``products[].name``; payload fields without their key)."""
    names = ["[]" if isinstance(p, int) else p for p in parts]
    if not in_context and payload_key is not None and names[:1] == [payload_key]:
        names = names[1:]
    out = ""
    for name in names:
        out = out + name if name == "[]" or not out else f"{out}.{name}"
    return out


def detect_rows(
    pii: RowPii,
    batch: pa.RecordBatch,
    *,
    nested: bool,
    payload_key: str | None,
    payload: pa.StructArray | None,
    payload_sources: Mapping[str, str],
    in_context: bool = False,
    skip: np.ndarray | None = None,
    omitted: Mapping[str, np.ndarray] | None = None,
) -> list[Located]:
    """The enforcer's PII findings in the rows of ``batch`` (one rule's rows).

    Args:
        nested: the batch holds calls as they arrive (else a flat warehouse table).
        payload: the payload as checked (unplanned keys omitted; the flat layout's
            columns gathered), or None to read it from the batch.
        payload_sources: payload property -> the column it came from.
        in_context: the payload is ``context.traits`` (identify traits sent there).
        skip: rows the enforcer blocks before any PII pass (violations under ``block``).
        omitted: payload property -> rows it is dropped from before the PII pass
            (violations under ``omit``).
    """
    views: dict[str, pa.Array] = {}
    context_sources: dict[tuple[str, ...], str] = {}
    if nested:
        views = {name: batch.column(name) for name in batch.schema.names}
        if payload is not None and payload_key is not None and not in_context:
            views[payload_key] = payload
    else:
        if payload is not None:
            views[payload_key or "properties"] = payload
        root: Any = pii.transformer.root
        node = root.keys.get("context")
        names: list[str] = []
        if node is not None:
            if node.detect:  # every context field: each context_* column by its own name
                names = [
                    c[len("context_") :]
                    for c in batch.schema.names
                    if c.startswith("context_") and not c.startswith("context_traits_")
                ]
            names = [*names, *node.keys]
        context, context_sources = flat_context(batch, list(dict.fromkeys(names)))
        if context is not None:
            views["context"] = context
    dropped = None
    if omitted and not in_context and payload_key is not None and payload_key in views:
        dropped = (payload_key, omitted)
    candidates = pii.candidates(views, batch.num_rows, dropped)
    if skip is not None:
        candidates &= ~skip
    rows = np.flatnonzero(candidates)
    if not len(rows):
        return []
    out: list[Located] = []
    for finding in pii.run(events_of(views, rows, dropped)):
        parts = finding.parts
        fld = field_name(parts, payload_key, in_context)
        top = parts[1] if len(parts) > 1 else None
        column: str | None
        if parts[:1] == (payload_key,) and not in_context and isinstance(top, str):
            column = payload_sources.get(top, top)
        elif not nested:
            strings = tuple(p for p in parts if isinstance(p, str))
            column = next(
                (context_sources[strings[:k]] for k in range(len(strings), 0, -1)
                 if strings[:k] in context_sources),
                None,
            )  # fmt: skip
        else:
            column = ".".join(str(p) for p in parts[:2])
        out.append(Located(int(rows[finding.index]), fld, column, finding))
    return out
